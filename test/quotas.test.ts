import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { buildApp } from "../src/http/app.js";
import { createKeygate } from "../src/keygate.js";
import { openDatabase } from "../src/store/database.js";
import { migrateToLatest } from "../src/store/migrations.js";
import { ADMIN, ENGINE, expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";

// Mid-day, mid-month: far from every period boundary the tests do not cross on purpose.
const START = Date.parse("2026-06-10T12:00:00Z");
let t = START;
let h: Harness | undefined;

async function setup(env: Record<string, string> = {}): Promise<Harness> {
  t = START;
  return (h = await harness(
    { KEYGATE_IP_RATE_LIMIT: "0", KEYGATE_FAILED_KEY_LIMIT: "0", ...env },
    { now: () => new Date(t) },
  ));
}

afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function quotaEvents(h: Harness): Promise<Record<string, unknown>[]> {
  await h.kg.quotaEvents.flush();
  const rows = await h.kg.database.db
    .selectFrom("events")
    .select("payload")
    .where("type", "=", "key.quota_low")
    .orderBy("created_at")
    .execute();
  return rows.map((r) => JSON.parse(r.payload).data as Record<string, unknown>);
}

describe("a key's quota on the key routes", () => {
  it("is taken on mint and update, shown on reads, and removed with null", async () => {
    const h = await setup();
    const { id, data } = await h.mint(h.adminToken, { quota: { limit: 500, period: "day" } });
    expect(data.quota).toEqual({ limit: 500, period: "day", refill_day: null });

    const one = await h.api("GET", `/api/api-keys/${id}`, h.adminToken);
    expectStatus(one, 200);
    expect(one.json().data.quota_usage).toEqual({
      used: 0,
      remaining: 500,
      period_start: "2026-06-10T00:00:00.000Z",
      resets_at: "2026-06-11T00:00:00.000Z",
    });

    const put = await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, {
      quota: { limit: 10_000, period: "month", refill_day: 31 },
    });
    expectStatus(put, 200);
    expect(put.json().data.quota).toEqual({ limit: 10_000, period: "month", refill_day: 31 });
    // 31 in June is the 30th; the period under way began on 31 May.
    expect(put.json().data.quota_usage).toMatchObject({
      period_start: "2026-05-31T00:00:00.000Z",
      resets_at: "2026-06-30T00:00:00.000Z",
    });

    const list = await h.api("GET", "/api/api-keys", h.adminToken);
    expect(list.json().data[0].quota).toEqual({ limit: 10_000, period: "month", refill_day: 31 });

    const cleared = await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { quota: null });
    expectStatus(cleared, 200);
    expect(cleared.json().data.quota).toBeNull();
    expect(cleared.json().data.quota_usage).toBeNull();
    // A rename leaves the quota alone.
    await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { quota: { limit: 5, period: "day" } });
    const renamed = await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { name: "x" });
    expect(renamed.json().data.quota).toEqual({ limit: 5, period: "day", refill_day: null });
  });

  it("refuses bad quotas in the validation envelope, naming the field", async () => {
    const h = await setup();
    const bad = [
      [{ limit: 0, period: "day" }, "quota.limit"],
      [{ limit: 1.5, period: "day" }, "quota.limit"],
      [{ limit: 2_000_000_000, period: "day" }, "quota.limit"],
      [{ limit: 10, period: "week" }, "quota.period"],
      [{ limit: 10, period: "day", refill_day: 3 }, "quota.refill_day"],
      [{ limit: 10, period: "month", refill_day: 32 }, "quota.refill_day"],
      [{ limit: 10, period: "month", refill_day: 0 }, "quota.refill_day"],
      [{ limit: 10 }, "quota.period"],
      [{ limit: 10, period: "day", extra: 1 }, "quota"],
      ["10000/day", "quota"],
    ] as const;
    for (const [quota, field] of bad) {
      const res = await h.api("POST", "/api/api-keys", h.adminToken, { quota });
      expectStatus(res, 400);
      const body = res.json();
      expect(body.success).toBe(false);
      expect(body.code).toBe("VALIDATION_ERROR");
      expect(body.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    // The service's own rule (refill_day only with month), on update too.
    const { id } = await h.mint(h.adminToken);
    const res = await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, {
      quota: { limit: 10, period: "day", refill_day: 3 },
    });
    expectStatus(res, 400);
    expect(res.json().details).toEqual([
      {
        field: "quota.refill_day",
        message: 'applies to monthly quotas only: leave it out, or set period to "month"',
      },
    ]);
  });

  it("is kept by a roll", async () => {
    const h = await setup();
    const { id } = await h.mint(h.adminToken, { quota: { limit: 7, period: "month" } });
    const rolled = await h.api("POST", `/api/api-keys/${id}/roll`, h.adminToken, {});
    expectStatus(rolled, 201);
    expect(rolled.json().data.quota).toEqual({ limit: 7, period: "month", refill_day: null });
  });
});

describe("enforcing a quota on the external surface", () => {
  it("admits exactly the quota, then refuses 429 QUOTA_EXCEEDED until the refill", async () => {
    const h = await setup();
    const { key, id } = await h.mint(h.adminToken, { quota: { limit: 3, period: "day" } });
    for (let i = 0; i < 3; i++) {
      const res = await h.ext("GET", "/whoami", key);
      expectStatus(res, 200);
      expect(res.headers["keygate-quota-limit"]).toBe("3");
      expect(res.headers["keygate-quota-remaining"]).toBe(String(2 - i));
      expect(res.headers["keygate-quota-reset"]).toBe(String(12 * 3600));
      expect(res.json().data.quota).toEqual({
        limit: 3,
        period: "day",
        refill_day: null,
        used: i + 1,
        remaining: 2 - i,
        resets_at: "2026-06-11T00:00:00.000Z",
      });
    }
    const refused = await h.ext("GET", "/subscribers", key);
    expectStatus(refused, 429);
    const body = refused.json();
    expect(body.error.code).toBe("QUOTA_EXCEEDED");
    expect(body.error.message).toContain("quota of 3 calls this day");
    expect(body.error.message).toContain("2026-06-11T00:00:00.000Z");
    expect(body.error.message).toContain(`PUT /api/api-keys/${id}`);
    expect(body.error.message).not.toContain(key);
    expect(refused.headers["retry-after"]).toBe(String(12 * 3600));
    expect(refused.headers["keygate-quota-remaining"]).toBe("0");
    // The budget still counts the refused call; the quota stays at its cap.
    expect(refused.headers["ratelimit-remaining"]).toBeDefined();

    // Midnight UTC: whole again.
    t = Date.parse("2026-06-11T00:00:00Z");
    const next = await h.ext("GET", "/whoami", key);
    expectStatus(next, 200);
    expect(next.headers["keygate-quota-remaining"]).toBe("2");
    expect(next.headers["keygate-quota-reset"]).toBe(String(24 * 3600));
  });

  it("answers in the contract's order: rate limit, then quota, then permissions", async () => {
    const h = await setup();
    // A read key: POST is refused SCOPE_REQUIRED, and spends no quota.
    const { key, id } = await h.mint(h.adminToken, {
      quota: { limit: 2, period: "day" },
      rate_limit_per_minute: 5,
    });
    const scope = await h.ext("POST", "/subscribers", key, { username: "alice" });
    expectStatus(scope, 403);
    expect(scope.json().error.code).toBe("SCOPE_REQUIRED");
    expect(scope.headers["keygate-quota-remaining"]).toBe("2");
    // Two admitted calls spend it.
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    expectStatus(await h.ext("GET", "/subscribers", key), 200);
    // Spent: a call the permissions would refuse is answered QUOTA_EXCEEDED (the quota comes first).
    const both = await h.ext("POST", "/subscribers", key, { username: "alice" });
    expectStatus(both, 429);
    expect(both.json().error.code).toBe("QUOTA_EXCEEDED");
    // 4 calls of 5 this minute; the fifth is within the budget, the sixth past it.
    expectStatus(await h.ext("GET", "/whoami", key), 429);
    const rate = await h.ext("GET", "/whoami", key);
    expectStatus(rate, 429);
    expect(rate.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
    expect(rate.headers["keygate-quota-remaining"]).toBe("0");

    // Past the rate limit, a call refused for its rate spends nothing.
    t += 60_000;
    await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, {
      quota: { limit: 1_000, period: "day" },
      rate_limit_per_minute: 1,
    });
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    const limited = await h.ext("GET", "/whoami", key);
    expect(limited.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
    const usage = await h.api("GET", `/api/api-keys/${id}`, h.adminToken);
    // 2 admitted before, 1 now: the rate-refused and permission-refused calls spent nothing.
    expect(usage.json().data.quota_usage.used).toBe(3);
  });

  it("sends the quota headers on refusals of a known key, and none for keys without one", async () => {
    const h = await setup();
    const { key, id } = await h.mint(h.adminToken, {
      quota: { limit: 10, period: "day" },
      allowed_ips: ["203.0.113.1"],
    });
    const ip = await h.ext("GET", "/whoami", key);
    expectStatus(ip, 403);
    expect(ip.json().error.code).toBe("IP_NOT_ALLOWED");
    expect(ip.headers["keygate-quota-remaining"]).toBe("10");
    await h.api("DELETE", `/api/api-keys/${id}`, h.adminToken);
    const revoked = await h.ext("GET", "/whoami", key);
    expect(revoked.json().error.code).toBe("API_KEY_REVOKED");
    expect(revoked.headers["keygate-quota-remaining"]).toBe("10");

    const plain = await h.mint(h.adminToken);
    const res = await h.ext("GET", "/whoami", plain.key);
    expectStatus(res, 200);
    expect(res.headers["keygate-quota-remaining"]).toBeUndefined();
    expect(res.headers["keygate-quota-limit"]).toBeUndefined();
    expect(res.json().data.quota).toBeNull();
  });

  it("counts a route's own 404 as admitted (it passed every key check)", async () => {
    const h = await setup();
    const { key } = await h.mint(h.adminToken, { quota: { limit: 5, period: "day" } });
    const res = await h.ext("GET", "/subscribers/999999", key);
    expectStatus(res, 404);
    expect(res.headers["keygate-quota-remaining"]).toBe("4");
  });

  it("refills a monthly quota on its refill day, clamped to the month's end", async () => {
    const h = await setup();
    t = Date.parse("2026-02-27T12:00:00Z");
    const { key } = await h.mint(h.adminToken, {
      quota: { limit: 1, period: "month", refill_day: 31 },
    });
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    const spent = await h.ext("GET", "/whoami", key);
    expect(spent.json().error.code).toBe("QUOTA_EXCEEDED");
    expect(spent.json().error.message).toContain("2026-02-28T00:00:00.000Z");
    t = Date.parse("2026-02-28T00:00:00Z");
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    expect((await h.ext("GET", "/whoami", key)).json().error.message).toContain(
      "2026-03-31T00:00:00.000Z",
    );
  });

  it("sends key.quota_low once at 80 % and once at 100 % of each period", async () => {
    const h = await setup();
    const { key, id } = await h.mint(h.adminToken, { quota: { limit: 5, period: "day" } });
    for (let i = 0; i < 3; i++) expectStatus(await h.ext("GET", "/whoami", key), 200);
    expect(await quotaEvents(h)).toEqual([]);
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    const at80 = await quotaEvents(h);
    expect(at80).toHaveLength(1);
    expect(at80[0]).toMatchObject({
      id,
      threshold_percent: 80,
      used: 4,
      remaining: 1,
      quota: { limit: 5, period: "day", refill_day: null },
      period_start: "2026-06-10T00:00:00.000Z",
      resets_at: "2026-06-11T00:00:00.000Z",
    });
    expect(JSON.stringify(at80)).not.toContain(key);
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    for (let i = 0; i < 5; i++) expectStatus(await h.ext("GET", "/whoami", key), 429);
    // A fresh read of the key (evicted) does not announce again: the marks say it was.
    h.kg.keyCache.clear();
    expectStatus(await h.ext("GET", "/whoami", key), 429);
    const all = await quotaEvents(h);
    expect(all.map((e) => e.threshold_percent)).toEqual([80, 100]);
    expect(all[1]).toMatchObject({ used: 5, remaining: 0 });
    // The next day is a new period: announced anew.
    t = Date.parse("2026-06-11T01:00:00Z");
    for (let i = 0; i < 4; i++) expectStatus(await h.ext("GET", "/whoami", key), 200);
    expect((await quotaEvents(h)).map((e) => e.threshold_percent)).toEqual([80, 100, 80]);
  });

  it("applies a changed quota on the next call", async () => {
    const h = await setup();
    const { key, id } = await h.mint(h.adminToken, { quota: { limit: 1, period: "day" } });
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    expectStatus(await h.ext("GET", "/whoami", key), 429);
    await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { quota: { limit: 3, period: "day" } });
    const res = await h.ext("GET", "/whoami", key);
    expectStatus(res, 200);
    expect(res.headers["keygate-quota-remaining"]).toBe("1");
    await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { quota: null });
    const free = await h.ext("GET", "/whoami", key);
    expectStatus(free, 200);
    expect(free.headers["keygate-quota-remaining"]).toBeUndefined();
  });
});

describe("a quota across a restart", () => {
  it("starts again from the usage rollups' count, not from zero", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kg-quota-"));
    const db = await freshDatabase(join(dir, "kg.db"));
    const open = async () => {
      const config = loadConfig({
        KEYGATE_DATABASE_URL: db.url,
        KEYGATE_ADMIN_USERNAME: ADMIN.username,
        KEYGATE_ADMIN_PASSWORD: ADMIN.password,
        KEYGATE_LOG_LEVEL: "silent",
        KEYGATE_IP_RATE_LIMIT: "0",
      });
      const kg = await createKeygate(config, { now: () => new Date(t) });
      const app = await buildApp(kg, { logger: false });
      await kg.auth.bootstrap(config.adminUsername, config.adminPassword);
      return { kg, app };
    };
    t = START;
    try {
      let { kg, app } = await open();
      const token = (
        await app.inject({ method: "POST", url: "/api/auth/login", payload: ADMIN })
      ).json().data.access_token as string;
      const minted = await app.inject({
        method: "POST",
        url: "/api/api-keys",
        headers: { authorization: `Bearer ${token}` },
        payload: { quota: { limit: 100, period: "month" } },
      });
      const { key, data } = minted.json();
      const call = () =>
        app.inject({
          method: "GET",
          url: "/api/v1/external/whoami",
          headers: { "x-api-key": key },
        });
      expect((await call()).headers["keygate-quota-remaining"]).toBe("99");
      await app.close();
      await kg.close();

      // What the call-log writer's rollups hold for this month: 97 admitted calls, over
      // hours of two environments' rows, and some of last month's that do not count.
      const hour = (iso: string) => Math.floor(Date.parse(iso) / 3_600_000);
      const row = (h: number, admitted: number, environment = "live") => ({
        api_key_id: data.id as number,
        environment,
        hour: h,
        calls: admitted,
        admitted,
        s2xx: admitted,
        s3xx: 0,
        s4xx: 0,
        s5xx: 0,
        errors: "{}",
        latency: "[]",
        routes: "{}",
        ips: "{}",
      });
      ({ kg, app } = await open());
      // Whatever the rollups already counted of this key (its first call, once they are kept).
      const before = Number(
        (
          await kg.database.db
            .selectFrom("usage_rollups")
            .select((eb) => eb.fn.sum<number>("admitted").as("n"))
            .where("api_key_id", "=", data.id)
            .executeTakeFirst()
        )?.n ?? 0,
      );
      await kg.database.db
        .insertInto("usage_rollups")
        .values([
          row(hour("2026-05-31T23:00:00Z"), 50),
          row(hour("2026-06-01T00:00:00Z"), 40),
          row(hour("2026-06-05T10:00:00Z"), 50),
          row(hour("2026-06-10T11:00:00Z"), 7, "test"),
        ])
        .execute();
      const first = await call();
      expectStatus(first, 200);
      // Seeded once: 97 (and what was there), and this call.
      const left = 100 - 97 - before - 1;
      expect(first.headers["keygate-quota-remaining"]).toBe(String(left));
      for (let i = left - 1; i >= 0; i--)
        expect((await call()).headers["keygate-quota-remaining"]).toBe(String(i));
      expect((await call()).json().error.code).toBe("QUOTA_EXCEEDED");
      await app.close();
      await kg.close();
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a quota along a roll chain", () => {
  it("is not given back by a roll: the replacement and the old key spend one count", async () => {
    const h = await setup();
    const { key, id } = await h.mint(h.adminToken, { quota: { limit: 3, period: "day" } });
    for (let i = 0; i < 2; i++) expectStatus(await h.ext("GET", "/whoami", key), 200);
    const rolled = await h.api("POST", `/api/api-keys/${id}/roll`, h.adminToken, {});
    expectStatus(rolled, 201);
    const next = rolled.json().key as string;
    const nextId = rolled.json().data.id as number;
    // One call left of three, for both keys together during the grace period.
    const one = await h.ext("GET", "/whoami", next);
    expectStatus(one, 200);
    expect(one.headers["keygate-quota-remaining"]).toBe("0");
    const old = await h.ext("GET", "/whoami", key);
    expectStatus(old, 429);
    expect(old.json().error.code).toBe("QUOTA_EXCEEDED");
    const refused = await h.ext("GET", "/whoami", next);
    expectStatus(refused, 429);
    expect(refused.json().error.code).toBe("QUOTA_EXCEEDED");
    for (const header of ["keygate-quota-remaining", "keygate-quota-reset", "retry-after"])
      expect(refused.headers[header]).toBe(old.headers[header]);
    expect(refused.headers["keygate-quota-remaining"]).toBe("0");
    expect(refused.headers["keygate-quota-reset"]).toBe(String(12 * 3600));
    // The key's page shows the chain's count.
    const read = await h.api("GET", `/api/api-keys/${nextId}`, h.adminToken);
    expect(read.json().data.quota_usage).toMatchObject({ used: 3, remaining: 0 });
    // Rolled again, the chain still shares it; the next day refills it.
    const again = await h.api("POST", `/api/api-keys/${nextId}/roll`, h.adminToken, {});
    const third = again.json().key as string;
    expect((await h.ext("GET", "/whoami", third)).json().error.code).toBe("QUOTA_EXCEEDED");
    t = Date.parse("2026-06-11T00:00:00Z");
    const refilled = await h.ext("GET", "/whoami", third);
    expectStatus(refilled, 200);
    expect(refilled.headers["keygate-quota-remaining"]).toBe("2");
  });

  it("announces each threshold once for the whole chain", async () => {
    const h = await setup();
    const { key, id } = await h.mint(h.adminToken, { quota: { limit: 5, period: "day" } });
    for (let i = 0; i < 4; i++) expectStatus(await h.ext("GET", "/whoami", key), 200);
    expect((await quotaEvents(h)).map((e) => e.threshold_percent)).toEqual([80]);
    const rolled = await h.api("POST", `/api/api-keys/${id}/roll`, h.adminToken, {});
    const next = rolled.json().key as string;
    // The replacement finds the chain at 80 % already, then spends the last call.
    expectStatus(await h.ext("GET", "/whoami", next), 200);
    const events = await quotaEvents(h);
    expect(events.map((e) => e.threshold_percent)).toEqual([80, 100]);
    expect(events[1]).toMatchObject({ id: rolled.json().data.id, used: 5, remaining: 0 });
  });

  it("stays spent for the replacement after a restart (seeded from the chain's rollups)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kg-quota-roll-"));
    const db = await freshDatabase(join(dir, "kg.db"));
    const open = async () => {
      const config = loadConfig({
        KEYGATE_DATABASE_URL: db.url,
        KEYGATE_ADMIN_USERNAME: ADMIN.username,
        KEYGATE_ADMIN_PASSWORD: ADMIN.password,
        KEYGATE_LOG_LEVEL: "silent",
        KEYGATE_IP_RATE_LIMIT: "0",
      });
      const kg = await createKeygate(config, { now: () => new Date(t) });
      const app = await buildApp(kg, { logger: false });
      await kg.auth.bootstrap(config.adminUsername, config.adminPassword);
      return { kg, app };
    };
    const call = (app: Awaited<ReturnType<typeof open>>["app"], key: string) =>
      app.inject({ method: "GET", url: "/api/v1/external/whoami", headers: { "x-api-key": key } });
    t = START;
    try {
      let { kg, app } = await open();
      const token = (
        await app.inject({ method: "POST", url: "/api/auth/login", payload: ADMIN })
      ).json().data.access_token as string;
      const auth = { authorization: `Bearer ${token}` };
      const minted = await app.inject({
        method: "POST",
        url: "/api/api-keys",
        headers: auth,
        payload: { quota: { limit: 4, period: "month" } },
      });
      const { key, data } = minted.json();
      for (let i = 0; i < 2; i++) expectStatus(await call(app, key), 200);
      const rolled = await app.inject({
        method: "POST",
        url: `/api/api-keys/${data.id}/roll`,
        headers: auth,
        payload: {},
      });
      expectStatus(rolled, 201);
      const next = rolled.json().key as string;
      // Half the calls by each key: the count after a restart must add up both.
      for (let i = 0; i < 2; i++) expectStatus(await call(app, next), 200);
      const before = await call(app, next);
      expectStatus(before, 429);
      expect(before.json().error.code).toBe("QUOTA_EXCEEDED");
      await kg.callLog.flush();
      await app.close();
      await kg.close();

      ({ kg, app } = await open());
      for (const k of [next, key]) {
        const res = await call(app, k);
        expectStatus(res, 429);
        expect(res.json().error.code).toBe("QUOTA_EXCEEDED");
        expect(res.headers["keygate-quota-remaining"]).toBe("0");
        expect(res.headers["keygate-quota-reset"]).toBe(before.headers["keygate-quota-reset"]);
      }
      await app.close();
      await kg.close();
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("migration 0014_quota_roots", () => {
  it("gives keys rolled before it their chain's first key", async () => {
    const f = await freshDatabase();
    const database = await openDatabase(f.url, { migrateTo: "0013_call_log_partitions" });
    try {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the schema as it was before 0014
      const db = database.db as Kysely<any>;
      const at = "2026-06-01T00:00:00.000Z";
      await db
        .insertInto("users")
        .values({
          username: "u",
          password_hash: "x",
          role: "admin",
          created_at: at,
          updated_at: at,
        })
        .execute();
      const user = await db.selectFrom("users").select("id").executeTakeFirstOrThrow();
      // 1 → 2 → 3 (a chain rolled twice), 4 alone, 5 → 6.
      const from: Record<number, number | null> = { 1: null, 2: 1, 3: 2, 4: null, 5: null, 6: 5 };
      for (const [id, rolled] of Object.entries(from))
        await db
          .insertInto("api_keys")
          .values({
            id: Number(id),
            name: `k${id}`,
            key_hash: `h${id}`,
            key_prefix: `pk_live_${id}`,
            scopes: "read",
            owner_id: user.id,
            created_at: at,
            updated_at: at,
            rolled_from_id: rolled,
          })
          .execute();
      expect(await migrateToLatest(database.db, database.dialect, "0014_quota_roots")).toEqual([
        "0014_quota_roots",
      ]);
      const rows = await database.db
        .selectFrom("api_keys")
        .select(["id", "quota_root_id"])
        .orderBy("id")
        .execute();
      expect(rows.map((r) => [r.id, r.quota_root_id])).toEqual([
        [1, null],
        [2, 1],
        [3, 1],
        [4, null],
        [5, null],
        [6, 5],
      ]);
    } finally {
      await database.close();
      await f.drop();
    }
  });
});

describe("who may loosen a quota", () => {
  it("lets a reseller add or lower a quota on their key, and only an admin remove or loosen it", async () => {
    const h = await setup({ KEYGATE_SELF_SERVICE_KEYS: "true" });
    const r = await h.user("res");
    // On mint any quota: it only restricts the key.
    const { id } = await h.mint(r.token, { quota: { limit: 100, period: "day" } });
    const put = (token: string, quota: unknown) =>
      h.api("PUT", `/api/api-keys/${id}`, token, { quota });

    const refusals = [
      [null, "only an admin can remove key"],
      [{ limit: 101, period: "day" }, "only an admin can raise key"],
      [{ limit: 100, period: "month" }, "only an admin can change key"],
      [{ limit: 50, period: "month", refill_day: 1 }, "only an admin can change key"],
    ] as const;
    for (const [quota, said] of refusals) {
      const res = await put(r.token, quota);
      expectStatus(res, 403);
      const body = res.json();
      expect(body.success).toBe(false);
      expect(body.code).toBe("FORBIDDEN");
      expect(body.message).toContain(`${said} ${id}'s quota`);
      expect(body.message).toContain("100 calls a day");
      expect(body.message).toContain('you are signed in as reseller "res"');
      expect(body.message).toContain(
        "ask an admin, or lower the limit (at most 100) keeping the period",
      );
    }
    expect((await h.api("GET", `/api/api-keys/${id}`, r.token)).json().data.quota).toEqual({
      limit: 100,
      period: "day",
      refill_day: null,
    });

    // Lowering, or keeping it, is theirs to do; so is renaming without the quota.
    expectStatus(await put(r.token, { limit: 60, period: "day" }), 200);
    expectStatus(await put(r.token, { limit: 60, period: "day" }), 200);
    expectStatus(await h.api("PUT", `/api/api-keys/${id}`, r.token, { name: "renamed" }), 200);
    const raised = await put(r.token, { limit: 100, period: "day" });
    expectStatus(raised, 403);
    expect(raised.json().message).toContain("from 60 calls a day to 100 calls a day");

    // A key without a quota may be given one.
    const free = await h.mint(r.token);
    const added = await h.api("PUT", `/api/api-keys/${free.id}`, r.token, {
      quota: { limit: 10, period: "month", refill_day: 15 },
    });
    expectStatus(added, 200);
    expect(added.json().data.quota).toEqual({ limit: 10, period: "month", refill_day: 15 });
    const moved = await h.api("PUT", `/api/api-keys/${free.id}`, r.token, {
      quota: { limit: 10, period: "month", refill_day: 20 },
    });
    expectStatus(moved, 403);
    expect(moved.json().message).toContain(
      "from 10 calls a month (refilling on day 15) to 10 calls a month (refilling on day 20)",
    );

    // An admin may do all of it, on the reseller's keys too.
    const up = await put(h.adminToken, { limit: 1_000, period: "month", refill_day: 5 });
    expectStatus(up, 200);
    expect(up.json().data.quota).toEqual({ limit: 1_000, period: "month", refill_day: 5 });
    const gone = await put(h.adminToken, null);
    expectStatus(gone, 200);
    expect(gone.json().data.quota).toBeNull();
    // Without a quota again, the reseller may add one.
    expectStatus(await put(r.token, { limit: 5, period: "day" }), 200);
  });
});

void ENGINE;
