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
