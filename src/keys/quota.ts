import type { FieldProblem } from "../errors.js";

/** How often a quota refills: each UTC day, or each month (from its refill day). */
export type QuotaPeriod = "day" | "month";

export const QUOTA_PERIODS: readonly QuotaPeriod[] = ["day", "month"];

/** The most calls a quota may allow per period. */
export const MAX_QUOTA = 1_000_000_000;

/** A key's quota as stored: admitted calls per period. `refillDay` only for monthly quotas. */
export type KeyQuota = {
  limit: number;
  period: QuotaPeriod;
  /** 1–31: the day of the month a monthly quota refills (clamped to the month's end); null = the 1st. */
  refillDay: number | null;
};

/** A quota as the API shows and takes it. */
export type QuotaView = { limit: number; period: QuotaPeriod; refill_day: number | null };

/**
 * The quota's period under way: what a limiter counts it under. Built once per key and
 * period (see `quotaWindow`), so a call of a key with a quota allocates nothing for it.
 */
export type QuotaWindow = {
  /** The counter's name: one per roll chain (its first key) and period start. */
  readonly bucket: string;
  readonly keyId: number;
  /**
   * The first key of the key's roll chain: the keys of a chain share one count (a roll does
   * not give the quota back), seeded from all their admitted calls.
   */
  readonly rootId: number;
  readonly limit: number;
  readonly period: QuotaPeriod;
  /** Epoch ms the period started (inclusive) and ends (exclusive), UTC. */
  readonly startMs: number;
  readonly endMs: number;
  /** The count at which `key.quota_low` is sent for 80 % (ceil), and for 100 %. */
  readonly warnAt: number;
  /** Set once this process has handed the 80 % / 100 % event on: later calls skip it. */
  warned: number;
};

/**
 * A key's quota on its verification record: the plan, the roll chain's first key it is
 * counted under (null: the key itself), and the period last worked out.
 */
export type QuotaPlan = KeyQuota & { rootId: number | null; window: QuotaWindow | null };

const DAY_MS = 86_400_000;

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** When a monthly period refilling on `day` starts in `month` of `year` (month may overflow). */
function refillIn(year: number, month: number, day: number): number {
  const y = year + Math.floor(month / 12);
  const m = ((month % 12) + 12) % 12;
  return Date.UTC(y, m, Math.min(day, daysIn(y, m)));
}

/**
 * The period `now` (epoch ms) falls in, UTC: a day from midnight, or a month from its refill
 * day (the 1st by default; a day past the month's end is its last day: 31 → 28 or 29 in
 * February, 30 in April).
 */
export function quotaPeriod(
  q: Pick<KeyQuota, "period" | "refillDay">,
  now: number,
): { startMs: number; endMs: number } {
  if (q.period === "day") {
    const startMs = now - (((now % DAY_MS) + DAY_MS) % DAY_MS);
    return { startMs, endMs: startMs + DAY_MS };
  }
  const day = q.refillDay ?? 1;
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const here = refillIn(y, m, day);
  return now >= here
    ? { startMs: here, endMs: refillIn(y, m + 1, day) }
    : { startMs: refillIn(y, m - 1, day), endMs: here };
}

/** The quota's window for `now`: the one kept on the plan while `now` is inside it. */
export function quotaWindow(keyId: number, plan: QuotaPlan, now: number): QuotaWindow {
  const w = plan.window;
  if (w !== null && now < w.endMs && now >= w.startMs) return w;
  const { startMs, endMs } = quotaPeriod(plan, now);
  const rootId = plan.rootId ?? keyId;
  const fresh: QuotaWindow = {
    bucket: `quota:${rootId}:${startMs}`,
    keyId,
    rootId,
    limit: plan.limit,
    period: plan.period,
    startMs,
    endMs,
    warnAt: Math.ceil(plan.limit * 0.8),
    warned: 0,
  };
  plan.window = fresh;
  return fresh;
}

/** A key's quota plan; `rootId` is its roll chain's first key (null: the key itself). */
export function quotaPlan(q: KeyQuota | null, rootId: number | null = null): QuotaPlan | null {
  return q === null ? null : { ...q, rootId, window: null };
}

export function quotaView(q: KeyQuota | null): QuotaView | null {
  return q === null ? null : { limit: q.limit, period: q.period, refill_day: q.refillDay };
}

/**
 * Reads a quota as the API takes it: `null` removes it; else `{limit, period, refill_day?}`.
 * Problems are named by field (`quota.limit`, …) and say what to send instead.
 */
export function parseQuota(
  input: unknown,
): { ok: true; quota: KeyQuota | null } | { ok: false; problems: FieldProblem[] } {
  if (input === null) return { ok: true, quota: null };
  if (typeof input !== "object" || Array.isArray(input)) {
    return {
      ok: false,
      problems: [
        {
          field: "quota",
          message:
            'must be an object such as {"limit": 10000, "period": "day"} (or "month", with an optional refill_day), or null for no quota',
        },
      ],
    };
  }
  const o = input as Record<string, unknown>;
  const problems: FieldProblem[] = [];
  for (const k of Object.keys(o)) {
    if (k !== "limit" && k !== "period" && k !== "refill_day")
      problems.push({
        field: `quota.${k}`,
        message: "is not a quota field; a quota has limit, period and refill_day",
      });
  }
  const limit = o.limit;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_QUOTA)
    problems.push({
      field: "quota.limit",
      message: `must be a whole number of calls from 1 to ${MAX_QUOTA}`,
    });
  const period = o.period;
  if (period !== "day" && period !== "month")
    problems.push({
      field: "quota.period",
      message: 'must be "day" (refills at 00:00 UTC) or "month" (refills on refill_day, UTC)',
    });
  const day = o.refill_day ?? null;
  if (day !== null) {
    if (typeof day !== "number" || !Number.isInteger(day) || day < 1 || day > 31)
      problems.push({
        field: "quota.refill_day",
        message:
          "must be a day of the month from 1 to 31 (past a month's end it refills on its last day)",
      });
    else if (period === "day")
      problems.push({
        field: "quota.refill_day",
        message: 'applies to monthly quotas only: leave it out, or set period to "month"',
      });
  }
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    quota: {
      limit: limit as number,
      period: period as QuotaPeriod,
      refillDay: period === "month" ? (day as number | null) : null,
    },
  };
}

/**
 * What a key's quota stands at: counted calls in the period under way and when it refills.
 * `used` may exceed nothing: a quota is a hard cap, so it stops at `limit`.
 */
export type QuotaUsage = {
  used: number;
  remaining: number;
  period_start: string;
  resets_at: string;
};
