import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, harness } from "./helpers.js";

/** The CSV read by a parser written elsewhere: the header row, then one object per call. */
function read(body: string): Record<string, string>[] {
  return parse(body, { columns: true, skip_empty_lines: true });
}

describe("the call log: time ranges and CSV export", () => {
  let h: Harness;
  let key: string;
  let id: number;
  const base = Date.parse("2026-11-20T10:00:00.000Z");

  beforeAll(async () => {
    h = await harness();
    ({ key, id } = await h.mint(h.adminToken, { name: "export" }));
    // 2,500 calls a second apart, oldest first: more than two pages of the export.
    for (let i = 0; i < 2500; i++) {
      h.kg.callLog.push({
        apiKeyId: id,
        timestamp: new Date(base + i * 1000).toISOString(),
        method: "GET",
        path: `/api/v1/external/subscribers/${i}`,
        statusCode: i % 10 === 0 ? 404 : 200,
        ip: "203.0.113.9",
        latencyMs: 1.5,
        userAgent: "billing-sync/2.1",
        errorCode: i % 10 === 0 ? "NOT_FOUND" : null,
        requestId: `req-${i}`,
        message: i % 10 === 0 ? "subscriber not found" : null,
      });
    }
    await h.kg.callLog.flush();
  });
  afterAll(() => h.close());

  const csv = (query = "", token = h.adminToken) =>
    h.api("GET", `/api/api-keys/${id}/logs.csv${query}`, token);

  it("exports every call, newest first, with a header row and a download name", async () => {
    const res = await csv("?limit=5000");
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/csv/);
    expect(res.headers["content-disposition"]).toBe(`attachment; filename="key-${id}-calls.csv"`);
    expect(res.headers["cache-control"]).toBe("no-store");
    const rows = read(res.body);
    expect(rows).toHaveLength(2500);
    expect(Object.keys(rows[0] as object)).toEqual([
      "id",
      "timestamp",
      "method",
      "path",
      "status_code",
      "error_code",
      "message",
      "ip",
      "latency_ms",
      "user_agent",
      "request_id",
      "credential",
      "environment",
    ]);
    // Across the pages: no call twice, none missing, in order.
    const requestIds = rows.map((r) => r.request_id);
    expect(new Set(requestIds).size).toBe(2500);
    expect(requestIds[0]).toBe("req-2499");
    expect(requestIds.at(-1)).toBe("req-0");
    const ids = rows.map((r) => Number(r.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(rows.find((r) => r.request_id === "req-10")).toMatchObject({
      status_code: "404",
      error_code: "NOT_FOUND",
      message: "subscriber not found",
      timestamp: new Date(base + 10_000).toISOString(),
      credential: "key",
      environment: "live",
    });
    expect(res.body).not.toContain(key);
  });

  it("stops at the limit, and applies the call log's filters", async () => {
    expect(read((await csv("?limit=3")).body).map((r) => r.request_id)).toEqual([
      "req-2499",
      "req-2498",
      "req-2497",
    ]);
    const failures = read((await csv("?status=4xx&limit=5000")).body);
    expect(failures).toHaveLength(250);
    expect(failures.every((r) => r.status_code === "404")).toBe(true);
    // [from, before): seconds 100 to 109.
    const from = new Date(base + 100_000).toISOString().replace(".000Z", "Z");
    const before = new Date(base + 110_000).toISOString();
    const range = read((await csv(`?from=${from}&before=${before}`)).body);
    expect(range.map((r) => r.request_id)).toEqual(
      Array.from({ length: 10 }, (_, i) => `req-${109 - i}`),
    );
  });

  it("filters the JSON log by the same time range", async () => {
    const from = new Date(base + 2_000_000).toISOString();
    const res = await h.api(
      "GET",
      `/api/api-keys/${id}/logs?from=${from}&limit=1000`,
      h.adminToken,
    );
    expect(res.statusCode).toBe(200);
    const data = res.json().data as { request_id: string }[];
    expect(data).toHaveLength(500);
    expect(data.at(-1)?.request_id).toBe("req-2000");
  });

  it("keeps a spreadsheet from running what a caller sent", async () => {
    const { id: other } = await h.mint(h.adminToken, { name: "formulas" });
    for (const userAgent of ['=HYPERLINK("http://x.example","click")', "+1+1", "@SUM(A1)"])
      h.kg.callLog.push({
        apiKeyId: other,
        timestamp: new Date().toISOString(),
        method: "GET",
        path: "/api/v1/external/whoami",
        statusCode: 200,
        ip: "203.0.113.9",
        latencyMs: 1,
        userAgent,
        errorCode: null,
        requestId: null,
        message: null,
      });
    await h.kg.callLog.flush();
    const res = await h.api("GET", `/api/api-keys/${other}/logs.csv`, h.adminToken);
    const agents = read(res.body).map((r) => r.user_agent);
    expect(agents.sort()).toEqual(
      ["'+1+1", '\'=HYPERLINK("http://x.example","click")', "'@SUM(A1)"].sort(),
    );
  });

  it("answers a key out of sight, a bad time or a bad limit in JSON, before any CSV", async () => {
    const reseller = await h.user("export-reseller");
    const hidden = await csv("", reseller.token);
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json()).toMatchObject({ success: false, code: "NOT_FOUND" });
    const badTime = await csv("?from=2026-13-45T99:99:99Z");
    expect(badTime.statusCode).toBe(400);
    expect(badTime.json()).toMatchObject({ success: false, code: "VALIDATION_ERROR" });
    expect((await csv("?limit=0")).statusCode).toBe(400);
    expect((await csv("?limit=2000000")).statusCode).toBe(400);
    expect((await h.api("GET", `/api/api-keys/${id}/logs.csv`)).statusCode).toBe(401);
  });
});
