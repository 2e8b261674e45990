/**
 * Form checks run in the browser before anything is sent. They mirror the server's rules so
 * a mistake is caught as it is typed; the server still has the last word, and its own
 * messages are shown when it disagrees.
 */
import ipaddr from "ipaddr.js";
import { FULL, type Levels, toPermissions } from "./permissions";
import type { KeySigning } from "./types";

/** A problem with a field, or null when it is fine. */
export type Check = string | null;

export const USERNAME_RE = /^[A-Za-z0-9@._-]{3,64}$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
// Dot-separated labels that cannot hold a dot: one way to match, so linear on any input.
const EMAIL_RE = /^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$/;
const PHONE_RE = /^[0-9+()\-. ]{3,32}$/;
const CURRENCY_RE = /^[A-Z]{3}$/;
const AMOUNT_RE = /^\d+(\.\d{1,2})?$/;

export const MAX_ALLOWED_IPS = 100;
export const MAX_GRACE_HOURS = 168;

export function required(value: string, what = "this field"): Check {
  return value.trim() === "" ? `Enter ${what}.` : null;
}

export function username(value: string): Check {
  if (value.trim() === "") return "Enter a username.";
  if (value.length < 3) return "A username has at least 3 characters.";
  if (value.length > 64) return "A username has at most 64 characters.";
  if (!USERNAME_RE.test(value)) return "Use only letters, digits and @ . _ -";
  return null;
}

/** A person's password (admins and resellers): at least 8 characters. */
export function userPassword(value: string): Check {
  if (value === "") return "Enter a password.";
  if (value.length < 8) return "A password has at least 8 characters.";
  if (value.length > 1024) return "A password has at most 1024 characters.";
  return null;
}

/** A subscriber's password: 4-128 characters, or "auto-generate". */
export function subscriberPassword(value: string, { optional = false } = {}): Check {
  if (value === "") return optional ? null : 'Enter a password, or choose "Generate one".';
  if (value === "auto-generate") return null;
  if (value.length < 4) return "A subscriber password has at least 4 characters.";
  if (value.length > 128) return "A subscriber password has at most 128 characters.";
  return null;
}

export function email(value: string): Check {
  if (value.trim() === "") return null;
  if (value.length > 254 || !EMAIL_RE.test(value.trim()))
    return "Enter an email address such as name@example.com.";
  return null;
}

export function phone(value: string): Check {
  if (value.trim() === "") return null;
  return PHONE_RE.test(value.trim()) ? null : "Use 3-32 digits, spaces and + ( ) - .";
}

export function currency(value: string): Check {
  if (value.trim() === "") return null;
  return CURRENCY_RE.test(value.trim()) ? null : "Use a 3-letter code in capitals, such as USD.";
}

/** A money amount greater than zero with at most two decimals (`19.99`). */
export function amount(value: string, { allowZero = false } = {}): Check {
  const v = value.trim();
  if (v === "") return "Enter an amount.";
  if (!AMOUNT_RE.test(v)) return "Use a number with at most 2 decimals, such as 19.99.";
  if (!allowZero && Number(v) <= 0) return "The amount must be more than 0.";
  return null;
}

/** A whole number in a range; empty is fine unless `required`. */
export function wholeNumber(
  value: string,
  min: number,
  max: number,
  { required: needed = false, what = "a number" } = {},
): Check {
  const v = value.trim();
  if (v === "") return needed ? `Enter ${what}.` : null;
  if (!/^\d+$/.test(v)) return `Use a whole number from ${min} to ${max}.`;
  const n = Number(v);
  if (n < min || n > max) return `Use a whole number from ${min} to ${max}.`;
  return null;
}

export function rateLimit(value: string): Check {
  return wholeNumber(value, 1, 1_000_000, { what: "requests per minute" });
}

export function graceHours(value: string): Check {
  return wholeNumber(value, 0, MAX_GRACE_HOURS, { required: true, what: "a grace period" });
}

/** `YYYY-MM-DD` that exists on the calendar. */
export function isDate(value: string): boolean {
  const m = DATE_RE.exec(value);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

export function dateOnly(value: string): Check {
  if (value.trim() === "") return null;
  return isDate(value.trim()) ? null : "Use a date as YYYY-MM-DD.";
}

/** Today's date in UTC as `YYYY-MM-DD`: the first day a key may still expire on. */
export function todayUtc(now: Date = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/**
 * A key's expiry: a date that is valid through the end of that day in UTC, so today is
 * still allowed and yesterday is not.
 */
export function keyExpiry(value: string, now: Date = new Date()): Check {
  const v = value.trim();
  if (v === "") return null;
  if (!isDate(v)) return "Use a date as YYYY-MM-DD.";
  if (v < todayUtc(now)) return "The expiry date has passed; choose today or a later date.";
  return null;
}

/** One allowed-IP entry: an IPv4/IPv6 address or a CIDR range, as the server accepts it. */
export function ipEntry(raw: string): Check {
  const value = raw.trim();
  if (value === "") return null;
  const slash = value.indexOf("/");
  const addrText = slash === -1 ? value : value.slice(0, slash);
  const strict =
    ipaddr.IPv4.isValidFourPartDecimal(addrText) ||
    (addrText.includes(":") && ipaddr.IPv6.isValid(addrText) && !addrText.includes("%"));
  if (!strict) return "not an IPv4 or IPv6 address or CIDR range (e.g. 203.0.113.7, 10.0.0.0/8)";
  if (slash === -1) return null;
  const addr = ipaddr.parse(addrText);
  const max = addr.kind() === "ipv4" ? 32 : 128;
  const bitsText = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max)
    return `the prefix length must be 0-${max}`;
  const bits = Number(bitsText);
  const bytes = addr.toByteArray();
  const network = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  const net = ipaddr.fromByteArray(network);
  if (net.toString() !== addr.toString()) return `host bits set: did you mean ${net}/${bits}?`;
  return null;
}

export type LineProblem = { line: number; value: string; message: string };

/** The allowed-IP text box: one entry per line; blank lines are ignored. */
export function parseIpLines(text: string): { entries: string[]; problems: LineProblem[] } {
  const entries: string[] = [];
  const problems: LineProblem[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const value = raw.trim();
    if (value === "") return;
    const message = ipEntry(value);
    if (message) problems.push({ line: i + 1, value, message });
    else entries.push(value);
  });
  if (entries.length > MAX_ALLOWED_IPS)
    problems.push({
      line: 0,
      value: "",
      message: `at most ${MAX_ALLOWED_IPS} entries (there are ${entries.length})`,
    });
  return { entries, problems };
}

export function allowedIps(text: string): Check {
  const { problems } = parseIpLines(text);
  if (problems.length === 0) return null;
  return problems
    .map((p) => (p.line > 0 ? `Line ${p.line} (${p.value}): ${p.message}` : p.message))
    .join("\n");
}

export type Errors<K extends string> = Partial<Record<K, string>>;

/** Runs a set of checks; the result holds only the fields with a problem. */
export function collect<K extends string>(checks: Record<K, Check>): Errors<K> {
  const out: Errors<K> = {};
  for (const [k, v] of Object.entries(checks) as [K, Check][]) if (v) out[k] = v;
  return out;
}

export function hasErrors(errors: Record<string, string | undefined>): boolean {
  return Object.values(errors).some(Boolean);
}

// ---------------------------------------------------------------------------------------
// Whole forms: each returns the problems of every field at once.

export type KeyFormValues = {
  name: string;
  description: string;
  permissions: Levels;
  allowed_ips: string;
  rate_limit_per_minute: string;
  expires_at: string;
  owner_id: string;
  /** Request signing: off, optional or required. */
  signing: KeySigning;
  /** Admitted calls per period; empty: no quota. */
  quota_limit: string;
  quota_period: "day" | "month";
  /** Monthly quotas: the day of the month it refills (1–31); empty: the 1st. */
  quota_refill_day: string;
};

/** The most calls a quota may allow per period (the server's bound). */
export const MAX_QUOTA = 1_000_000_000;

export function quotaLimit(value: string): Check {
  return wholeNumber(value, 1, MAX_QUOTA, { what: "calls" });
}

export function refillDay(value: string, period: "day" | "month"): Check {
  if (value.trim() === "") return null;
  if (period !== "month") return "A refill day applies to monthly quotas only.";
  return wholeNumber(value, 1, 31, { what: "a day of the month" });
}

export function validateKeyForm(
  v: KeyFormValues,
  {
    now = new Date(),
    editing = false,
    limits = FULL,
  }: { now?: Date; editing?: boolean; limits?: Levels } = {},
) {
  return collect<keyof KeyFormValues>({
    name:
      editing && v.name.trim() === ""
        ? "Enter a name."
        : v.name.length > 100
          ? "A name has at most 100 characters."
          : null,
    description: v.description.length > 500 ? "At most 500 characters." : null,
    permissions:
      toPermissions(v.permissions, limits).length === 0
        ? "Tick at least one permission, or choose a preset."
        : null,
    allowed_ips: allowedIps(v.allowed_ips),
    rate_limit_per_minute: rateLimit(v.rate_limit_per_minute),
    expires_at: keyExpiry(v.expires_at, now),
    owner_id: null,
    signing: null,
    quota_limit: quotaLimit(v.quota_limit),
    quota_period: null,
    quota_refill_day: refillDay(v.quota_refill_day, v.quota_period),
  });
}

export type SubscriberFormValues = {
  username: string;
  password: string;
  service_id: string;
  full_name: string;
  email: string;
  phone: string;
  status: string;
  expiry_date: string;
  owner_id: string;
};

export function validateSubscriberForm(v: SubscriberFormValues, { editing = false } = {}) {
  return collect<keyof SubscriberFormValues>({
    username: username(v.username),
    password: subscriberPassword(v.password, { optional: editing }),
    service_id: v.service_id === "" ? "Choose a service." : null,
    full_name: v.full_name.length > 128 ? "At most 128 characters." : null,
    email: email(v.email),
    phone: phone(v.phone),
    status: null,
    expiry_date: dateOnly(v.expiry_date),
    owner_id: null,
  });
}

export type ServiceFormValues = {
  name: string;
  download_kbps: string;
  upload_kbps: string;
  price: string;
  currency: string;
  duration_days: string;
  is_active: boolean;
};

export function validateServiceForm(v: ServiceFormValues) {
  return collect<keyof ServiceFormValues>({
    name: required(v.name, "a name") ?? (v.name.length > 128 ? "At most 128 characters." : null),
    download_kbps: wholeNumber(v.download_kbps, 0, 100_000_000),
    upload_kbps: wholeNumber(v.upload_kbps, 0, 100_000_000),
    price: v.price.trim() === "" ? null : amount(v.price, { allowZero: true }),
    currency: currency(v.currency),
    duration_days: wholeNumber(v.duration_days, 1, 3650),
    is_active: null,
  });
}

export type NasFormValues = {
  name: string;
  ip_address: string;
  type: string;
  description: string;
  secret: string;
};

export function validateNasForm(v: NasFormValues, { editing = false } = {}) {
  const ip = v.ip_address.trim();
  return collect<keyof NasFormValues>({
    name: required(v.name, "a name"),
    ip_address:
      ip === ""
        ? "Enter the device's IP address."
        : ip.includes("/") || ipEntry(ip)
          ? "Enter a single IPv4 or IPv6 address."
          : null,
    type: v.type.length > 32 ? "At most 32 characters." : null,
    description: v.description.length > 500 ? "At most 500 characters." : null,
    secret:
      !editing && v.secret === ""
        ? "Enter the shared secret."
        : v.secret.length > 128
          ? "At most 128 characters."
          : null,
  });
}

export type TransactionFormValues = {
  subscriber_id: string;
  amount: string;
  currency: string;
  type: string;
  reference: string;
  description: string;
};

export function validateTransactionForm(v: TransactionFormValues) {
  return collect<keyof TransactionFormValues>({
    subscriber_id: v.subscriber_id === "" ? "Choose a subscriber." : null,
    amount: amount(v.amount),
    currency: currency(v.currency),
    type: null,
    reference: v.reference.length > 128 ? "At most 128 characters." : null,
    description: v.description.length > 500 ? "At most 500 characters." : null,
  });
}

export type UserFormValues = { username: string; password: string; role: string };

export function validateUserForm(v: UserFormValues) {
  return collect<keyof UserFormValues>({
    username: username(v.username),
    password: userPassword(v.password),
    role: v.role === "admin" || v.role === "reseller" ? null : "Choose a role.",
  });
}

export type UsageFormValues = {
  date: string;
  bytes_in: string;
  bytes_out: string;
  session_seconds: string;
};

export function validateUsageForm(v: UsageFormValues) {
  const big = Number.MAX_SAFE_INTEGER;
  const problems = collect<keyof UsageFormValues>({
    date: dateOnly(v.date),
    bytes_in: wholeNumber(v.bytes_in, 0, big),
    bytes_out: wholeNumber(v.bytes_out, 0, big),
    session_seconds: wholeNumber(v.session_seconds, 0, 10_000_000_000),
  });
  if (!problems.bytes_in && [v.bytes_in, v.bytes_out, v.session_seconds].every((x) => !x.trim()))
    problems.bytes_in = "Enter at least one counter.";
  return problems;
}
