import type { QuotaWindow } from "../keys/quota.js";
import {
  decide,
  type Limiter,
  type QuotaDecision,
  type QuotaHit,
  type QuotaSeed,
  type RateDecision,
  type WindowState,
} from "./limiter.js";
import { QuotaSeeds, quotaDecision } from "./seeds.js";

/** A quota's count in this process for one key and period. */
type QuotaCount = { used: number; end: number };

/** Per-process budgets. Stale windows are swept so memory follows the active buckets only. */
export class MemoryLimiter implements Limiter {
  private readonly windows = new Map<string, WindowState & { end: number }>();
  /** Quota counters by bucket (key and period start), kept until their period ends. */
  private readonly quotas = new Map<string, QuotaCount>();
  private readonly sweeper: NodeJS.Timeout;
  private seeds: QuotaSeeds | null = null;

  constructor(sweepEveryMs = 60_000, clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(clock()), sweepEveryMs);
    this.sweeper.unref();
  }

  /**
   * Where a missing quota counter starts from (the database's count of the period's admitted
   * calls): read once per key and period. Without it, a counter starts at 0.
   */
  seedQuotasFrom(seed: QuotaSeed, warn?: (msg: string) => void, clock?: () => number): void {
    this.seeds = new QuotaSeeds(seed, warn, clock);
  }

  /**
   * The rule of `hit`, and the quota in the same step (see `Limiter.hitQuota`). Synchronous
   * once the period's counter exists; its first call in a process waits for the seed.
   */
  hitQuota(
    bucket: string,
    limit: number,
    windowMs: number,
    now: number,
    q: QuotaWindow,
    spend: boolean,
  ): QuotaHit | Promise<QuotaHit> {
    const c = this.quotas.get(q.bucket);
    if (c === undefined)
      return this.seeded(q).then((ready) => {
        if (!ready) return { ...this.hit(bucket, limit, windowMs, now), quota: null };
        return this.hitQuota(bucket, limit, windowMs, now, q, spend);
      });
    const rate = this.hit(bucket, limit, windowMs, now) as QuotaHit;
    const allowed = c.used < q.limit;
    if (rate.allowed && allowed && spend) c.used++;
    rate.quota = quotaDecision(q, c.used, allowed, now);
    return rate;
  }

  peekQuota(q: QuotaWindow, now: number): QuotaDecision | null | Promise<QuotaDecision | null> {
    const c = this.quotas.get(q.bucket);
    if (c !== undefined) return quotaDecision(q, c.used, c.used < q.limit, now);
    return this.seeded(q).then((ready) => (ready ? this.peekQuota(q, now) : null));
  }

  refundQuota(q: QuotaWindow): void {
    const c = this.quotas.get(q.bucket);
    if (c !== undefined && c.used > 0) c.used--;
  }

  /** Makes the window's counter exist, from its seed; false when the seed cannot be read. */
  private async seeded(q: QuotaWindow): Promise<boolean> {
    const n = this.seeds === null ? 0 : await this.seeds.read(q);
    if (n === null) return false;
    // Another call may have seeded it meanwhile: its count stands.
    if (!this.quotas.has(q.bucket)) this.quotas.set(q.bucket, { used: n, end: q.endMs });
    return true;
  }

  /**
   * Forgets every quota counter: each is read again from the database on its next call (when
   * this limiter takes over from a shared one, whose counts moved on meanwhile).
   */
  forgetQuotas(): void {
    this.quotas.clear();
  }

  /** The rule of `decide`, applied in place: this runs on every request. */
  hit(bucket: string, limit: number, windowMs: number, now: number): RateDecision {
    const start = now - (now % windowMs);
    let w = this.windows.get(bucket);
    if (w === undefined || w.start !== start) {
      w = { start, count: 0, end: start + windowMs };
      this.windows.set(bucket, w);
    }
    const allowed = w.count < limit;
    if (allowed) w.count++;
    return { allowed, limit, remaining: limit - w.count, resetMs: w.end - now };
  }

  peek(bucket: string, limit: number, windowMs: number, now: number): RateDecision {
    return decide(this.windows.get(bucket), limit, windowMs, now, false).decision;
  }

  reset(bucket: string, _windowMs?: number, _now?: number): void {
    this.windows.delete(bucket);
  }

  sweep(now: number): void {
    for (const [bucket, w] of this.windows) if (w.end <= now) this.windows.delete(bucket);
    for (const [bucket, c] of this.quotas) if (c.end <= now) this.quotas.delete(bucket);
  }

  get size(): number {
    return this.windows.size;
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
