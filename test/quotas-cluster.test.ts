import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type App, buildApp } from "../src/http/app.js";
import { createKeygate, type Keygate } from "../src/keygate.js";
import { ADMIN, expectStatus, freshDatabase } from "./helpers.js";

// Several instances on one database: PostgreSQL only (vitest.config.ts, postgresOnly). Two
// Keygates in this process, each with its own pool, Redis connections, key cache and memory,
// sharing one PostgreSQL schema and the Redis at 127.0.0.1:6379 (their namespace is the
// schema's own, so nothing else's keys are touched).
const REDIS = process.env.KEYGATE_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

type Instance = { kg: Keygate; app: App };

describe("a quota shared by two instances through Redis", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let a: Instance;
  let b: Instance;
  let token: string;

  const open = async (): Promise<Instance> => {
    const config = loadConfig({
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_REDIS_URL: REDIS,
      KEYGATE_ADMIN_USERNAME: ADMIN.username,
      KEYGATE_ADMIN_PASSWORD: ADMIN.password,
      KEYGATE_LOG_LEVEL: "silent",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
    });
    const kg = await createKeygate(config);
    const app = await buildApp(kg, { logger: false });
    await kg.auth.bootstrap(config.adminUsername, config.adminPassword);
    return { kg, app };
  };

  beforeAll(async () => {
    db = await freshDatabase();
    a = await open();
    b = await open();
    const login = await a.app.inject({ method: "POST", url: "/api/auth/login", payload: ADMIN });
    token = login.json().data.access_token;
  });

  afterAll(async () => {
    const ns = a?.kg.cluster?.keyPrefix;
    for (const i of [a, b]) {
      await i?.app.close();
      await i?.kg.close();
    }
    if (ns) {
      const r = new Redis(REDIS);
      const keys = await r.keys(`${ns}*`);
      if (keys.length > 0) await r.del(...keys);
      await r.quit();
    }
    await db?.drop();
  });

  const mint = async (body: Record<string, unknown>) => {
    const res = await a.app.inject({
      method: "POST",
      url: "/api/api-keys",
      headers: { authorization: `Bearer ${token}` },
      payload: body,
    });
    expectStatus(res, 201);
    return res.json() as { key: string; data: { id: number } };
  };
  const call = (i: Instance, key: string, method = "GET", url = "/whoami") =>
    i.app.inject({
      method: method as "GET",
      url: `/api/v1/external${url}`,
      headers: { "x-api-key": key },
    });

  it("admits exactly N of many concurrent calls across both instances (overshoot 0)", async () => {
    const N = 37;
    const { key, data } = await mint({
      quota: { limit: N, period: "day" },
      rate_limit_per_minute: 1_000_000,
      scopes: "read",
    });
    // Both instances have the key cached before the burst.
    await Promise.all([call(a, key), call(b, key)]);
    const burst = await Promise.all(
      Array.from({ length: 300 }, (_, i) => call(i % 2 === 0 ? a : b, key)),
    );
    const ok = burst.filter((r) => r.statusCode === 200).length;
    const refused = burst.filter((r) => r.json().error?.code === "QUOTA_EXCEEDED").length;
    expect(ok).toBe(N - 2);
    expect(refused).toBe(300 - (N - 2));
    // Spent out, each instance refuses: the cap is the cluster's, not each one's.
    for (const i of [a, b]) expect((await call(i, key)).json().error.code).toBe("QUOTA_EXCEEDED");
    // Both read one count.
    for (const i of [a, b]) {
      const res = await i.app.inject({
        method: "GET",
        url: `/api/api-keys/${data.id}`,
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.json().data.quota_usage).toMatchObject({ used: N, remaining: 0 });
    }
  });

  it("spends nothing for calls the permissions refuse, on either instance", async () => {
    const { key, data } = await mint({ quota: { limit: 5, period: "month" }, scopes: "read" });
    const refused = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call(i % 2 === 0 ? a : b, key, "DELETE", "/subscribers/1"),
      ),
    );
    expect(refused.every((r) => r.json().error?.code === "SCOPE_REQUIRED")).toBe(true);
    expect(refused.every((r) => r.headers["keygate-quota-remaining"] === "5")).toBe(true);
    const res = await b.app.inject({
      method: "GET",
      url: `/api/api-keys/${data.id}`,
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.json().data.quota_usage.used).toBe(0);
  });

  it("sends key.quota_low once per threshold, whichever instance crosses it", async () => {
    const { key, data } = await mint({ quota: { limit: 10, period: "day" } });
    await Promise.all(Array.from({ length: 30 }, (_, i) => call(i % 2 === 0 ? a : b, key)));
    // Another pass with both caches cleared: each instance asks again, the marks answer.
    a.kg.keyCache.clear();
    b.kg.keyCache.clear();
    await Promise.all([call(a, key), call(b, key)]);
    await Promise.all([a.kg.quotaEvents.flush(), b.kg.quotaEvents.flush()]);
    const events = await a.kg.database.db
      .selectFrom("events")
      .select("payload")
      .where("type", "=", "key.quota_low")
      .execute();
    const mine = events
      .map((e) => JSON.parse(e.payload).data)
      .filter((d: { id: number }) => d.id === data.id);
    expect(
      mine
        .map((d: { threshold_percent: number }) => d.threshold_percent)
        .sort((x: number, y: number) => x - y),
    ).toEqual([80, 100]);
  });
});
