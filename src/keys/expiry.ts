const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?$/;

export type ExpiryResult = { ok: true; at: Date } | { ok: false; message: string };

/**
 * `YYYY-MM-DD` means "valid through the end of that day, UTC"; a timestamp without an
 * offset is read as UTC. Either must lie strictly after `now`.
 */
export function parseExpiry(input: string, now: Date): ExpiryResult {
  const at = parseMoment(input);
  if (!at) {
    return {
      ok: false,
      message: "must be a date (YYYY-MM-DD) or an ISO-8601 timestamp such as 2027-01-31T23:59:59Z",
    };
  }
  if (at.getTime() <= now.getTime()) {
    return { ok: false, message: `must lie in the future (it is now ${now.toISOString()})` };
  }
  return { ok: true, at };
}

/** A date (end of that day, UTC) or an ISO-8601 timestamp, when it exists; else null. */
export function parseMoment(input: string): Date | null {
  const date = DATE_ONLY.exec(input);
  if (date) {
    const [, y, m, d] = date;
    if (!isRealDate(Number(y), Number(m), Number(d))) return null;
    return new Date(Date.UTC(Number(y), Number(m) - 1, Number(d), 23, 59, 59, 999));
  }
  const ts = TIMESTAMP.exec(input);
  if (!ts) return null;
  const [, y, m, d, hh, mm, ss = "00", frac = "", zone = "Z"] = ts;
  if (!isRealDate(Number(y), Number(m), Number(d))) return null;
  if (Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 59) return null;
  const offset = zone.toUpperCase() === "Z" ? "Z" : zone.replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
  const ms = frac ? frac.slice(0, 4).padEnd(4, "0") : "";
  const at = new Date(`${y}-${m}-${d}T${hh}:${mm}:${ss}${ms}${offset}`);
  return Number.isNaN(at.getTime()) ? null : at;
}

/** True for a calendar date that exists (rejects 2026-02-30). */
export function isRealDate(y: number, m: number, d: number): boolean {
  if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** Parses `YYYY-MM-DD` into its parts when the date exists. */
export function parseDateOnly(input: string): { y: number; m: number; d: number } | null {
  const match = DATE_ONLY.exec(input);
  if (!match) return null;
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  return isRealDate(y, m, d) ? { y, m, d } : null;
}
