import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ADMIN, expectStatus, type Harness, harness } from "./helpers.js";

let t = Date.parse("2026-06-01T12:00:00Z");
let h: Harness;

beforeEach(async () => {
  t = Date.parse("2026-06-01T12:00:00Z");
  h = await harness({}, { now: () => new Date(t) });
});
afterEach(() => h.close());

describe("sign-in", () => {
  it("returns a token pair and the user", async () => {
    const res = await h.api("POST", "/api/auth/login", undefined, ADMIN);
    expectStatus(res, 200);
    const { data } = res.json();
    expect(data.token_type).toBe("Bearer");
    expect(data.expires_in).toBe(900);
    expect(data.user).toEqual({ id: 1, username: "admin", role: "admin" });
    expect(data.access_token.split(".")).toHaveLength(3);
    expect(data.refresh_token).toMatch(/^rt_/);
    expect(res.body).not.toContain(ADMIN.password);
  });

  it("gives one message for an unknown user and a wrong password", async () => {
    const unknown = await h.api("POST", "/api/auth/login", undefined, {
      username: "nobody",
      password: "x",
    });
    const wrong = await h.api("POST", "/api/auth/login", undefined, {
      username: "admin",
      password: "wrong",
    });
    for (const res of [unknown, wrong]) {
      expectStatus(res, 401);
      expect(res.json()).toEqual({
        success: false,
        code: "INVALID_CREDENTIALS",
        message: "username or password is incorrect",
      });
    }
  });

  it("refuses a username after repeated failures, even with the right password, until the window passes", async () => {
    for (let i = 0; i < 10; i++) {
      expectStatus(
        await h.api("POST", "/api/auth/login", undefined, { username: "admin", password: "nope" }),
        401,
      );
    }
    const blocked = await h.api("POST", "/api/auth/login", undefined, ADMIN);
    expectStatus(blocked, 429);
    expect(blocked.json().code).toBe("RATE_LIMIT_EXCEEDED");
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
    t += 15 * 60_000;
    expectStatus(await h.api("POST", "/api/auth/login", undefined, ADMIN), 200);
  });

  it("lifts a username's lock when an admin sets a new password", async () => {
    const bob = await h.user("bob");
    for (let i = 0; i < 10; i++) {
      await h.api("POST", "/api/auth/login", undefined, { username: "bob", password: "nope" });
    }
    const creds = { username: "bob", password: "bob-new-password" };
    expectStatus(await h.api("POST", "/api/auth/login", undefined, creds), 429);
    expectStatus(
      await h.api("PUT", `/api/users/${bob.id}`, h.adminToken, { password: creds.password }),
      200,
    );
    expectStatus(await h.api("POST", "/api/auth/login", undefined, creds), 200);
  });

  it("throttles one IP across usernames", async () => {
    for (let i = 0; i < 20; i++) {
      await h.api("POST", "/api/auth/login", undefined, { username: `user${i}`, password: "nope" });
    }
    expectStatus(await h.api("POST", "/api/auth/login", undefined, ADMIN), 429);
  });

  it("validates the body", async () => {
    const res = await h.api("POST", "/api/auth/login", undefined, { username: "admin" });
    expectStatus(res, 400);
    expect(res.json()).toMatchObject({
      success: false,
      code: "VALIDATION_ERROR",
      details: [{ field: "password", message: "is required" }],
    });
  });
});

describe("access tokens", () => {
  it("reads the current user", async () => {
    const res = await h.api("GET", "/api/auth/me", h.adminToken);
    expectStatus(res, 200);
    expect(res.json().data).toMatchObject({
      id: 1,
      username: "admin",
      role: "admin",
      disabled: false,
      permissions: { manage_keys: true },
      defaults: { key_rate_limit_per_minute: 600 },
    });
    const reseller = await h.user("perm-res");
    const mine = (await h.api("GET", "/api/auth/me", reseller.token)).json().data;
    expect(mine.permissions).toEqual({ manage_keys: false });
  });

  it("refuses a missing, tampered or expired token with 401", async () => {
    const missing = await h.api("GET", "/api/auth/me");
    expectStatus(missing, 401);
    expect(missing.json().message).toContain("Authorization: Bearer");
    const [head, body, sig] = h.adminToken.split(".") as [string, string, string];
    const forged = `${head}.${Buffer.from(JSON.stringify({ sub: "1", role: "admin", iss: "keygate", exp: 9e9 })).toString("base64url")}.${sig}`;
    expectStatus(await h.api("GET", "/api/auth/me", `${head}.${body}.${sig.slice(0, -2)}xx`), 401);
    expectStatus(await h.api("GET", "/api/auth/me", forged), 401);
    t += 901_000;
    const expired = await h.api("GET", "/api/auth/me", h.adminToken);
    expectStatus(expired, 401);
    expect(expired.json().code).toBe("UNAUTHORIZED");
  });

  it("points an API key sent to the JWT surface at the external surface", async () => {
    const res = await h.app.inject({
      method: "GET",
      url: "/api/subscribers",
      headers: { "x-api-key": "pk_live_0123" },
    });
    expectStatus(res, 401);
    expect(res.json().message).toContain("/api/v1/external");
  });
});

describe("refresh tokens", () => {
  it("work once; reusing a spent one ends the whole family", async () => {
    const first = (await h.api("POST", "/api/auth/login", undefined, ADMIN)).json().data;
    const second = await h.api("POST", "/api/auth/refresh", undefined, {
      refresh_token: first.refresh_token,
    });
    expectStatus(second, 200);
    const pair = second.json().data;
    expect(pair.refresh_token).not.toBe(first.refresh_token);
    expectStatus(await h.api("GET", "/api/auth/me", pair.access_token), 200);

    const reuse = await h.api("POST", "/api/auth/refresh", undefined, {
      refresh_token: first.refresh_token,
    });
    expectStatus(reuse, 401);
    expect(reuse.json().message).toContain("already used");
    // The token issued from the spent one is ended too.
    expectStatus(
      await h.api("POST", "/api/auth/refresh", undefined, { refresh_token: pair.refresh_token }),
      401,
    );
  });

  it("are ended by logout", async () => {
    const pair = (await h.api("POST", "/api/auth/login", undefined, ADMIN)).json().data;
    expectStatus(
      await h.api("POST", "/api/auth/logout", pair.access_token, {
        refresh_token: pair.refresh_token,
      }),
      200,
    );
    expectStatus(
      await h.api("POST", "/api/auth/refresh", undefined, { refresh_token: pair.refresh_token }),
      401,
    );
  });

  it("expire", async () => {
    const pair = (await h.api("POST", "/api/auth/login", undefined, ADMIN)).json().data;
    t += 31 * 86_400_000;
    const res = await h.api("POST", "/api/auth/refresh", undefined, {
      refresh_token: pair.refresh_token,
    });
    expectStatus(res, 401);
    expect(res.json().message).toContain("expired");
  });

  it("refuses garbage without a 500", async () => {
    for (const refresh_token of [
      "x",
      "rt_short",
      `rt_${"a".repeat(43)}`,
      "'; drop table users; --",
    ]) {
      expectStatus(await h.api("POST", "/api/auth/refresh", undefined, { refresh_token }), 401);
    }
  });
});

describe("users", () => {
  it("lets an admin create, change and soft-delete users; never returns a password", async () => {
    const created = await h.api("POST", "/api/users", h.adminToken, {
      username: "bob",
      password: "bob-password",
      role: "reseller",
    });
    expectStatus(created, 201);
    expect(created.body).not.toContain("bob-password");
    expect(created.body).not.toContain("scrypt");
    const id = created.json().data.id;
    expectStatus(
      await h.api("POST", "/api/users", h.adminToken, {
        username: "bob",
        password: "other-password",
        role: "reseller",
      }),
      409,
    );

    const list = await h.api("GET", "/api/users", h.adminToken);
    expect(list.json().data.map((u: { username: string }) => u.username)).toEqual(["admin", "bob"]);
    expect(list.body).not.toContain("password");

    const token = await h.login("bob", "bob-password");
    expectStatus(await h.api("PUT", `/api/users/${id}`, h.adminToken, { disabled: true }), 200);
    expectStatus(await h.api("GET", "/api/auth/me", token), 401);
    expectStatus(
      await h.api("POST", "/api/auth/login", undefined, {
        username: "bob",
        password: "bob-password",
      }),
      401,
    );
    expectStatus(
      await h.api("PUT", `/api/users/${id}`, h.adminToken, {
        disabled: false,
        password: "new-password",
      }),
      200,
    );
    await h.login("bob", "new-password");

    expectStatus(await h.api("DELETE", `/api/users/${id}`, h.adminToken), 200);
    expectStatus(await h.api("DELETE", `/api/users/${id}`, h.adminToken), 404);
    // The username is free again once its holder is deleted.
    expectStatus(
      await h.api("POST", "/api/users", h.adminToken, {
        username: "bob",
        password: "bob-password",
        role: "reseller",
      }),
      201,
    );
  });

  it("keeps the last admin and refuses self-demotion", async () => {
    const self = await h.api("PUT", "/api/users/1", h.adminToken, { role: "reseller" });
    expectStatus(self, 409);
    expectStatus(await h.api("DELETE", "/api/users/1", h.adminToken), 409);
    const other = await h.user("root2", "admin");
    expectStatus(await h.api("PUT", "/api/users/1", other.token, { disabled: true }), 200);
    const last = await h.api("DELETE", `/api/users/${other.id}`, other.token);
    expectStatus(last, 409);
  });

  it("tells a reseller which role an admin route needs", async () => {
    const r = await h.user("carol");
    for (const [method, url] of [
      ["GET", "/api/users"],
      ["GET", "/api/audit"],
      ["GET", "/api/api-keys/stats"],
      ["GET", "/api/nas"],
    ] as const) {
      const res = await h.api(method, url, r.token);
      expectStatus(res, 403);
      expect(res.json()).toMatchObject({ success: false, code: "FORBIDDEN" });
      expect(res.json().message).toMatch(/only an admin can .*reseller "carol"/);
    }
  });

  it("validates fields with one problem per field", async () => {
    const res = await h.api("POST", "/api/users", h.adminToken, {
      username: "x",
      password: "short",
      role: "root",
      extra: 1,
    });
    expectStatus(res, 400);
    const fields = res
      .json()
      .details.map((d: { field: string }) => d.field)
      .sort();
    expect(fields).toEqual(["extra", "password", "role", "username"]);
  });
});

describe("audit trail", () => {
  it("records who did what to which record, from where", async () => {
    await h.user("dave");
    const key = await h.mint(h.adminToken, { name: "audited" });
    await h.api("DELETE", `/api/api-keys/${key.id}`, h.adminToken);
    const res = await h.api("GET", "/api/audit?per_page=10", h.adminToken);
    expectStatus(res, 200);
    const actions = res.json().data.map((e: { action: string }) => e.action);
    expect(actions.slice(0, 3)).toEqual(["key.revoke", "key.create", "auth.login"]);
    expect(actions).toContain("user.create");
    const revoke = res.json().data[0];
    expect(revoke).toMatchObject({
      actor_id: 1,
      actor_username: "admin",
      via: "jwt",
      target_type: "api_key",
      target_id: String(key.id),
      ip: "127.0.0.1",
    });
    expect(res.json().meta.total).toBeGreaterThanOrEqual(5);
    expect(res.body).not.toContain(key.key);
    const filtered = await h.api("GET", "/api/audit?action=user.create", h.adminToken);
    expect(filtered.json().data.every((e: { action: string }) => e.action === "user.create")).toBe(
      true,
    );
  });
});

describe("cookie sessions (the console's mode)", () => {
  it("keeps the refresh token in an HttpOnly SameSite=Strict cookie, never in the body", async () => {
    const login = await h.api("POST", "/api/auth/login", undefined, {
      ...ADMIN,
      session: "cookie",
    });
    expectStatus(login, 200);
    expect(login.json().data).not.toHaveProperty("refresh_token");
    const set = String(login.headers["set-cookie"]);
    expect(set).toMatch(/^keygate_refresh=rt_[A-Za-z0-9_-]{43};/);
    expect(set).toContain("HttpOnly");
    expect(set).toContain("SameSite=Strict");
    expect(set).toContain("Path=/api/auth");
    const cookie = set.split(";")[0] as string;

    const refreshed = await h.app.inject({
      method: "POST",
      url: "/api/auth/refresh",
      headers: { cookie },
    });
    expectStatus(refreshed, 200);
    expect(refreshed.json().data).not.toHaveProperty("refresh_token");
    const next = String(refreshed.headers["set-cookie"]).split(";")[0] as string;
    expect(next).not.toBe(cookie);
    expectStatus(await h.api("GET", "/api/auth/me", refreshed.json().data.access_token), 200);

    // The spent cookie is refused and cleared; the family it belonged to is ended.
    const replay = await h.app.inject({
      method: "POST",
      url: "/api/auth/refresh",
      headers: { cookie },
    });
    expectStatus(replay, 401);
    expect(String(replay.headers["set-cookie"])).toMatch(/keygate_refresh=;/);
    expectStatus(
      await h.app.inject({ method: "POST", url: "/api/auth/refresh", headers: { cookie: next } }),
      401,
    );
  });

  it("signs out by ending the cookie's session and clearing it", async () => {
    const login = await h.api("POST", "/api/auth/login", undefined, {
      ...ADMIN,
      session: "cookie",
    });
    const cookie = String(login.headers["set-cookie"]).split(";")[0] as string;
    const out = await h.app.inject({
      method: "POST",
      url: "/api/auth/logout",
      headers: { cookie, authorization: `Bearer ${login.json().data.access_token}` },
    });
    expectStatus(out, 200);
    expect(String(out.headers["set-cookie"])).toMatch(/keygate_refresh=;/);
    expectStatus(
      await h.app.inject({ method: "POST", url: "/api/auth/refresh", headers: { cookie } }),
      401,
    );
    const none = await h.app.inject({ method: "POST", url: "/api/auth/refresh" });
    expectStatus(none, 401);
    expect(none.json().message).toContain("sign in again");
  });
});
