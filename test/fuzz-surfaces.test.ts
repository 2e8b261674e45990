import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../src/errors.js";
import { ADMIN, expectStatus, type Harness, harness } from "./helpers.js";

/**
 * Hostile requests over every operation of both surfaces: wrong types in every body field,
 * hostile and repeated query parameters, odd content types, methods a path does not take,
 * odd ids, credentials and request ids in odd shapes. Whatever arrives, the answer is
 * never a 5xx, is JSON in the envelope of its surface with a catalogue code, shows no
 * secret, and leaves the records it was not aimed at as they were. test/property.test.ts
 * fuzzes key headers and a few routes' bodies; test/hardening.test.ts garbage path
 * parameters and nesting: this file covers the rest of the surface.
 */

const EXT = "/api/v1/external";
const KNOWN_CODES = new Set(Object.keys(ERROR_STATUS));
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;
const MASTER_KEY = randomBytes(32).toString("hex");
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

type Method = "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" | "HEAD";
type Op = {
  method: Method;
  path: string;
  external: boolean;
  /** The OAuth endpoints answer RFC 6749 bodies, not an envelope. */
  oauth: boolean;
  query: string[];
  params: string[];
  /** The top-level fields of a JSON body, when the operation takes one. */
  fields: string[] | null;
  /** Needs no credential (sign-in, refresh, health, the documents). */
  open: boolean;
};

/** Every operation of the served OpenAPI document. */
function operations(h: Harness): Op[] {
  const doc = h.app.swagger() as unknown as {
    paths: Record<string, Record<string, Record<string, unknown>>>;
  };
  const ops: Op[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const params = (op.parameters ?? []) as { in?: string; name?: string }[];
      const body = op.requestBody as
        { content?: Record<string, { schema?: { properties?: object } }> } | undefined;
      const schema = body?.content?.["application/json"]?.schema;
      ops.push({
        method: method.toUpperCase() as Method,
        path,
        external: path.startsWith(EXT),
        oauth: ((op.tags as string[] | undefined) ?? []).includes("oauth"),
        query: params.filter((p) => p.in === "query").map((p) => p.name as string),
        params: params.filter((p) => p.in === "path").map((p) => p.name as string),
        fields: body ? Object.keys(schema?.properties ?? {}) : null,
        open: Array.isArray(op.security) && (op.security as unknown[]).length === 0,
      });
    }
  }
  return ops;
}

/** Values of every JSON type and of every shape a careless parser mishandles. */
const WRONG_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  -0.000001,
  1e308,
  -1e308,
  2 ** 53 + 1,
  "",
  " ",
  "NaN",
  "-1",
  "1e3",
  "0x10",
  "Infinity",
  "9999999999999999999",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "😀👩‍👩‍👧",
  "\u202e",
  "x".repeat(20_000),
  [],
  [1, 2],
  ["read"],
  [null],
  {},
  { a: 1 },
  { $gt: "" },
  { __proto__: null, toString: 1 },
];

/** JSON number literals JSON.parse turns into values no integer check expects. */
const RAW_NUMBERS = ["1e400", "-1e400", "9999999999999999999", "1E-400", "-0", "0.1e1", "1e2"];

/** Query values: hostile text, numbers in odd notations, broken and over-long escapes. */
const QUERY_VALUES = [
  "",
  "-1",
  "0",
  "1e3",
  "0x10",
  "9999999999999999999",
  "1.5",
  "NaN",
  "Infinity",
  "%",
  "%zz",
  "%ff",
  "%c0%af",
  "%00",
  "%E2%80%AE",
  "%uD800",
  "%ED%A0%80",
  "true",
  "null",
  "[]",
  "{}",
  "2026-02-30",
  "2026-01-01T00:00:00Z",
  "9999-12-31T23:59:59Z",
  "-271821-04-20",
  "+275760-09-13",
  "hour",
  "day",
  "test",
  "live",
  "newest",
  "oldest",
  "'%20OR%201=1--",
  "x".repeat(3_000),
  "%F0%9F%98%80",
];

/** What may replace a path id or username. */
const IDS = [
  "1",
  "0",
  "-1",
  "-0",
  "+1",
  "1e3",
  "0x10",
  "0b1",
  "1.0",
  "1.",
  "01",
  "%201",
  "1%20",
  "1%00",
  "9999999999999999999",
  "2147483648",
  "9007199254740993",
  "NaN",
  "Infinity",
  "null",
  "%E2%80%AE1",
  "%F0%9F%98%80",
  "a.b",
  "..",
  ".",
  "%2e%2e",
  "%2F",
];

const METHODS: Method[] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];

describe("fuzzing both surfaces", () => {
  let h: Harness;
  let ops: Op[] = [];
  let key = "";
  let keyId = 0;
  let readKey = "";
  let revokedKey = "";
  let signed = { key: "", secret: "", id: 0 };
  let serviceId = 0;
  /** Records the fuzzing aims at: a reseller's, with its own key, and a user to change. */
  const victim = { token: "", keyId: 0, subscriber: 0, user: 0, nas: 0, leaverToken: "" };
  /** Records nothing may change. */
  const sentinel = { subscriber: 0, key: 0, user: 0 };
  let before: unknown = null;
  /** Everything no answer may show once created: keys, their hashes, secrets, passwords. */
  const secrets: string[] = [];
  const findings = new Set<string>();

  const fill = (path: string, value: (name: string) => string) =>
    path.replace(/\{([a-z_]+)\}/g, (_, name: string) => value(name));
  /** The id an operation's path is filled with: the victim's record of its kind. */
  const idFor = (path: string) => (name: string) => {
    if (name === "username") return "victim-sub";
    if (name !== "id") return "1";
    if (path.includes("/api-keys/")) return String(victim.keyId);
    if (path.includes("/users/")) return String(victim.user);
    if (path.includes("/subscribers/")) return String(victim.subscriber);
    if (path.includes("/services/")) return String(serviceId);
    if (path.includes("/nas/")) return String(victim.nas);
    return "1";
  };
  const fillFor = (op: { path: string }) => fill(op.path, idFor(op.path));

  /** Records whatever is wrong with an answer; each test ends by expecting none. */
  function check(
    res: LightMyRequestResponse,
    op: { external: boolean; oauth?: boolean },
    what: string,
  ) {
    const note = (problem: string) =>
      findings.add(`${what} → ${res.statusCode}: ${problem}: ${res.body.slice(0, 240)}`);
    if (res.statusCode >= 500) note("server error");
    for (const s of secrets) {
      if (res.body.includes(s)) note(`body shows a secret (${s.slice(0, 12)})`);
      for (const [name, v] of Object.entries(res.headers))
        if (String(v).includes(s)) note(`header ${name} shows a secret`);
    }
    const rid = res.headers["x-request-id"];
    if (typeof rid !== "string" || !/^[\w.:@/+=-]{1,128}$/.test(rid))
      note(`X-Request-Id ${JSON.stringify(rid)}`);
    if (res.statusCode < 400) return;
    if (!/^application\/json/.test(String(res.headers["content-type"])))
      return note(`content-type ${res.headers["content-type"]}`);
    let body: Record<string, unknown>;
    try {
      body = res.json();
    } catch {
      return note("body is not JSON");
    }
    if (op.oauth && typeof body.error === "string") return;
    if (body.success !== false) note("success is not false");
    let code: unknown;
    if (op.external) {
      if (Object.keys(body).sort().join() !== "error,success,timestamp")
        note("not the structured envelope");
      if (typeof body.timestamp !== "string" || !ISO_UTC.test(body.timestamp)) note("timestamp");
      const error = (body.error ?? {}) as Record<string, unknown>;
      if (typeof error.message !== "string") note("error.message");
      code = error.code;
    } else {
      if ("error" in body) note("not the flat envelope");
      if (typeof body.message !== "string") note("message");
      code = body.code;
    }
    if (!KNOWN_CODES.has(code as string)) note(`unknown code ${String(code)}`);
    else if (ERROR_STATUS[code as keyof typeof ERROR_STATUS] !== res.statusCode)
      note(`code ${String(code)} with status ${res.statusCode}`);
  }

  /**
   * Credentials an operation is called with: the delete key outside, the reseller's token for
   * what it may manage itself (its keys, its sessions), a throwaway user's for logging out,
   * else the admin's.
   */
  const auth = (op: Pick<Op, "external" | "path">): Record<string, string> => {
    if (op.external) return { "x-api-key": key };
    if (op.path === "/api/auth/logout") return { authorization: `Bearer ${victim.leaverToken}` };
    if (/^\/api\/(auth\/2fa|api-keys|webhooks|alerts)/.test(op.path))
      return { authorization: `Bearer ${victim.token}` };
    return { authorization: `Bearer ${h.adminToken}` };
  };

  const send = (
    op: { method: string },
    url: string,
    headers: Record<string, string | string[]>,
    payload?: string | Buffer,
  ) =>
    h.app.inject({
      method: op.method as "GET",
      url,
      headers,
      ...(payload === undefined ? {} : { payload }),
    });

  /** Two reads of one record, but for what a read itself moves (a key's last use). */
  const sameRecord = (a: Record<string, unknown>, b: Record<string, unknown>) => {
    const settled = (r: Record<string, unknown>) => ({ ...r, last_used_at: 0, last_used_ip: 0 });
    return JSON.stringify(settled(a)) === JSON.stringify(settled(b));
  };

  /** The records nothing here may change, read as the admin. */
  async function snapshot() {
    const read = async (url: string) => {
      const res = await h.api("GET", url, h.adminToken);
      expectStatus(res, 200);
      return res.json().data;
    };
    const key = (await read(`/api/api-keys/${sentinel.key}`)) as Record<string, unknown>;
    const users = (await read("/api/users")) as { id: number }[];
    return {
      subscriber: await read(`/api/subscribers/${sentinel.subscriber}`),
      key: { ...key, last_used_at: null, last_used_ip: null },
      user: users.find((u) => u.id === sentinel.user),
    };
  }

  beforeAll(async () => {
    h = await harness({
      KEYGATE_FAILED_KEY_LIMIT: "0",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_KEY_RATE_LIMIT: "1000000",
      KEYGATE_MASTER_KEY: MASTER_KEY,
      KEYGATE_SELF_SERVICE_KEYS: "true",
    });
    ops = operations(h);
    serviceId = await h.service();
    // Id 1 of keys and subscribers is a throwaway: odd ids such as "01" or "1.0" may reach it.
    await h.mint(h.adminToken, { name: "throwaway" });
    ({ key, id: keyId } = await h.mint(h.adminToken, { name: "fuzz", scopes: "delete" }));
    const sub = (username: string) =>
      h.ext("POST", "/subscribers", key, {
        username,
        password: "sentinel-subscriber-pw-1",
        service_id: serviceId,
        full_name: username,
      });
    expectStatus(await sub("throwaway-sub"), 201);
    readKey = (await h.mint(h.adminToken, { name: "reader", scopes: "read" })).key;
    const revoked = await h.mint(h.adminToken, { name: "revoked" });
    revokedKey = revoked.key;
    expectStatus(await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken), 200);
    const signedRes = await h.api("POST", "/api/api-keys", h.adminToken, {
      name: "signed",
      signing: "optional",
    });
    expectStatus(signedRes, 201);
    signed = {
      key: signedRes.json().key,
      secret: signedRes.json().signing_secret,
      id: signedRes.json().data.id,
    };
    const sentinelKey = await h.mint(h.adminToken, {
      name: "sentinel",
      scopes: "write",
      description: "must survive",
      allowed_ips: ["10.0.0.0/8"],
    });
    sentinel.key = sentinelKey.id;
    sentinel.user = (await h.user("fuzz-sentinel")).id;
    const reseller = await h.user("fuzz-reseller");
    victim.token = reseller.token;
    const victimKey = await h.mint(reseller.token, { name: "victim" });
    victim.keyId = victimKey.id;
    victim.user = (await h.user("fuzz-changed")).id;
    victim.leaverToken = (await h.user("fuzz-leaver")).token;
    const made = await sub("sentinel-sub");
    expectStatus(made, 201);
    sentinel.subscriber = made.json().data.id;
    const target = await sub("victim-sub");
    expectStatus(target, 201);
    victim.subscriber = target.json().data.id;
    const nas = await h.api("POST", "/api/nas", h.adminToken, {
      name: "nas-1",
      ip_address: "192.0.2.1",
      secret: "nas-shared-secret-1",
    });
    expectStatus(nas, 201);
    victim.nas = nas.json().data.id;
    for (const k of [key, readKey, revokedKey, signed.key, sentinelKey.key, victimKey.key])
      secrets.push(k, sha256(k), k.slice(8));
    secrets.push(
      signed.secret,
      ADMIN.password,
      "fuzz-reseller-password",
      "fuzz-sentinel-password",
      "sentinel-subscriber-pw-1",
      "nas-shared-secret-1",
    );
    before = await snapshot();
  });
  afterAll(async () => {
    await h?.close();
  });
  beforeEach(() => findings.clear());

  it("finds the operations it fuzzes", () => {
    expect(ops.filter((o) => o.fields).length).toBeGreaterThan(20);
    expect(ops.filter((o) => o.query.length).length).toBeGreaterThan(8);
    expect(ops.filter((o) => o.external).length).toBeGreaterThan(15);
  });

  it("a wrong type in any body field of any operation", async () => {
    const bodyOps = ops.filter((o) => o.fields && o.fields.length > 0);
    const value = fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...WRONG_VALUES) },
      { weight: 2, arbitrary: fc.constantFrom(...RAW_NUMBERS).map((raw) => ({ raw })) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
      { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...bodyOps),
        fc.array(fc.tuple(fc.nat(), value), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (op, picks, asReseller) => {
          const fields = op.fields as string[];
          const raws: string[] = [];
          const body: Record<string, unknown> = {};
          for (const [i, v] of picks) {
            const name = fields[i % fields.length] as string;
            if (v && typeof v === "object" && "raw" in v) {
              body[name] = `@@RAW${raws.length}@@`;
              raws.push((v as { raw: string }).raw);
            } else body[name] = v;
          }
          let payload = JSON.stringify(body);
          raws.forEach((raw, i) => (payload = payload.replace(`"@@RAW${i}@@"`, raw)));
          const headers = {
            "content-type": "application/json",
            ...(asReseller && !op.external
              ? { authorization: `Bearer ${victim.token}` }
              : op.open
                ? {}
                : auth(op)),
          };
          const url = fillFor(op);
          // A change that is refused changes nothing: the record reads the same afterwards.
          const record = op.method === "PUT" ? () => send({ method: "GET" }, url, headers) : null;
          const earlier = record ? await record() : null;
          const res = await send(op, url, headers, payload);
          check(res, op, `${op.method} ${url} ${payload.slice(0, 160)}`);
          if (record && earlier?.statusCode === 200 && res.statusCode >= 400) {
            const later = await record();
            if (later.statusCode !== 200 || !sameRecord(earlier.json().data, later.json().data))
              findings.add(
                `${op.method} ${url} ${payload.slice(0, 160)} → ${res.statusCode} yet changed the record`,
              );
          }
        },
      ),
      { numRuns: 150 },
    );
    expect([...findings]).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it("a change refused for one field stores none of the others", async () => {
    // A valid change beside one the schema lets through but the route must refuse.
    const cases: { path: string; external?: boolean; good: object[]; bad: object[] }[] = [
      {
        path: `/api/subscribers/${victim.subscriber}`,
        good: [{ full_name: "changed" }, { email: "changed@example.com" }, { status: "expired" }],
        bad: [
          { service_id: 999_999 },
          { username: "sentinel-sub" },
          { expiry_date: "2026-02-30" },
          { owner_id: 999_999 },
          { password: "" },
        ],
      },
      {
        path: `/subscribers/${victim.subscriber}`,
        external: true,
        good: [{ full_name: "changed" }, { phone: "+1 555 0100" }],
        bad: [{ service_id: 999_999 }, { username: "sentinel-sub" }, { expiry_date: "2026-13-01" }],
      },
      {
        path: `/api/api-keys/${victim.keyId}`,
        good: [{ name: "changed" }, { description: "changed" }, { rate_limit_per_minute: 7 }],
        bad: [
          { allowed_ips: ["10.0.0.1/8"] },
          { expires_at: "2000-01-01" },
          { permissions: ["nas:read"] },
          { owner_id: 1 },
          { scopes: "write", permissions: ["*:read"] },
          { quota: { limit: 10, period: "fortnight" } },
        ],
      },
      {
        path: `/api/users/${victim.user}`,
        good: [{ role: "admin" }, { disabled: true }],
        bad: [{ password: "short" }, { role: "root" }],
      },
      {
        path: `/api/services/${serviceId}`,
        good: [{ name: "changed" }, { upload_kbps: 1 }],
        bad: [{ price: "-5" }, { price: "1.234" }, { currency: "dollars" }],
      },
      {
        path: `/api/nas/${victim.nas}`,
        good: [{ name: "changed" }, { description: "changed" }],
        bad: [{ ip_address: "300.1.1.1" }, { type: 7 }],
      },
    ];
    for (const c of cases) {
      const headers = c.external
        ? { "x-api-key": key }
        : auth({ external: false, path: c.path } as Op);
      const url = c.external ? `${EXT}${c.path}` : c.path;
      // Users have no read of one: find it in the list.
      const listed = url.startsWith("/api/users/");
      const read = async () => {
        const res = await send({ method: "GET" }, listed ? "/api/users" : url, headers);
        expectStatus(res, 200);
        const data = res.json().data;
        return (
          listed ? (data as { id: number }[]).find((u) => u.id === victim.user) : data
        ) as Record<string, unknown>;
      };
      const earlier = await read();
      for (const good of c.good) {
        for (const bad of c.bad) {
          const payload = JSON.stringify({ ...good, ...bad });
          const res = await send(
            { method: "PUT" },
            url,
            { ...headers, "content-type": "application/json" },
            payload,
          );
          check(res, { external: !!c.external }, `PUT ${url} ${payload}`);
          if (res.statusCode < 400)
            findings.add(`PUT ${url} ${payload} → ${res.statusCode}, accepted`);
          if (!sameRecord(earlier, await read()))
            findings.add(`PUT ${url} ${payload} → ${res.statusCode} yet changed the record`);
        }
      }
    }
    expect([...findings]).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it("hostile, repeated and array query parameters on every operation that reads a query", async () => {
    const queryOps = ops.filter((o) => o.query.length > 0 || (o.method === "GET" && !o.oauth));
    const pair = (names: string[]) =>
      fc.tuple(
        fc.oneof(
          { weight: 6, arbitrary: fc.constantFrom(...names) },
          { weight: 1, arbitrary: fc.constantFrom("page", "limit", "__proto__", "constructor") },
          { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
        ),
        fc.oneof(
          { weight: 6, arbitrary: fc.constant("") },
          { weight: 1, arbitrary: fc.constantFrom("[]", "[0]", "[a]", "[__proto__]", ".x", "%00") },
        ),
        fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom(...QUERY_VALUES) },
          {
            weight: 1,
            arbitrary: fc.string({ unit: "binary", maxLength: 20 }).map(encodeURIComponent),
          },
          { weight: 1, arbitrary: fc.integer().map(String) },
        ),
      );
    const request = fc
      .constantFrom(...queryOps)
      .chain((op) =>
        fc.tuple(
          fc.constant(op),
          fc.array(pair(op.query.length ? op.query : ["q"]), { minLength: 1, maxLength: 6 }),
          fc.boolean(),
          fc.boolean(),
        ),
      );
    await fc.assert(
      fc.asyncProperty(request, async ([op, pairs, repeat, withKey]) => {
        const parts = pairs.map(([n, suffix, v]) => `${encodeURIComponent(n)}${suffix}=${v}`);
        // The same name twice: a parser hands the route an array.
        if (repeat) parts.push(parts[0] as string);
        const url = `${fillFor(op)}?${parts.join("&")}`;
        const headers = op.open ? {} : withKey || op.external ? auth(op) : {};
        const res = await send({ method: "GET" }, url, headers);
        check(res, op, `GET ${url.slice(0, 200)}`);
      }),
      { numRuns: 150 },
    );
    expect([...findings]).toEqual([]);
  });

  it("odd ids in every path parameter, and odd paths", async () => {
    const paramOps = ops.filter((o) => o.params.length > 0);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paramOps),
        fc.constantFrom(...IDS),
        fc.constantFrom("", "/", "//", "?", "#x", ";x", "/.", "%2F"),
        async (op, id, tail) => {
          const url = `${fill(op.path, () => id)}${tail}`;
          const res = await send(op, url, op.open ? {} : auth(op), op.fields ? "{}" : undefined);
          check(res, op, `${op.method} ${url}`);
          // An id in any notation but decimal digits addresses no record (dot segments are
          // resolved before routing: `/api/nas/.` is the list).
          const decimal = /^([0-9]+|\.{1,2})$/.test(decodeURIComponent(id));
          if (!op.params.includes("username") && ["", "?", "#x"].includes(tail) && !decimal)
            if (res.statusCode < 300 || res.statusCode === 409)
              findings.add(`${op.method} ${url} → ${res.statusCode}: a non-decimal id was read`);
        },
      ),
      { numRuns: 150 },
    );
    for (const url of [
      "/api//subscribers",
      "/api/subscribers/",
      `${EXT}//whoami`,
      `${EXT}/whoami/`,
      `${EXT}/./whoami`,
      `${EXT}/subscribers/../whoami`,
      `${EXT}%2Fwhoami`,
      "/api/%2e%2e/api/users",
      "/api/v1/external",
      "/api/v1/externalx",
      "/api",
    ]) {
      for (const headers of [auth({ external: true } as Op), auth({ external: false } as Op)]) {
        const res = await send({ method: "GET" }, url, headers);
        // A path under /api/v<n>/ is taken as aimed at the external surface (an old prefix).
        check(res, { external: /^\/api\/v\d/.test(url) }, `GET ${url}`);
      }
    }
    expect([...findings]).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it("a hexadecimal, binary or exponent id is refused, not read as the record it evaluates to", async () => {
    const made = await h.ext("POST", "/subscribers", key, {
      username: "notation-sub",
      password: "auto-generate",
      service_id: serviceId,
    });
    expectStatus(made, 201);
    const id = made.json().data.id as number;
    for (const written of [
      `0x${id.toString(16)}`,
      `0b${id.toString(2)}`,
      `${id}e0`,
      `${id}.0`,
      `%20${id}`,
      `+${id}`,
    ]) {
      for (const [what, res, external] of [
        ["external DELETE", await h.ext("DELETE", `/subscribers/${written}`, key), true],
        ["external suspend", await h.ext("POST", `/subscribers/${written}/suspend`, key), true],
        ["GET", await h.api("GET", `/api/subscribers/${written}`, h.adminToken), false],
        ["DELETE", await h.api("DELETE", `/api/subscribers/${written}`, h.adminToken), false],
        ["key DELETE", await h.api("DELETE", `/api/api-keys/${written}`, h.adminToken), false],
      ] as const) {
        expect(res.statusCode, `${what} ${written}: ${res.body}`).toBe(400);
        const body = res.json();
        expect(external ? body.error.code : body.code, what).toBe("VALIDATION_ERROR");
        expect(external ? body.error.details : body.details, what).toEqual([
          { field: "id", message: expect.stringMatching(/decimal digits/) },
        ]);
      }
    }
    const still = await h.api("GET", `/api/subscribers/${id}`, h.adminToken);
    expectStatus(still, 200);
    expect(still.json().data.status).toBe("active");
    // Decimal ids still work, leading zeros included.
    expectStatus(await h.ext("GET", `/subscribers/${String(id).padStart(3, "0")}`, key), 200);
    // A query's whole numbers too: no other notation reads as a number.
    for (const [url, field] of [
      [`/transactions?subscriber_id=0x${id.toString(16)}`, "subscriber_id"],
      ["/subscribers?page=1e1", "page"],
      ["/subscribers?page=1&page=0x2", "page"],
    ] as const) {
      const res = await h.ext("GET", url, key);
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
      expect(res.json().error.details).toEqual([
        { field, message: expect.stringMatching(/decimal digits/) },
      ]);
    }
    expectStatus(await h.ext("GET", `/transactions?subscriber_id=${id}`, key), 200);
    expectStatus(await h.api("GET", "/api/subscribers?page=2", h.adminToken), 200);
  });

  it("a NUL in a field name is written out in the refusal, and the call log keeps the call", async () => {
    const basic = Buffer.from(`a%00b:${key}`).toString("base64");
    const answers = [
      [await h.ext("GET", "/subscribers?%00=1", key), "error"],
      [await h.ext("GET", "/transactions?from[a%00]=1", key), "error"],
      [await h.api("GET", "/api/subscribers?a%00b=1", h.adminToken), "message"],
      [
        await h.app.inject({
          method: "POST",
          url: `${EXT}/oauth/token`,
          headers: {
            authorization: `Basic ${basic}`,
            "content-type": "application/x-www-form-urlencoded",
          },
          payload: "grant_type=client_credentials",
        }),
        "error_description",
      ],
    ] as const;
    for (const [res, where] of answers) {
      const body = res.json();
      const text = where === "error" ? body.error.message : body[where];
      expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, res.body).toBeLessThan(500);
      expect(text, res.body).toContain("\\u0000");
      expect(res.body.includes("\\u0000\\u0000"), res.body).toBe(false);
      expect(JSON.stringify(body).includes("\u0000"), res.body).toBe(false);
    }
    // The batch holding these calls is written (PostgreSQL refused text holding NUL).
    await h.kg.callLog.flush();
    const logs = await h.api("GET", `/api/api-keys/${keyId}/logs?limit=20`, h.adminToken);
    expectStatus(logs, 200);
    const messages = (logs.json().data as { message: string | null }[]).map((l) => l.message ?? "");
    expect(messages.filter((m) => m.includes("\\u0000")).length).toBeGreaterThanOrEqual(3);
  });

  it("methods a path does not take answer 405 with Allow, or 404", async () => {
    const byPath = new Map<string, Set<string>>();
    for (const op of ops) {
      const set = byPath.get(op.path) ?? new Set<string>();
      set.add(op.method);
      byPath.set(op.path, set);
    }
    const pattern = (path: string) => new RegExp(`^${path.replace(/\{[a-z_]+\}/g, "[^/]+")}$`);
    /** Whether some operation takes this method on this concrete path (`/api/api-keys/stats` is also `/api/api-keys/{id}`). */
    const served = (method: string, url: string) =>
      ops.some(
        (o) =>
          (o.method === method || (method === "HEAD" && o.method === "GET")) &&
          pattern(o.path).test(url),
      );
    for (const path of byPath.keys()) {
      const op = { external: path.startsWith(EXT), path, oauth: false } as Op;
      for (const method of METHODS) {
        const url = fill(path, idFor(path));
        if (served(method, url)) continue;
        const bodyless = method === "GET" || method === "HEAD" || method === "OPTIONS";
        const res = await send(
          { method },
          url,
          { ...auth(op), ...(bodyless ? {} : { "content-type": "application/json" }) },
          bodyless ? undefined : "{}",
        );
        const what = `${method} ${url}`;
        if (method === "HEAD") {
          if (res.statusCode >= 500) findings.add(`${what} → ${res.statusCode}`);
          continue;
        }
        check(res, op, what);
        if (res.statusCode === 405 && typeof res.headers.allow !== "string")
          findings.add(`${what}: 405 without Allow`);
        if (![404, 405].includes(res.statusCode) && !(method === "OPTIONS" && res.statusCode < 300))
          findings.add(`${what} → ${res.statusCode}: ${res.body.slice(0, 200)}`);
      }
    }
    expect([...findings]).toEqual([]);
  });

  it("odd content types and bodies on every operation that takes a body", async () => {
    const bodyOps = ops.filter((o) => o.fields);
    const boundary = "----fuzz";
    const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--${boundary}--\r\n`;
    const kinds: [string | undefined, string | Buffer | undefined][] = [
      [undefined, undefined],
      [undefined, '{"name":"x"}'],
      ["text/plain", '{"name":"x"}'],
      ["text/plain; charset=utf-8", "name=x"],
      [`multipart/form-data; boundary=${boundary}`, multipart],
      ["multipart/form-data", multipart],
      ["application/x-www-form-urlencoded", "name=x&name=y"],
      ["application/json; charset=utf-8", "{}"],
      ["application/json; charset=UTF-16", "{}"],
      ["application/json; charset=latin1", '{"name":"\xe9"}'],
      ['application/json; charset="utf-8"', "{}"],
      ["APPLICATION/JSON", "{}"],
      ["application/json;", "{}"],
      ["application/json ; charset=utf-8", "{}"],
      ["application/json", ""],
      ["application/json", " "],
      ["application/json", "null"],
      ["application/json", "[]"],
      ["application/json", "[{}]"],
      ["application/json", '"text"'],
      ["application/json", "1e400"],
      ["application/json", "true"],
      ["application/json", "\ufeff{}"],
      ["application/json", Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00])],
      ["application/json", Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d])],
      [
        "application/json",
        `{${Array.from({ length: 5_000 }, (_, i) => `"f${i}":${i}`).join(",")}}`,
      ],
      ["application/json", `[${"0,".repeat(100_000)}0]`],
      ["application/json", '{"name":"a","name":"b","name":{"x":1}}'],
      ["application/json", '{"a":"\\u0000","b":"\\ud800"}'],
      ["application/json-patch+json", "[]"],
      ["application/vnd.api+json", "{}"],
      ["application/jsonx", "{}"],
      ["", "{}"],
      [" ", "{}"],
      [";", "{}"],
      ["*/*", "{}"],
      ["application/octet-stream", Buffer.from([0, 1, 2])],
    ];
    // Each operation gets a rotating fifth of the kinds, so every kind meets some eight
    // operations of both surfaces and the file stays quick.
    for (const [n, op] of bodyOps.entries()) {
      const url = fillFor(op);
      for (const [type, payload] of kinds.filter((_, i) => (i + n) % 5 === 0)) {
        const headers: Record<string, string> = op.open ? {} : auth(op);
        if (type !== undefined) headers["content-type"] = type;
        const res = await send(op, url, headers, payload);
        check(res, op, `${op.method} ${url} as ${type} ${String(payload).slice(0, 60)}`);
      }
    }
    expect([...findings]).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it("keys, tokens and request ids in odd shapes", async () => {
    const bearer = `Bearer ${h.adminToken}`;
    const external: Record<string, string | string[]>[] = [
      { "x-api-key": [key, key] },
      { "x-api-key": [key, "nope"] },
      { "x-api-key": ["nope", key] },
      { "x-api-key": "" },
      { "x-api-key": "   " },
      { "x-api-key": ` ${key}` },
      { "x-api-key": `${key} ` },
      { "x-api-key": `${key},${key}` },
      { "x-api-key": `${key}\t` },
      { "x-api-key": revokedKey },
      { "x-api-key": readKey, authorization: bearer },
      { "x-api-key": key, authorization: "Bearer nonsense" },
      { authorization: `Bearer ${key}` },
      { authorization: `bearer ${key}` },
      { authorization: `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}` },
      { authorization: "Basic %%%" },
      { authorization: "Bearer" },
      { authorization: "Bearer " },
      { authorization: `Bearer ${"a".repeat(8_000)}` },
      { authorization: "Bearer a.b.c" },
      { authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0." },
      { authorization: ["Bearer a", "Bearer b"] },
      { "x-api-key": key, "keygate-environment": "test" },
      { "x-api-key": key, "keygate-environment": "staging" },
      { "x-api-key": key, "keygate-environment": ["live", "test"] },
      { "x-api-key": key, signature: "sig1=:AAAA:", "signature-input": "sig1=()" },
      { "x-api-key": signed.key, signature: "garbage", "signature-input": "garbage" },
      { "x-api-key": signed.key, "signature-input": 'sig1=("@method");keyid="x";created=1e400' },
      { "x-api-key": key, "content-digest": "sha-256=:x:" },
      { "x-api-key": key, "x-forwarded-for": "1.2.3.4, ::1, garbage" },
    ];
    const panel: Record<string, string | string[]>[] = [
      { authorization: "" },
      { authorization: "Bearer" },
      { authorization: `bearer ${h.adminToken}` },
      { authorization: `Bearer  ${h.adminToken}` },
      { authorization: `Bearer ${h.adminToken} extra` },
      { authorization: `Token ${h.adminToken}` },
      { authorization: [bearer, bearer] },
      { authorization: `Bearer ${key}` },
      { authorization: `Basic ${Buffer.from("admin:x").toString("base64")}` },
      { authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwicm9sZSI6ImFkbWluIn0." },
      { authorization: `Bearer ${h.adminToken.split(".").slice(0, 2).join(".")}.` },
      { "x-api-key": key },
      { authorization: bearer, "keygate-environment": "staging" },
      { authorization: bearer, "keygate-environment": ["live", "test"] },
      { authorization: bearer, "keygate-environment": "TEST" },
      { cookie: "keygate_refresh=%ff; keygate_refresh=x" },
    ];
    const requestIds = fc.oneof(
      fc.constantFrom(
        "",
        " ",
        "x".repeat(129),
        "a b",
        "a\u0000b",
        "😀",
        key,
        `req-${key}`,
        "../../etc/passwd",
        "<script>",
        "a,b",
      ),
      fc.string({ unit: "binary", maxLength: 40 }),
    );
    const routes = ops.filter((o) => !o.params.length && !o.open && !o.oauth && o.method === "GET");
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.nat(),
        fc.option(requestIds),
        fc.option(fc.constantFrom(...routes.filter((r) => r.external))),
        async (op, pick, rid, other) => {
          const set = op.external ? external : panel;
          const headers = { ...set[pick % set.length] } as Record<string, string | string[]>;
          // Node refuses to carry some bytes in a header at all: leave those to transport tests.
          if (rid !== null && /^[\t\x20-\x7e\x80-\xff]*$/.test(rid)) headers["x-request-id"] = rid;
          const url = op.path;
          const res = await send(op, url, headers);
          check(res, op, `GET ${url} ${JSON.stringify(headers).slice(0, 200)}`);
          if (
            typeof headers["x-request-id"] === "string" &&
            headers["x-request-id"].includes(key.slice(8))
          )
            expect(String(res.headers["x-request-id"])).not.toContain(key.slice(8));
          if (other) {
            const again = await send(other, other.path, headers);
            check(again, other, `GET ${other.path} ${JSON.stringify(headers).slice(0, 200)}`);
          }
        },
      ),
      { numRuns: 150 },
    );
    expect([...findings]).toEqual([]);
    // The keys still work, the revoked one stays refused.
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    expectStatus(await h.ext("GET", "/whoami", revokedKey), 401);
  });

  it("no read of any record shows a secret once created", async () => {
    const reads = ops.filter((o) => o.method === "GET" && !o.oauth);
    const ids = [...new Set([1, 2, 3, 4, 5, 6, 7, 8, signed.id, victim.keyId, sentinel.key])];
    for (const op of reads) {
      for (const id of op.params.length ? ids : [0]) {
        const url = fill(op.path, (name) => (name === "username" ? "sentinel-sub" : String(id)));
        for (const headers of <Record<string, string>[]>[
          op.external ? { "x-api-key": key } : { authorization: `Bearer ${h.adminToken}` },
          ...(op.external ? [] : [{ authorization: `Bearer ${victim.token}` }]),
        ]) {
          const res = await send(op, url, headers);
          check(res, op, `GET ${url}`);
        }
      }
    }
    expect([...findings]).toEqual([]);
  });

  it("keeps the call log of the fuzzed key readable", async () => {
    await h.kg.callLog.flush();
    const res = await h.api("GET", `/api/api-keys/${keyId}/logs?limit=1000`, h.adminToken);
    expectStatus(res, 200);
    check(res, { external: false }, "logs");
    expect(res.json().data.length).toBeGreaterThan(100);
    expect([...findings]).toEqual([]);
  });
});
