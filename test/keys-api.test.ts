import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ADMIN, expectStatus, type Harness, harness } from "./helpers.js";

const START = Date.parse("2026-06-01T12:00:00Z");
let t = START;
let h: Harness;

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

async function setup(env: Record<string, string> = {}) {
  t = START;
  h = await harness(env, { now: () => new Date(t) });
}

describe("minting and reading keys", () => {
  beforeEach(() => setup());
  afterEach(() => h.close());

  it("shows the key once and stores only its SHA-256 and prefix", async () => {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, {});
    expectStatus(res, 201);
    expect(res.headers["cache-control"]).toBe("no-store");
    const { key, data } = res.json();
    expect(key).toMatch(/^pk_live_[0-9a-f]{32}$/);
    expect(data).toMatchObject({
      name: "API Key",
      scopes: "read",
      owner_id: 1,
      key_prefix: key.slice(0, 12),
      is_active: true,
      status: "active",
    });
    expect(data).not.toHaveProperty("key_hash");

    const rows = await h.kg.database.db.selectFrom("api_keys").selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.key_hash).toBe(sha256(key));
    expect(JSON.stringify(rows)).not.toContain(key);

    for (const url of ["/api/api-keys", `/api/api-keys/${data.id}`]) {
      const read = await h.api("GET", url, h.adminToken);
      expectStatus(read, 200);
      expect(read.body).not.toContain(key);
      expect(read.body).not.toContain(sha256(key));
    }
  });

  it("takes every optional setting and normalises it", async () => {
    const { data } = await h.mint(h.adminToken, {
      name: "billing",
      description: "invoices",
      scopes: "write",
      expires_at: "2026-12-31",
      allowed_ips: ["203.0.113.7", "10.0.0.0/8", "2001:DB8::/32", "::ffff:192.0.2.1"],
      rate_limit_per_minute: 120,
    });
    expect(data).toMatchObject({
      name: "billing",
      description: "invoices",
      scopes: "write",
      expires_at: "2026-12-31T23:59:59.999Z",
      allowed_ips: ["203.0.113.7", "10.0.0.0/8", "2001:db8::/32", "192.0.2.1"],
      rate_limit_per_minute: 120,
    });
  });

  it("explains every bad field at once", async () => {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, {
      scopes: "admin",
      expires_at: "2020-01-01",
      allowed_ips: ["10.0.0.1", "10.0.0.1/8", "nonsense"],
      rate_limit_per_minute: 0,
    });
    expectStatus(res, 400);
    const body = res.json();
    expect(body.code).toBe("VALIDATION_ERROR");
    const fields = body.details.map((d: { field: string }) => d.field);
    expect(fields).toEqual(expect.arrayContaining(["scopes", "rate_limit_per_minute"]));
    // A field of fixed values names every one of them, not just the first.
    expect(body.details.find((d: { field: string }) => d.field === "scopes").message).toBe(
      'must be one of "read", "write", "delete"',
    );
    // Semantic checks run once the shape is right.
    const semantic = await h.api("POST", "/api/api-keys", h.adminToken, {
      expires_at: "2020-01-01",
      allowed_ips: ["10.0.0.1", "10.0.0.1/8", "nonsense"],
    });
    expectStatus(semantic, 400);
    expect(semantic.json().details).toEqual([
      { field: "allowed_ips[1]", message: "host bits set: did you mean 10.0.0.0/8?" },
      { field: "allowed_ips[2]", message: expect.stringContaining("not an IPv4 or IPv6 address") },
      { field: "expires_at", message: expect.stringContaining("must lie in the future") },
    ]);
    expect(await h.kg.database.db.selectFrom("api_keys").selectAll().execute()).toHaveLength(0);
  });

  it("reports stats and keeps last use without a write per request", async () => {
    const a = await h.mint(h.adminToken);
    const b = await h.mint(h.adminToken, { expires_at: "2026-06-02" });
    const c = await h.mint(h.adminToken);
    await h.api("DELETE", `/api/api-keys/${c.id}`, h.adminToken);
    expectStatus(await h.ext("GET", "/whoami", a.key), 200);
    expectStatus(await h.ext("GET", "/whoami", a.key), 200);
    expect(h.kg.callLog.pending).toBe(2);
    const now = await h.api("GET", "/api/api-keys/stats", h.adminToken);
    expect(now.json().data).toEqual({
      total: 3,
      active: 2,
      revoked: 1,
      expired: 0,
      owner_disabled: 0,
      owner_deleted: 0,
      calls_24h: 2,
    });
    t += 2 * 86_400_000;
    const token = await h.login(ADMIN.username, ADMIN.password);
    const later = await h.api("GET", "/api/api-keys/stats", token);
    expect(later.json().data).toEqual({
      total: 3,
      active: 1,
      revoked: 1,
      expired: 1,
      owner_disabled: 0,
      owner_deleted: 0,
      calls_24h: 0,
    });
    const view = (await h.api("GET", `/api/api-keys/${a.id}`, token)).json().data;
    expect(view.last_used_at).toBe(new Date(START).toISOString());
    expect(view.last_used_ip).toBe("127.0.0.1");
    expect((await h.api("GET", `/api/api-keys/${b.id}`, token)).json().data.status).toBe("expired");
  });

  it("lists a key's calls newest first, limited", async () => {
    const { key, id } = await h.mint(h.adminToken);
    for (let i = 0; i < 5; i++) {
      t += 1000;
      await h.ext("GET", i % 2 ? "/whoami" : "/subscribers/999", key);
    }
    const res = await h.api("GET", `/api/api-keys/${id}/logs?limit=3`, h.adminToken);
    expectStatus(res, 200);
    const rows = res.json().data;
    expect(rows).toHaveLength(3);
    expect(rows.map((r: { status_code: number }) => r.status_code)).toEqual([404, 200, 404]);
    expect(rows[0]).toMatchObject({
      method: "GET",
      path: "/api/v1/external/subscribers/999",
      ip: "127.0.0.1",
      error_code: "NOT_FOUND",
    });
    expect(rows[0].timestamp > rows[1].timestamp).toBe(true);
    expectStatus(await h.api("GET", `/api/api-keys/${id}/logs?limit=1001`, h.adminToken), 400);

    // Filters: a status class, refusals, an error code; `before` pages back.
    const codes = async (query: string) =>
      (await h.api("GET", `/api/api-keys/${id}/logs?${query}`, h.adminToken))
        .json()
        .data.map((r: { status_code: number }) => r.status_code);
    expect(await codes("status=2xx")).toEqual([200, 200]);
    expect(await codes("status=4xx")).toEqual([404, 404, 404]);
    expect(await codes("status=NOT_FOUND&limit=2")).toEqual([404, 404]);
    expect(await codes("status=refused")).toEqual([]);
    expect(await codes(`before=${rows[1].timestamp}`)).toEqual([404, 200, 404]);
    expect(await codes(`before_id=${rows[1].id}`)).toEqual([404, 200, 404]);
    expect(await codes(`before_id=${rows[1].id}&status=2xx`)).toEqual([200]);
    expectStatus(await h.api("GET", `/api/api-keys/${id}/logs?before_id=x`, h.adminToken), 400);
    expectStatus(await h.api("GET", `/api/api-keys/${id}/logs?before_id=0`, h.adminToken), 400);
    expectStatus(await h.api("GET", `/api/api-keys/${id}/logs?status=ok`, h.adminToken), 400);
    expectStatus(
      await h.api("GET", `/api/api-keys/${id}/logs?before=yesterday`, h.adminToken),
      400,
    );
    expectStatus(await h.api("GET", "/api/api-keys/999/logs", h.adminToken), 404);
  });
});

describe("changing, revoking and rolling keys", () => {
  beforeEach(() => setup());
  afterEach(() => h.close());

  it("applies a change on the very next request", async () => {
    const { key, id } = await h.mint(h.adminToken, { scopes: "read" });
    const sid = await h.service();
    const body = { username: "alice", password: "auto-generate", service_id: sid };
    expect((await h.ext("POST", "/subscribers", key, body)).json().error.code).toBe(
      "SCOPE_REQUIRED",
    );
    expectStatus(await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { scopes: "write" }), 200);
    expectStatus(await h.ext("POST", "/subscribers", key, body), 201);
    expectStatus(
      await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { allowed_ips: ["10.0.0.0/8"] }),
      200,
    );
    expect((await h.ext("GET", "/whoami", key)).json().error.code).toBe("IP_NOT_ALLOWED");
    expectStatus(
      await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { allowed_ips: null }),
      200,
    );
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    const moved = await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { owner_id: 2 });
    expectStatus(moved, 400);
  });

  it("refuses a revoked key on the next request; revoking twice is fine", async () => {
    const { key, id } = await h.mint(h.adminToken);
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    const first = await h.api("DELETE", `/api/api-keys/${id}`, h.adminToken);
    expectStatus(first, 200);
    expect(first.json().data).toMatchObject({ is_active: false, status: "revoked" });
    expect(first.json().data.revoked_at).toBe(new Date(START).toISOString());
    const refused = await h.ext("GET", "/whoami", key);
    expectStatus(refused, 401);
    expect(refused.json().error.code).toBe("API_KEY_REVOKED");
    expectStatus(await h.api("DELETE", `/api/api-keys/${id}`, h.adminToken), 200);
    expectStatus(await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { name: "x" }), 409);
    const audit = (await h.api("GET", "/api/audit?action=key.revoke", h.adminToken)).json();
    expect(audit.meta.total).toBe(1);
  });

  it("rolls a key: both work during the grace period, then the old one points at the new", async () => {
    const old = await h.mint(h.adminToken, {
      name: "billing",
      scopes: "write",
      rate_limit_per_minute: 50,
      allowed_ips: ["127.0.0.1"],
    });
    const res = await h.api("POST", `/api/api-keys/${old.id}/roll`, h.adminToken, {
      grace_period_hours: 2,
    });
    expectStatus(res, 201);
    const { key, data } = res.json();
    expect(key).not.toBe(old.key);
    expect(data).toMatchObject({
      name: "billing",
      scopes: "write",
      rate_limit_per_minute: 50,
      allowed_ips: ["127.0.0.1"],
      rolled_from_id: old.id,
    });
    const oldWho = await h.ext("GET", "/whoami", old.key);
    expectStatus(oldWho, 200);
    // In its grace period the old key still works and names its replacement.
    expect(oldWho.json().data.replaced_by_prefix).toBe(data.key_prefix);
    const newWho = await h.ext("GET", "/whoami", key);
    expectStatus(newWho, 200);
    expect(newWho.json().data.replaced_by_prefix).toBeNull();
    const oldView = (await h.api("GET", `/api/api-keys/${old.id}`, h.adminToken)).json().data;
    expect(oldView).toMatchObject({
      replaced_by_id: data.id,
      expires_at: new Date(START + 2 * 3_600_000).toISOString(),
    });

    t += 2 * 3_600_000;
    const expired = await h.ext("GET", "/whoami", old.key);
    expectStatus(expired, 401);
    expect(expired.json().error.code).toBe("API_KEY_EXPIRED");
    expect(expired.json().error.message).toContain(data.key_prefix);
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    const token = await h.login(ADMIN.username, ADMIN.password);
    const again = await h.api("POST", `/api/api-keys/${old.id}/roll`, token, {});
    expectStatus(again, 409);
    expect(again.json().message).toContain(`already rolled into key ${data.id}`);
  });

  it("rolls with no grace period by revoking the old key now", async () => {
    const old = await h.mint(h.adminToken);
    const res = await h.api("POST", `/api/api-keys/${old.id}/roll`, h.adminToken, {
      grace_period_hours: 0,
    });
    expectStatus(res, 201);
    const refused = await h.ext("GET", "/whoami", old.key);
    expect(refused.json().error.code).toBe("API_KEY_REVOKED");
    expect(refused.json().error.message).toContain(res.json().data.key_prefix);
    expectStatus(await h.ext("GET", "/whoami", res.json().key), 200);
    expectStatus(
      await h.api("POST", `/api/api-keys/${old.id}/roll`, h.adminToken, {
        grace_period_hours: 169,
      }),
      400,
    );
  });

  it("keeps an earlier expiry when rolling a key that expires sooner than the grace period", async () => {
    const old = await h.mint(h.adminToken, {
      expires_at: new Date(START + 3_600_000).toISOString(),
    });
    const res = await h.api("POST", `/api/api-keys/${old.id}/roll`, h.adminToken, {});
    expectStatus(res, 201);
    const oldView = (await h.api("GET", `/api/api-keys/${old.id}`, h.adminToken)).json().data;
    expect(oldView.expires_at).toBe(new Date(START + 3_600_000).toISOString());
    expect(res.json().data.expires_at).toBe(new Date(START + 3_600_000).toISOString());
  });

  it("stops a key when its owner is disabled, and lets it work again when re-enabled", async () => {
    const r = await h.user("reseller1");
    const { key } = await h.mint(h.adminToken, { owner_id: r.id });
    expect((await h.ext("GET", "/whoami", key)).json().data.owner).toEqual({
      id: r.id,
      username: "reseller1",
      role: "reseller",
    });
    await h.api("PUT", `/api/users/${r.id}`, h.adminToken, { disabled: true });
    expect((await h.ext("GET", "/whoami", key)).json().error.code).toBe("INVALID_USER");
    await h.api("PUT", `/api/users/${r.id}`, h.adminToken, { disabled: false });
    expectStatus(await h.ext("GET", "/whoami", key), 200);
  });
});

describe("who may manage keys", () => {
  afterEach(() => h.close());

  it("without self-service, resellers see their keys but cannot mint, change or revoke them", async () => {
    await setup();
    const r = await h.user("res");
    const owned = await h.mint(h.adminToken, { owner_id: r.id });
    const mint = await h.api("POST", "/api/api-keys", r.token, {});
    expectStatus(mint, 403);
    expect(mint.json().message).toContain("KEYGATE_SELF_SERVICE_KEYS");
    const list = await h.api("GET", "/api/api-keys", r.token);
    expect(list.json().data.map((k: { id: number }) => k.id)).toEqual([owned.id]);
    expectStatus(await h.api("DELETE", `/api/api-keys/${owned.id}`, r.token), 403);
    expectStatus(await h.api("POST", `/api/api-keys/${owned.id}/roll`, r.token, {}), 403);
    expectStatus(await h.api("GET", `/api/api-keys/${owned.id}/logs`, r.token), 200);
  });

  it("with self-service, resellers manage only their own keys", async () => {
    await setup({ KEYGATE_SELF_SERVICE_KEYS: "true" });
    const a = await h.user("res-a");
    const b = await h.user("res-b");
    const mine = await h.mint(a.token, { scopes: "write" });
    expect(mine.data.owner_id).toBe(a.id);
    const theirs = await h.mint(b.token);
    const adminKey = await h.mint(h.adminToken);
    expectStatus(await h.api("POST", "/api/api-keys", a.token, { owner_id: b.id }), 400);
    for (const id of [theirs.id, adminKey.id]) {
      expectStatus(await h.api("GET", `/api/api-keys/${id}`, a.token), 404);
      expectStatus(await h.api("DELETE", `/api/api-keys/${id}`, a.token), 404);
      expectStatus(await h.api("POST", `/api/api-keys/${id}/roll`, a.token, {}), 404);
      expectStatus(await h.api("GET", `/api/api-keys/${id}/logs`, a.token), 404);
    }
    expect((await h.api("GET", "/api/api-keys", a.token)).json().data).toHaveLength(1);
    expectStatus(await h.api("POST", `/api/api-keys/${mine.id}/roll`, a.token, {}), 201);
    expectStatus(await h.api("DELETE", `/api/api-keys/${mine.id}`, a.token), 200);
    expectStatus(await h.api("GET", "/api/api-keys/stats", a.token), 403);
  });
});

describe("self-service keys within the owner's rights", () => {
  afterEach(() => h.close());

  it("lets a reseller mint permissions its role has, in either environment, and nothing beyond", async () => {
    await setup({ KEYGATE_SELF_SERVICE_KEYS: "true" });
    const r = await h.user("self-res");
    const beyond = await h.api("POST", "/api/api-keys", r.token, {
      permissions: ["subscribers:read", "nas:read"],
    });
    expectStatus(beyond, 400);
    expect(beyond.json().details).toEqual([
      {
        field: "permissions",
        message: expect.stringContaining("a key never exceeds its owner's role"),
      },
    ]);
    expect(beyond.json().message).toContain(
      "nas:read is beyond what the key's owner, a reseller, may do",
    );

    const ok = await h.api("POST", "/api/api-keys", r.token, {
      permissions: ["subscribers:delete", "transactions:write"],
      environment: "test",
    });
    expectStatus(ok, 201);
    expect(ok.json().key).toMatch(/^pk_test_/);
    expect(ok.json().data).toMatchObject({
      owner_id: r.id,
      environment: "test",
      permissions: ["subscribers:delete", "transactions:write"],
      scopes: "custom",
    });
    // Its own key cannot be widened past the role either.
    const widen = await h.api("PUT", `/api/api-keys/${ok.json().data.id}`, r.token, {
      permissions: ["services:write"],
    });
    expectStatus(widen, 400);
    expect(widen.json().details[0].field).toBe("permissions");
    const read = await h.api("GET", `/api/api-keys/${ok.json().data.id}`, r.token);
    expect(read.json().data.permissions).toEqual(["subscribers:delete", "transactions:write"]);
  });
});

describe("activity for the dashboard", () => {
  beforeEach(() => setup({ KEYGATE_FAILED_KEY_LIMIT: "0" }));
  afterEach(() => h.close());

  it("counts calls by hour with errors, ranks keys and lists refusals, fenced by owner", async () => {
    const r = await h.user("dash-res");
    const a = await h.mint(h.adminToken, { name: "busy" });
    const b = await h.mint(h.adminToken, { name: "quiet", owner_id: r.id });
    for (let i = 0; i < 3; i++) await h.ext("GET", "/whoami", a.key);
    await h.ext("POST", "/subscribers", a.key, {});
    t += 3_600_000;
    await h.ext("GET", "/whoami", b.key);
    await h.ext("GET", "/whoami", `pk_live_${"0".repeat(32)}`);
    const token = await h.login(ADMIN.username, ADMIN.password);

    const res = await h.api("GET", "/api/api-keys/activity?hours=24", token);
    expectStatus(res, 200);
    const data = res.json().data;
    expect(data.hourly).toEqual([
      { hour: "2026-06-01T12:00:00Z", calls: 4, errors: 1 },
      { hour: "2026-06-01T13:00:00Z", calls: 2, errors: 1 },
    ]);
    expect(data.busiest.map((k: { name: string; calls: number }) => [k.name, k.calls])).toEqual([
      ["busy", 4],
      ["quiet", 1],
    ]);
    expect(
      data.recent_refusals.map((x: { error_code: string; key_prefix: string | null }) => [
        x.error_code,
        x.key_prefix,
      ]),
    ).toEqual([
      ["INVALID_API_KEY", null],
      ["SCOPE_REQUIRED", a.data.key_prefix],
    ]);

    // A reseller sees only its own keys' calls.
    const mine = (
      await h.api("GET", "/api/api-keys/activity", await h.login("dash-res", "dash-res-password"))
    ).json().data;
    expect(mine.hourly).toEqual([{ hour: "2026-06-01T13:00:00Z", calls: 1, errors: 0 }]);
    expect(mine.recent_refusals).toEqual([]);
    expectStatus(await h.api("GET", "/api/api-keys/activity?hours=0", token), 400);
  });
});
