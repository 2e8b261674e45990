/**
 * Key usage analytics (SPEC §10): `GET /api/api-keys/:id/usage` and `GET /api/usage`, read
 * from the usage rollups (store/usage.ts) — never from the call log. Who sees what follows
 * the keys themselves: admins every key, anyone else their own keys.
 */
import type { Kysely } from "kysely";
import type { Principal } from "../auth/principal.js";
import { invalid } from "../errors.js";
import type { DB } from "../store/schema.js";
import { readUsage, type UsageSummary } from "../store/usage.js";
import type { Environment } from "./format.js";
import type { KeyService } from "./service.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Hourly buckets cover at most this many days, daily ones at most MAX_DAY_RANGE_DAYS. */
export const MAX_HOUR_RANGE_DAYS = 90;
export const MAX_DAY_RANGE_DAYS = 400;
/** Without `bucket`, a range up to this many days is answered by hour, a longer one by day. */
export const HOURLY_UP_TO_DAYS = 7;

export type Bucket = "hour" | "day";

export type UsageQuery = {
  from?: string;
  to?: string;
  bucket?: Bucket;
  environment?: Environment;
};

/** The range a query asks for, in whole buckets. */
export type UsageRange = {
  fromHour: number;
  toHour: number;
  bucket: Bucket;
  bucketHours: 1 | 24;
};

export type UsageReport = {
  from: string;
  to: string;
  bucket: Bucket;
  environment: Environment | null;
  api_key_id?: number;
} & UsageSummary;

const DATE = /^(\d{4})-(\d{2})-(\d{2})/;

/**
 * An ISO time (or a date, meaning its UTC midnight; as `to`, the midnight after it, so the
 * day is included) in epoch ms; a VALIDATION_ERROR for anything that is no real time.
 */
export function parseTime(field: "from" | "to", value: string): number {
  const dateOnly = value.length === 10;
  const ms = Date.parse(dateOnly ? `${value}T00:00:00Z` : value);
  const d = DATE.exec(value);
  const real =
    d !== null &&
    !Number.isNaN(ms) &&
    // No 31 November: the date written is the date meant.
    new Date(Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]))).toISOString().slice(0, 10) ===
      value.slice(0, 10);
  if (!real)
    throw invalid(
      field,
      "must be a real ISO-8601 date-time such as 2026-11-20T09:30:00Z (or a date such as 2026-11-20)",
    );
  return dateOnly && field === "to" ? ms + DAY_MS : ms;
}

/**
 * The buckets a query covers: `from` rounded down and `to` rounded up to whole buckets (hours,
 * or UTC days). Defaults: the last 24 hours (this hour the last), by hour up to 7 days, by
 * day beyond; bounded so an answer stays small.
 */
export function resolveRange(q: UsageQuery, nowMs: number): UsageRange {
  let toMs = q.to === undefined ? nowMs : parseTime("to", q.to);
  let fromMs = q.from === undefined ? toMs - DAY_MS : parseTime("from", q.from);
  if (q.from === undefined && q.to === undefined) {
    // The last 24 whole hours, the current one included.
    toMs = (Math.floor(nowMs / HOUR_MS) + 1) * HOUR_MS;
    fromMs = toMs - DAY_MS;
  }
  if (fromMs >= toMs)
    throw invalid(
      q.from === undefined ? "to" : "from",
      `must be before to: from ${new Date(fromMs).toISOString()} is not before to ${new Date(toMs).toISOString()}${q.to === undefined ? " (to defaults to now)" : ""}`,
    );
  const bucket = q.bucket ?? (toMs - fromMs <= HOURLY_UP_TO_DAYS * DAY_MS ? "hour" : "day");
  const bucketHours = bucket === "hour" ? 1 : 24;
  const fromHour = Math.floor(fromMs / HOUR_MS / bucketHours) * bucketHours;
  const toHour = Math.ceil(toMs / HOUR_MS / bucketHours) * bucketHours;
  const maxDays = bucket === "hour" ? MAX_HOUR_RANGE_DAYS : MAX_DAY_RANGE_DAYS;
  if (toHour - fromHour > maxDays * 24) {
    const days = Math.ceil((toHour - fromHour) / 24);
    throw invalid(
      "to",
      bucket === "hour"
        ? `spans ${days} days from from; hourly buckets cover at most ${MAX_HOUR_RANGE_DAYS} days — ask bucket=day, or a shorter range`
        : `spans ${days} days from from; daily buckets cover at most ${MAX_DAY_RANGE_DAYS} days — ask a shorter range`,
    );
  }
  return { fromHour, toHour, bucket, bucketHours };
}

export type KeyUsageOptions = {
  db: Kysely<DB>;
  keys: Pick<KeyService, "get">;
  /** Writes pending call-log batches (and so their rollups), so reads see every call so far. */
  flush: () => Promise<void>;
  now: () => Date;
};

/** Usage of the keys a principal may see. */
export class KeyUsage {
  constructor(private readonly o: KeyUsageOptions) {}

  /** One key's usage; 404 when the principal may not see the key. */
  async forKey(p: Principal, id: number, q: UsageQuery): Promise<UsageReport> {
    const range = resolveRange(q, this.o.now().getTime());
    await this.o.keys.get(p, id); // 404 out of sight; writes pending calls first
    return this.report(range, q, { keyId: id }, id);
  }

  /** Every key the principal may see (or one of them, `apiKeyId`), summed. */
  async all(p: Principal, q: UsageQuery & { api_key_id?: number }): Promise<UsageReport> {
    const range = resolveRange(q, this.o.now().getTime());
    if (q.api_key_id !== undefined) {
      await this.o.keys.get(p, q.api_key_id);
      return this.report(range, q, { keyId: q.api_key_id });
    }
    await this.o.flush();
    return this.report(range, q, { ownerId: p.role === "admin" ? null : p.userId });
  }

  private async report(
    range: UsageRange,
    q: UsageQuery,
    whose: { keyId?: number; ownerId?: number | null },
    apiKeyId?: number,
  ): Promise<UsageReport> {
    const environment = q.environment ?? null;
    const summary = await readUsage(this.o.db, {
      fromHour: range.fromHour,
      toHour: range.toHour,
      bucketHours: range.bucketHours,
      environment,
      ...whose,
    });
    return {
      from: new Date(range.fromHour * HOUR_MS).toISOString(),
      to: new Date(range.toHour * HOUR_MS).toISOString(),
      bucket: range.bucket,
      environment,
      ...(apiKeyId === undefined ? {} : { api_key_id: apiKeyId }),
      ...summary,
    };
  }
}
