import type { Redis } from "ioredis";
import { candidateGeneration, generationKey, readEpochLua } from "../cluster/epoch.js";
import type { Limiter, RateDecision } from "./limiter.js";

// One round trip, atomic: count the hit, make sure the window's key expires, and read
// the key-eviction epoch with its generation so a caller can tell whether it missed an
// eviction, even after Redis restarted empty and counted epochs from 1 again.
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
${readEpochLua("KEYS[2]", "KEYS[3]", "ARGV[2]")}
return {n, tonumber(e), g}`;

type WithHit = Redis & {
  kgHit(
    key: string,
    epochKey: string,
    genKey: string,
    ttlMs: number,
    candidate: string,
  ): Promise<[number, number, string]>;
};

/**
 * Budgets shared by every instance: one counter per bucket and fixed window, counted
 * with an atomic INCR (never read-then-write). Windows are aligned to the clock, so
 * instances agree on them without talking.
 */
export class RedisLimiter implements Limiter {
  private readonly redis: WithHit;
  private readonly genKey: string;

  constructor(
    redis: Redis,
    private readonly prefix = "keygate:rl:",
    private readonly epochKey = "keygate:epoch",
  ) {
    if (!("kgHit" in redis)) redis.defineCommand("kgHit", { numberOfKeys: 3, lua: HIT });
    this.redis = redis as WithHit;
    this.genKey = generationKey(epochKey);
  }

  private key(bucket: string, windowMs: number, now: number): { key: string; start: number } {
    const start = now - (now % windowMs);
    return { key: `${this.prefix}${bucket}:${start}`, start };
  }

  async hit(bucket: string, limit: number, windowMs: number, now: number): Promise<RateDecision> {
    const { key, start } = this.key(bucket, windowMs, now);
    const [n, epoch, generation] = await this.redis.kgHit(
      key,
      this.epochKey,
      this.genKey,
      windowMs + 1_000,
      candidateGeneration(),
    );
    const count = Number(n);
    return {
      allowed: count <= limit,
      limit,
      remaining: Math.max(0, limit - count),
      resetMs: start + windowMs - now,
      epoch: Number(epoch),
      generation,
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
