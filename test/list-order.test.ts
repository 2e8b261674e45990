import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectStatus, type Harness, harness } from "./helpers.js";

const START = Date.parse("2026-06-01T12:00:00Z");
let t = START;
let h: Harness;

beforeEach(async () => {
  t = START;
  h = await harness({}, { now: () => new Date(t) });
});
afterEach(() => h.close());

const iso = (ms: number) => new Date(ms).toISOString();

describe("the call log oldest first", () => {
  it("reads oldest first with order=asc, pages with after_id, and keeps newest first the default", async () => {
    const { id } = await h.mint(h.adminToken);
    // 12 calls a minute apart and 3 in one second: the walk crosses minutes and ties.
    const at: number[] = [];
    for (let i = 0; i < 15; i++) {
      at.push(START + (i < 12 ? i * 61_000 : 12 * 61_000));
      h.kg.callLog.push({
        apiKeyId: id,
        timestamp: iso(at[i] as number),
        method: "GET",
        path: "/api/v1/external/whoami",
        statusCode: i % 3 === 0 ? 404 : 200,
        ip: "203.0.113.9",
        latencyMs: 1,
        userAgent: null,
        errorCode: i % 3 === 0 ? "NOT_FOUND" : null,
        requestId: `req-${i}`,
        message: null,
      });
    }
    await h.kg.callLog.flush();
    const ids = async (query: string) => {
      const res = await h.api("GET", `/api/api-keys/${id}/logs?${query}`, h.adminToken);
      expectStatus(res, 200);
      return (res.json().data as { request_id: string }[]).map((r) => r.request_id);
    };
    const all = Array.from({ length: 15 }, (_, i) => `req-${i}`);
    expect(await ids("limit=1000")).toEqual([...all].reverse());
    expect(await ids("limit=1000&order=desc")).toEqual([...all].reverse());
    expect(await ids("limit=1000&order=asc")).toEqual(all);

    // Page by page, oldest first: no gap, no repeat, across the tied second too.
    const pages: string[] = [];
    let after: number | undefined;
    for (;;) {
      const q = `limit=4&order=asc${after === undefined ? "" : `&after_id=${after}`}`;
      const res = await h.api("GET", `/api/api-keys/${id}/logs?${q}`, h.adminToken);
      const rows = res.json().data as { id: number; request_id: string }[];
      if (rows.length === 0) break;
      pages.push(...rows.map((r) => r.request_id));
      after = rows.at(-1)?.id;
    }
    expect(pages).toEqual(all);

    // The filters apply the same either way: [from, before) and a status.
    const from = iso(at[2] as number);
    const before = iso(at[6] as number);
    expect(await ids(`order=asc&from=${from}&before=${before}`)).toEqual([
      "req-2",
      "req-3",
      "req-4",
      "req-5",
    ]);
    expect(await ids(`order=asc&status=4xx`)).toEqual([
      "req-0",
      "req-3",
      "req-6",
      "req-9",
      "req-12",
    ]);
    expect(await ids(`order=asc&request_id=req-7`)).toEqual(["req-7"]);

    // The CSV follows the order too.
    const csv = await h.api("GET", `/api/api-keys/${id}/logs.csv?order=asc&limit=3`, h.adminToken);
    expectStatus(csv, 200);
    const lines = csv.body.trim().split("\n").slice(1);
    expect(lines.map((l) => l.split(",")[10])).toEqual(["req-0", "req-1", "req-2"]);
  });

  it("refuses a cursor of the other order, a bad order and an empty range, in the envelope", async () => {
    const { id } = await h.mint(h.adminToken);
    const bad: [string, string][] = [
      ["order=sideways", "order"],
      ["order=asc&before_id=5", "before_id"],
      ["after_id=5", "after_id"],
      ["order=desc&after_id=5", "after_id"],
      ["order=asc&after_id=0", "after_id"],
      [`from=${iso(START)}&before=${iso(START)}`, "before"],
      [`from=${iso(START + 1000)}&before=${iso(START)}`, "before"],
    ];
    for (const [query, field] of bad) {
      const res = await h.api("GET", `/api/api-keys/${id}/logs?${query}`, h.adminToken);
      expectStatus(res, 400);
      expect(res.json().code, query).toBe("VALIDATION_ERROR");
      expect(JSON.stringify(res.json().details), query).toContain(field);
    }
  });
});

describe("the audit trail sorted and by time", () => {
  it("sorts newest first, oldest first, by actor and by action, and filters [from, to)", async () => {
    const ann = await h.user("ann"); // user.create by admin, at START
    t += 60_000;
    await h.login("ann", "ann-password"); // auth.login by ann
    t += 60_000;
    expectStatus(
      await h.api("PUT", `/api/users/${ann.id}`, h.adminToken, { disabled: false }),
      200,
    );
    t += 60_000;
    const rows = async (query: string) => {
      const res = await h.api("GET", `/api/audit?${query}`, h.adminToken);
      expectStatus(res, 200);
      return res.json() as {
        data: { id: number; action: string; actor_username: string; created_at: string }[];
        meta: { total: number };
      };
    };
    const newest = (await rows("")).data;
    expect(newest.length).toBeGreaterThanOrEqual(4);
    const byId = newest.map((e) => e.id);
    expect(byId).toEqual([...byId].sort((a, b) => b - a));
    expect((await rows("sort=newest")).data.map((e) => e.id)).toEqual(byId);
    expect((await rows("sort=oldest")).data.map((e) => e.id)).toEqual([...byId].reverse());

    const actors = (await rows("sort=actor")).data.map((e) => e.actor_username ?? "");
    expect(actors).toEqual([...actors].sort());
    const actions = (await rows("sort=action")).data.map((e) => e.action);
    expect(actions).toEqual([...actions].sort());

    // From the minute of ann's sign-in to before the update's: her sign-in only.
    const range = await rows(`from=${iso(START + 60_000)}&to=${iso(START + 120_000)}`);
    expect(range.data.map((e) => [e.action, e.actor_username])).toEqual([["auth.login", "ann"]]);
    expect(range.meta.total).toBe(1);
    const since = await rows(`from=${iso(START + 60_000)}&sort=oldest`);
    expect(since.data.map((e) => e.action)).toEqual(["auth.login", "user.update"]);
    const until = await rows(`to=${iso(START + 60_000)}`);
    expect(until.data.every((e) => e.created_at < iso(START + 60_000))).toBe(true);
    expect(until.meta.total).toBe(newest.length - 2);
  });

  it("refuses a bad sort or range in the envelope", async () => {
    const bad: [string, string][] = [
      ["sort=random", "sort"],
      ["from=yesterday", "from"],
      ["to=2026-13-45T00:00:00Z", "to"],
      [`from=${iso(START)}&to=${iso(START)}`, "to"],
      [`from=${iso(START + 1)}&to=${iso(START)}`, "to"],
    ];
    for (const [query, field] of bad) {
      const res = await h.api("GET", `/api/audit?${query}`, h.adminToken);
      expectStatus(res, 400);
      expect(res.json().code, query).toBe("VALIDATION_ERROR");
      expect(JSON.stringify(res.json().details), query).toContain(field);
    }
  });
});
