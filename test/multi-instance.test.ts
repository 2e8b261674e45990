import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./helpers.js";
import { call, type Server, startKeygate, startRedis } from "./process.js";

/** Budgets are fixed one-minute windows: wait when a burst could straddle two of them. */
async function clearOfMinuteBoundary(needS = 5): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needS * 1000) await new Promise((r) => setTimeout(r, left + 50));
}

async function until(cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Two real Keygate processes on two ports sharing one PostgreSQL schema and one Redis:
 * what a load balancer in front of several instances would see.
 */
describe("several instances behind one address", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let a: Server;
  let b: Server;
  let auth: Record<string, string>;

  beforeAll(async () => {
    db = await freshDatabase();
    redis = await startRedis();
    const env = {
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_REDIS_URL: redis.url,
      KEYGATE_ADMIN_PASSWORD: "cluster-password",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
    };
    // Both start at once on an empty schema: migrations must not trip over each other.
    [a, b] = await Promise.all([startKeygate(env), startKeygate(env)]);
    const login = await call(
      a.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "cluster-password" },
    );
    expect(login.status).toBe(200);
    auth = { authorization: `Bearer ${login.json.data.access_token}` };
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await db?.drop();
  });

  it("started both instances from one empty database, creating one admin", async () => {
    const users = await call(b.base, "GET", "/api/users", auth);
    expect(users.json.data.map((u: { username: string }) => u.username)).toEqual(["admin"]);
  });

  it("refuses a key revoked through A on the very next request to B, every time", async () => {
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const minted = await call(a.base, "POST", "/api/api-keys", auth, { name: `k${i}` });
      const key = { "x-api-key": minted.json.key as string };
      // B has the key cached as valid before the revocation.
      expect((await call(b.base, "GET", "/api/v1/external/whoami", key)).status).toBe(200);
      const revoked = await call(a.base, "DELETE", `/api/api-keys/${minted.json.data.id}`, auth);
      expect(revoked.status).toBe(200);
      const after = performance.now();
      const first = await call(b.base, "GET", "/api/v1/external/whoami", key);
      times.push(performance.now() - after);
      expect(first.json.error?.code, `round ${i}`).toBe("API_KEY_REVOKED");
    }
    const worst = Math.max(...times);
    console.log(
      `revocation seen by the other instance on its first request in 50/50 rounds; worst ${worst.toFixed(1)} ms`,
    );
  }, 60_000);

  it("shares a key's budget: hammered through both instances, at most N succeed", async () => {
    const n = 25;
    await clearOfMinuteBoundary();
    const minted = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: n });
    const key = { "x-api-key": minted.json.key as string };
    const results = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        call(i % 2 ? a.base : b.base, "GET", "/api/v1/external/whoami", key),
      ),
    );
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.json.error?.code === "RATE_LIMIT_EXCEEDED").length;
    console.log(
      `shared budget ${n}/min: ${ok} of 120 succeeded across two instances (overshoot ${ok - n})`,
    );
    expect(ok).toBe(n);
    expect(ok + limited).toBe(120);
  });

  it("keeps serving when Redis stops, and shares budgets again when it returns", async () => {
    await clearOfMinuteBoundary(15);
    await redis.stop();
    const minted = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: 10 });
    const key = { "x-api-key": minted.json.key as string };
    await new Promise((r) => setTimeout(r, 300));
    const during = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(i % 2 ? a.base : b.base, "GET", "/api/v1/external/whoami", key),
      ),
    );
    // Each instance falls back to its own budget: up to 10 each, never an error.
    const okDuring = during.filter((r) => r.status === 200).length;
    expect(during.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(okDuring).toBeGreaterThan(10);
    expect(okDuring).toBeLessThanOrEqual(20);
    expect(a.output() + b.output()).toContain("per instance until it returns");

    redis = await startRedis(redis.port);
    const fresh = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: 10 });
    const key2 = { "x-api-key": fresh.json.key as string };
    const deadline = Date.now() + 10_000;
    while (!(
      a.output().includes("shared by every instance again") &&
      b.output().includes("shared by every instance again")
    )) {
      if (Date.now() > deadline) throw new Error("instances did not report Redis recovery");
      await call(a.base, "GET", "/api/v1/external/system/health");
      await call(b.base, "GET", "/api/v1/external/whoami", key2);
      await call(a.base, "GET", "/api/v1/external/whoami", key2);
      await new Promise((r) => setTimeout(r, 200));
    }
    await clearOfMinuteBoundary();
    const third = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: 10 });
    const key3 = { "x-api-key": third.json.key as string };
    const after = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(i % 2 ? a.base : b.base, "GET", "/api/v1/external/whoami", key3),
      ),
    );
    const okAfter = after.filter((r) => r.status === 200).length;
    expect(okAfter).toBe(10);
    console.log(
      `Redis down: ${okDuring}/30 served on per-instance budgets of 10; after recovery: ${okAfter}/30 on a shared 10`,
    );
  }, 60_000);

  it("refuses a key revoked through A on B when Redis restarted empty and B missed the eviction", async () => {
    // Twenty revocations carry every instance's eviction epoch well past 1.
    for (let i = 0; i < 20; i++) {
      const minted = await call(a.base, "POST", "/api/api-keys", auth, { name: `r${i}` });
      const revoked = await call(a.base, "DELETE", `/api/api-keys/${minted.json.data.id}`, auth);
      expect(revoked.status).toBe(200);
    }
    // A new, empty redis-server on the same port: its epoch counter starts again at 1.
    await redis.stop();
    redis = await startRedis(redis.port);
    const admin = new Redis(redis.url);
    try {
      // Both instances are back: command connections ready, subscribers subscribed.
      await until(async () => {
        const health = await Promise.all(
          [a, b].map((s) => call(s.base, "GET", "/api/v1/external/system/health")),
        );
        const list = String(await admin.client("LIST"));
        const subscribed = list.split("\n").filter((l) => / sub=1 /.test(l)).length;
        return health.every((h) => h.json.data.redis === "ok") && subscribed === 2;
      }, "both instances reconnected to the restarted Redis");
      const minted = await call(a.base, "POST", "/api/api-keys", auth, { name: "after-restart" });
      const key = { "x-api-key": minted.json.key as string };
      expect((await call(b.base, "GET", "/api/v1/external/whoami", key)).status).toBe(200);
      // B's eviction message is lost: its subscriber is down while A revokes.
      expect(Number(await admin.client("KILL", "TYPE", "pubsub"))).toBe(2);
      const revoked = await call(a.base, "DELETE", `/api/api-keys/${minted.json.data.id}`, auth);
      expect(revoked.status).toBe(200);
      const first = await call(b.base, "GET", "/api/v1/external/whoami", key);
      expect(first.json.error?.code, `B answered ${first.status}`).toBe("API_KEY_REVOKED");
    } finally {
      admin.disconnect();
    }
  }, 60_000);
});
