import { createHash } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, type Harness, harness } from "./helpers.js";

/**
 * Every refusal of the external surface, for every route of it: status, `error.code`, the
 * structured envelope, rate headers where a rate decision exists, `Retry-After` on 429, no
 * plaintext key or key hash in the body, and a call-log row for each request.
 */

type Method = "GET" | "POST" | "PUT" | "DELETE";
type Route = { method: Method; path: string; body?: unknown };

/** Ids that match nothing, so a check that wrongly lets a request through cannot change data. */
const NO_ID = 999_999;

const ROUTES: readonly Route[] = [
  { method: "GET", path: "/subscribers" },
  { method: "GET", path: `/subscribers/${NO_ID}` },
  { method: "GET", path: "/subscribers/by-username/nobody-here" },
  { method: "POST", path: "/subscribers", body: {} },
  { method: "PUT", path: `/subscribers/${NO_ID}`, body: {} },
  { method: "DELETE", path: `/subscribers/${NO_ID}` },
  { method: "POST", path: `/subscribers/${NO_ID}/suspend`, body: {} },
  { method: "POST", path: `/subscribers/${NO_ID}/activate`, body: {} },
  { method: "GET", path: `/subscribers/${NO_ID}/usage` },
  { method: "GET", path: "/services" },
  { method: "GET", path: `/services/${NO_ID}` },
  { method: "GET", path: "/nas" },
  { method: "GET", path: `/nas/${NO_ID}` },
  { method: "GET", path: "/transactions" },
  { method: "POST", path: "/transactions", body: {} },
  { method: "GET", path: "/system/stats" },
  { method: "GET", path: "/whoami" },
  { method: "GET", path: "/no-such-route" },
];

/** The routes a read key may not call (plus an unknown route: it passes the same checks). */
const WRITE_ROUTES: readonly Route[] = [
  ...ROUTES.filter((r) => r.method !== "GET"),
  { method: "POST", path: "/no-such-route", body: {} },
];

const label = (r: Route) => `${r.method} ${r.path}`;
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** Every plaintext key minted in this file; no response may contain one or its hash. */
const minted: string[] = [];

type Expected = {
  status: number;
  code: string;
  /** Substrings the message must contain. */
  says?: string[];
  /** The key's own budget was counted (as opposed to only the IP's). */
  rate?: boolean;
};

function send(h: Harness, r: Route, key: string | undefined): Promise<LightMyRequestResponse> {
  return h.ext(r.method, r.path, key, r.body);
}

/** Checks one refusal against the contract. */
function expectRefusal(
  res: LightMyRequestResponse,
  what: string,
  sent: string | undefined,
  exp: Expected,
): void {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBe(exp.status);
  expect(res.headers["content-type"], what).toMatch(/^application\/json/);
  const body = res.json() as Record<string, unknown>;
  expect(Object.keys(body).sort(), what).toEqual(["error", "success", "timestamp"]);
  expect(body.success, what).toBe(false);
  const error = body.error as Record<string, unknown>;
  expect(Object.keys(error).sort(), what).toEqual(["code", "message"]);
  expect(error.code, what).toBe(exp.code);
  expect(typeof error.message, what).toBe("string");
  expect((error.message as string).length, what).toBeGreaterThan(10);
  for (const s of exp.says ?? []) expect(error.message, what).toContain(s);

  const ts = body.timestamp as string;
  expect(ts, what).toMatch(ISO_UTC);
  expect(Number.isNaN(Date.parse(ts)), what).toBe(false);
  expect(Math.abs(Date.parse(ts) - Date.now()), what).toBeLessThan(10 * 60_000);

  // Every external response carries a budget: the key's once counted, else the IP's.
  {
    const limit = Number(res.headers["ratelimit-limit"]);
    const remaining = Number(res.headers["ratelimit-remaining"]);
    const reset = Number(res.headers["ratelimit-reset"]);
    expect(Number.isInteger(limit) && limit > 0, `${what}: RateLimit-Limit`).toBe(true);
    expect(Number.isInteger(remaining) && remaining >= 0, `${what}: RateLimit-Remaining`).toBe(
      true,
    );
    expect(remaining, what).toBeLessThanOrEqual(limit);
    expect(Number.isInteger(reset) && reset >= 0 && reset <= 60, `${what}: RateLimit-Reset`).toBe(
      true,
    );
  }
  if (exp.status === 429) {
    const retry = Number(res.headers["retry-after"]);
    expect(Number.isInteger(retry) && retry >= 1 && retry <= 60, `${what}: Retry-After`).toBe(true);
  } else {
    expect(res.headers["retry-after"], what).toBeUndefined();
  }

  for (const k of sent === undefined ? minted : [...minted, sent]) {
    if (k.length >= 8) expect(res.body.includes(k), `${what}: echoes a key`).toBe(false);
    // Nor any part of it past the 12-character display prefix (pk_live_a8f3).
    if (k.length >= 28) {
      for (const part of [k.slice(12, 28), k.slice(-16)])
        expect(res.body.includes(part), `${what}: echoes part of a key`).toBe(false);
    }
    expect(res.body.includes(sha256(k)), `${what}: leaks a key hash`).toBe(false);
  }
}

type LogRow = { method: string; path: string; status_code: number; error_code: string | null };

/** The key's call log, oldest first, read the way an admin would. */
async function keyLog(h: Harness, keyId: number): Promise<LogRow[]> {
  await h.kg.callLog.flush();
  const res = await h.api("GET", `/api/api-keys/${keyId}/logs?limit=1000`, h.adminToken);
  expectStatus(res, 200);
  return (res.json().data as LogRow[]).reverse();
}

/** Call-log rows with no key id and the given error code. */
async function keylessRows(h: Harness, code: string): Promise<number> {
  await h.kg.callLog.flush();
  const row = await h.kg.database.db
    .selectFrom("api_key_logs")
    .select(sql<number>`count(*)`.as("n"))
    .where("api_key_id", "is", null)
    .where("error_code", "=", code)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The log rows the matrix should have left, one per route, in order. */
function expectedRows(routes: readonly Route[], status: number, code: string): LogRow[] {
  return routes.map((r) => ({
    method: r.method,
    path: `/api/v1/external${r.path}`,
    status_code: status,
    error_code: code,
  }));
}

const pick = (rows: LogRow[]) =>
  rows.map(({ method, path, status_code, error_code }) => ({
    method,
    path,
    status_code,
    error_code,
  }));

async function mint(h: Harness, body: Record<string, unknown> = {}) {
  const k = await h.mint(h.adminToken, body);
  minted.push(k.key);
  return k;
}

/** A fixed instant a second into a minute, so no test's minute window can roll over by itself. */
const T0 = Math.floor(Date.now() / 60_000) * 60_000 + 1_000;

describe("external surface: every refusal on every route", () => {
  let h: Harness;
  let t = T0;

  beforeAll(async () => {
    t = T0;
    // The matrix sends many bad keys from one IP; the throttles have their own tests below.
    // The IP limit stays on (but out of reach) so every response carries a budget.
    h = await harness(
      { KEYGATE_FAILED_KEY_LIMIT: "0", KEYGATE_IP_RATE_LIMIT: "1000000" },
      { now: () => new Date(t) },
    );
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers 401 MISSING_API_KEY without the header, and logs each call with no key id", async () => {
    const before = await keylessRows(h, "MISSING_API_KEY");
    for (const r of ROUTES) {
      expectRefusal(await send(h, r, undefined), label(r), undefined, {
        status: 401,
        code: "MISSING_API_KEY",
        says: ["X-API-Key"],
      });
    }
    // An empty header is no key at all.
    const empty = await h.ext("GET", "/whoami", "");
    expectRefusal(empty, "empty header", "", { status: 401, code: "MISSING_API_KEY" });
    expect(await keylessRows(h, "MISSING_API_KEY")).toBe(before + ROUTES.length + 1);
  });

  it("answers 401 INVALID_API_KEY for malformed keys, never echoing them", async () => {
    const { key } = await mint(h);
    // Each mistake is named, with what to do about it; none is echoed.
    const malformed: [string, string[]][] = [
      ["pk_live_XYZ", ["is 11 characters", "a key is 40"]],
      ["x".repeat(5_000), ["pk_live_ followed by 32 lowercase hex"]],
      [`pk_live_${"a".repeat(5_000)}`, ["is 5008 characters", "cut short or has extra"]],
      [`Bearer ${key}`, ['drop "Bearer "']],
      [key.toUpperCase(), ["lowercase", "capitals"]],
      [`${key}0`, ["is 41 characters"]],
      [key.slice(0, -1), ["is 39 characters"]],
      [key.slice(0, 12), ["12-character display prefix", "whole key"]],
      [`"${key}"`, ["quotes"]],
      [`pk_test_${key.slice(8)}`, ["test-environment key (pk_test_)"]],
      // Two X-API-Key headers arrive joined by a comma.
      [`${key}, ${key}`, ["sent more than once"]],
      [`pks_live_${"0".repeat(64)}`, ["signing secret (pks_…)", "Send the key"]],
      ["eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", ["Authorization: Bearer <token>"]],
    ];
    const before = await keylessRows(h, "INVALID_API_KEY");
    for (const [bad, says] of malformed) {
      for (const r of ROUTES) {
        expectRefusal(await send(h, r, bad), `${label(r)} with ${bad.slice(0, 20)}…`, bad, {
          status: 401,
          code: "INVALID_API_KEY",
          says,
        });
      }
    }
    expect(await keylessRows(h, "INVALID_API_KEY")).toBe(before + malformed.length * ROUTES.length);
    const rows = await h.kg.database.db
      .selectFrom("api_key_logs")
      .select(["method", "path", "status_code", "error_code"])
      .where("api_key_id", "is", null)
      .where("error_code", "=", "INVALID_API_KEY")
      .orderBy("id", "desc")
      .limit(ROUTES.length)
      .execute();
    expect(pick(rows.reverse())).toEqual(expectedRows(ROUTES, 401, "INVALID_API_KEY"));
  });

  it("answers 401 INVALID_API_KEY for a well-formed key that was never minted", async () => {
    const unknown = `pk_live_${"0123456789abcdef".repeat(2)}`;
    const before = await keylessRows(h, "INVALID_API_KEY");
    for (const r of ROUTES) {
      expectRefusal(await send(h, r, unknown), label(r), unknown, {
        status: 401,
        code: "INVALID_API_KEY",
        says: ["no key with this value exists", "another Keygate", "mistyped"],
      });
    }
    expect(await keylessRows(h, "INVALID_API_KEY")).toBe(before + ROUTES.length);
  });

  it("answers 401 API_KEY_REVOKED on the very next request after a revoke", async () => {
    const k = await mint(h, { scopes: "delete" });
    // Used once first, so the key sits in the verification cache when it is revoked.
    expectStatus(await h.ext("GET", "/whoami", k.key), 200);
    expectStatus(await h.api("DELETE", `/api/api-keys/${k.id}`, h.adminToken), 200);
    for (const r of ROUTES) {
      expectRefusal(await send(h, r, k.key), label(r), k.key, {
        status: 401,
        code: "API_KEY_REVOKED",
        says: [k.key.slice(0, 12), "revoked"],
      });
    }
    const log = await keyLog(h, k.id);
    expect(log).toHaveLength(ROUTES.length + 1);
    expect(pick(log.slice(1))).toEqual(expectedRows(ROUTES, 401, "API_KEY_REVOKED"));
  });

  it("answers 401 API_KEY_EXPIRED once the clock passes expires_at", async () => {
    const expiresAt = new Date(t + 30_000).toISOString();
    const k = await mint(h, { scopes: "delete", expires_at: expiresAt });
    expect(k.data.expires_at).toBe(expiresAt);
    expectStatus(await h.ext("GET", "/whoami", k.key), 200);
    const was = t;
    t += 29_999;
    expectStatus(await h.ext("GET", "/whoami", k.key), 200);
    t = was + 30_000; // expires_at itself is already past
    try {
      for (const r of ROUTES) {
        expectRefusal(await send(h, r, k.key), label(r), k.key, {
          status: 401,
          code: "API_KEY_EXPIRED",
          says: [k.key.slice(0, 12), expiresAt],
        });
      }
    } finally {
      t = was;
    }
    const log = await keyLog(h, k.id);
    expect(log).toHaveLength(ROUTES.length + 2);
    expect(pick(log.slice(2))).toEqual(expectedRows(ROUTES, 401, "API_KEY_EXPIRED"));
  });

  it("answers 401 INVALID_USER when the owner is disabled", async () => {
    const owner = await h.user("owner-disabled");
    const k = await mint(h, { scopes: "delete", owner_id: owner.id });
    expectStatus(await h.ext("GET", "/whoami", k.key), 200);
    expectStatus(
      await h.api("PUT", `/api/users/${owner.id}`, h.adminToken, { disabled: true }),
      200,
    );
    for (const r of ROUTES) {
      expectRefusal(await send(h, r, k.key), label(r), k.key, {
        status: 401,
        code: "INVALID_USER",
        says: [
          'user "owner-disabled"',
          "is disabled",
          "An admin can re-enable",
          `PUT /api/users/${owner.id}`,
        ],
      });
    }
    const log = await keyLog(h, k.id);
    expect(pick(log.slice(1))).toEqual(expectedRows(ROUTES, 401, "INVALID_USER"));
  });

  it("answers 401 INVALID_USER when the owner is deleted", async () => {
    const owner = await h.user("owner-deleted");
    const k = await mint(h, { scopes: "delete", owner_id: owner.id });
    expectStatus(await h.ext("GET", "/whoami", k.key), 200);
    expectStatus(await h.api("DELETE", `/api/users/${owner.id}`, h.adminToken), 200);
    for (const r of ROUTES) {
      expectRefusal(await send(h, r, k.key), label(r), k.key, {
        status: 401,
        code: "INVALID_USER",
        says: ['user "owner-deleted"', "is deleted", "mint a key for another user"],
      });
    }
    const log = await keyLog(h, k.id);
    expect(pick(log.slice(1))).toEqual(expectedRows(ROUTES, 401, "INVALID_USER"));
  });

  it("answers 403 IP_NOT_ALLOWED from outside allowed_ips, naming the client IP and where the list is, not the list", async () => {
    const k = await mint(h, { scopes: "delete", allowed_ips: ["10.0.0.0/8"] });
    for (const r of ROUTES) {
      const res = await send(h, r, k.key);
      expectRefusal(res, label(r), k.key, {
        status: 403,
        code: "IP_NOT_ALLOWED",
        says: ["127.0.0.1", "allowed_ips", `PUT /api/api-keys/${k.id}`],
      });
      // A caller who may hold a stolen key learns nothing of where it would work.
      expect(res.body).not.toContain("10.0.0.0");
      expect(res.body).not.toContain("X-Forwarded-For");
    }
    // Behind a proxy Keygate was not told to trust, the forwarded address is ignored: say so.
    const proxied = await h.app.inject({
      method: "GET",
      url: "/api/v1/external/whoami",
      headers: { "x-api-key": k.key, "x-forwarded-for": "10.9.9.9" },
    });
    expectRefusal(proxied, "proxied", k.key, {
      status: 403,
      code: "IP_NOT_ALLOWED",
      says: ["X-Forwarded-For was sent but ignored", "KEYGATE_TRUST_PROXY is off", "127.0.0.1"],
    });
    const log = await keyLog(h, k.id);
    expect(pick(log.slice(0, ROUTES.length))).toEqual(expectedRows(ROUTES, 403, "IP_NOT_ALLOWED"));
    // The same key from an allowed address goes through.
    const ok = await h.app.inject({
      method: "GET",
      url: "/api/v1/external/whoami",
      headers: { "x-api-key": k.key },
      remoteAddress: "10.1.2.3",
    });
    expectStatus(ok, 200);
    expect(ok.json().data.client_ip).toBe("10.1.2.3");
  });

  it("answers 429 RATE_LIMIT_EXCEEDED on the third request in a minute for a 2/min key", async () => {
    for (const r of ROUTES) {
      const k = await mint(h, { scopes: "delete", rate_limit_per_minute: 2 });
      for (const left of [1, 0]) {
        const res = await send(h, r, k.key);
        expect(res.statusCode, label(r)).not.toBe(429);
        expect(res.headers["ratelimit-limit"], label(r)).toBe("2");
        expect(res.headers["ratelimit-remaining"], label(r)).toBe(String(left));
      }
      const third = await send(h, r, k.key);
      expectRefusal(third, `${label(r)} (3rd)`, k.key, {
        status: 429,
        code: "RATE_LIMIT_EXCEEDED",
        says: ["2 requests per minute", "rate_limit_per_minute"],
        rate: true,
      });
      expect(third.headers["ratelimit-remaining"], label(r)).toBe("0");
      const log = await keyLog(h, k.id);
      expect(log).toHaveLength(3);
      expect(pick(log.slice(2))).toEqual(expectedRows([r], 429, "RATE_LIMIT_EXCEEDED"));
    }
  });

  it("answers 403 SCOPE_REQUIRED to a read key on every write route, naming both scopes", async () => {
    const k = await mint(h, { scopes: "read" });
    for (const r of WRITE_ROUTES) {
      const needs = r.method === "DELETE" ? "delete" : "write";
      expectRefusal(await send(h, r, k.key), label(r), k.key, {
        status: 403,
        code: "SCOPE_REQUIRED",
        says: ["scope read", `${r.method} needs ${needs}`, `mint a ${needs} key`],
        rate: true,
      });
    }
    const log = await keyLog(h, k.id);
    expect(pick(log)).toEqual(
      WRITE_ROUTES.map((r) => ({
        method: r.method,
        path: `/api/v1/external${r.path}`,
        status_code: 403,
        error_code: "SCOPE_REQUIRED",
      })),
    );
    // Reads stay open to it.
    expectStatus(await h.ext("GET", "/subscribers", k.key), 200);
  });

  it("answers 403 SCOPE_REQUIRED to a write key on DELETE, naming delete", async () => {
    const k = await mint(h, { scopes: "write" });
    const deletes: Route[] = [
      { method: "DELETE", path: `/subscribers/${NO_ID}` },
      { method: "DELETE", path: "/no-such-route" },
    ];
    for (const r of deletes) {
      expectRefusal(await send(h, r, k.key), label(r), k.key, {
        status: 403,
        code: "SCOPE_REQUIRED",
        says: ["scope write", "DELETE needs delete"],
        rate: true,
      });
    }
    // Writes are allowed: the request reaches validation.
    const post = await h.ext("POST", "/subscribers", k.key, {});
    expect(post.statusCode).toBe(400);
    expect(post.json().error.code).toBe("VALIDATION_ERROR");
  });

  it("reports API_KEY_REVOKED for a key that is revoked and called from a wrong IP", async () => {
    const k = await mint(h, { scopes: "read", allowed_ips: ["10.0.0.0/8"] });
    expectRefusal(await h.ext("GET", "/whoami", k.key), "before revoke", k.key, {
      status: 403,
      code: "IP_NOT_ALLOWED",
    });
    expectStatus(await h.api("DELETE", `/api/api-keys/${k.id}`, h.adminToken), 200);
    for (const r of ROUTES) {
      expectRefusal(await send(h, r, k.key), label(r), k.key, {
        status: 401,
        code: "API_KEY_REVOKED",
      });
    }
  });

  it("reports RATE_LIMIT_EXCEEDED for a wrong-scope key over its limit", async () => {
    for (const r of WRITE_ROUTES) {
      const k = await mint(h, { scopes: "read", rate_limit_per_minute: 2 });
      // Refused for scope, but the calls still spend the budget: the rate check comes first.
      for (let i = 0; i < 2; i++) {
        expectRefusal(await send(h, r, k.key), label(r), k.key, {
          status: 403,
          code: "SCOPE_REQUIRED",
          rate: true,
        });
      }
      expectRefusal(await send(h, r, k.key), `${label(r)} (3rd)`, k.key, {
        status: 429,
        code: "RATE_LIMIT_EXCEEDED",
        rate: true,
      });
    }
  });

  it("peels the checks off in the contract's order", async () => {
    const owner = await h.user("order-owner");
    const post: Route = { method: "POST", path: "/transactions", body: {} };
    const k = await mint(h, {
      scopes: "read",
      owner_id: owner.id,
      rate_limit_per_minute: 1,
      expires_at: new Date(t + 20_000).toISOString(),
    });
    // Spend the one request of this minute, then break every other check too.
    expectStatus(await h.ext("GET", "/whoami", k.key), 200);
    expectStatus(
      await h.api("PUT", `/api/api-keys/${k.id}`, h.adminToken, { allowed_ips: ["10.0.0.0/8"] }),
      200,
    );
    expectStatus(
      await h.api("PUT", `/api/users/${owner.id}`, h.adminToken, { disabled: true }),
      200,
    );
    const was = t;
    t += 25_000; // past expiry, same minute
    try {
      const step = async (code: string, status: number) =>
        expectRefusal(await send(h, post, k.key), code, k.key, {
          status,
          code,
          rate: status === 429 || code === "SCOPE_REQUIRED",
        });
      await step("API_KEY_EXPIRED", 401);
      expectStatus(
        await h.api("PUT", `/api/api-keys/${k.id}`, h.adminToken, {
          expires_at: new Date(t + 3_600_000).toISOString(),
        }),
        200,
      );
      await step("INVALID_USER", 401);
      expectStatus(
        await h.api("PUT", `/api/users/${owner.id}`, h.adminToken, { disabled: false }),
        200,
      );
      await step("IP_NOT_ALLOWED", 403);
      expectStatus(
        await h.api("PUT", `/api/api-keys/${k.id}`, h.adminToken, { allowed_ips: null }),
        200,
      );
      await step("RATE_LIMIT_EXCEEDED", 429);
      t = was + 60_000; // the next minute: a fresh budget
      await step("SCOPE_REQUIRED", 403);
      // And revocation outranks all of them.
      expectStatus(
        await h.api("PUT", `/api/api-keys/${k.id}`, h.adminToken, {
          allowed_ips: ["10.0.0.0/8"],
          expires_at: new Date(t + 1_000).toISOString(),
        }),
        200,
      );
      expectStatus(
        await h.api("PUT", `/api/users/${owner.id}`, h.adminToken, { disabled: true }),
        200,
      );
      expectStatus(await h.api("DELETE", `/api/api-keys/${k.id}`, h.adminToken), 200);
      t += 5_000;
      await step("API_KEY_REVOKED", 401);
    } finally {
      t = was;
    }
    const log = await keyLog(h, k.id);
    expect(log.map((r) => r.error_code)).toEqual([
      null,
      "API_KEY_EXPIRED",
      "INVALID_USER",
      "IP_NOT_ALLOWED",
      "RATE_LIMIT_EXCEEDED",
      "SCOPE_REQUIRED",
      "API_KEY_REVOKED",
    ]);
  });

  it("serves GET /system/health without a key", async () => {
    for (const key of [undefined, "garbage", `pk_live_${"f".repeat(32)}`]) {
      const res = await h.ext("GET", "/system/health", key);
      expectStatus(res, 200);
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(["data", "success"]);
      expect(body.success).toBe(true);
      expect(Object.keys(body.data).sort()).toEqual([
        "database",
        "redis",
        "status",
        "uptime_s",
        "version",
      ]);
      expect(body.data).toMatchObject({
        status: "ok",
        database: "ok",
        redis: "off",
        version: h.kg.version,
      });
      expect(body.data.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(Number.isInteger(body.data.uptime_s) && body.data.uptime_s >= 0).toBe(true);
    }
  });
});

describe("external surface: failed-key throttle", () => {
  let h: Harness;
  let t = T0;

  beforeAll(async () => {
    t = T0;
    h = await harness({ KEYGATE_FAILED_KEY_LIMIT: "5" }, { now: () => new Date(t) });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("refuses an IP with 429 after 5 unknown keys, even when it then sends a valid key", async () => {
    const { key, id } = await h.mint(h.adminToken, { scopes: "read" });
    minted.push(key);
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    // Requests without a key are not failed attempts, nor are revoked keys: they are real keys.
    for (let i = 0; i < 7; i++) expectStatus(await h.ext("GET", "/whoami"), 401);
    const revoked = await h.mint(h.adminToken);
    minted.push(revoked.key);
    expectStatus(await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken), 200);
    for (let i = 0; i < 7; i++) {
      const res = await h.ext("GET", "/whoami", revoked.key);
      expect(res.json().error.code).toBe("API_KEY_REVOKED");
    }
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    for (let i = 0; i < 5; i++) {
      const unknown = `pk_live_${i.toString(16).padStart(32, "0")}`;
      expectRefusal(await h.ext("GET", "/whoami", unknown), `unknown #${i + 1}`, unknown, {
        status: 401,
        code: "INVALID_API_KEY",
      });
    }
    const sixth = await h.ext("GET", "/whoami", key);
    expectRefusal(sixth, "6th, valid key", key, {
      status: 429,
      code: "RATE_LIMIT_EXCEEDED",
      says: ["invalid keys", "127.0.0.1"],
      rate: true,
    });
    expect(sixth.headers["ratelimit-limit"]).toBe("5");
    expect(sixth.headers["ratelimit-remaining"]).toBe("0");
    // Unknown keys are refused the same way now, without a look-up.
    expectRefusal(await h.ext("GET", "/services", "pk_live_nope"), "7th", "pk_live_nope", {
      status: 429,
      code: "RATE_LIMIT_EXCEEDED",
      rate: true,
    });
    // Another client IP is not affected.
    const other = await h.app.inject({
      method: "GET",
      url: "/api/v1/external/whoami",
      headers: { "x-api-key": key },
      remoteAddress: "192.0.2.44",
    });
    expectStatus(other, 200);
    // The next minute the valid key works again from this IP.
    t += 60_000;
    expectStatus(await h.ext("GET", "/whoami", key), 200);

    const log = await keyLog(h, id);
    // The throttle answers before any look-up, so its refusals are logged without a key id.
    expect(log.map((r) => [r.status_code, r.error_code])).toEqual([
      [200, null],
      [200, null],
      [200, null],
      [200, null],
    ]);
    expect(await keylessRows(h, "MISSING_API_KEY")).toBe(7);
    expect(await keylessRows(h, "INVALID_API_KEY")).toBe(5);
    expect(await keylessRows(h, "RATE_LIMIT_EXCEEDED")).toBe(2);
  });
});

describe("per-IP limit", () => {
  let h: Harness;
  let t = T0;

  beforeAll(async () => {
    t = T0;
    h = await harness({ KEYGATE_IP_RATE_LIMIT: "3" }, { now: () => new Date(t) });
    t += 60_000; // past the harness's own sign-in: a fresh minute
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answers the 4th JWT-surface request in a minute with 429 in the flat envelope", async () => {
    for (let i = 0; i < 3; i++) expectStatus(await h.api("GET", "/api/auth/me", h.adminToken), 200);
    const res = await h.api("GET", "/api/auth/me", h.adminToken);
    expect(res.statusCode).toBe(429);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(["code", "message", "success"]);
    expect(body).toMatchObject({ success: false, code: "RATE_LIMIT_EXCEEDED" });
    expect(body.message).toContain("127.0.0.1");
    expect(body.message).toContain("3 per minute");
    const retry = Number(res.headers["retry-after"]);
    expect(Number.isInteger(retry) && retry >= 1 && retry <= 60).toBe(true);
    expect(res.headers["ratelimit-limit"]).toBe("3");
    expect(res.headers["ratelimit-remaining"]).toBe("0");
    // The budget covers every surface: the external one is spent too, in its own envelope.
    const ext = await h.ext("GET", "/system/health");
    expectRefusal(ext, "external after IP limit", undefined, {
      status: 429,
      code: "RATE_LIMIT_EXCEEDED",
      rate: true,
    });
    // A new minute, a new budget.
    t += 60_000;
    expectStatus(await h.api("GET", "/api/auth/me", h.adminToken), 200);
  });
});
