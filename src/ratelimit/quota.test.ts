import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quotaPlan, quotaWindow, type QuotaWindow } from "../keys/quota.js";
import { FallbackLimiter } from "./fallback.js";
import type { QuotaHit } from "./limiter.js";
import { MemoryLimiter } from "./memory.js";
import { RedisLimiter } from "./redis.js";

const NOW = Date.parse("2026-06-10T12:00:00Z");
const MINUTE = 60_000;

function windowOf(keyId: number, limit: number, now = NOW): QuotaWindow {
  const plan = quotaPlan({ limit, period: "day", refillDay: null });
  if (plan === null) throw new Error("no plan");
  return quotaWindow(keyId, plan, now);
}

/** A seed that counts how often it is read. */
function seedOf(n: number) {
  const reads: number[] = [];
  const seed = async (keyId: number) => {
    reads.push(keyId);
    return n;
  };
  return { seed, reads };
}

describe("quotas in memory", () => {
  it("spends one call per admitted hit, never past the limit, synchronously once seeded", async () => {
    const m = new MemoryLimiter();
    const { seed, reads } = seedOf(0);
    m.seedQuotasFrom(seed);
    const q = windowOf(1, 3);
    // The period's first call waits for the seed; later ones are plain values.
    const first = await m.hitQuota("key:1", 100, MINUTE, NOW, q, true);
    expect(first.quota).toMatchObject({ allowed: true, used: 1, remaining: 2, limit: 3 });
    const second = m.hitQuota("key:1", 100, MINUTE, NOW, q, true);
    expect(second).not.toBeInstanceOf(Promise);
    expect((second as QuotaHit).quota).toMatchObject({ allowed: true, used: 2 });
    expect((m.hitQuota("key:1", 100, MINUTE, NOW, q, true) as QuotaHit).quota?.used).toBe(3);
    const over = m.hitQuota("key:1", 100, MINUTE, NOW, q, true) as QuotaHit;
    expect(over.allowed).toBe(true);
    expect(over.quota).toMatchObject({ allowed: false, used: 3, remaining: 0 });
    expect(over.quota?.resetAt).toBe(Date.parse("2026-06-11T00:00:00Z"));
    expect(over.quota?.resetMs).toBe(12 * 3_600_000);
    expect(reads).toEqual([1]);
    m.close();
  });

  it("spends nothing for a call not to be admitted, nor for one past the per-minute budget", async () => {
    const m = new MemoryLimiter();
    const q = windowOf(2, 10);
    const peeked = await m.hitQuota("key:2", 2, MINUTE, NOW, q, false);
    expect(peeked.quota).toMatchObject({ allowed: true, used: 0 });
    expect((m.hitQuota("key:2", 2, MINUTE, NOW, q, true) as QuotaHit).quota?.used).toBe(1);
    const limited = m.hitQuota("key:2", 2, MINUTE, NOW, q, true) as QuotaHit;
    expect(limited.allowed).toBe(false);
    expect(limited.quota?.used).toBe(1);
    // Spent out, a call not to be admitted reads as refused by the quota (it answers first).
    const full = windowOf(3, 1);
    await m.hitQuota("key:3", 100, MINUTE, NOW, full, true);
    expect((m.hitQuota("key:3", 100, MINUTE, NOW, full, false) as QuotaHit).quota?.allowed).toBe(
      false,
    );
    m.close();
  });

  it("seeds a missing counter once, however many calls arrive at once", async () => {
    const m = new MemoryLimiter();
    const { seed, reads } = seedOf(7);
    m.seedQuotasFrom(seed);
    const q = windowOf(4, 10);
    const hits = await Promise.all(
      Array.from({ length: 20 }, () => m.hitQuota("key:4", 1_000, MINUTE, NOW, q, true)),
    );
    expect(reads).toEqual([4]);
    expect(hits.filter((h) => h.quota?.allowed)).toHaveLength(3);
    expect(Math.max(...hits.map((h) => h.quota?.used ?? 0))).toBe(10);
    // The next day is a counter of its own, seeded once.
    await m.hitQuota(
      "key:4",
      1_000,
      MINUTE,
      NOW + 86_400_000,
      windowOf(4, 10, NOW + 86_400_000),
      true,
    );
    expect(reads).toEqual([4, 4]);
    m.close();
  });

  it("decides without the quota while its seed cannot be read, and gives back a refund", async () => {
    const m = new MemoryLimiter();
    const warnings: string[] = [];
    m.seedQuotasFrom(
      async () => {
        throw new Error("database down");
      },
      (w) => warnings.push(w),
    );
    const q = windowOf(5, 1);
    const hit = await m.hitQuota("key:5", 10, MINUTE, NOW, q, true);
    expect(hit.allowed).toBe(true);
    expect(hit.quota).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("database down");

    const ok = new MemoryLimiter();
    const w = windowOf(6, 2);
    await ok.hitQuota("key:6", 10, MINUTE, NOW, w, true);
    ok.hitQuota("key:6", 10, MINUTE, NOW, w, true);
    ok.refundQuota(w);
    expect(ok.peekQuota(w, NOW)).toMatchObject({ used: 1, remaining: 1 });
    ok.forgetQuotas();
    expect(await ok.peekQuota(w, NOW)).toMatchObject({ used: 0 });
    m.close();
    ok.close();
  });

  it("sweeps a counter only once its period is over", async () => {
    const m = new MemoryLimiter();
    const q = windowOf(8, 5);
    await m.hitQuota("key:8", 10, MINUTE, NOW, q, true);
    m.sweep(NOW + 2 * MINUTE);
    expect(m.peekQuota(q, NOW + 2 * MINUTE)).toMatchObject({ used: 1 });
    m.sweep(q.endMs);
    expect(await m.peekQuota(q, q.endMs)).toMatchObject({ used: 0 });
    m.close();
  });
});

describe("quotas in Redis", () => {
  let redis: Redis;
  const prefix = `kgtest:${randomBytes(6).toString("hex")}:rl:`;
  const epoch = `${prefix}epoch`;

  beforeAll(async () => {
    redis = new Redis("redis://127.0.0.1:6379", { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it("admits exactly the quota across many clients at once: no overshoot", async () => {
    const { seed, reads } = seedOf(0);
    // Four instances, each with its own connection, sharing the counters.
    const clients = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const r = new Redis("redis://127.0.0.1:6379");
        return { r, l: new RedisLimiter(r, prefix, epoch, seed) };
      }),
    );
    const q = windowOf(100, 50);
    const hits = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        (clients[i % 4] as (typeof clients)[number]).l.hitQuota(
          "key:100",
          1_000,
          MINUTE,
          NOW,
          q,
          true,
        ),
      ),
    );
    expect(hits.filter((h) => h.quota?.allowed)).toHaveLength(50);
    expect(Math.max(...hits.map((h) => h.quota?.used ?? 0))).toBe(50);
    // Seeded by the first callers to find it missing, never per call.
    expect(reads.length).toBeLessThanOrEqual(4);
    expect(await redis.get(`${prefix}${q.bucket}`)).toBe("50");
    const ttl = await redis.pttl(`${prefix}${q.bucket}`);
    expect(ttl).toBeGreaterThan(q.endMs - NOW);
    for (const c of clients) c.r.disconnect();
  });

  it("spends nothing past the per-minute budget or for a call not to be admitted", async () => {
    const l = new RedisLimiter(redis, prefix, epoch, seedOf(0).seed);
    const q = windowOf(101, 10);
    expect((await l.hitQuota("key:101", 2, MINUTE, NOW, q, false)).quota?.used).toBe(0);
    expect((await l.hitQuota("key:101", 2, MINUTE, NOW, q, true)).quota?.used).toBe(1);
    const limited = await l.hitQuota("key:101", 2, MINUTE, NOW, q, true);
    expect(limited.allowed).toBe(false);
    expect(limited.quota).toMatchObject({ used: 1, remaining: 9, allowed: true });
    await l.refundQuota(q);
    expect(await l.peekQuota(q, NOW)).toMatchObject({ used: 0 });
  });

  it("starts an emptied counter from the database's count, once", async () => {
    const { seed, reads } = seedOf(41);
    const l = new RedisLimiter(redis, prefix, epoch, seed);
    const q = windowOf(102, 42);
    expect((await l.hitQuota("key:102", 100, MINUTE, NOW, q, true)).quota).toMatchObject({
      allowed: true,
      used: 42,
      remaining: 0,
    });
    expect((await l.hitQuota("key:102", 100, MINUTE, NOW, q, true)).quota?.allowed).toBe(false);
    expect(reads).toEqual([102]);
    // Redis loses its data: the count comes back from the database, not from zero.
    await redis.del(`${prefix}${q.bucket}`);
    expect((await l.hitQuota("key:102", 100, MINUTE, NOW, q, true)).quota).toMatchObject({
      allowed: true,
      used: 42,
    });
    expect(reads).toEqual([102, 102]);
    expect(await l.peekQuota(q, NOW)).toMatchObject({ used: 42, remaining: 0 });
  });

  it("falls back to memory (seeded from the database again) while Redis is away", async () => {
    const down = new Redis("redis://127.0.0.1:1", {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    const { seed, reads } = seedOf(5);
    const local = new MemoryLimiter();
    local.seedQuotasFrom(seed);
    const warnings: string[] = [];
    const f = new FallbackLimiter({
      shared: new RedisLimiter(down, prefix, epoch, seed),
      local,
      available: () => false,
      warn: (w) => warnings.push(w),
      info: () => {},
    });
    const q = windowOf(103, 6);
    expect((await f.hitQuota("key:103", 100, MINUTE, NOW, q, true)).quota?.used).toBe(6);
    expect((await f.hitQuota("key:103", 100, MINUTE, NOW, q, true)).quota?.allowed).toBe(false);
    expect(reads).toEqual([103]);
    expect(warnings).toHaveLength(1);
    down.disconnect();
    local.close();
  });
});
