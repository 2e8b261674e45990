import type { QuotaWindow } from "../keys/quota.js";
import type { QuotaDecision, QuotaSeed } from "./limiter.js";

/** How long after a failed seed read quotas are decided without a count, before trying again. */
const RETRY_AFTER_MS = 5_000;

/**
 * Reads the starting count of quota counters from the database: one read per counter at a
 * time (concurrent calls of a key share it), asked only when a counter is missing — once per
 * key and period in a process, or per Redis lifetime. While the database cannot answer,
 * quotas go unenforced (calls are admitted uncounted) for a few seconds at a time rather
 * than waiting on it or refusing.
 */
export class QuotaSeeds {
  private readonly inflight = new Map<string, Promise<number | null>>();
  private failedUntil = 0;

  constructor(
    private readonly seed: QuotaSeed,
    private readonly warn: (msg: string) => void = () => {},
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * The admitted calls of the window's roll chain (every key counted under its first key) in
   * its period so far; null when unreadable now.
   */
  read(q: QuotaWindow): Promise<number | null> {
    if (this.clock() < this.failedUntil) return Promise.resolve(null);
    const pending = this.inflight.get(q.bucket);
    if (pending !== undefined) return pending;
    const read = this.seed(q.rootId, q.startMs, q.endMs).then(
      (n) => {
        this.inflight.delete(q.bucket);
        return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
      },
      (err: unknown) => {
        this.inflight.delete(q.bucket);
        if (this.clock() >= this.failedUntil)
          this.warn(
            `quota counts could not be read from the database (${(err as Error).message}); quotas are not enforced until it answers`,
          );
        this.failedUntil = this.clock() + RETRY_AFTER_MS;
        return null;
      },
    );
    this.inflight.set(q.bucket, read);
    return read;
  }
}

/** A quota's decision from its count after the call. */
export function quotaDecision(
  q: QuotaWindow,
  used: number,
  allowed: boolean,
  now: number,
): QuotaDecision {
  return {
    allowed,
    limit: q.limit,
    used,
    remaining: Math.max(0, q.limit - used),
    resetAt: q.endMs,
    resetMs: q.endMs - now,
  };
}
