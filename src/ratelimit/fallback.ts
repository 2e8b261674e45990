import type { QuotaWindow } from "../keys/quota.js";
import type { Limiter, QuotaDecision, QuotaHit, RateDecision } from "./limiter.js";

export type FallbackOptions = {
  shared: Limiter;
  /** Per-instance budgets; its quota counters are read again from the database on each fallback. */
  local: Limiter & { forgetQuotas?(): void };
  /** Whether the shared store is reachable right now (checked before every call). */
  available: () => boolean;
  warn: (msg: string) => void;
  info: (msg: string) => void;
};

/**
 * Uses the shared limiter while its store is up and per-instance memory while it is not,
 * so an outage degrades budgets to per-instance instead of refusing or hanging requests.
 * One warning when it falls back, one line when it recovers.
 */
export class FallbackLimiter implements Limiter {
  private degraded = false;
  /**
   * Times the shared store became unavailable, and decisions taken in memory because it was:
   * plain numbers the metrics read when scraped.
   */
  readonly counts = { fallbacks: 0, localDecisions: 0 };

  constructor(private readonly o: FallbackOptions) {}

  private async use<T>(call: (l: Limiter) => T | Promise<T>): Promise<T> {
    if (this.o.available()) {
      try {
        const out = await call(this.o.shared);
        if (this.degraded) {
          this.degraded = false;
          this.o.warn("shared rate limits are back: budgets are shared by every instance again");
        }
        return out;
      } catch (err) {
        this.fallBack(err);
      }
    } else {
      this.fallBack(null);
    }
    this.counts.localDecisions++;
    return call(this.o.local);
  }

  private fallBack(err: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    this.counts.fallbacks++;
    // Quotas counted here start again from the database's counts, not from a past outage's.
    this.o.local.forgetQuotas?.();
    const why = err instanceof Error ? `: ${err.message}` : "";
    this.o.warn(
      `shared rate-limit store unavailable${why}; budgets are per instance until it returns`,
    );
  }

  get isDegraded(): boolean {
    return this.degraded;
  }

  hit(bucket: string, limit: number, windowMs: number, now: number): Promise<RateDecision> {
    return this.use((l) => l.hit(bucket, limit, windowMs, now));
  }

  peek(bucket: string, limit: number, windowMs: number, now: number): Promise<RateDecision> {
    return this.use((l) => l.peek(bucket, limit, windowMs, now));
  }

  /**
   * Quotas follow the budgets: shared while the store is up; while it is down, each instance
   * counts in memory from the database's count, so the cluster may admit up to that many
   * times the calls left (decision 0020).
   */
  hitQuota(
    bucket: string,
    limit: number,
    windowMs: number,
    now: number,
    quota: QuotaWindow,
    spend: boolean,
  ): Promise<QuotaHit> {
    return this.use(
      (l) =>
        l.hitQuota?.(bucket, limit, windowMs, now, quota, spend) ??
        Promise.resolve(l.hit(bucket, limit, windowMs, now)).then((r) => ({ ...r, quota: null })),
    );
  }

  peekQuota(quota: QuotaWindow, now: number): Promise<QuotaDecision | null> {
    return this.use((l) => l.peekQuota?.(quota, now) ?? null);
  }

  refundQuota(quota: QuotaWindow): Promise<void> {
    return this.use((l) => l.refundQuota?.(quota));
  }

  reset(bucket: string, windowMs: number, now: number): Promise<void> {
    return this.use((l) => l.reset(bucket, windowMs, now));
  }

  async close(): Promise<void> {
    await this.o.local.close?.();
  }
}
