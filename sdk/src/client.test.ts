import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { verifySignature } from "../../src/credentials/signature.js";
import { Keygate, type KeygateOptions } from "./client.js";
import {
  AuthenticationError,
  KeygateError,
  NotFoundError,
  parseRetryAfter,
  PermissionError,
  RateLimitError,
  ServerError,
  SignatureError,
  TokenExchangeError,
  UnavailableError,
  ValidationError,
} from "./errors.js";

/** The client against a fake fetch that answers from a script and records each request. */

const KEY = `pk_live_ab12${"cd".repeat(14)}`;
const SECRET = `pks_live_${"5e".repeat(32)}`;
const BASE = "https://keygate.example.com";

type Seen = { method: string; url: string; headers: Record<string, string>; body: string | null };
type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

function fakeFetch(answers: (Answer | ((req: Seen) => Answer))[]) {
  const seen: Seen[] = [];
  const fetch = vi.fn(async (input: string | URL | Request, init?: RequestInit) => {
    const headers = Object.fromEntries(
      Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [
        k.toLowerCase(),
        v,
      ]),
    );
    const body = init?.body ? Buffer.from(init.body as Uint8Array).toString("utf8") : null;
    const req: Seen = { method: init?.method ?? "GET", url: String(input), headers, body };
    seen.push(req);
    const next = answers.shift();
    if (!next) throw new Error(`no answer scripted for ${req.method} ${req.url}`);
    const a = typeof next === "function" ? next(req) : next;
    return new Response(
      a.body === undefined ? null : typeof a.body === "string" ? a.body : JSON.stringify(a.body),
      {
        status: a.status,
        headers: { "content-type": "application/json", ...a.headers },
      },
    );
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, seen };
}

const ok = (data: unknown, extra: Record<string, unknown> = {}): Answer => ({
  status: 200,
  body: { success: true, data, ...extra },
  headers: { "x-request-id": "req-ok" },
});

const refusal = (
  status: number,
  code: string,
  headers: Record<string, string> = {},
  details?: unknown,
): Answer => ({
  status,
  body: {
    success: false,
    error: { code, message: `refused: ${code}`, ...(details === undefined ? {} : { details }) },
    timestamp: "2026-05-12T11:02:31Z",
  },
  headers: { "x-request-id": `req-${code}`, ...headers },
});

function client(answers: Parameters<typeof fakeFetch>[0], o: Partial<KeygateOptions> = {}) {
  const f = fakeFetch(answers);
  return { kg: new Keygate({ baseUrl: BASE, key: KEY, fetch: f.fetch, ...o }), ...f };
}

describe("requests", () => {
  it("sends X-API-Key to /api/v1/external, the query and a JSON body, and answers the body", async () => {
    const { kg, seen } = client([
      ok([{ id: 1 }], { meta: { page: 2, per_page: 10, total: 11 } }),
      { status: 201, body: { success: true, data: { id: 9 } } },
    ]);
    const page = await kg.subscribers.list({ page: 2, per_page: 10, status: "active" });
    expect(page).toEqual({ data: [{ id: 1 }], meta: { page: 2, per_page: 10, total: 11 } });
    expect(seen[0]).toMatchObject({
      method: "GET",
      url: `${BASE}/api/v1/external/subscribers?page=2&per_page=10&status=active`,
      body: null,
    });
    expect(seen[0]?.headers["x-api-key"]).toBe(KEY);
    expect(seen[0]?.headers["content-type"]).toBeUndefined();
    expect(seen[0]?.headers.signature).toBeUndefined();

    const created = await kg.request("POST", "/transactions", {
      body: { subscriber_id: 1, amount: "9.99", reference: "inv-1" },
    });
    expect(created).toEqual({ success: true, data: { id: 9 } });
    expect(seen[1]).toMatchObject({
      method: "POST",
      url: `${BASE}/api/v1/external/transactions`,
      body: '{"subscriber_id":1,"amount":"9.99","reference":"inv-1"}',
    });
    expect(seen[1]?.headers["content-type"]).toBe("application/json");
  });

  it("takes a base URL with a trailing slash or /api/v1/external alike", async () => {
    for (const baseUrl of [`${BASE}/`, `${BASE}/api/v1/external`, `${BASE}/api/v1/external/`]) {
      const f = fakeFetch([ok({ id: 1 })]);
      await new Keygate({ baseUrl, key: KEY, fetch: f.fetch }).whoami();
      expect(f.seen[0]?.url).toBe(`${BASE}/api/v1/external/whoami`);
    }
  });

  it("signs every request with a signing secret, verifiably, and still sends X-API-Key", async () => {
    const { kg, seen } = client([ok({ id: 3 }), ok({ id: 4 })], { signingSecret: SECRET });
    await kg.subscribers.get(3);
    await kg.transactions.create({ subscriber_id: 3, amount: 5 });
    const spent = new Set<string>();
    for (const req of seen) {
      expect(req.headers["x-api-key"]).toBe(KEY);
      const verdict = await verifySignature(
        {
          method: req.method,
          targetUri: req.url,
          header: (n) => req.headers[n],
          body: req.body === null ? null : Buffer.from(req.body),
        },
        {
          keyid: "pk_live_ab12",
          secret: Buffer.from(SECRET, "utf8"),
          now: Date.now(),
          nonceFresh: (n) => (spent.has(n) ? false : (spent.add(n), true)),
        },
      );
      expect(verdict, `${req.method} ${req.url}`).toMatchObject({ ok: true });
    }
    expect(seen[0]?.headers["content-digest"]).toBeUndefined();
    expect(seen[1]?.headers["content-digest"]).toMatch(/^sha-256=:.+:$/);
  });
});

describe("refusals as KeygateErrors", () => {
  async function refused(answer: Answer): Promise<KeygateError> {
    const { kg } = client([answer]);
    const err = await kg.whoami().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeygateError);
    return err as KeygateError;
  }

  it("carries the envelope's code, message and details, X-Request-Id and Retry-After", async () => {
    const err = await refused(
      refusal(400, "VALIDATION_ERROR", {}, [{ field: "body.amount", message: "must be > 0" }]),
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({
      status: 400,
      code: "VALIDATION_ERROR",
      message: "refused: VALIDATION_ERROR",
      details: [{ field: "body.amount", message: "must be > 0" }],
      requestId: "req-VALIDATION_ERROR",
      retryAfter: null,
      family: "validation",
      request: `GET ${BASE}/api/v1/external/whoami`,
      name: "ValidationError",
    });
    expect((err as ValidationError).fields).toEqual([
      { field: "body.amount", message: "must be > 0" },
    ]);
  });

  it("maps each family of codes to its class", async () => {
    const cases: [number, string, new (...a: never[]) => KeygateError, string][] = [
      [401, "MISSING_API_KEY", AuthenticationError, "authentication"],
      [401, "API_KEY_REVOKED", AuthenticationError, "authentication"],
      [401, "INVALID_TOKEN", AuthenticationError, "authentication"],
      [401, "TOKEN_EXPIRED", AuthenticationError, "authentication"],
      [401, "SIGNATURE_REQUIRED", SignatureError, "signature"],
      [401, "SIGNATURE_INVALID", SignatureError, "signature"],
      [401, "SIGNATURE_EXPIRED", SignatureError, "signature"],
      [401, "SIGNATURE_REPLAYED", SignatureError, "signature"],
      [403, "SCOPE_REQUIRED", PermissionError, "permission"],
      [403, "IP_NOT_ALLOWED", PermissionError, "permission"],
      [404, "NOT_FOUND", NotFoundError, "not_found"],
      [500, "INTERNAL_ERROR", ServerError, "server"],
      // A code this client does not know yet: by its status.
      [403, "SOMETHING_NEW", PermissionError, "permission"],
      [418, "SOMETHING_ELSE", ValidationError, "validation"],
    ];
    for (const [status, code, Class, family] of cases) {
      const err = await refused(refusal(status, code));
      expect(err, code).toBeInstanceOf(Class);
      expect(err, code).toMatchObject({ status, code, family });
    }
  });

  it("reads what signature refusals add: the server's signature base and the skew", async () => {
    // As Keygate sends them: field problems named signature_base and clock_skew_s.
    const invalid = (await refused(
      refusal(401, "SIGNATURE_INVALID", {}, [
        { field: "signature_base", message: '"@method": GET' },
      ]),
    )) as SignatureError;
    expect(invalid.signatureBase).toBe('"@method": GET');
    expect(invalid.skew).toBeNull();
    const expired = (await refused(
      refusal(401, "SIGNATURE_EXPIRED", {}, [{ field: "clock_skew_s", message: "-301" }]),
    )) as SignatureError;
    expect(expired.skew).toBe(-301);
    expect(expired.signatureBase).toBeNull();
    // Or an object keyed by name.
    const keyed = (await refused(
      refusal(401, "SIGNATURE_INVALID", {}, { signature_base: "b", skew_s: 4 }),
    )) as SignatureError;
    expect([keyed.signatureBase, keyed.skew]).toEqual(["b", 4]);
  });

  it("reads RFC 6749 token errors and answers that are not the envelope", async () => {
    const oauth = await refused({
      status: 401,
      body: { error: "invalid_client", error_description: "no such client" },
    });
    expect(oauth).toBeInstanceOf(TokenExchangeError);
    expect(oauth).toMatchObject({ code: "invalid_client", message: "no such client" });

    const proxy = await refused({ status: 502, body: "<html>Bad Gateway</html>" });
    expect(proxy).toBeInstanceOf(ServerError);
    expect(proxy.code).toBe("UNEXPECTED_RESPONSE");
    expect(proxy.message).toContain("502");
    expect(proxy.message).toContain("Bad Gateway");
  });

  it("parses Retry-After as seconds or an HTTP date", () => {
    expect(parseRetryAfter("7")).toBe(7);
    expect(parseRetryAfter(" 0 ")).toBe(0);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const now = Date.parse("2026-05-12T11:00:00Z");
    expect(parseRetryAfter("Tue, 12 May 2026 11:00:30 GMT", now)).toBe(30);
    expect(parseRetryAfter("Tue, 12 May 2026 10:00:00 GMT", now)).toBe(0);
  });
});

describe("Retry-After on 429 and 503", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("waits the seconds a 429 names, then sends again, re-signed with a new nonce", async () => {
    const { kg, seen } = client(
      [refusal(429, "RATE_LIMIT_EXCEEDED", { "retry-after": "2" }), ok({ id: 1 })],
      { signingSecret: SECRET },
    );
    const done = kg.whoami();
    await vi.advanceTimersByTimeAsync(1_999);
    expect(seen).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await done).toEqual({ id: 1 });
    expect(seen).toHaveLength(2);
    const nonce = (s: Seen) => /nonce="([^"]+)"/.exec(s.headers["signature-input"] ?? "")?.[1];
    expect(nonce(seen[0] as Seen)).toBeDefined();
    expect(nonce(seen[0] as Seen)).not.toBe(nonce(seen[1] as Seen));
    expect(seen[0]?.headers.signature).not.toBe(seen[1]?.headers.signature);
  });

  it("retries at most maxRetries times, then throws the last refusal with its retryAfter", async () => {
    const busy = () => refusal(503, "SERVICE_UNAVAILABLE", { "retry-after": "1" });
    const { kg, seen } = client([busy(), busy(), busy(), busy()], { maxRetries: 2 });
    const done = kg.subscribers.get(1).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(5_000);
    const err = await done;
    expect(err).toBeInstanceOf(UnavailableError);
    expect(err).toMatchObject({ status: 503, retryAfter: 1 });
    expect(seen).toHaveLength(3);

    const none = client([busy(), ok({})], { maxRetries: 0 });
    await expect(none.kg.whoami()).rejects.toBeInstanceOf(UnavailableError);
    expect(none.seen).toHaveLength(1);
  });

  it("does not repeat a POST on a 503 (it may have been done), but does on a 429 (it was not)", async () => {
    const post = client([refusal(503, "SERVICE_UNAVAILABLE", { "retry-after": "1" })]);
    await expect(
      post.kg.transactions.create({ subscriber_id: 1, amount: 5 }),
    ).rejects.toBeInstanceOf(UnavailableError);
    expect(post.seen).toHaveLength(1);

    const limited = client([refusal(429, "RATE_LIMIT_EXCEEDED", { "retry-after": "1" }), ok({})]);
    const done = limited.kg.subscribers.suspend(4);
    await vi.advanceTimersByTimeAsync(1_000);
    await done;
    expect(limited.seen.map((s) => s.method)).toEqual(["POST", "POST"]);

    // A transaction with a reference is recorded once, however often it is sent: retried.
    const referenced = client([
      refusal(503, "SERVICE_UNAVAILABLE", { "retry-after": "1" }),
      ok({ id: 5 }),
    ]);
    const created = referenced.kg.transactions.create({
      subscriber_id: 1,
      amount: 5,
      reference: "inv-5",
    });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await created).toEqual({ id: 5 });
    expect(referenced.seen).toHaveLength(2);
    expect(referenced.seen[0]?.body).toBe(referenced.seen[1]?.body);
  });

  it("backs off without Retry-After, and throws at once when Retry-After is beyond maxRetryDelay", async () => {
    const { kg, seen } = client([refusal(503, "SERVICE_UNAVAILABLE"), ok({})]);
    const done = kg.whoami();
    await vi.advanceTimersByTimeAsync(499);
    expect(seen).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await done;
    expect(seen).toHaveLength(2);

    const long = client([refusal(429, "RATE_LIMIT_EXCEEDED", { "retry-after": "3600" })], {
      maxRetryDelay: 60,
    });
    const err = await long.kg.whoami().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err).toMatchObject({ retryAfter: 3600 });
    expect(long.seen).toHaveLength(1);
  });

  it("does not retry other refusals", async () => {
    const { kg, seen } = client([refusal(403, "SCOPE_REQUIRED"), ok({})]);
    await expect(kg.whoami()).rejects.toMatchObject({ code: "SCOPE_REQUIRED" });
    expect(seen).toHaveLength(1);
  });
});

describe("token exchange", () => {
  const token = (n: number, expires_in = 3600): Answer => ({
    status: 200,
    body: { access_token: `at-${n}`, token_type: "Bearer", expires_in, scope: "*:read" },
    headers: { "cache-control": "no-store" },
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("exchanges the key by HTTP Basic, caches the token and sends it as Bearer", async () => {
    const { kg, seen } = client([token(1), ok({ id: 1 }), ok({ id: 2 })], {
      tokenExchange: { scope: ["subscribers:read", "usage:read"] },
    });
    await kg.whoami();
    await kg.subscribers.get(2);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      `POST ${BASE}/api/v1/external/oauth/token`,
      `GET ${BASE}/api/v1/external/whoami`,
      `GET ${BASE}/api/v1/external/subscribers/2`,
    ]);
    const [exchange, first, second] = seen as [Seen, Seen, Seen];
    expect(exchange.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(new URLSearchParams(exchange.body ?? "").toString()).toBe(
      "grant_type=client_credentials&scope=subscribers%3Aread+usage%3Aread",
    );
    expect(exchange.headers.authorization).toBe(
      `Basic ${Buffer.from(`pk_live_ab12:${KEY}`).toString("base64")}`,
    );
    expect(exchange.headers["x-api-key"]).toBeUndefined();
    for (const s of [first, second]) {
      expect(s.headers.authorization).toBe("Bearer at-1");
      expect(s.headers["x-api-key"]).toBeUndefined();
    }
  });

  it("shares one exchange between concurrent calls", async () => {
    const { kg, seen } = client([token(1), ok({}), ok({}), ok({})], { tokenExchange: true });
    await Promise.all([kg.whoami(), kg.whoami(), kg.whoami()]);
    expect(seen.filter((s) => s.url.endsWith("/oauth/token"))).toHaveLength(1);
    expect(new URLSearchParams(seen[0]?.body ?? "").has("scope")).toBe(false);
  });

  it("fetches a new token shortly before expires_in runs out", async () => {
    const { kg, seen } = client([token(1, 600), ok({}), ok({}), token(2, 600), ok({})], {
      tokenExchange: true,
    });
    // The clock is read when it is needed, not captured at construction.
    vi.useFakeTimers({ now: Date.parse("2026-05-12T11:00:00Z") });
    await kg.whoami();
    vi.setSystemTime(Date.parse("2026-05-12T11:08:59Z")); // 539 s: more than 60 s left
    await kg.whoami();
    vi.setSystemTime(Date.parse("2026-05-12T11:09:01Z")); // 541 s: less than a tenth left
    await kg.whoami();
    expect(seen.map((s) => s.headers.authorization?.split(" ")[1] ?? "exchange")).toEqual([
      // the exchanges authenticate by Basic
      Buffer.from(`pk_live_ab12:${KEY}`).toString("base64"),
      "at-1",
      "at-1",
      Buffer.from(`pk_live_ab12:${KEY}`).toString("base64"),
      "at-2",
    ]);
  });

  it("replaces a token the server refuses (INVALID_TOKEN, TOKEN_EXPIRED) once, even for a POST", async () => {
    const { kg, seen } = client(
      [
        token(1),
        refusal(401, "TOKEN_EXPIRED"),
        token(2),
        { status: 201, body: { data: { id: 1 } } },
      ],
      { tokenExchange: true },
    );
    expect(await kg.transactions.create({ subscriber_id: 1, amount: 1 })).toEqual({ id: 1 });
    expect(seen.map((s) => s.headers.authorization?.slice(0, 9))).toEqual([
      "Basic cGt",
      "Bearer at",
      "Basic cGt",
      "Bearer at",
    ]);
    expect(seen[3]?.headers.authorization).toBe("Bearer at-2");

    // A second refusal in a row is thrown: no loop.
    const twice = client(
      [token(1), refusal(401, "INVALID_TOKEN"), token(2), refusal(401, "INVALID_TOKEN")],
      { tokenExchange: true },
    );
    const err = await twice.kg.whoami().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err).toMatchObject({ code: "INVALID_TOKEN" });
    expect(twice.seen).toHaveLength(4);

    // Other 401s are not about the token: thrown at once.
    const revoked = client([token(1), refusal(401, "API_KEY_REVOKED")], { tokenExchange: true });
    await expect(revoked.kg.whoami()).rejects.toMatchObject({ code: "API_KEY_REVOKED" });
    expect(revoked.seen).toHaveLength(2);
  });

  it("throws the token endpoint's refusal as a TokenExchangeError", async () => {
    const { kg } = client(
      [
        {
          status: 400,
          body: { error: "invalid_scope", error_description: "nas:write is not this key's" },
        },
      ],
      { tokenExchange: { scope: ["nas:write"] } },
    );
    const err = await kg.whoami().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenExchangeError);
    expect(err).toMatchObject({ status: 400, code: "invalid_scope", family: "token_exchange" });
  });

  it("signs the exchange and the calls with a signing secret", async () => {
    const { kg, seen } = client([token(1), ok({})], { tokenExchange: true, signingSecret: SECRET });
    await kg.whoami();
    expect(seen[0]?.headers["content-digest"]).toMatch(/^sha-256=/);
    expect(seen[0]?.headers["signature-input"]).toContain('"content-digest"');
    expect(seen[1]?.headers["signature-input"]).toContain('keyid="pk_live_ab12"');
  });
});
