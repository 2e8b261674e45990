import { decide, type Limiter, type RateDecision, type WindowState } from "./limiter.js";

/** Per-process budgets. Stale windows are swept so memory follows the active buckets only. */
export class MemoryLimiter implements Limiter {
  private readonly windows = new Map<string, WindowState & { end: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepEveryMs = 60_000, clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(clock()), sweepEveryMs);
    this.sweeper.unref();
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
  }

  get size(): number {
    return this.windows.size;
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
