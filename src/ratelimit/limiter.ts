import type { QuotaWindow } from "../keys/quota.js";

/** What a limiter answers for one hit: whether it is allowed and what the headers should say. */
export type RateDecision = {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the current window ends and the budget is whole again. */
  resetMs: number;
  /**
   * A shared limiter's view of the cluster's key-eviction epoch at the moment of the hit.
   * An instance that sees an epoch newer than the last eviction it applied has missed one.
   */
  epoch?: number;
  /**
   * The generation `epoch` belongs to: it changes when Redis starts counting again (a
   * restart without data), so epochs are compared only within one generation.
   */
  generation?: string;
};

/** What a limiter answers about a key's quota for one call (see `hitQuota`). */
export type QuotaDecision = {
  /** Spent by this call (when it was to be spent), or not yet used up (when not). */
  allowed: boolean;
  limit: number;
  /** Calls counted in the period so far, this one included when it was spent. */
  used: number;
  remaining: number;
  /** Epoch ms the period ends and the quota is whole again. */
  resetAt: number;
  /** Milliseconds from the call to then. */
  resetMs: number;
};

/** A hit counted against a key's per-minute budget and its quota in one step. */
export type QuotaHit = RateDecision & {
  /** Null when the quota's count could not be had (its seed could not be read): not enforced. */
  quota: QuotaDecision | null;
};

/**
 * Reads how many calls of a roll chain (its first key `rootId` and every key rolled from it)
 * were admitted from `startMs` to `endMs` as the database has them (the usage rollups): the
 * count a missing quota counter starts from.
 */
export type QuotaSeed = (rootId: number, startMs: number, endMs: number) => Promise<number>;

/**
 * Fixed-window budgets keyed by bucket name. Implementations may answer synchronously
 * (memory) or asynchronously (shared store); callers always `await`.
 */
export interface Limiter {
  /** Counts one hit against the bucket and says whether it fit in the budget. */
  hit(
    bucket: string,
    limit: number,
    windowMs: number,
    now: number,
  ): RateDecision | Promise<RateDecision>;
  /** Says whether the bucket is already spent, without counting a hit. */
  peek(
    bucket: string,
    limit: number,
    windowMs: number,
    now: number,
  ): RateDecision | Promise<RateDecision>;
  /**
   * Counts one hit against the bucket, as `hit` does, and in the same step the key's quota:
   * when the hit fits in the budget and `spend` is set (the call will be admitted), one call
   * of the quota is spent if any is left — never past its limit. A refused hit spends none.
   * Limiters without quotas leave it out, and keys' quotas are then not enforced.
   */
  hitQuota?(
    bucket: string,
    limit: number,
    windowMs: number,
    now: number,
    quota: QuotaWindow,
    spend: boolean,
  ): QuotaHit | Promise<QuotaHit>;
  /** What the quota stands at, spending nothing; null when its count cannot be had. */
  peekQuota?(quota: QuotaWindow, now: number): QuotaDecision | null | Promise<QuotaDecision | null>;
  /** Gives back one call spent by `hitQuota` (a call found refused after it was counted). */
  refundQuota?(quota: QuotaWindow): void | Promise<void>;
  /** Forgets the bucket's current window (e.g. after a successful sign-in). */
  reset(bucket: string, windowMs: number, now: number): void | Promise<void>;
  close?(): void | Promise<void>;
}

export type WindowState = { start: number; count: number };

/**
 * The pure rule behind every limiter: windows are aligned to multiples of `windowMs`,
 * so every instance agrees on when a window starts without talking to the others.
 */
export function decide(
  state: WindowState | undefined,
  limit: number,
  windowMs: number,
  now: number,
  count: boolean,
): { state: WindowState; decision: RateDecision } {
  const start = now - (now % windowMs);
  const current = state && state.start === start ? state.count : 0;
  const allowed = current < limit;
  const used = count && allowed ? current + 1 : current;
  return {
    state: { start, count: used },
    decision: {
      allowed,
      limit,
      remaining: Math.max(0, limit - used),
      resetMs: start + windowMs - now,
    },
  };
}
