/** Display helpers: dates, durations, sizes, and the dashboard's hourly series. */
import type { KeySigning } from "./types";

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const dateOnlyFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
});
const timeFmt = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso);
  return Number.isNaN(d.getTime()) ? iso : dateOnlyFmt.format(d);
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : timeFmt.format(d);
}

/** "3 minutes ago", "in 2 days"; "never" for null. */
export function relative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "never";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const diff = t - now;
  const abs = Math.abs(diff);
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ["year", 365 * 86_400_000],
    ["month", 30 * 86_400_000],
    ["day", 86_400_000],
    ["hour", 3_600_000],
    ["minute", 60_000],
  ];
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, ms] of units) {
    if (abs >= ms) return rtf.format(Math.round(diff / ms), unit);
  }
  return diff < 0 ? "just now" : "in a moment";
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let i = -1;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatSpeed(kbps: number): string {
  if (kbps >= 1000 && kbps % 1000 === 0) return `${kbps / 1000} Mbit/s`;
  if (kbps >= 1000) return `${(kbps / 1000).toFixed(1)} Mbit/s`;
  return `${kbps} kbit/s`;
}

export function formatMoney(amount: number, currency: string): string {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency}`;
  }
}

export type HourBucket = { hour: string; calls: number; errors: number };

/**
 * The server lists only hours that had calls. This returns one bucket per hour from the
 * hour holding `from` to the hour holding `to`, zero where nothing happened.
 */
export function fillHours(hourly: HourBucket[], from: string, to: string): HourBucket[] {
  const start = Math.floor(new Date(from).getTime() / 3_600_000) * 3_600_000;
  const end = Math.floor(new Date(to).getTime() / 3_600_000) * 3_600_000;
  const byHour = new Map(hourly.map((h) => [new Date(h.hour).getTime(), h]));
  const out: HourBucket[] = [];
  for (let t = start; t <= end; t += 3_600_000) {
    const hit = byHour.get(t);
    out.push({
      hour: new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z"),
      calls: hit?.calls ?? 0,
      errors: hit?.errors ?? 0,
    });
  }
  return out;
}

export function hourLabel(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, "0")}:00`;
}

export const SCOPE_VERBS: Record<string, string> = {
  read: "GET",
  write: "GET, POST, PUT",
  delete: "GET, POST, PUT, DELETE",
};

/** Mantine colours for a key or subscriber status, or an HTTP status code. */
export function statusColor(status: string | number): string {
  if (typeof status === "number") {
    if (status < 300) return "teal";
    if (status < 400) return "blue";
    if (status === 429) return "orange";
    if (status < 500) return "red";
    return "grape";
  }
  switch (status) {
    case "active":
      return "teal";
    case "revoked":
    case "suspended":
    case "disabled":
    case "owner_deleted":
      return "red";
    case "owner_disabled":
      return "orange";
    case "expired":
      return "gray";
    default:
      return "blue";
  }
}

/** What each key status means for the calls made with the key. */
export const KEY_STATUS_HELP: Record<string, string> = {
  active: "Calls are accepted, within its scope, allowed IPs and rate limit.",
  revoked: "Revoked: every call is refused with API_KEY_REVOKED, for good.",
  owner_deleted:
    "Its owner was deleted: a key acts for its owner, so every call is refused with INVALID_USER, for good.",
  owner_disabled:
    "Its owner is disabled: a key acts for its owner, so every call is refused with INVALID_USER until the owner is enabled again.",
  expired: "Expired: every call is refused with API_KEY_EXPIRED.",
};

/** The request-signing choices, each with its one line of help. */
export const SIGNING_CHOICES: { value: KeySigning; label: string; help: string }[] = [
  {
    value: "off",
    label: "Off",
    help: "Calls carry the key alone; the key has no signing secret.",
  },
  {
    value: "optional",
    label: "Optional",
    help: "Signed calls are verified; unsigned ones are still accepted.",
  },
  {
    value: "required",
    label: "Required",
    help: "Every call must carry an RFC 9421 signature made with the signing secret.",
  },
];

/** A key's request signing as people read it: Off, Optional or Required. */
export const SIGNING_LABEL: Record<KeySigning, string> = {
  off: "Off",
  optional: "Optional",
  required: "Required",
};

/** A status as people read it: `owner_disabled` → "owner disabled". */
export function statusLabel(status: string): string {
  return status.replace(/_/g, " ");
}

/** A key's last refused attempt in one line: when, from where, and why; null if none. */
export function lastRefusal(k: {
  last_refused_at: string | null;
  last_refused_ip: string | null;
  last_refused_code: string | null;
}): string | null {
  if (k.last_refused_at === null) return null;
  return `${relative(k.last_refused_at)} from ${k.last_refused_ip ?? "?"}: ${k.last_refused_code ?? "refused"}`;
}

export type DayUsage = {
  date: string;
  bytes_in: number;
  bytes_out: number;
  session_seconds: number;
};

/** One entry per day from `from` to `to` (YYYY-MM-DD, inclusive), zero where nothing was recorded. */
export function fillDays(days: DayUsage[], from: string, to: string): DayUsage[] {
  const byDate = new Map(days.map((d) => [d.date, d]));
  const out: DayUsage[] = [];
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end; t += 86_400_000) {
    const date = new Date(t).toISOString().slice(0, 10);
    out.push(byDate.get(date) ?? { date, bytes_in: 0, bytes_out: 0, session_seconds: 0 });
  }
  return out;
}

export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}
