import { createRemoteJWKSet, jwtVerify } from "jose";
import * as oauth from "oauth4webapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, type Harness, harness } from "./helpers.js";

// The grant, introspection and revocation are performed by oauth4webapi, an OAuth client
// written elsewhere, against the real server on a socket; tokens are verified offline by jose.
const insecure = { [oauth.allowInsecureRequests]: true };

describe("token exchange (OAuth 2.0 client credentials)", () => {
  let h: Harness;
  let origin: string;
  let as: oauth.AuthorizationServer;
  beforeAll(async () => {
    h = await harness({ KEYGATE_MASTER_KEY: "ab".repeat(32) });
    origin = await h.app.listen({ port: 0, host: "127.0.0.1" });
    const issuer = new URL(origin);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
    );
  });
  afterAll(async () => h?.close());

  const client = (key: string): oauth.Client => ({ client_id: key.slice(0, 12) });
  async function exchange(key: string, scope?: string, auth = oauth.ClientSecretBasic(key)) {
    const res = await oauth.clientCredentialsGrantRequest(
      as,
      client(key),
      auth,
      scope === undefined ? {} : { scope },
      insecure,
    );
    return oauth.processClientCredentialsResponse(as, client(key), res);
  }
  const call = (token: string, path: string, init: RequestInit = {}) =>
    fetch(`${origin}/api/v1/external${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
    });
  const tokenEndpoint = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${origin}/api/v1/external/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body,
    });
  const basic = (key: string) =>
    `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}`;

  it("publishes RFC 8414 metadata that a client library accepts", () => {
    expect(as.issuer).toBe(origin);
    expect(as.token_endpoint).toBe(`${origin}/api/v1/external/oauth/token`);
    expect(as.jwks_uri).toBe(`${origin}/.well-known/jwks.json`);
    expect(as.grant_types_supported).toEqual(["client_credentials"]);
  });

  it("exchanges a key for a JWT access token that works as the key on every route", async () => {
    const { key, id } = await h.mint(h.adminToken, { scopes: "write" });
    const token = await exchange(key);
    expect(token.token_type).toBe("bearer");
    expect(token.expires_in).toBe(3600);
    expect(token.scope).toBe("*:write");
    const who = await call(token.access_token, "/whoami");
    expect(who.status).toBe(200);
    expect(((await who.json()) as { data: { id: number } }).data.id).toBe(id);
    expect(who.headers.get("keygate-environment")).toBe("live");
    expect((await call(token.access_token, "/subscribers")).status).toBe(200);

    // Verified offline, by another implementation, against the published keys (RFC 9068).
    const { payload, protectedHeader } = await jwtVerify(
      token.access_token,
      createRemoteJWKSet(new URL(as.jwks_uri as string)),
      { issuer: origin, audience: `${origin}/api/v1/external`, typ: "at+jwt" },
    );
    expect(protectedHeader.alg).toBe("ES256");
    expect(payload).toMatchObject({ client_id: key.slice(0, 12), scope: "*:write" });
    expect(typeof payload.jti).toBe("string");
    expect((payload.exp as number) - (payload.iat as number)).toBe(3600);

    await h.kg.callLog.flush();
    const logs = (await h.api("GET", `/api/api-keys/${id}/logs`, h.adminToken)).json().data;
    const credentials = logs.map((r: { credential: string; path: string }) => r.credential);
    expect(credentials.filter((c: string) => c === "token")).toHaveLength(2);
    const view = (await h.api("GET", `/api/api-keys/${id}`, h.adminToken)).json().data;
    expect(view.tokens_issued).toBe(1);
    expect(view.last_token_at).not.toBeNull();
  });

  it("narrows a token to a scope within the key's permissions", async () => {
    const { key } = await h.mint(h.adminToken, { scopes: "write" });
    const token = await exchange(key, "subscribers:read usage:read");
    expect(token.scope).toBe("subscribers:read usage:read");
    expect((await call(token.access_token, "/subscribers")).status).toBe(200);
    const write = await call(token.access_token, "/subscribers", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "x", password: "xxxxxxxx1" }),
    });
    expect(write.status).toBe(403);
    const refused = (await write.json()) as { error: { code: string; message: string } };
    expect(refused.error.code).toBe("SCOPE_REQUIRED");
    // The key may write: the token's own scope is what stands in the way, and is named.
    expect(refused.error.message).toContain(
      "this access token's scope (subscribers:read usage:read) leaves out subscribers:write",
    );
    expect(refused.error.message).toContain("scope=subscribers:write");

    await expect(exchange(key, "nas:delete")).rejects.toMatchObject({
      error: "invalid_scope",
    });
    await expect(exchange(key, "not-a-permission")).rejects.toMatchObject({
      error: "invalid_scope",
    });
  });

  it("authenticates with client_secret_post too, and answers RFC 6749 errors", async () => {
    const { key } = await h.mint(h.adminToken);
    const viaBody = await exchange(key, undefined, oauth.ClientSecretPost(key));
    expect(viaBody.access_token).toBeTruthy();

    const wrong = await tokenEndpoint("grant_type=client_credentials", {
      authorization: basic(`pk_live_${"0".repeat(32)}`),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toMatch(/^Basic /);
    expect(wrong.headers.get("cache-control")).toBe("no-store");
    expect(await wrong.json()).toMatchObject({ error: "invalid_client" });

    const grant = await tokenEndpoint("grant_type=password", { authorization: basic(key) });
    expect(grant.status).toBe(400);
    expect(await grant.json()).toMatchObject({ error: "unsupported_grant_type" });

    const none = await tokenEndpoint("", { authorization: basic(key) });
    expect(await none.json()).toMatchObject({ error: "invalid_request" });

    const twice = await tokenEndpoint(
      `grant_type=client_credentials&client_id=${key.slice(0, 12)}&client_secret=${key}`,
      { authorization: basic(key) },
    );
    expect(await twice.json()).toMatchObject({ error: "invalid_request" });

    const repeated = await tokenEndpoint(
      "grant_type=client_credentials&grant_type=client_credentials",
      { authorization: basic(key) },
    );
    expect(await repeated.json()).toMatchObject({ error: "invalid_request" });

    const json = await fetch(`${origin}/api/v1/external/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: basic(key) },
      body: JSON.stringify({ grant_type: "client_credentials" }),
    });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: "invalid_request" });

    const otherId = await tokenEndpoint("grant_type=client_credentials", {
      authorization: `Basic ${Buffer.from(`pk_live_zzzz:${key}`).toString("base64")}`,
    });
    expect(otherId.status).toBe(401);
    const described = (await otherId.json()) as { error_description: string };
    expect(described.error_description).toContain(key.slice(0, 12));
    expect(described.error_description).not.toContain(key);
  });

  it("answers any malformed input to the OAuth endpoints with an RFC 6749 error, never a 500", async () => {
    const { key } = await h.mint(h.adminToken);
    const cases: [string, Record<string, string>, string][] = [
      ["form", {}, `${"[".repeat(10_000)}`],
      [
        "json",
        { "content-type": "application/json" },
        `${"[".repeat(10_000)}${"]".repeat(10_000)}`,
      ],
      ["json", { "content-type": "application/json" }, "{not json"],
      ["form", { authorization: "Basic %%%" }, "grant_type=client_credentials"],
      [
        "form",
        { authorization: "Basic " + Buffer.from("no-colon").toString("base64") },
        "grant_type=client_credentials",
      ],
      ["form", { authorization: "Digest abc" }, "grant_type=client_credentials"],
      ["form", { authorization: basic(key) }, "grant_type=client_credentials&scope=%00"],
      [
        "form",
        { authorization: basic(key) },
        `grant_type=client_credentials&scope=${"x".repeat(100_000)}`,
      ],
    ];
    for (const path of ["token", "introspect", "revoke"]) {
      for (const [kind, headers, body] of cases) {
        const res = await fetch(`${origin}/api/v1/external/oauth/${path}`, {
          method: "POST",
          headers: {
            ...(kind === "form" ? { "content-type": "application/x-www-form-urlencoded" } : {}),
            ...headers,
          },
          body,
        });
        const what = `${path} ${JSON.stringify(headers)} ${body.slice(0, 40)}`;
        expect(res.status, what).toBeGreaterThanOrEqual(400);
        expect(res.status, what).toBeLessThan(500);
        const json = (await res.json()) as { error: string; error_description: string };
        expect(["invalid_request", "invalid_client", "invalid_scope"], what).toContain(json.error);
        expect(json.error_description.length, what).toBeGreaterThan(0);
        expect(JSON.stringify(json), what).not.toContain(key);
      }
    }
    const huge = await fetch(`${origin}/api/v1/external/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(key) },
      body: `grant_type=client_credentials&scope=${"a".repeat(2 * 1024 * 1024)}`,
    });
    expect(huge.status).toBe(400);
    expect(((await huge.json()) as { error: string }).error).toBe("invalid_request");
  });

  it("refuses its tokens on the next request once the key is revoked, rolled or narrowed", async () => {
    const a = await h.mint(h.adminToken, { scopes: "write" });
    const ta = (await exchange(a.key)).access_token;
    expect((await call(ta, "/whoami")).status).toBe(200);
    await h.api("DELETE", `/api/api-keys/${a.id}`, h.adminToken);
    const revoked = await call(ta, "/whoami");
    expect(revoked.status).toBe(401);
    expect(((await revoked.json()) as { error: { code: string } }).error.code).toBe(
      "API_KEY_REVOKED",
    );

    const b = await h.mint(h.adminToken, { scopes: "write" });
    const tb = (await exchange(b.key)).access_token;
    await h.api("POST", `/api/api-keys/${b.id}/roll`, h.adminToken, {});
    const rolled = await call(tb, "/whoami");
    expect(rolled.status).toBe(401);
    const body = (await rolled.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("INVALID_TOKEN");
    expect(body.error.message).toContain("rolled");
    expect(rolled.headers.get("www-authenticate")).toMatch(/^Bearer error="invalid_token"/);

    const c = await h.mint(h.adminToken, { scopes: "write" });
    const tc = (await exchange(c.key)).access_token;
    await h.api("PUT", `/api/api-keys/${c.id}`, h.adminToken, {
      permissions: ["usage:read"],
    });
    const narrowed = await call(tc, "/subscribers");
    expect(narrowed.status).toBe(403);
    expect((await call(tc, "/whoami")).status).toBe(200);
  });

  it("introspects and revokes tokens (RFC 7662, RFC 7009) through the client library", async () => {
    const { key } = await h.mint(h.adminToken);
    const other = await h.mint(h.adminToken);
    const token = (await exchange(key)).access_token;
    const auth = oauth.ClientSecretBasic(key);
    const active = await oauth.processIntrospectionResponse(
      as,
      client(key),
      await oauth.introspectionRequest(as, client(key), auth, token, insecure),
    );
    expect(active).toMatchObject({ active: true, client_id: key.slice(0, 12), scope: "*:read" });
    // Another key's client sees nothing of it.
    const foreign = await oauth.processIntrospectionResponse(
      as,
      client(other.key),
      await oauth.introspectionRequest(
        as,
        client(other.key),
        oauth.ClientSecretBasic(other.key),
        token,
        insecure,
      ),
    );
    expect(foreign).toEqual({ active: false });

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client(key), auth, token, insecure),
    );
    const after = await call(token, "/whoami");
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { message: string } }).error.message).toContain(
      "revoked",
    );
    const inactive = await oauth.processIntrospectionResponse(
      as,
      client(key),
      await oauth.introspectionRequest(as, client(key), auth, token, insecure),
    );
    expect(inactive.active).toBe(false);
    // Revoking garbage is a 200 too (RFC 7009 §2.2).
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client(key), auth, "not-a-token", insecure),
    );
    // A fresh token of the same key still works.
    expect((await call((await exchange(key)).access_token, "/whoami")).status).toBe(200);
  });

  it("logs a refused exchange as the key's refusal, not as a use, and says how -u takes a key", async () => {
    const { key, id } = await h.mint(h.adminToken, { scopes: "read" });
    expectStatus(await h.api("DELETE", `/api/api-keys/${id}`, h.adminToken), 200);
    const refused = await tokenEndpoint("grant_type=client_credentials", {
      authorization: basic(key),
    });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: string }).error).toBe("invalid_client");
    await h.kg.callLog.flush();
    const stored = await h.kg.database.db
      .selectFrom("api_keys")
      .select(["last_used_at", "last_refused_code"])
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    expect(stored).toEqual({ last_used_at: null, last_refused_code: "API_KEY_REVOKED" });
    const logged = (await h.api("GET", `/api/api-keys/${id}/logs`, h.adminToken)).json().data;
    expect(logged[0]).toMatchObject({ path: "/api/v1/external/oauth/token", status_code: 401 });
    expect(logged[0].error_code).toBe("API_KEY_REVOKED");

    // curl -u "$KEY:": the key as client_id and no secret.
    const live = await h.mint(h.adminToken, { scopes: "read" });
    const swapped = await tokenEndpoint("grant_type=client_credentials", {
      authorization: `Basic ${Buffer.from(`${live.key}:`).toString("base64")}`,
    });
    expect(swapped.status).toBe(401);
    const body = (await swapped.json()) as { error: string; error_description: string };
    expect(body.error).toBe("invalid_client");
    expect(body.error_description).toContain("the key was sent as client_id");
    expect(body.error_description).toContain(live.key.slice(0, 12));
    expect(body.error_description).not.toContain(live.key.slice(12));
  });

  it("refuses garbage and foreign tokens with INVALID_TOKEN and a Bearer challenge", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "ES256", typ: "at+jwt", kid: "x" })).toString(
      "base64url",
    );
    const forged = await call(`${header}.eyJzdWIiOiJ4In0.c2lnbmF0dXJl`, "/whoami");
    expect(forged.status).toBe(401);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("INVALID_TOKEN");
    expect(forged.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("will not hand tokens to a key that requires signed requests", async () => {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, { signing: "required" });
    expectStatus(res, 201);
    const key = res.json().key as string;
    await expect(exchange(key)).rejects.toMatchObject({ error: "unauthorized_client" });
  });

  it("keeps old tokens valid across a signing-key rotation, and publishes both keys", async () => {
    const { key } = await h.mint(h.adminToken);
    const before = (await exchange(key)).access_token;
    await h.kg.tokens.rotate();
    const after = (await exchange(key)).access_token;
    const jwks = (await (await fetch(as.jwks_uri as string)).json()) as { keys: unknown[] };
    expect(jwks.keys.length).toBeGreaterThanOrEqual(2);
    const set = createRemoteJWKSet(new URL(as.jwks_uri as string));
    for (const t of [before, after]) {
      await jwtVerify(t, set, { issuer: origin, typ: "at+jwt" });
      expect((await call(t, "/whoami")).status).toBe(200);
    }
  });
});

describe("token lifetime", () => {
  let h: Harness;
  let now = Date.parse("2026-06-01T12:00:00Z");
  beforeAll(async () => {
    h = await harness({ KEYGATE_TOKEN_TTL_S: "600" }, { now: () => new Date(now) });
  });
  afterAll(async () => h?.close());

  it("honours KEYGATE_TOKEN_TTL_S and refuses an expired token with TOKEN_EXPIRED", async () => {
    const { key } = await h.mint(h.adminToken);
    const res = await h.app.inject({
      method: "POST",
      url: "/api/v1/external/oauth/token",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}`,
      },
      payload: "grant_type=client_credentials",
    });
    expectStatus(res, 200);
    expect(res.json().expires_in).toBe(600);
    const token = res.json().access_token as string;
    const whoami = () =>
      h.app.inject({
        method: "GET",
        url: "/api/v1/external/whoami",
        headers: { authorization: `Bearer ${token}` },
      });
    expectStatus(await whoami(), 200);
    now += 601_000;
    const late = await whoami();
    expectStatus(late, 401);
    expect(late.json().error.code).toBe("TOKEN_EXPIRED");
    expect(late.json().error.message).toContain("/oauth/token");
  });
});
