import { createHash } from "node:crypto";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../src/errors.js";
import { ADMIN, expectStatus, type Harness, harness } from "./helpers.js";

/**
 * Property tests: whatever a client sends as a key or a body, Keygate answers with a 4xx in
 * the envelope of the surface (never a 5xx), never shows a secret, and never lets a hostile
 * body change records it was not aimed at.
 */

const EXT = "/api/v1/external";
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const KNOWN_CODES = new Set(Object.keys(ERROR_STATUS));

/** Checks the error envelope of the surface a response came from. */
function expectEnvelope(res: LightMyRequestResponse, external: boolean, what: string): void {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  expect(res.headers["content-type"], what).toMatch(/^application\/json/);
  const body = res.json() as Record<string, unknown>;
  if (res.statusCode < 400) {
    expect(body.success, what).toBe(true);
    return;
  }
  expect(body.success, what).toBe(false);
  let code: unknown;
  let details: unknown;
  if (external) {
    expect(Object.keys(body).sort(), what).toEqual(["error", "success", "timestamp"]);
    expect(body.timestamp, what).toMatch(ISO_UTC);
    const error = body.error as Record<string, unknown>;
    expect(typeof error.message, what).toBe("string");
    code = error.code;
    details = error.details;
  } else {
    expect(body).not.toHaveProperty("error");
    expect(typeof body.message, what).toBe("string");
    code = body.code;
    details = body.details;
  }
  expect(KNOWN_CODES.has(code as string), `${what}: unknown code ${String(code)}`).toBe(true);
  expect(res.statusCode, what).toBe(ERROR_STATUS[code as keyof typeof ERROR_STATUS]);
  if (details !== undefined) {
    expect(Array.isArray(details), what).toBe(true);
    for (const d of details as { field: unknown; message: unknown }[]) {
      expect(typeof d.field, what).toBe("string");
      expect(typeof d.message, what).toBe("string");
    }
  }
}

/** Values a careless server chokes on: SQL, LIKE wildcards, unicode, control and huge strings. */
const HOSTILE = [
  "'; DROP TABLE subscribers; --",
  "' OR '1'='1",
  '"; DELETE FROM api_keys; --',
  "%",
  "_",
  "\\",
  "%_\\%",
  "\u0000",
  "\u0000'\u001b[31m",
  "\r\n\r\nX-Injected: 1",
  "😀🔥👩‍👩‍👧",
  "Ωμέγα — ÇA VA",
  "\u202eevil",
  "\ud800",
  "<script>alert(1)</script>",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal log4j-style probe
  "${jndi:ldap://x/a}",
  "../../../etc/passwd",
  "x".repeat(5_000),
  "é".repeat(5_000),
  `${"%_".repeat(2_500)}`,
  "",
  " ",
  "null",
  "__proto__",
  "constructor",
  "1e400",
  "-0",
  "9".repeat(40),
  "2026-02-30",
  "9999-12-31",
  "0000-00-00",
  "NaN",
  "Infinity",
  "pk_live_",
  "auto-generate",
  "a_b@x.y",
  "10.0.0.0/8",
  "::ffff:127.0.0.1",
  "2001:db8::/200",
];

const hostile = fc.constantFrom(...HOSTILE);
const numbers = fc.oneof(
  fc.integer(),
  fc.integer({ min: -3, max: 5 }),
  fc.double(),
  fc.constantFrom(0, -1, 1e20, Number.MAX_SAFE_INTEGER, 2 ** 31, 2 ** 53 + 2, 0.005, 19.999),
);
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostile },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 2, arbitrary: numbers },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.array(hostile, { maxLength: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);

/** Hostile strings short enough to pass a length check, so they reach the handler and the database. */
const fitting = (max: number, min = 1) =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constantFrom(...HOSTILE.filter((v) => v.length >= min && v.length <= max)),
    },
    {
      weight: 1,
      arbitrary: fc.string({ unit: "grapheme", minLength: min, maxLength: Math.min(max, 40) }),
    },
    {
      weight: 1,
      arbitrary: fc.string({ unit: "binary", minLength: min, maxLength: Math.min(max, 40) }),
    },
  );

type Fields = Record<string, { ok: fc.Arbitrary<unknown>; required?: boolean }>;

/**
 * Bodies for one route: valid ones carrying hostile-but-acceptable values (so they reach the
 * database), valid ones with a field or two broken or dropped, valid ones with unknown
 * fields, and arbitrary JSON.
 */
function bodyFor(fields: Fields): fc.Arbitrary<unknown> {
  const names = Object.keys(fields);
  const valid = fc.record(
    Object.fromEntries(names.map((n) => [n, (fields[n] as Fields[string]).ok])),
    { requiredKeys: names.filter((n) => fields[n]?.required) },
  ) as fc.Arbitrary<Record<string, unknown>>;
  const broken = fc
    .tuple(
      valid,
      fc.shuffledSubarray(names, { minLength: 1, maxLength: Math.min(3, names.length) }),
      fc.array(anyValue, { minLength: 3, maxLength: 3 }),
      fc.boolean(),
    )
    .map(([body, which, values, drop]) => {
      const out: Record<string, unknown> = { ...body };
      which.forEach((n, i) => {
        if (drop && i === 0) delete out[n];
        else out[n] = values[i];
      });
      return out;
    });
  const extra = fc
    .tuple(valid, fc.dictionary(fc.string({ minLength: 1 }), anyValue, { minKeys: 1, maxKeys: 3 }))
    .map(([body, more]) => ({ ...more, ...body }));
  return fc.oneof(
    { weight: 4, arbitrary: valid },
    { weight: 4, arbitrary: broken },
    { weight: 1, arbitrary: extra },
    { weight: 1, arbitrary: fc.oneof(fc.object(), fc.jsonValue(), fc.anything()) },
  );
}

const username = fc.stringMatching(/^[A-Za-z0-9@._-]{3,20}$/);
const money = fc.oneof(
  fc.constantFrom("19.99", "0.01", "100", 25.5, 1, "999999999999.99", "1.234", "-5", "0", "1e3"),
  fc.double({ min: 0.01, max: 1e6, noNaN: true }),
);
const ownerId = fc.integer({ min: 1, max: 4 });
const scope = fc.constantFrom("read", "write", "delete");
const allowedIps = fc.oneof(
  fc.constant(null),
  fc.array(
    fc.constantFrom(
      "10.0.0.0/8",
      "10.0.0.1/8",
      "::1",
      "2001:db8::/32",
      "1.2.3.4/33",
      "fe80::1%eth0",
      "x",
    ),
    { maxLength: 3 },
  ),
);
const expiry = fc.constantFrom(
  "2099-01-01",
  "2099-01-01T00:00:00Z",
  "2099-01-01T00:00:00+05:30",
  "2000-01-01",
  "2099-02-30",
  "soon",
  null,
);

describe("X-API-Key: any string", () => {
  let h: Harness;
  let keys: string[] = [];
  /** The two refusal bodies, without their timestamps: every answer must be one of them. */
  let invalidBody = "";
  let missingBody = "";
  const strip = (body: string) => body.replace(/"timestamp":"[^"]*"/, "");

  beforeAll(async () => {
    h = await harness({ KEYGATE_FAILED_KEY_LIMIT: "0", KEYGATE_IP_RATE_LIMIT: "0" });
    keys = [
      (await h.mint(h.adminToken, { scopes: "delete" })).key,
      (await h.mint(h.adminToken, { scopes: "read" })).key,
    ];
    invalidBody = strip((await h.ext("GET", "/whoami", "nope")).body);
    missingBody = strip((await h.ext("GET", "/whoami")).body);
    expect(invalidBody).toContain("INVALID_API_KEY");
    expect(missingBody).toContain("MISSING_API_KEY");
  });
  afterAll(async () => {
    await h?.close();
  });

  const routes = [
    ["GET", "/whoami"],
    ["GET", "/subscribers"],
    ["POST", "/subscribers"],
    ["PUT", "/subscribers/1"],
    ["DELETE", "/subscribers/1"],
    ["POST", "/transactions"],
    ["GET", "/no-such-route"],
  ] as const;

  /** Near misses of a real key: one character changed, cut, padded, re-cased, wrapped. */
  const nearMiss = fc
    .tuple(fc.nat(), fc.nat(31), fc.constantFrom(..."0123456789abcdefABCDEF _-\u0000é"), fc.nat(5))
    .map(([which, at, ch, how]) => {
      const k = keys[which % keys.length] as string;
      const i = 8 + at;
      switch (how) {
        case 0:
          return k[i] === ch ? `${k.slice(0, i)}${ch === "0" ? "1" : "0"}${k.slice(i + 1)}` : k;
        case 1:
          return k.slice(0, i);
        case 2:
          return `${k}${ch}`;
        case 3:
          return k.toUpperCase();
        case 4:
          return `${ch}${k}`;
        default:
          return `Bearer ${k}`;
      }
    })
    .filter((v) => !keys.includes(v));

  const header = fc.oneof(
    fc.string({ unit: "grapheme" }),
    fc.string({ unit: "binary" }),
    fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)) }),
    fc.string({ minLength: 1_000, maxLength: 8_000 }),
    fc.stringMatching(/^pk_live_[0-9a-f]{32}$/),
    fc.stringMatching(/^pk_live_[0-9a-zA-Z]{0,40}$/),
    nearMiss,
  );

  it("never yields a 5xx, always a 401 from a small set of messages, never echoing the value", async () => {
    const messages = new Set<string>();
    await fc.assert(
      fc.asyncProperty(header, fc.constantFrom(...routes), async (value, [method, path]) => {
        const res = await h.ext(method, path, value, method === "GET" ? undefined : {});
        const what = `${method} ${path} with ${JSON.stringify(value.slice(0, 60))}`;
        expect(res.statusCode, `${what}: ${res.body.slice(0, 200)}`).toBe(401);
        const body = res.json();
        expect(Object.keys(body).sort(), what).toEqual(["error", "success", "timestamp"]);
        expect(body.timestamp, what).toMatch(ISO_UTC);
        const missing = value === "";
        expect(body.error.code, what).toBe(missing ? "MISSING_API_KEY" : "INVALID_API_KEY");
        // The message is one of a few fixed texts, each naming what is wrong with the header
        // (whitespace, quotes, Bearer, capitals, length, unknown), never the header itself.
        messages.add(body.error.message.replace(/\d+/g, "N"));
        const baseline = missing ? missingBody : invalidBody;
        if (value.length >= 4 && !baseline.includes(value)) {
          expect(res.body.includes(value), what).toBe(false);
          expect(res.body.includes(JSON.stringify(value).slice(1, -1)), what).toBe(false);
        }
        for (const k of keys) {
          expect(res.body.includes(k), what).toBe(false);
          expect(res.body.includes(sha256(k)), what).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
    expect(messages.size).toBeLessThanOrEqual(10);
  });
});

describe("hostile bodies on both surfaces", () => {
  let h: Harness;
  let key = "";
  const keys: string[] = [];
  const passwords = [ADMIN.password, "reseller-one-password", "sentinel-subscriber-pw-1"];
  let serviceId = 0;
  let sentinelSub = 0;
  let targetSub = 0;
  let sentinelKey = { id: 0, key: "" };
  let targetKeyId = 0;
  let before: { sub: unknown; key: unknown; subs: number; keys: number } | null = null;

  const knownHashes = async () =>
    (await h.kg.database.db.selectFrom("api_keys").select("key_hash").execute()).map(
      (r) => r.key_hash,
    );

  /** No response may hold a key minted before it, any stored key hash, or a known password. */
  async function expectNoSecrets(res: LightMyRequestResponse, what: string, ownKey?: string) {
    for (const k of keys)
      if (k !== ownKey) expect(res.body.includes(k), `${what}: key`).toBe(false);
    for (const hash of await knownHashes())
      expect(res.body.includes(hash), `${what}: key hash`).toBe(false);
    for (const p of passwords) expect(res.body.includes(p), `${what}: password`).toBe(false);
  }

  async function snapshot() {
    const sub = await h.api("GET", `/api/subscribers/${sentinelSub}`, h.adminToken);
    expectStatus(sub, 200);
    const k = await h.api("GET", `/api/api-keys/${sentinelKey.id}`, h.adminToken);
    expectStatus(k, 200);
    const subs = await h.ext("GET", "/subscribers?per_page=1", key);
    expectStatus(subs, 200);
    return {
      sub: sub.json().data,
      key: k.json().data,
      subs: subs.json().meta.total as number,
      keys: (await knownHashes()).length,
    };
  }

  /** What was there before the run is still there, unchanged, and the key still works. */
  async function expectIntact() {
    const now = await snapshot();
    expect(now.sub).toEqual(before?.sub);
    // Last use moves with every check below; everything else about the key must not.
    const settled = (k: unknown) => ({ ...(k as object), last_used_at: 0, last_used_ip: 0 });
    expect(settled(now.key)).toEqual(settled(before?.key));
    expect(now.subs).toBeGreaterThanOrEqual(before?.subs ?? 0);
    expect(now.keys).toBeGreaterThanOrEqual(before?.keys ?? 0);
    const who = await h.ext("GET", "/whoami", sentinelKey.key);
    expectStatus(who, 200);
    // The reseller's password still works (from another IP: the login fuzzing spends this one's).
    const pw = await h.app.inject({
      method: "POST",
      url: "/api/auth/login",
      remoteAddress: "192.0.2.10",
      payload: { username: "reseller-one", password: "reseller-one-password" },
    });
    expectStatus(pw, 200);
  }

  beforeAll(async () => {
    h = await harness({ KEYGATE_FAILED_KEY_LIMIT: "0", KEYGATE_IP_RATE_LIMIT: "0" });
    serviceId = await h.service();
    const admin = await h.mint(h.adminToken, {
      scopes: "delete",
      rate_limit_per_minute: 1_000_000,
    });
    key = admin.key;
    keys.push(key);
    sentinelKey = await h.mint(h.adminToken, {
      name: "sentinel",
      scopes: "write",
      description: "must survive",
    });
    keys.push(sentinelKey.key);
    const target = await h.mint(h.adminToken, { name: "target" });
    keys.push(target.key);
    targetKeyId = target.id;
    const reseller = await h.api("POST", "/api/users", h.adminToken, {
      username: "reseller-one",
      password: "reseller-one-password",
      role: "reseller",
    });
    expectStatus(reseller, 201);
    for (const [name, into] of [
      ["sentinel-sub", (id: number) => (sentinelSub = id)],
      ["target-sub", (id: number) => (targetSub = id)],
    ] as const) {
      const res = await h.ext("POST", "/subscribers", key, {
        username: name,
        password: "sentinel-subscriber-pw-1",
        service_id: serviceId,
        full_name: `${name} full name`,
        email: `${name}@example.com`,
      });
      expectStatus(res, 201);
      into(res.json().data.id);
    }
    before = await snapshot();
  });
  afterAll(async () => {
    await h?.close();
  });

  const subscriber: Fields = {
    username: { ok: username, required: true },
    password: {
      ok: fc.oneof(fc.constant("auto-generate"), fitting(128, 4)),
      required: true,
    },
    service_id: { ok: fc.constantFrom(1, 1, 1, 2), required: true },
    full_name: { ok: fc.option(fitting(128)) },
    phone: { ok: fc.constantFrom("+1 (555) 010-2000", "555.010.2000", null) },
    email: { ok: fc.constantFrom("a@b.co", "o'brien@example.com", "%_@x.io", null) },
    status: { ok: fc.constantFrom("active", "suspended", "expired") },
    expiry_date: { ok: fc.constantFrom("2027-01-31", "2026-02-30", null) },
    owner_id: { ok: fc.constantFrom(1, 2, 2, 9) },
  };
  const subscriberPatch: Fields = Object.fromEntries(
    Object.entries(subscriber).map(([k, f]) => [k, { ok: f.ok }]),
  );

  type Target = {
    name: string;
    method: "POST" | "PUT";
    url: () => string;
    external: boolean;
    body: fc.Arbitrary<unknown>;
    runs: number;
  };

  const targets: Target[] = [
    {
      name: "external POST /subscribers",
      method: "POST",
      url: () => `${EXT}/subscribers`,
      external: true,
      body: bodyFor(subscriber),
      runs: 150,
    },
    {
      name: "external PUT /subscribers/:id",
      method: "PUT",
      url: () => `${EXT}/subscribers/${targetSub}`,
      external: true,
      body: bodyFor(subscriberPatch),
      runs: 150,
    },
    {
      name: "external POST /transactions",
      method: "POST",
      url: () => `${EXT}/transactions`,
      external: true,
      body: bodyFor({
        subscriber_id: { ok: fc.integer({ min: 1, max: 4 }), required: true },
        amount: { ok: money, required: true },
        currency: { ok: fc.constantFrom("USD", "EUR") },
        type: { ok: fc.constantFrom("payment", "refund", "adjustment") },
        reference: { ok: fitting(128) },
        description: { ok: fitting(500) },
      }),
      runs: 150,
    },
    {
      name: "POST /api/api-keys",
      method: "POST",
      url: () => "/api/api-keys",
      external: false,
      body: bodyFor({
        name: { ok: fitting(100) },
        scopes: { ok: scope },
        expires_at: { ok: expiry },
        description: { ok: fc.option(fitting(500)) },
        allowed_ips: { ok: allowedIps },
        rate_limit_per_minute: { ok: fc.option(fc.integer({ min: 1, max: 1_000_000 })) },
        owner_id: { ok: ownerId },
      }),
      runs: 150,
    },
    {
      name: "PUT /api/api-keys/:id",
      method: "PUT",
      url: () => `/api/api-keys/${targetKeyId}`,
      external: false,
      body: bodyFor({
        name: { ok: fitting(100) },
        scopes: { ok: scope },
        expires_at: { ok: expiry },
        description: { ok: fc.option(fitting(500)) },
        allowed_ips: { ok: allowedIps },
        rate_limit_per_minute: { ok: fc.option(fc.integer({ min: 1, max: 1_000_000 })) },
      }),
      runs: 150,
    },
    {
      name: "POST /api/users",
      method: "POST",
      url: () => "/api/users",
      external: false,
      body: bodyFor({
        username: { ok: username, required: true },
        password: { ok: fitting(1024, 8), required: true },
        role: { ok: fc.constantFrom("admin", "reseller"), required: true },
      }),
      runs: 100,
    },
    {
      name: "POST /api/services",
      method: "POST",
      url: () => "/api/services",
      external: false,
      body: bodyFor({
        name: { ok: fitting(128), required: true },
        download_kbps: { ok: fc.integer({ min: 0, max: 100_000_000 }) },
        upload_kbps: { ok: fc.integer({ min: 0, max: 100_000_000 }) },
        price: { ok: money },
        currency: { ok: fc.constantFrom("USD", "EUR") },
        duration_days: { ok: fc.integer({ min: 1, max: 3650 }) },
        is_active: { ok: fc.boolean() },
      }),
      runs: 150,
    },
    {
      name: "POST /api/auth/login",
      method: "POST",
      url: () => "/api/auth/login",
      external: false,
      body: bodyFor({
        username: {
          ok: fc.oneof(fc.constantFrom(ADMIN.username, "ghost"), fitting(128)),
          required: true,
        },
        password: { ok: fitting(1024), required: true },
      }),
      runs: 100,
    },
  ];

  for (const target of targets) {
    it(`${target.name}: never a 5xx, the surface's envelope, no secret shown, nothing else changed`, async () => {
      await fc.assert(
        fc.asyncProperty(target.body, async (body) => {
          const res = await h.app.inject({
            method: target.method,
            url: target.url(),
            headers: {
              "content-type": "application/json",
              ...(target.external
                ? { "x-api-key": key }
                : target.url() === "/api/auth/login"
                  ? {}
                  : { authorization: `Bearer ${h.adminToken}` }),
            },
            payload: JSON.stringify(body) ?? "null",
          });
          const what = `${target.name} ${JSON.stringify(body)?.slice(0, 200)}`;
          expectEnvelope(res, target.external, what);
          const minted = res.statusCode === 201 && target.url() === "/api/api-keys";
          const ownKey = minted ? (res.json().key as string) : undefined;
          await expectNoSecrets(res, what, ownKey);
          if (ownKey) keys.push(ownKey);
        }),
        { numRuns: target.runs },
      );
      await expectIntact();
    });
  }

  it("JSON with prototype-polluting keys is refused, and pollutes nothing", async () => {
    for (const payload of [
      '{"__proto__":{"polluted":true}}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      '{"username":"proto-user","password":"pw-pw-pw","service_id":1,"__proto__":{"isAdmin":true}}',
    ]) {
      for (const [url, external] of [
        [`${EXT}/subscribers`, true],
        ["/api/users", false],
      ] as const) {
        const res = await h.app.inject({
          method: "POST",
          url,
          headers: {
            "content-type": "application/json",
            ...(external ? { "x-api-key": key } : { authorization: `Bearer ${h.adminToken}` }),
          },
          payload,
        });
        expectEnvelope(res, external, `${url} ${payload}`);
        expect(res.statusCode).toBe(400);
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    await expectIntact();
  });
});

describe("raw invalid payloads", () => {
  let h: Harness;
  let key = "";

  beforeAll(async () => {
    h = await harness({ KEYGATE_FAILED_KEY_LIMIT: "0", KEYGATE_IP_RATE_LIMIT: "0" });
    key = (await h.mint(h.adminToken, { scopes: "delete" })).key;
  });
  afterAll(async () => {
    await h?.close();
  });

  const surfaces = () =>
    [
      { url: `${EXT}/subscribers`, external: true, auth: { "x-api-key": key } },
      { url: `${EXT}/transactions`, external: true, auth: { "x-api-key": key } },
      { url: "/api/users", external: false, auth: { authorization: `Bearer ${h.adminToken}` } },
      { url: "/api/auth/login", external: false, auth: {} as Record<string, string> },
    ] as const;

  const post = (url: string, headers: Record<string, string>, payload: string | Buffer) =>
    h.app.inject({ method: "POST", url, headers, payload });

  function expectCode(
    res: LightMyRequestResponse,
    external: boolean,
    status: number,
    code: string,
  ) {
    expectEnvelope(res, external, `${status} ${code}`);
    expect(res.statusCode).toBe(status);
    expect(external ? res.json().error.code : res.json().code).toBe(code);
  }

  it("malformed JSON is a 400 VALIDATION_ERROR", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom("{", "{bad json", '{"a":}', "[1,", "{'a':1}", '{"a":1}}', "\u0000"),
          fc.string({ minLength: 1 }).filter((s) => {
            try {
              JSON.parse(s);
              return false;
            } catch {
              return true;
            }
          }),
        ),
        async (payload) => {
          for (const s of surfaces()) {
            const res = await post(
              s.url,
              { ...s.auth, "content-type": "application/json" },
              payload,
            );
            expectCode(res, s.external, 400, "VALIDATION_ERROR");
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it("a body that is not JSON is a 415 UNSUPPORTED_MEDIA_TYPE", async () => {
    for (const type of [
      "application/xml",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "image/png",
    ]) {
      for (const s of surfaces()) {
        const res = await post(s.url, { ...s.auth, "content-type": type }, "a=1");
        expectCode(res, s.external, 415, "UNSUPPORTED_MEDIA_TYPE");
      }
    }
  });

  // Only JSON is read: a text/plain body is refused as a media type, not as a bad value.
  it("a text/plain body is a 415 UNSUPPORTED_MEDIA_TYPE", async () => {
    for (const s of surfaces()) {
      const res = await post(s.url, { ...s.auth, "content-type": "text/plain" }, '{"a":1}');
      expectCode(res, s.external, 415, "UNSUPPORTED_MEDIA_TYPE");
    }
  });

  it("a body over 1 MiB is a 413 PAYLOAD_TOO_LARGE", async () => {
    const big = JSON.stringify({ username: "x".repeat(1024 * 1024) });
    for (const s of surfaces()) {
      const res = await post(s.url, { ...s.auth, "content-type": "application/json" }, big);
      expectCode(res, s.external, 413, "PAYLOAD_TOO_LARGE");
    }
    // Just under the limit is read (and then judged on its fields).
    const fits = JSON.stringify({ description: "x".repeat(1024 * 1024 - 100) });
    const res = await post(
      `${EXT}/transactions`,
      { "x-api-key": key, "content-type": "application/json" },
      fits,
    );
    expectCode(res, true, 400, "VALIDATION_ERROR");
  });
});

describe("?search= matches literally", () => {
  let h: Harness;
  let key = "";
  /** Every subscriber's searchable text, by username. */
  const made = new Map<string, string[]>();

  beforeAll(async () => {
    h = await harness({ KEYGATE_FAILED_KEY_LIMIT: "0", KEYGATE_IP_RATE_LIMIT: "0" });
    const serviceId = await h.service();
    key = (await h.mint(h.adminToken, { scopes: "delete", rate_limit_per_minute: 100_000 })).key;
    const create = async (username: string, full_name: string | null) => {
      const res = await h.ext("POST", "/subscribers", key, {
        username,
        password: "subscriber-pw",
        service_id: serviceId,
        full_name,
      });
      expectStatus(res, 201);
      made.set(username, [username, full_name ?? ""]);
    };
    await create("a_b", null);
    await create("axb", null);
    // Names over a small alphabet rich in LIKE metacharacters, so searches often hit.
    const names = fc
      .sample(fc.string({ unit: fc.constantFrom(..."ab%_\\xA"), maxLength: 8 }), {
        numRuns: 40,
        seed: 42,
      })
      // Kept clear of the two names the first test is about.
      .filter((n) => !/a_b|axb/i.test(n));
    let i = 0;
    for (const name of names) await create(`sub-${i++}`, name);
  });
  afterAll(async () => {
    await h?.close();
  });

  async function search(s: string): Promise<string[]> {
    const res = await h.ext(
      "GET",
      `/subscribers?per_page=500&search=${encodeURIComponent(s)}`,
      key,
    );
    expectStatus(res, 200);
    return (res.json().data as { username: string }[]).map((r) => r.username).sort();
  }

  it('"a_b" finds a_b and not axb', async () => {
    expect(await search("a_b")).toEqual(["a_b"]);
    expect(await search("a%b")).not.toContain("axb");
    expect(await search("_")).toEqual(
      [...made]
        .filter(([, texts]) => texts.some((t) => t.includes("_")))
        .map(([u]) => u)
        .sort(),
    );
  });

  it("any search over %, _ and \\ returns exactly the case-insensitive substring matches", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom(..."ab%_\\xAB"), minLength: 1, maxLength: 4 }),
        async (s) => {
          const want = [...made]
            .filter(([, texts]) => texts.some((t) => t.toLowerCase().includes(s.toLowerCase())))
            .map(([u]) => u)
            .sort();
          expect(await search(s), JSON.stringify(s)).toEqual(want);
        },
      ),
      { numRuns: 150 },
    );
  });

  // Search folds case across Unicode on SQLite too, as it does on PostgreSQL.
  it("a non-ASCII name is found by searching for itself", async () => {
    const res = await h.ext("POST", "/subscribers", key, {
      username: "emile",
      password: "subscriber-pw",
      service_id: 1,
      full_name: "Émile Zola",
    });
    expectStatus(res, 201);
    expect(await search("Émile")).toEqual(["emile"]);
  });
});
