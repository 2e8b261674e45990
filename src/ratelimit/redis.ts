import type { Redis } from "ioredis";
import { candidateGeneration, generationKey, readEpochLua } from "../cluster/epoch.js";
import type { QuotaWindow } from "../keys/quota.js";
import type { Limiter, QuotaDecision, QuotaHit, QuotaSeed, RateDecision } from "./limiter.js";
import { QuotaSeeds, quotaDecision } from "./seeds.js";

// One round trip, atomic: count the hit, make sure the window's key expires, and read
// the key-eviction epoch with its generation so a caller can tell whether it missed an
// eviction, even after Redis restarted empty and counted epochs from 1 again.
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
${readEpochLua("KEYS[2]", "KEYS[3]", "ARGV[2]")}
return {n, tonumber(e), g}`;

// The same, and the key's quota in the same round trip. A missing quota counter (a new period,
// or a Redis that lost its data) answers {-1} and counts nothing; the caller reads the
// period's admitted calls from the database and calls again with them as the seed, which
// starts the counter unless another instance's seed got there first. Within the budget and
// when the call is to be admitted (ARGV[5] = 1), one call of the quota is spent, only while
// some are left: never past the limit, whatever the instances do at once.
const HIT_QUOTA = `
local q = redis.call('GET', KEYS[4])
if not q then
  if ARGV[7] == '' then return {-1} end
  q = ARGV[7]
  redis.call('SET', KEYS[4], q, 'PX', ARGV[6])
end
q = tonumber(q)
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
${readEpochLua("KEYS[2]", "KEYS[3]", "ARGV[2]")}
local spent = 0
if n <= tonumber(ARGV[3]) and q < tonumber(ARGV[4]) and ARGV[5] == '1' then
  q = redis.call('INCR', KEYS[4])
  spent = 1
end
return {n, tonumber(e), g, q, spent}`;

// A quota counter, started from the seed when missing (seed '' leaves it missing).
const PEEK_QUOTA = `
local q = redis.call('GET', KEYS[1])
if not q then
  if ARGV[1] == '' then return -1 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  q = ARGV[1]
end
return tonumber(q)`;

// Gives back one spent call, if the counter still exists.
const REFUND_QUOTA = `
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return -1`;

/** How long a quota counter outlives its period: clocks of instances differ a little. */
const QUOTA_TTL_SLACK_MS = 3_600_000;

type WithHit = Redis & {
  kgHitQuota(
    key: string,
    epochKey: string,
    genKey: string,
    quotaKey: string,
    ttlMs: number,
    candidate: string,
    rateLimit: number,
    quotaLimit: number,
    spend: number,
    quotaTtlMs: number,
    seed: string,
  ): Promise<[number, number?, string?, number?, number?]>;
  kgPeekQuota(quotaKey: string, seed: string, ttlMs: number): Promise<number>;
  kgRefundQuota(quotaKey: string): Promise<number>;
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
    /** Where a missing quota counter starts from (the database's count); null: from 0. */
    seed: QuotaSeed | null = null,
    warn?: (msg: string) => void,
  ) {
    if (!("kgHit" in redis)) redis.defineCommand("kgHit", { numberOfKeys: 3, lua: HIT });
    if (!("kgHitQuota" in redis))
      redis.defineCommand("kgHitQuota", { numberOfKeys: 4, lua: HIT_QUOTA });
    if (!("kgPeekQuota" in redis))
      redis.defineCommand("kgPeekQuota", { numberOfKeys: 1, lua: PEEK_QUOTA });
    if (!("kgRefundQuota" in redis))
      redis.defineCommand("kgRefundQuota", { numberOfKeys: 1, lua: REFUND_QUOTA });
    this.redis = redis as WithHit;
    this.genKey = generationKey(epochKey);
    this.seeds = seed === null ? null : new QuotaSeeds(seed, warn);
  }

  private readonly seeds: QuotaSeeds | null;

  private quotaKey(q: QuotaWindow): string {
    return `${this.prefix}${q.bucket}`;
  }

  /** The seed of a missing counter as the script takes it; null when it cannot be read. */
  private async seedOf(q: QuotaWindow): Promise<string | null> {
    if (this.seeds === null) return "0";
    const n = await this.seeds.read(q);
    return n === null ? null : String(n);
  }

  async hitQuota(
    bucket: string,
    limit: number,
    windowMs: number,
    now: number,
    q: QuotaWindow,
    spend: boolean,
  ): Promise<QuotaHit> {
    const { key, start } = this.key(bucket, windowMs, now);
    const quotaKey = this.quotaKey(q);
    const ttl = Math.max(1, q.endMs - now) + QUOTA_TTL_SLACK_MS;
    const call = (seed: string) =>
      this.redis.kgHitQuota(
        key,
        this.epochKey,
        this.genKey,
        quotaKey,
        windowMs + 1_000,
        candidateGeneration(),
        limit,
        q.limit,
        spend ? 1 : 0,
        ttl,
        seed,
      );
    let out = await call("");
    if (Number(out[0]) === -1) {
      const seed = await this.seedOf(q);
      // Unreadable: the call is counted against the budget alone, its quota not enforced.
      if (seed === null) return { ...(await this.hit(bucket, limit, windowMs, now)), quota: null };
      out = await call(seed);
    }
    const [n, epoch, generation, used, spent] = out;
    const count = Number(n);
    const u = Number(used);
    const allowedRate = count <= limit;
    return {
      allowed: allowedRate,
      limit,
      remaining: Math.max(0, limit - count),
      resetMs: start + windowMs - now,
      epoch: Number(epoch),
      generation: generation as string,
      quota: quotaDecision(q, u, allowedRate && spend ? Number(spent) === 1 : u < q.limit, now),
    };
  }

  async peekQuota(q: QuotaWindow, now: number): Promise<QuotaDecision | null> {
    const key = this.quotaKey(q);
    const ttl = Math.max(1, q.endMs - now) + QUOTA_TTL_SLACK_MS;
    let used = Number(await this.redis.kgPeekQuota(key, "", ttl));
    if (used === -1) {
      const seed = await this.seedOf(q);
      if (seed === null) return null;
      used = Number(await this.redis.kgPeekQuota(key, seed, ttl));
    }
    return quotaDecision(q, used, used < q.limit, now);
  }

  async refundQuota(q: QuotaWindow): Promise<void> {
    await this.redis.kgRefundQuota(this.quotaKey(q));
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
