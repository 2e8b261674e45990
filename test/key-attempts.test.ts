import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/store/database.js";
import { migrateToLatest } from "../src/store/migrations.js";
import { ADMIN, expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";

// What a key's record says about it must be true: its last use is a call the key worked
// for, refused attempts are kept apart, and a key whose owner cannot act says so.

const START = Date.parse("2026-06-01T12:00:00Z");
let t = START;
let h: Harness | null = null;
const iso = (ms: number) => new Date(ms).toISOString();

async function setup() {
  t = START;
  h = await harness({}, { now: () => new Date(t) });
  return h;
}

afterEach(async () => {
  await h?.close();
  h = null;
});

/** An external call from `ip` at the harness clock. */
function call(
  key: string,
  ip: string,
  method: "GET" | "POST" = "GET",
  url = "/whoami",
  body?: object,
) {
  return (h as Harness).app.inject({
    method,
    url: `/api/v1/external${url}`,
    headers: { "x-api-key": key },
    remoteAddress: ip,
    ...(body === undefined ? {} : { payload: body }),
  });
}

async function keyView(id: number, token = (h as Harness).adminToken) {
  const res = await (h as Harness).api("GET", `/api/api-keys/${id}`, token);
  expectStatus(res, 200);
  return res.json().data as Record<string, unknown>;
}

const attempt = (view: Record<string, unknown>) => ({
  used: [view.last_used_at, view.last_used_ip],
  refused: [view.last_refused_at, view.last_refused_ip, view.last_refused_code],
});

describe("last use and refused attempts", () => {
  it("last use is a call the key worked for; an IP_NOT_ALLOWED or SCOPE_REQUIRED refusal is an attempt", async () => {
    const h = await setup();
    const { key, id, data } = await h.mint(h.adminToken, {
      allowed_ips: ["127.0.0.1", "127.0.0.2"],
    });
    expect(attempt(data)).toEqual({ used: [null, null], refused: [null, null, null] });

    expectStatus(await call(key, "127.0.0.1"), 200);
    t += 1000;
    // Answered by the route after the key was accepted: the key worked.
    const missing = await call(key, "127.0.0.2", "GET", "/subscribers/999999");
    expectStatus(missing, 404);
    t += 1000;
    const refused = await call(key, "127.0.0.3");
    expectStatus(refused, 403);
    expect(refused.json().error.code).toBe("IP_NOT_ALLOWED");

    expect(attempt(await keyView(id))).toEqual({
      used: [iso(START + 1000), "127.0.0.2"],
      refused: [iso(START + 2000), "127.0.0.3", "IP_NOT_ALLOWED"],
    });

    t += 1000;
    const scope = await call(key, "127.0.0.1", "POST", "/subscribers", {});
    expect(scope.json().error.code).toBe("SCOPE_REQUIRED");
    t += 1000;
    const bad = await call(key, "127.0.0.1", "GET", "/subscribers?per_page=0");
    expectStatus(bad, 400);
    // The list shows the same as the key's own record.
    const listed = (await h.api("GET", "/api/api-keys", h.adminToken)).json().data as Record<
      string,
      unknown
    >[];
    expect(attempt(listed.find((k) => k.id === id) ?? {})).toEqual({
      used: [iso(START + 4000), "127.0.0.1"],
      refused: [iso(START + 3000), "127.0.0.1", "SCOPE_REQUIRED"],
    });
  });

  it("revoked and expired keys get no fresh last use, only refused attempts", async () => {
    const h = await setup();
    const revoked = await h.mint(h.adminToken);
    const expiring = await h.mint(h.adminToken, { expires_at: iso(START + 60_000) });
    expectStatus(await call(revoked.key, "127.0.0.1"), 200);
    expectStatus(await call(expiring.key, "127.0.0.1"), 200);
    expectStatus(await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken), 200);

    t += 120_000;
    expect((await call(revoked.key, "127.0.0.9")).json().error.code).toBe("API_KEY_REVOKED");
    expect((await call(expiring.key, "127.0.0.8")).json().error.code).toBe("API_KEY_EXPIRED");

    expect(attempt(await keyView(revoked.id))).toEqual({
      used: [iso(START), "127.0.0.1"],
      refused: [iso(START + 120_000), "127.0.0.9", "API_KEY_REVOKED"],
    });
    expect(attempt(await keyView(expiring.id))).toEqual({
      used: [iso(START), "127.0.0.1"],
      refused: [iso(START + 120_000), "127.0.0.8", "API_KEY_EXPIRED"],
    });
  });

  it("a call over the key's rate limit is an attempt, not a use", async () => {
    const h = await setup();
    const { key, id } = await h.mint(h.adminToken, { rate_limit_per_minute: 1 });
    expectStatus(await call(key, "127.0.0.1"), 200);
    t += 1000;
    expectStatus(await call(key, "127.0.0.4"), 429);
    expect(attempt(await keyView(id))).toEqual({
      used: [iso(START), "127.0.0.1"],
      refused: [iso(START + 1000), "127.0.0.4", "RATE_LIMIT_EXCEEDED"],
    });
  });

  it("a role refusal (a reseller's key reading /nas) is an attempt, not a use", async () => {
    const h = await setup();
    const r = await h.user("reseller1");
    const { key, id } = await h.mint(h.adminToken, { owner_id: r.id });
    expectStatus(await call(key, "127.0.0.1", "GET", "/subscribers"), 200);
    t += 1000;
    const nas = await call(key, "127.0.0.5", "GET", "/nas");
    expectStatus(nas, 403);
    expect(nas.json().error.code).toBe("FORBIDDEN");
    expect(attempt(await keyView(id))).toEqual({
      used: [iso(START), "127.0.0.1"],
      refused: [iso(START + 1000), "127.0.0.5", "FORBIDDEN"],
    });
  });
});

describe("a key whose owner cannot act", () => {
  it("says owner_disabled or owner_deleted, keeps is_active, and counts so in the stats", async () => {
    const h = await setup();
    const r = await h.user("reseller1");
    const other = await h.user("reseller2");
    const key = await h.mint(h.adminToken, { owner_id: r.id });
    const soon = await h.mint(h.adminToken, { owner_id: r.id, expires_at: iso(START + 60_000) });
    const gone = await h.mint(h.adminToken, { owner_id: r.id });
    const stale = await h.mint(h.adminToken, {
      owner_id: other.id,
      expires_at: iso(START + 60_000),
    });
    const fine = await h.mint(h.adminToken);
    expectStatus(await call(key.key, "127.0.0.1"), 200);
    expectStatus(await h.api("DELETE", `/api/api-keys/${gone.id}`, h.adminToken), 200);

    expectStatus(await h.api("PUT", `/api/users/${r.id}`, h.adminToken, { disabled: true }), 200);
    t += 1000;
    expect((await call(key.key, "127.0.0.6")).json().error.code).toBe("INVALID_USER");
    const disabled = await keyView(key.id);
    expect(disabled).toMatchObject({ status: "owner_disabled", is_active: true });
    expect(attempt(disabled)).toEqual({
      used: [iso(START), "127.0.0.1"],
      refused: [iso(START + 1000), "127.0.0.6", "INVALID_USER"],
    });
    const statuses = async () => {
      const res = await h.api("GET", "/api/api-keys", h.adminToken);
      expectStatus(res, 200);
      return Object.fromEntries(
        (res.json().data as { id: number; status: string; is_active: boolean }[]).map((k) => [
          k.id,
          `${k.status}${k.is_active ? "" : " (not active)"}`,
        ]),
      );
    };
    expect(await statuses()).toEqual({
      [key.id]: "owner_disabled",
      [soon.id]: "owner_disabled",
      [gone.id]: "revoked (not active)",
      [stale.id]: "active",
      [fine.id]: "active",
    });

    // Re-enabled, the key works again and says so.
    expectStatus(await h.api("PUT", `/api/users/${r.id}`, h.adminToken, { disabled: false }), 200);
    expect((await keyView(key.id)).status).toBe("active");
    expectStatus(await call(key.key, "127.0.0.1"), 200);

    // Precedence: revoked > owner_deleted > owner_disabled > expired > active.
    expectStatus(await h.api("DELETE", `/api/users/${r.id}`, h.adminToken), 200);
    expectStatus(
      await h.api("PUT", `/api/users/${other.id}`, h.adminToken, { disabled: true }),
      200,
    );
    t += 120_000;
    const token = await h.login(ADMIN.username, ADMIN.password);
    const res = await h.api("GET", "/api/api-keys", token);
    expect(
      Object.fromEntries(
        (res.json().data as { id: number; status: string; is_active: boolean }[]).map((k) => [
          k.id,
          [k.status, k.is_active],
        ]),
      ),
    ).toEqual({
      [key.id]: ["owner_deleted", true],
      [soon.id]: ["owner_deleted", true],
      [gone.id]: ["revoked", false],
      [stale.id]: ["owner_disabled", true],
      [fine.id]: ["active", true],
    });
    const one = await h.api("GET", `/api/api-keys/${key.id}`, token);
    expect(one.json().data.status).toBe("owner_deleted");

    const stats = await h.api("GET", "/api/api-keys/stats", token);
    expectStatus(stats, 200);
    expect(stats.json().data).toMatchObject({
      total: 5,
      active: 1,
      revoked: 1,
      expired: 0,
      owner_disabled: 1,
      owner_deleted: 2,
    });
    // A deleted owner is for good: its key cannot be changed, only revoked.
    const edit = await h.api("PUT", `/api/api-keys/${key.id}`, token, { name: "renamed" });
    expectStatus(edit, 409);
    expect(edit.json().message).toContain("revoke it, and mint a key for another user");
    expect((await keyView(key.id)).name).not.toBe("renamed");
    expectStatus(await h.api("DELETE", `/api/api-keys/${soon.id}`, token), 200);
  });
});

describe("migration 0004_key_attempts", () => {
  let opened: { database: Database; drop: () => Promise<void> } | null = null;
  afterEach(async () => {
    await opened?.database.close();
    await opened?.drop();
    opened = null;
  });

  it("migrates a database with keys and calls: refusals become attempts, and a last use a refusal wrote is put right", async () => {
    const fresh = await freshDatabase();
    const database = await openDatabase(fresh.url, { migrateTo: "0002_call_log_by_second" });
    opened = { database, drop: fresh.drop };
    const db = database.db;
    const T = (s: number) => iso(START + s * 1000);
    await sql`insert into users (id, username, password_hash, role, created_at, updated_at)
      values (1, 'admin', 'x', 'admin', ${T(0)}, ${T(0)})`.execute(db);
    // As the writer stored them before: last use is the newest call, refused or not.
    const keys: [number, string | null, string | null][] = [
      [1, T(20), "127.0.0.3"], // used at 10 from .1, then refused at 20 from .3
      [2, T(15), "127.0.0.1"], // refused at 5, then used at 15: already right
      [3, T(30), "127.0.0.9"], // only refusals left in the log: keeps what it had
      [4, null, null], // never called
    ];
    for (const [id, at, ip] of keys) {
      await sql`insert into api_keys (id, name, key_hash, key_prefix, scopes, owner_id,
          created_at, updated_at, last_used_at, last_used_ip)
        values (${id}, ${`key ${id}`}, ${`hash${id}`}, 'pk_live_0000', 'read', 1, ${T(0)}, ${T(0)},
          ${at}, ${ip})`.execute(db);
    }
    const calls: [number, number, string, number, string | null][] = [
      [1, 10, "127.0.0.1", 200, null],
      [1, 12, "127.0.0.2", 404, "NOT_FOUND"],
      [1, 20, "127.0.0.3", 403, "IP_NOT_ALLOWED"],
      [2, 5, "127.0.0.7", 401, "API_KEY_REVOKED"],
      [2, 15, "127.0.0.1", 200, null],
      [3, 30, "127.0.0.9", 401, "API_KEY_EXPIRED"],
    ];
    for (const [key, s, ip, status, code] of calls) {
      await sql`insert into api_key_logs (api_key_id, timestamp, method, path, status_code, ip,
          latency_ms, user_agent, error_code, second)
        values (${key}, ${T(s)}, 'GET', '/api/v1/external/whoami', ${status}, ${ip}, 1, null,
          ${code}, ${Math.floor((START + s * 1000) / 1000)})`.execute(db);
    }

    const applied = await migrateToLatest(db, database.dialect);
    expect(applied).toContain("0004_key_attempts");

    const rows = await db
      .selectFrom("api_keys")
      .select([
        "id",
        "last_used_at",
        "last_used_ip",
        "last_refused_at",
        "last_refused_ip",
        "last_refused_code",
      ])
      .orderBy("id")
      .execute();
    expect(rows).toEqual([
      {
        id: 1,
        last_used_at: T(12),
        last_used_ip: "127.0.0.2",
        last_refused_at: T(20),
        last_refused_ip: "127.0.0.3",
        last_refused_code: "IP_NOT_ALLOWED",
      },
      {
        id: 2,
        last_used_at: T(15),
        last_used_ip: "127.0.0.1",
        last_refused_at: T(5),
        last_refused_ip: "127.0.0.7",
        last_refused_code: "API_KEY_REVOKED",
      },
      {
        id: 3,
        last_used_at: T(30),
        last_used_ip: "127.0.0.9",
        last_refused_at: T(30),
        last_refused_ip: "127.0.0.9",
        last_refused_code: "API_KEY_EXPIRED",
      },
      {
        id: 4,
        last_used_at: null,
        last_used_ip: null,
        last_refused_at: null,
        last_refused_ip: null,
        last_refused_code: null,
      },
    ]);
  });
});
