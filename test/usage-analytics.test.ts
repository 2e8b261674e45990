import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallLogEntry } from "../src/calllog/writer.js";
import { type Database, openDatabase } from "../src/store/database.js";
import { SqlKeyRepo } from "../src/store/keys.js";
import { backfillUsageTotals, EVERY_KEY } from "../src/store/usage.js";
import { expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";

const HOUR = 3_600_000;

type Report = {
  from: string;
  to: string;
  bucket: string;
  environment: string | null;
  api_key_id?: number;
  totals: {
    calls: number;
    admitted: number;
    by_status: Record<string, number>;
    by_error: Record<string, number>;
    latency_ms: { p50: number; p95: number; p99: number } | null;
  };
  buckets: { start: string; calls: number; admitted: number; latency_ms: unknown }[];
  top_routes: { route: string; calls: number }[];
  top_ips: { ip: string; calls: number }[];
};

describe("usage analytics: GET /api/api-keys/:id/usage and GET /api/usage", () => {
  const dir = mkdtempSync(join(tmpdir(), "keygate-usage-"));
  let database: { url: string; drop: () => Promise<void> };
  let h: Harness;
  let admin: { id: number; key: string };
  let revoked: { id: number; key: string };
  let ann: { id: number; token: string };
  let annKey: { id: number; key: string };
  let bob: { id: number; token: string };
  let bobKey: { id: number; key: string };

  beforeAll(async () => {
    database = await freshDatabase(join(dir, "keygate.db"));
    h = await harness({ KEYGATE_DATABASE_URL: database.url, KEYGATE_SELF_SERVICE_KEYS: "true" });
    admin = await h.mint(h.adminToken, { name: "admin's" });
    revoked = await h.mint(h.adminToken, { name: "revoked" });
    ann = await h.user("ann");
    annKey = await h.mint(ann.token, { name: "ann's" });
    bob = await h.user("bob");
    bobKey = await h.mint(bob.token, { name: "bob's" });

    // Real calls: 5 answered, 2 a route answered with 404, 1 no route matched.
    for (let i = 0; i < 5; i++) expectStatus(await h.ext("GET", "/whoami", admin.key), 200);
    for (const id of [901, 902])
      expectStatus(await h.ext("GET", `/subscribers/${id}`, admin.key), 404);
    expectStatus(await h.ext("GET", "/no-such-route", admin.key), 404);
    // A refused call with a known key: counted, not admitted.
    expectStatus(await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken), 200);
    expectStatus(await h.ext("GET", "/whoami", revoked.key), 401);
    for (let i = 0; i < 3; i++) expectStatus(await h.ext("GET", "/whoami", annKey.key), 200);
    expectStatus(await h.ext("GET", "/whoami", bobKey.key), 200);
    // No key: not rolled up.
    expectStatus(await h.ext("GET", "/whoami"), 401);
    await h.kg.callLog.flush();
  });
  afterAll(async () => {
    await h.close();
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (url: string, token = h.adminToken): Promise<Report> => {
    const res = await h.api("GET", url, token);
    expectStatus(res, 200);
    const body = res.json();
    expect(body.success).toBe(true);
    return body.data as Report;
  };

  it("answers a key's calls of the last 24 hours by status, code, route and address", async () => {
    const u = await get(`/api/api-keys/${admin.id}/usage`);
    expect(u.api_key_id).toBe(admin.id);
    expect(u.bucket).toBe("hour");
    expect(u.environment).toBeNull();
    expect(Date.parse(u.to) - Date.parse(u.from)).toBe(24 * HOUR);
    expect(Date.parse(u.to)).toBeGreaterThan(Date.now());
    expect(u.totals).toMatchObject({
      calls: 8,
      admitted: 8,
      by_status: { "2xx": 5, "3xx": 0, "4xx": 3, "5xx": 0 },
      by_error: { NOT_FOUND: 3 },
    });
    expect(u.totals.latency_ms?.p50).toBeGreaterThanOrEqual(0);
    expect(u.totals.latency_ms?.p99).toBeGreaterThanOrEqual(u.totals.latency_ms?.p50 as number);
    // Route patterns, not paths; an unmatched one apart.
    expect(u.top_routes).toEqual([
      { route: "GET /api/v1/external/whoami", calls: 5 },
      { route: "GET /api/v1/external/subscribers/:id", calls: 2 },
      { route: "GET (unmatched)", calls: 1 },
    ]);
    expect(u.top_ips).toHaveLength(1);
    expect(u.top_ips[0]?.calls).toBe(8);
    // Every hour, zero-filled, oldest first; the calls are in the current (last) hour.
    expect(u.buckets).toHaveLength(24);
    expect(u.buckets.map((b) => Date.parse(b.start))).toEqual(
      Array.from({ length: 24 }, (_, i) => Date.parse(u.from) + i * HOUR),
    );
    expect(u.buckets.at(-1)?.calls).toBe(8);
    expect(u.buckets.slice(0, 23).every((b) => b.calls === 0 && b.latency_ms === null)).toBe(true);
    expect(JSON.stringify(u)).not.toContain(admin.key);
  });

  it("counts a refused call with a known key as a call, not as admitted", async () => {
    const u = await get(`/api/api-keys/${revoked.id}/usage`);
    expect(u.totals).toMatchObject({
      calls: 1,
      admitted: 0,
      by_status: { "4xx": 1 },
      by_error: { API_KEY_REVOKED: 1 },
    });
  });

  it("answers days, an environment, and explicit ranges in whole buckets", async () => {
    const today = new Date().toISOString().slice(0, 10);
    const days = await get(`/api/api-keys/${admin.id}/usage?from=${today}&to=${today}`);
    expect(days.bucket).toBe("hour"); // one day: hourly by default
    expect(days.buckets).toHaveLength(24);
    expect(days.from).toBe(`${today}T00:00:00.000Z`);
    const week = new Date(Date.now() - 13 * 86_400_000).toISOString();
    const daily = await get(`/api/api-keys/${admin.id}/usage?from=${week}`);
    expect(daily.bucket).toBe("day");
    expect(daily.buckets).toHaveLength(14);
    expect(daily.buckets.every((b) => b.start.endsWith("T00:00:00.000Z"))).toBe(true);
    expect(daily.buckets.at(-1)?.calls).toBe(8);
    expect(daily.totals.calls).toBe(8);
    const test = await get(`/api/api-keys/${admin.id}/usage?environment=test&bucket=day`);
    expect(test.environment).toBe("test");
    expect(test.totals.calls).toBe(0);
    expect(test.totals.latency_ms).toBeNull();
    const live = await get(`/api/api-keys/${admin.id}/usage?environment=live`);
    expect(live.totals.calls).toBe(8);
    // Far in the past: all zeros, still every bucket.
    const old = await get(
      `/api/api-keys/${admin.id}/usage?from=2020-01-01T00:30:00Z&to=2020-01-01T05:10:00%2B01:00`,
    );
    expect(old.from).toBe("2020-01-01T00:00:00.000Z");
    expect(old.to).toBe("2020-01-01T05:00:00.000Z");
    expect(old.buckets.map((b) => b.calls)).toEqual([0, 0, 0, 0, 0]);
  });

  it("sums every key for an admin, and only their own for anyone else", async () => {
    const all = await get("/api/usage");
    expect(all.api_key_id).toBeUndefined();
    expect(all.totals.calls).toBe(8 + 1 + 3 + 1);
    const annAll = await get("/api/usage", ann.token);
    expect(annAll.totals.calls).toBe(3);
    expect(annAll.top_routes).toEqual([{ route: "GET /api/v1/external/whoami", calls: 3 }]);
    expect((await get(`/api/api-keys/${annKey.id}/usage`, ann.token)).totals.calls).toBe(3);
    expect((await get(`/api/usage?api_key_id=${bobKey.id}`)).totals.calls).toBe(1);
    expect((await get(`/api/usage?api_key_id=${annKey.id}`, ann.token)).totals.calls).toBe(3);
  });

  it("answers 404 for a key out of sight, as for one that does not exist", async () => {
    for (const url of [
      `/api/api-keys/${admin.id}/usage`,
      `/api/api-keys/${bobKey.id}/usage`,
      `/api/usage?api_key_id=${bobKey.id}`,
      `/api/api-keys/999999/usage`,
    ]) {
      const res = await h.api("GET", url, ann.token);
      expectStatus(res, 404);
      expect(res.json().code).toBe("NOT_FOUND");
    }
    expectStatus(await h.api("GET", "/api/usage"), 401);
  });

  it("refuses bad ranges and parameters with a VALIDATION_ERROR that says what to do", async () => {
    const cases: [string, RegExp][] = [
      ["?from=2026-11-20T10:00:00Z&to=2026-11-20T09:00:00Z", /before to/],
      ["?from=2026-11-20T10:00:00Z&to=2026-11-20T10:00:00Z", /before to/],
      ["?from=2026-11-31", /real ISO-8601/],
      ["?to=2026-02-30T00:00:00Z", /real ISO-8601/],
      ["?from=2026-11-20T25:00:00Z", /real ISO-8601/],
      ["?from=yesterday", /from/],
      ["?from=2026-01-01&to=2026-05-01&bucket=hour", /at most 90 days.*bucket=day/],
      ["?from=2024-01-01&to=2026-01-01", /at most 400 days/],
      ["?bucket=week", /bucket/],
      ["?environment=staging", /environment/],
      ["?hours=3", /hours|additional/i],
    ];
    for (const [query, message] of cases) {
      const res = await h.api("GET", `/api/api-keys/${admin.id}/usage${query}`, h.adminToken);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().code, query).toBe("VALIDATION_ERROR");
      expect(res.json().message, query).toMatch(message);
    }
    const res = await h.api("GET", "/api/usage?api_key_id=0", h.adminToken);
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("VALIDATION_ERROR");
  });

  it("loses no count when two writers merge into the same rollup rows at once", async () => {
    // A second instance: its own connection (pool) to the same database.
    const other: Database = await openDatabase(database.url);
    try {
      const writers = [h.kg.keyRepo, new SqlKeyRepo(other)];
      const keys = [annKey.id, bobKey.id];
      const base = Date.parse("2026-01-10T05:00:00.000Z");
      const rounds = 10;
      const perBatch = 400;
      const batch = (w: number, round: number): CallLogEntry[] =>
        Array.from({ length: perBatch }, (_, i) => ({
          apiKeyId: keys[i % 2] as number,
          // Two hours, so each batch merges four rows, locked in the same order by both.
          timestamp: new Date(base + (i % 4 < 2 ? 0 : HOUR) + round * 1000 + i).toISOString(),
          method: "GET",
          path: `/api/v1/external/subscribers/${i}`,
          route: i % 3 === 0 ? "/api/v1/external/whoami" : "/api/v1/external/subscribers/:id",
          statusCode: i % 5 === 0 ? 404 : 200,
          // 80 addresses a row: past the bound, so "(other)" is merged too.
          ip: `198.51.${w}.${(i * 7 + round) % 80}`,
          latencyMs: 1 + (i % 50),
          userAgent: null,
          errorCode: i % 5 === 0 ? "NOT_FOUND" : null,
          requestId: null,
          message: null,
        }));
      for (let round = 0; round < rounds; round++)
        await Promise.all(writers.map((w, i) => w.writeBatch(batch(i, round), new Map())));
      const fromHour = base / HOUR;
      const u = await get(
        `/api/usage?from=${new Date(base).toISOString()}&to=${new Date(base + 2 * HOUR).toISOString()}`,
      );
      const total = rounds * perBatch * writers.length;
      expect(u.totals.calls).toBe(total);
      expect(u.totals.admitted).toBe(total);
      expect(u.totals.by_status["4xx"]).toBe(total / 5);
      expect(u.totals.by_error).toEqual({ NOT_FOUND: total / 5 });
      expect(u.buckets.map((b) => b.calls)).toEqual([total / 2, total / 2]);
      const routeCalls = u.top_routes.reduce((a, r) => a + r.calls, 0);
      expect(routeCalls).toBe(total);
      // Every row's JSON maps add up to its calls: no merge overwrote another's.
      const rows = await other.db
        .selectFrom("usage_rollups")
        .selectAll()
        .where("hour", ">=", fromHour)
        .where("hour", "<", fromHour + 2)
        .execute();
      expect(rows).toHaveLength(4);
      for (const r of rows) {
        const sum = (json: string) =>
          Object.values(JSON.parse(json) as Record<string, number>).reduce((a, v) => a + v, 0);
        expect(sum(r.ips)).toBe(r.calls);
        expect(sum(r.routes)).toBe(r.calls);
        expect(Object.keys(JSON.parse(r.ips))).toHaveLength(51);
        const hist = JSON.parse(r.latency) as number[];
        expect(hist.slice(1).reduce((a, v) => a + v, 0)).toBe(r.calls);
      }
      // The owners' and everyone's rows took every call too: one each per owner and hour.
      const totals = await other.db
        .selectFrom("usage_totals")
        .selectAll()
        .where("hour", ">=", fromHour)
        .where("hour", "<", fromHour + 2)
        .orderBy("owner_id")
        .orderBy("hour")
        .execute();
      expect(totals.map((t) => [t.owner_id, t.calls])).toEqual([
        [EVERY_KEY, total / 2],
        [EVERY_KEY, total / 2],
        [ann.id, total / 4],
        [ann.id, total / 4],
        [bob.id, total / 4],
        [bob.id, total / 4],
      ]);
      for (const t of totals) {
        const sum = (json: string) =>
          Object.values(JSON.parse(json) as Record<string, number>).reduce((a, v) => a + v, 0);
        expect(sum(t.ips)).toBe(t.calls);
        expect(sum(t.routes)).toBe(t.calls);
      }
    } finally {
      await other.close();
    }
  });

  it("reads an admin's and an owner's usage from one row an hour, the same as from every key's", async () => {
    const range = "from=2026-01-10T00:00:00.000Z&to=2026-01-11T00:00:00.000Z";
    const wide = "from=2026-01-01T00:00:00.000Z&to=2026-01-31T00:00:00.000Z&bucket=day";
    const reports = async () => [
      await get(`/api/usage?${range}`),
      await get(`/api/usage?${wide}`),
      await get(`/api/usage?${range}`, ann.token),
      await get("/api/usage"),
      await get("/api/usage", bob.token),
    ];
    const before = await reports();
    // The same sums made again from the keys' rows, as the migration that made the table does.
    await h.kg.database.db.deleteFrom("usage_totals").execute();
    expect((await get(`/api/usage?${range}`)).totals.calls).toBe(0);
    expect(await backfillUsageTotals(h.kg.database.db)).toBeGreaterThan(0);
    expect(await reports()).toEqual(before);
    // An owner's read is their keys' usage, summed: the same as each key's own.
    const annKeys = await get(`/api/api-keys/${annKey.id}/usage?${range}`);
    expect(before[2]?.totals).toEqual(annKeys.totals);
    expect(before[2]?.buckets).toEqual(annKeys.buckets);
  });
});
