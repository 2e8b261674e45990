import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, type Eviction } from "../src/cluster/redis.js";
import { FallbackLimiter } from "../src/ratelimit/fallback.js";
import { MemoryLimiter } from "../src/ratelimit/memory.js";
import { RedisLimiter } from "../src/ratelimit/redis.js";
import { startRedis } from "./process.js";

const until = async (cond: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe("shared budgets in Redis", () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const clients: Redis[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await redis.stop();
  });

  it("counts atomically across clients: exactly the limit is allowed", async () => {
    const a = new RedisLimiter(new Redis(redis.url));
    const b = new RedisLimiter(new Redis(redis.url));
    const now = Date.parse("2026-06-01T12:00:10Z");
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).hit("key:7", 50, 60_000, now)),
    );
    expect(results.filter((r) => r.allowed)).toHaveLength(50);
    expect(Math.min(...results.map((r) => r.remaining))).toBe(0);
    expect(results[0]?.resetMs).toBe(50_000);
    expect((await a.peek("key:7", 50, 60_000, now)).allowed).toBe(false);
    // The next window starts whole.
    expect((await a.hit("key:7", 50, 60_000, now + 60_000)).remaining).toBe(49);
    await a.reset("key:7", 60_000, now);
    expect((await a.peek("key:7", 50, 60_000, now)).allowed).toBe(true);
  });

  it("falls back to per-instance memory while Redis is unreachable, warning once", async () => {
    const dead = new Redis("redis://127.0.0.1:1", {
      enableOfflineQueue: false,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    clients.push(dead);
    const warnings: string[] = [];
    const limiter = new FallbackLimiter({
      shared: new RedisLimiter(dead),
      local: new MemoryLimiter(),
      available: () => dead.status === "ready",
      warn: (m) => warnings.push(m),
      info: () => {},
    });
    const now = Date.now();
    const hits = [];
    for (let i = 0; i < 5; i++) hits.push(await limiter.hit("ip:x", 3, 60_000, now));
    expect(hits.map((h) => h.allowed)).toEqual([true, true, true, false, false]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("per instance");
    expect(limiter.isDegraded).toBe(true);
    await limiter.close();
  });

  it("carries evictions to every instance and resynchronises after the channel returns", async () => {
    const own = await startRedis();
    const seen: Eviction[][] = [[], []];
    const resyncs = [0, 0];
    const logs: string[] = [];
    const nodes = [0, 1].map(
      (i) =>
        new Cluster({
          url: own.url,
          namespace: "test",
          onEviction: (e) => seen[i]?.push(e),
          onResync: () => {
            resyncs[i] = (resyncs[i] ?? 0) + 1;
          },
          warn: (m) => logs.push(m),
          info: (m) => logs.push(m),
        }),
    );
    await until(() => nodes.every((n) => n.available));
    await new Promise((r) => setTimeout(r, 100));
    await nodes[0]?.publish({ kind: "key", hash: "abc" });
    await nodes[1]?.publish({ kind: "all" });
    await until(() => seen.every((s) => s.length === 2));
    expect(seen[1]).toEqual([{ kind: "key", hash: "abc" }, { kind: "all" }]);

    const before = [...resyncs];
    await own.stop();
    await until(() => nodes.every((n) => !n.available));
    const again = await startRedis(own.port);
    // The channel's return, and the new Redis's empty epoch counter, each clear the cache.
    const count = (text: string) => logs.filter((l) => l.includes(text)).length;
    await until(() => count("restored") === 2 && count("restarted empty") === 2, 10_000);
    expect(resyncs.every((n, i) => n >= (before[i] ?? 0) + 2)).toBe(true);
    expect(logs.some((l) => l.includes("channel lost"))).toBe(true);
    await until(() => nodes.every((n) => n.available));
    await new Promise((r) => setTimeout(r, 100));
    await nodes[0]?.publish({ kind: "key", hash: "after" });
    await until(() => (seen[1]?.length ?? 0) === 3);

    // Right after a publish returns, a budget check on the other node either finds the
    // eviction applied or reports an epoch that makes it re-read: never a silent stale hit.
    const limiter1 = new RedisLimiter(
      new Redis(again.url),
      nodes[1]?.keyPrefix,
      nodes[1]?.epochKey,
    );
    for (let i = 0; i < 20; i++) {
      const before = seen[1]?.length ?? 0;
      await nodes[0]?.publish({ kind: "key", hash: `h${i}` });
      const hit = await limiter1.hit("key:1", 1_000, 60_000, Date.now());
      const applied = (seen[1]?.length ?? 0) > before;
      const stale = nodes[1]?.staleAfter(hit.epoch ?? 0, hit.generation) ?? false;
      expect(applied || stale, `round ${i}`).toBe(true);
    }
    for (const n of nodes) await n.close();
    await again.stop();
  });

  it("notices an eviction it missed after Redis restarted empty and counts epochs from 1 again", async () => {
    const own = await startRedis();
    const seen = [0, 0];
    const logs: string[] = [];
    const nodes = [0, 1].map(
      (i) =>
        new Cluster({
          url: own.url,
          namespace: "restart",
          onEviction: () => {
            seen[i] = (seen[i] ?? 0) + 1;
          },
          onResync: () => {},
          warn: (m) => logs.push(m),
          info: (m) => logs.push(m),
        }),
    );
    const [n0, n1] = nodes as [Cluster, Cluster];
    await until(() => nodes.every((n) => n.available));
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 20; i++) await n0.publish({ kind: "key", hash: `k${i}` });
    await until(() => seen[1] === 20);

    await own.stop();
    const again = await startRedis(own.port);
    const admin = new Redis(again.url);
    const limiter1 = new RedisLimiter(new Redis(again.url), n1.keyPrefix, n1.epochKey);
    try {
      const count = (text: string) => logs.filter((l) => l.includes(text)).length;
      await until(() => count("restored") === 2, 10_000);
      await until(() => nodes.every((n) => n.available));
      // Each node learns the new generation from its own read once its connection is
      // ready; until then a budget check would rightly call itself stale.
      await until(() => count("restarted empty") === 2, 10_000);
      // A budget check on the new Redis: nothing missed yet.
      const first = await limiter1.hit("key:1", 1_000, 60_000, Date.now());
      expect(n1.staleAfter(first.epoch ?? 0, first.generation)).toBe(false);
      // The subscribers drop; they come back only after 100 ms, so n1 never gets this one.
      expect(Number(await admin.client("KILL", "TYPE", "pubsub"))).toBe(2);
      const before = seen[1];
      await n0.publish({ kind: "key", hash: "revoked" });
      const hit = await limiter1.hit("key:1", 1_000, 60_000, Date.now());
      expect(seen[1]).toBe(before);
      expect(hit.epoch).toBe(1);
      expect(n1.staleAfter(hit.epoch ?? 0, hit.generation)).toBe(true);
    } finally {
      admin.disconnect();
      for (const n of nodes) await n.close();
      await again.stop();
    }
  });
});
