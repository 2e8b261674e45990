import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, type Harness, harness } from "./helpers.js";

/**
 * What a new integrator runs into, answered in words: wrong methods, trailing slashes, old
 * base paths and near-miss names, keys sent in the wrong place, request ids, body-less
 * POSTs and replayed references.
 */

const EXT = "/api/v1/external";
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

describe("refusals that explain themselves", () => {
  let h: Harness;
  let key: string;
  let subscriber: number;
  beforeAll(async () => {
    h = await harness({ KEYGATE_IP_RATE_LIMIT: "0", KEYGATE_FAILED_KEY_LIMIT: "0" });
    ({ key } = await h.mint(h.adminToken, { name: "integrator", scopes: "delete" }));
    const service = await h.service();
    const res = await h.api("POST", "/api/subscribers", h.adminToken, {
      username: "integrated",
      password: "auto-generate",
      service_id: service,
    });
    expectStatus(res, 201);
    subscriber = res.json().data.id;
  });
  afterAll(() => h?.close());

  it("answers a wrong method on every path with 405, an Allow header and the methods in words", async () => {
    const doc = h.app.swagger() as unknown as { paths: Record<string, Record<string, unknown>> };
    let checked = 0;
    // A method some other route serves at the same URL (PUT /api-keys/stats is PUT /api-keys/{id}).
    const servedAt = (url: string, method: string) =>
      Object.entries(doc.paths).some(
        ([p, item]) =>
          Object.keys(item).includes(method.toLowerCase()) &&
          new RegExp(`^${p.replace(/\{[a-z_]+\}/g, "[^/]+")}$`).test(url),
      );
    for (const [path, item] of Object.entries(doc.paths)) {
      const served = Object.keys(item).map((m) => m.toUpperCase());
      const url = path.replace(/\{[a-z_]+\}/g, String(subscriber));
      for (const method of METHODS.filter((m) => !served.includes(m) && !servedAt(url, m))) {
        const external = url.startsWith(EXT);
        const res = await h.app.inject({
          method,
          url,
          headers: external ? { "x-api-key": key } : { authorization: `Bearer ${h.adminToken}` },
        });
        const what = `${method} ${url}`;
        expect(res.statusCode, `${what}: ${res.body}`).toBe(405);
        const allow = String(res.headers.allow).split(", ");
        for (const m of served) expect(allow, what).toContain(m);
        const body = res.json();
        const message = external ? body.error.message : body.message;
        expect(external ? body.error.code : body.code, what).toBe("METHOD_NOT_ALLOWED");
        expect(message, what).toContain(`${method} is not served at`);
        for (const m of served) expect(message, what).toContain(m);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
    // On the external surface it is in the key's call log, like any other answer.
    await h.kg.callLog.flush();
    const rows = await h.kg.database.db
      .selectFrom("api_key_logs")
      .select("error_code")
      .where("status_code", "=", 405)
      .execute();
    expect(rows.length).toBeGreaterThan(10);
  });

  it("serves a path with a trailing slash as the path without one", async () => {
    for (const path of ["/subscribers/", "/whoami/", `/subscribers/${subscriber}/`]) {
      const res = await h.ext("GET", path, key);
      expect(res.statusCode, path).toBe(200);
    }
    expectStatus(await h.api("GET", "/api/subscribers/", h.adminToken), 200);
  });

  it("points old, unversioned and near-miss paths at the right one, in the external envelope", async () => {
    const cases: [string, string][] = [
      ["/api/external/subscribers", `${EXT}/subscribers`],
      ["/v1/external/subscribers/3", `${EXT}/subscribers/3`],
      ["/api/v1/subscribers", `${EXT}/subscribers`],
      ["/external/whoami", `${EXT}/whoami`],
      [`${EXT}/customers`, `${EXT}/subscribers`],
      [`${EXT}/subscriber/4`, `${EXT}/subscribers/4`],
      [`${EXT}/transaction`, `${EXT}/transactions`],
      [`${EXT}/plans`, `${EXT}/services`],
    ];
    for (const [sent, meant] of cases) {
      const res = await h.app.inject({ method: "GET", url: sent, headers: { "x-api-key": key } });
      expect(res.statusCode, sent).toBe(404);
      const body = res.json();
      expect(Object.keys(body).sort(), sent).toEqual(["error", "success", "timestamp"]);
      expect(body.error.code).toBe("NOT_FOUND");
      expect(body.error.message, sent).toContain(`Did you mean ${meant}?`);
    }
    // A path with nothing near it gets no guess.
    const far = await h.ext("GET", "/zzzzzzzzzz", key);
    expect(far.json().error.message).not.toContain("Did you mean");
  });

  it("answers a wrong method with 405 whatever the key's permissions; a key route still wants a valid key", async () => {
    const reader = await h.mint(h.adminToken, { scopes: "read" });
    const wrong = await h.ext("DELETE", "/whoami", reader.key);
    expect(wrong.statusCode, wrong.body).toBe(405);
    expect(wrong.json().error.code).toBe("METHOD_NOT_ALLOWED");
    expect(wrong.headers.allow).toBe("GET, HEAD");
    // No key, or a revoked one: the key check still answers first on a route that takes keys.
    expect((await h.ext("DELETE", "/whoami")).json().error.code).toBe("MISSING_API_KEY");
    expectStatus(await h.api("DELETE", `/api/api-keys/${reader.id}`, h.adminToken), 200);
    expect((await h.ext("DELETE", "/whoami", reader.key)).json().error.code).toBe(
      "API_KEY_REVOKED",
    );
    // The token endpoint takes no X-API-Key: a GET there is a 405 without one.
    const token = await h.ext("GET", "/oauth/token");
    expect(token.statusCode, token.body).toBe(405);
    expect(token.json().error.message).toContain("it takes POST");
  });

  it("tells an API key or an exchanged access token on /api where it works", async () => {
    const asKey = await h.api("GET", "/api/auth/me", key);
    expect(asKey.statusCode).toBe(401);
    expect(asKey.json().message).toContain("this is an API key: keys work on /api/v1/external");
    expect(asKey.body).not.toContain(key.slice(12));
    const exchanged = await h.app.inject({
      method: "POST",
      url: `${EXT}/oauth/token`,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}`,
      },
      payload: "grant_type=client_credentials",
    });
    expectStatus(exchanged, 200);
    const asToken = await h.api("GET", "/api/auth/me", exchanged.json().access_token);
    expect(asToken.statusCode).toBe(401);
    expect(asToken.json().message).toContain("access token of the token exchange");
    // A sign-in token that is merely wrong still gets the sign-in answer.
    const forged = await h.api("GET", "/api/auth/me", `${h.adminToken.slice(0, -4)}AAAA`);
    expect(forged.json().message).toContain("invalid or expired");
  });

  it("says where a key was sent when X-API-Key is missing", async () => {
    const cases: [Record<string, string>, string, string][] = [
      [{ authorization: `Bearer ${key}` }, "/whoami", "sent in Authorization: Bearer"],
      [{ authorization: `Bearer ${h.adminToken}` }, "/whoami", "access token"],
      [{ authorization: `ApiKey ${key}` }, "/whoami", 'Authorization header (scheme "ApiKey")'],
      [{ authorization: `Token ${key}` }, "/whoami", "X-API-Key header only"],
      [
        { authorization: `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}` },
        "/whoami",
        "HTTP Basic is taken by the token endpoint only",
      ],
      [{ authorization: "Bearer null" }, "/whoami", 'carries "null" where an access token belongs'],
      [{ authorization: "Bearer " }, "/whoami", "carries nothing"],
      [{ authorization: "Bearer abc.def.ghi" }, "/whoami", 'the JWT (it starts "ey")'],
      [{}, `/whoami?api_key=${key}`, "query string"],
      [{}, "/whoami?apikey=x", "query string"],
      [{ "api-key": key }, "/whoami", "api-key header"],
      [{ apikey: key }, "/whoami", "apikey header"],
      [{}, "/whoami", "send your API key in the X-API-Key header"],
    ];
    for (const [headers, path, says] of cases) {
      const res = await h.app.inject({ method: "GET", url: `${EXT}${path}`, headers });
      expect(res.statusCode, path).toBe(401);
      expect(res.json().error.code).toBe("MISSING_API_KEY");
      expect(res.json().error.message, JSON.stringify(headers)).toContain(says);
      expect(res.body).not.toContain(key.slice(12));
    }
  });

  it("names the Content-Type a 415 came with, and curl -d's form encoding as such", async () => {
    const sent = async (type: string | undefined) => {
      const res = await h.app.inject({
        method: "POST",
        url: `${EXT}/transactions`,
        headers: { "x-api-key": key, ...(type === undefined ? {} : { "content-type": type }) },
        payload: "subscriber_id=1&amount=5",
      });
      expect(res.statusCode, res.body).toBe(415);
      return res.json().error.message as string;
    };
    expect(await sent("application/x-www-form-urlencoded")).toContain(
      'this request sent "application/x-www-form-urlencoded", which is what curl -d sends',
    );
    expect(await sent("text/plain")).toContain('this request sent "text/plain"');
    expect(await sent("text/plain")).toContain("Content-Type: application/json");
  });

  it("reads a body-less POST sent with Content-Type: application/json as {}", async () => {
    const res = await h.app.inject({
      method: "POST",
      url: `${EXT}/subscribers/${subscriber}/suspend`,
      headers: { "x-api-key": key, "content-type": "application/json" },
      payload: "",
    });
    expectStatus(res, 200);
    const missing = await h.app.inject({
      method: "POST",
      url: `${EXT}/transactions`,
      headers: { "x-api-key": key, "content-type": "application/json" },
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.message).toMatch(/subscriber_id is required/);
  });

  it("marks a replayed transaction reference with Idempotent-Replayed: true", async () => {
    const body = { subscriber_id: subscriber, amount: "5.00", reference: "inv-1001" };
    const first = await h.ext("POST", "/transactions", key, body);
    expectStatus(first, 201);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    const again = await h.ext("POST", "/transactions", key, body);
    expectStatus(again, 200);
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.json().data.id).toBe(first.json().data.id);
  });
});

describe("request ids", () => {
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    h = await harness({ KEYGATE_IP_RATE_LIMIT: "0" });
    ({ key } = await h.mint(h.adminToken, { name: "ids" }));
  });
  afterAll(() => h?.close());

  it("are on every response of both surfaces, router errors and refusals included", async () => {
    const requests = [
      { method: "GET", url: `${EXT}/whoami`, headers: { "x-api-key": key } },
      { method: "GET", url: `${EXT}/whoami` },
      { method: "GET", url: `${EXT}/subscribers/%ff`, headers: { "x-api-key": key } },
      { method: "GET", url: `${EXT}/system/health` },
      { method: "GET", url: "/api/auth/me" },
      { method: "GET", url: "/api/subscribers/%ff" },
      { method: "GET", url: "/api/nothing-here" },
      { method: "GET", url: "/openapi.json" },
    ] as const;
    const ids = new Set<string>();
    for (const r of requests) {
      const res = await h.app.inject(r);
      const id = String(res.headers["x-request-id"]);
      expect(id, r.url).toMatch(/^[0-9a-f-]{36}$/);
      ids.add(id);
    }
    expect(ids.size).toBe(requests.length);
  });

  it("tie an answer to its call-log row, with the exact message, found by ?request_id=", async () => {
    const keyId = (await h.api("GET", "/api/api-keys", h.adminToken)).json().data[0].id as number;
    const refused = await h.ext("GET", "/subscribers/abc", key);
    expect(refused.statusCode).toBe(400);
    const id = String(refused.headers["x-request-id"]);
    const ok = await h.app.inject({
      method: "GET",
      url: `${EXT}/whoami`,
      headers: { "x-api-key": key, "x-request-id": "client-trace-42" },
    });
    expect(ok.headers["x-request-id"]).toBe("client-trace-42");
    const found = await h.api("GET", `/api/api-keys/${keyId}/logs?request_id=${id}`, h.adminToken);
    expectStatus(found, 200);
    expect(found.json().data).toEqual([
      expect.objectContaining({
        request_id: id,
        status_code: 400,
        error_code: "VALIDATION_ERROR",
        message: refused.json().error.message,
        path: `${EXT}/subscribers/abc`,
      }),
    ]);
    const mine = await h.api(
      "GET",
      `/api/api-keys/${keyId}/logs?request_id=client-trace-42`,
      h.adminToken,
    );
    expect(mine.json().data).toEqual([
      expect.objectContaining({ request_id: "client-trace-42", status_code: 200, message: null }),
    ]);
    const none = await h.api("GET", `/api/api-keys/${keyId}/logs?request_id=nope`, h.adminToken);
    expect(none.json().data).toEqual([]);
    const bad = await h.api("GET", `/api/api-keys/${keyId}/logs?request_id=a%20b`, h.adminToken);
    expect(bad.statusCode).toBe(400);
    // Generated ids sort by time: the index they are kept in grows at its right edge.
    const later = await h.ext("GET", "/whoami", key);
    expect(String(later.headers["x-request-id"]) > id).toBe(true);
  });

  it("keep a client's own id when it is 1-128 safe characters, and replace any other", async () => {
    for (const sent of ["abc-123", "trace.7:span/9", "x".repeat(128)]) {
      const res = await h.app.inject({
        method: "GET",
        url: `${EXT}/whoami`,
        headers: { "x-api-key": key, "x-request-id": sent },
      });
      expect(res.headers["x-request-id"], sent).toBe(sent);
    }
    for (const sent of ["", "has space", "x".repeat(129), "<script>", `id-${key}`, "é"]) {
      const res = await h.app.inject({
        method: "GET",
        url: `${EXT}/whoami`,
        headers: { "x-api-key": key, "x-request-id": sent },
      });
      expect(res.headers["x-request-id"], sent).not.toBe(sent);
      expect(String(res.headers["x-request-id"])).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
