import type { Redis } from "ioredis";
import type { Limiter, RateDecision } from "./limiter.js";

// One round trip, atomic: count the hit, make sure the window's key expires, and read
// the key-eviction epoch so a caller can tell whether it missed an eviction.
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, tonumber(redis.call('GET', KEYS[2]) or '0')}`;

type WithHit = Redis & {
  kgHit(key: string, epochKey: string, ttlMs: number): Promise<[number, number]>;
};

/**
 * Budgets shared by every instance: one counter per bucket and fixed window, counted
 * with an atomic INCR (never read-then-write). Windows are aligned to the clock, so
 * instances agree on them without talking.
 */
export class RedisLimiter implements Limiter {
  private readonly redis: WithHit;

  constructor(
    redis: Redis,
    private readonly prefix = "keygate:rl:",
    private readonly epochKey = "keygate:epoch",
  ) {
    if (!("kgHit" in redis)) redis.defineCommand("kgHit", { numberOfKeys: 2, lua: HIT });
    this.redis = redis as WithHit;
  }

  private key(bucket: string, windowMs: number, now: number): { key: string; start: number } {
    const start = now - (now % windowMs);
    return { key: `${this.prefix}${bucket}:${start}`, start };
  }

  async hit(bucket: string, limit: number, windowMs: number, now: number): Promise<RateDecision> {
    const { key, start } = this.key(bucket, windowMs, now);
    const [n, epoch] = await this.redis.kgHit(key, this.epochKey, windowMs + 1_000);
    const count = Number(n);
    return {
      allowed: count <= limit,
      limit,
      remaining: Math.max(0, limit - count),
      resetMs: start + windowMs - now,
      epoch: Number(epoch),
    };
  }

  async peek(bucket: string, limit: number, windowMs: number, now: number): Promise<RateDecision> {
    const { key, start } = this.key(bucket, windowMs, now);
    const count = Number((await this.redis.get(key)) ?? 0);
    return {
      allowed: count < limit,
      limit,
      remaining: Math.max(0, limit - count),
      resetMs: start + windowMs - now,
    };
  }

  async reset(bucket: string, windowMs: number, now: number): Promise<void> {
    await this.redis.del(this.key(bucket, windowMs, now).key);
  }
}
