import { connect } from "node:net";
import fc from "fast-check";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { ERROR_STATUS } from "../src/errors.js";
import { buildApp } from "../src/http/app.js";
import { createKeygate } from "../src/keygate.js";
import { ADMIN, expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";

/**
 * Defects an outside review found, each reproduced here: deep nesting, impossible dates,
 * garbage in path parameters, router and transport errors in the framework's envelope,
 * keys echoed back, and the framework's own 503 while draining.
 */

const EXT = "/api/v1/external";
const KNOWN_CODES = new Set(Object.keys(ERROR_STATUS));

type Op = { method: string; path: string; external: boolean; body: boolean; params: string[] };

/** Every operation of the served OpenAPI document. */
function operations(h: Harness): Op[] {
  const doc = h.app.swagger() as unknown as {
    paths: Record<string, Record<string, Record<string, unknown>>>;
  };
  const ops: Op[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      // The OAuth endpoints answer RFC 6749 bodies, not the envelope (test/oauth.test.ts).
      if ((op.tags as string[] | undefined)?.includes("oauth")) continue;
      const params = ((op.parameters ?? []) as { in: string; name: string }[])
        .filter((p) => p.in === "path")
        .map((p) => p.name);
      ops.push({
        method: method.toUpperCase(),
        path,
        external: path.startsWith(EXT),
        body: op.requestBody !== undefined,
        params,
      });
    }
  }
  return ops;
}

/** The error envelope of the surface, with a catalogue code and its status. */
function expectRefusal(res: LightMyRequestResponse, external: boolean, what: string): string {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  expect(res.headers["content-type"], what).toMatch(/^application\/json/);
  const body = res.json() as Record<string, unknown>;
  expect(body.success, what).toBe(false);
  const code = external
    ? (body.error as { code: string } | undefined)?.code
    : (body.code as string | undefined);
  if (external) expect(Object.keys(body).sort(), what).toEqual(["error", "success", "timestamp"]);
  else expect(body, what).not.toHaveProperty("error");
  expect(KNOWN_CODES.has(code ?? ""), `${what}: code ${code}`).toBe(true);
  expect(res.statusCode, what).toBe(ERROR_STATUS[code as keyof typeof ERROR_STATUS]);
  return code as string;
}

const fill = (path: string, value: string) => path.replace(/\{[a-z_]+\}/g, value);

describe("inputs that used to answer 500", () => {
  let h: Harness;
  let key: string;
  let keyId: number;
  let subscriber: number;
  beforeAll(async () => {
    h = await harness({ KEYGATE_IP_RATE_LIMIT: "0", KEYGATE_KEY_RATE_LIMIT: "100000" });
    ({ key, id: keyId } = await h.mint(h.adminToken, { name: "probe", scopes: "delete" }));
    const service = await h.service();
    const created = await h.api("POST", "/api/subscribers", h.adminToken, {
      username: "probe-sub",
      password: "auto-generate",
      service_id: service,
    });
    expectStatus(created, 201);
    subscriber = created.json().data.id;
  });
  afterAll(() => h?.close());

  it("a body nested 10,000 levels deep is a 400 on every body route, credentials or not", async () => {
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const deepObject = `${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}`;
    const bodyRoutes = operations(h).filter((o) => o.body);
    expect(bodyRoutes.length).toBeGreaterThan(10);
    for (const op of [
      ...bodyRoutes,
      { method: "POST", path: "/api/auth/refresh", external: false, body: true, params: [] },
    ]) {
      for (const payload of [deep, deepObject]) {
        const res = await h.app.inject({
          method: op.method as "POST",
          url: fill(op.path, String(subscriber)),
          headers: {
            "content-type": "application/json",
            ...(op.external ? { "x-api-key": key } : { authorization: `Bearer ${h.adminToken}` }),
          },
          payload,
        });
        const what = `${op.method} ${op.path}`;
        expect(expectRefusal(res, op.external, what), what).toBe("VALIDATION_ERROR");
        expect(res.body, what).toMatch(/nests deeper than 32 levels/);
      }
    }
    // No credentials at all: the refresh route reads its body before anything else.
    const bare = await h.app.inject({
      method: "POST",
      url: "/api/auth/refresh",
      headers: { "content-type": "application/json" },
      payload: deep,
    });
    expect(expectRefusal(bare, false, "refresh")).toBe("VALIDATION_ERROR");
  });

  it("nesting within the bound is still read (strings holding brackets do not count)", async () => {
    const res = await h.api("POST", "/api/subscribers", h.adminToken, {
      username: "brackets",
      password: "auto-generate",
      full_name: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
      service_id: (await h.api("GET", "/api/services", h.adminToken)).json().data[0].id,
    });
    expectStatus(res, 201);
  });

  // Every date or time a client can send, on both surfaces: each is checked before use.
  const IMPOSSIBLE_DATES = [
    "0000-00-00",
    "2023-13-01",
    "9999-99-99",
    "2023-02-30",
    "2023-00-10",
    "1969-12-31",
    "2023-1-1",
    "99999-01-01",
    "",
    "T",
  ];
  const IMPOSSIBLE_TIMES = [
    "2023-13-01T00:00:00Z",
    "2023-01-01T25:00:00Z",
    "0000-00-00T00:00:00Z",
    "9999-99-99T99:99:99Z",
    "2023-01-01T00:00:00.Z",
  ];

  it("knows every date or time field the API takes", () => {
    const named = new Set<string>();
    // A string (or a nullable one) named like a date, or with a date format.
    const dateLike = (name: string, schema: Record<string, unknown>) =>
      JSON.stringify(schema).includes('"type":"string"') &&
      (/date|from|^to$|before|after|expir|_at$|time/.test(name) ||
        String(schema.format ?? "").startsWith("date"));
    const walk = (value: unknown): void => {
      if (value === null || typeof value !== "object") return;
      const v = value as Record<string, unknown>;
      if (typeof v.name === "string" && v.schema && dateLike(v.name, v.schema as never))
        named.add(v.name);
      const props = v.properties as Record<string, Record<string, unknown>> | undefined;
      for (const [name, s] of Object.entries(props ?? {})) if (dateLike(name, s)) named.add(name);
      for (const child of Object.values(v)) walk(child);
    };
    const doc = h.app.swagger() as unknown as { paths: Record<string, Record<string, object>> };
    for (const item of Object.values(doc.paths)) {
      for (const op of Object.values(item) as { parameters?: unknown; requestBody?: unknown }[]) {
        walk(op.parameters);
        walk(op.requestBody);
      }
    }
    // The probes below cover each of these names.
    expect([...named].sort()).toEqual([
      "before",
      "date",
      "expires_at",
      "expiry_date",
      "from",
      "to",
    ]);
  });

  it("an impossible date is a 400 naming the field on every route that takes one, never a 500", async () => {
    const s = subscriber;
    const probes: { method: string; url: string; external: boolean; body?: object }[] = [];
    for (const d of IMPOSSIBLE_DATES) {
      const q = encodeURIComponent(d);
      for (const base of [`${EXT}`, "/api"]) {
        const external = base === EXT;
        probes.push({ method: "GET", url: `${base}/subscribers/${s}/usage?to=${q}`, external });
        probes.push({ method: "GET", url: `${base}/subscribers/${s}/usage?from=${q}`, external });
        probes.push({
          method: "GET",
          url: `${base}/subscribers/${s}/usage?from=${q}&to=${q}`,
          external,
        });
        probes.push({ method: "GET", url: `${base}/transactions?from=${q}`, external });
        probes.push({ method: "GET", url: `${base}/transactions?to=${q}`, external });
        probes.push({
          method: "PUT",
          url: `${base}/subscribers/${s}`,
          external,
          body: { expiry_date: d },
        });
        probes.push({
          method: "POST",
          url: `${base}/subscribers`,
          external,
          body: { username: "datey", password: "auto-generate", service_id: 1, expiry_date: d },
        });
      }
      probes.push({
        method: "POST",
        url: `/api/subscribers/${s}/usage`,
        external: false,
        body: { date: d, bytes_in: 1 },
      });
      probes.push({
        method: "POST",
        url: "/api/api-keys",
        external: false,
        body: { name: "x", expires_at: d },
      });
    }
    for (const t of IMPOSSIBLE_TIMES) {
      const q = encodeURIComponent(t);
      probes.push({
        method: "GET",
        url: `/api/api-keys/${keyId}/logs?before=${q}`,
        external: false,
      });
      probes.push({ method: "GET", url: `${EXT}/transactions?from=${q}`, external: true });
      probes.push({
        method: "PUT",
        url: `/api/api-keys/${keyId}`,
        external: false,
        body: { expires_at: t },
      });
    }
    for (const p of probes) {
      const res = await h.app.inject({
        method: p.method as "GET",
        url: p.url,
        headers: p.external ? { "x-api-key": key } : { authorization: `Bearer ${h.adminToken}` },
        ...(p.body ? { payload: p.body } : {}),
      });
      const what = `${p.method} ${p.url} ${JSON.stringify(p.body ?? "")}`;
      expect(expectRefusal(res, p.external, what), what).toBe("VALIDATION_ERROR");
      const body = res.json();
      const details = (p.external ? body.error.details : body.details) as
        { field: string }[] | undefined;
      expect(details?.length, what).toBeGreaterThan(0);
    }
    // Nothing was stored on the way: the subscriber keeps no expiry, the key no new expiry.
    const after = await h.api("GET", `/api/subscribers/${s}`, h.adminToken);
    expect(after.json().data.expiry_date).toBeNull();
  });

  it("garbage in every path parameter answers in the surface's envelope, never a 500", async () => {
    const GARBAGE = [
      "%ff",
      "%",
      "%c0%af",
      "%00",
      "..%2f..%2f",
      "x".repeat(101),
      "9".repeat(400),
      "1%20OR%201=1",
      "%E2%80%AE1",
      "-1",
      "0x10",
      "1e3",
      "%uD800",
      "%%32%65",
    ];
    const ops = operations(h).filter((o) => o.params.length > 0);
    expect(ops.length).toBeGreaterThan(10);
    await h.kg.callLog.flush();
    const before = (
      await h.api("GET", `/api/api-keys/${keyId}/logs?limit=1000`, h.adminToken)
    ).json().data.length;
    let external = 0;
    for (const op of ops) {
      for (const g of GARBAGE) {
        const res = await h.app.inject({
          method: op.method as "GET",
          url: fill(op.path, g),
          headers: op.external ? { "x-api-key": key } : { authorization: `Bearer ${h.adminToken}` },
          ...(op.body ? { payload: {} } : {}),
        });
        const what = `${op.method} ${fill(op.path, g)}`;
        const code = expectRefusal(res, op.external, what);
        expect(["VALIDATION_ERROR", "NOT_FOUND", "URI_TOO_LONG"], what).toContain(code);
        if (op.external) external++;
      }
    }
    // Every external one reached the key's call log, router errors included.
    await h.kg.callLog.flush();
    const logs = (await h.api("GET", `/api/api-keys/${keyId}/logs?limit=1000`, h.adminToken)).json()
      .data as { status_code: number; error_code: string }[];
    expect(logs.length - before).toBe(external);
    expect(logs.some((l) => l.status_code === 414 && l.error_code === "URI_TOO_LONG")).toBe(true);
  });

  it("a bad URL on the external surface checks the key first, like an unknown route", async () => {
    const none = await h.app.inject({ method: "GET", url: `${EXT}/subscribers/%ff` });
    expect(expectRefusal(none, true, "no key")).toBe("MISSING_API_KEY");
    const good = await h.ext("GET", "/subscribers/%ff", key);
    expect(expectRefusal(good, true, "with key")).toBe("VALIDATION_ERROR");
    expect(good.json().error.message).toMatch(/percent-encoding/);
    expect(good.headers["ratelimit-limit"]).toBeDefined();
    const long = await h.api("GET", `/api/subscribers/${"1".repeat(150)}`, h.adminToken);
    expect(expectRefusal(long, false, "long")).toBe("URI_TOO_LONG");
  });
});

/** A Keygate and its app, not yet started, so a test can add a route first. */
async function unstarted(env: Record<string, string>, logStream?: { write(line: string): void }) {
  const database = await freshDatabase();
  const kg = await createKeygate(
    loadConfig({
      KEYGATE_DATABASE_URL: database.url,
      KEYGATE_ADMIN_USERNAME: ADMIN.username,
      KEYGATE_ADMIN_PASSWORD: ADMIN.password,
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_LOG_LEVEL: "silent",
      ...env,
    }),
  );
  const app = await buildApp(kg, logStream ? { logStream } : { logger: false });
  await kg.auth.bootstrap(ADMIN.username, ADMIN.password);
  /** Signs in as the admin and mints a key. */
  const start = async () => {
    const login = await app.inject({ method: "POST", url: "/api/auth/login", payload: ADMIN });
    const token = login.json().data.access_token as string;
    const minted = await app.inject({
      method: "POST",
      url: "/api/api-keys",
      headers: { authorization: `Bearer ${token}` },
      payload: { name: "secret", scopes: "delete" },
    });
    return { token, key: minted.json().key as string, id: minted.json().data.id as number };
  };
  const close = async () => {
    await app.close();
    await kg.close();
    await database.drop();
  };
  return { kg, app, start, close };
}

describe("no key is ever echoed", () => {
  const lines: string[] = [];
  let h: Awaited<ReturnType<typeof unstarted>> & Awaited<ReturnType<typeof startIt>>;
  const startIt = async (u: Awaited<ReturnType<typeof unstarted>>) => u.start();

  beforeAll(async () => {
    const u = await unstarted({ KEYGATE_LOG_LEVEL: "trace" }, { write: (l) => void lines.push(l) });
    // A failure that quotes what it was sent, as a driver's error can: the log must not.
    u.app.get("/api/v1/external/boom", { schema: { hide: true } }, async (req) => {
      throw new Error(`could not handle ${req.headers["x-api-key"]} (${req.url})`);
    });
    h = { ...u, ...(await startIt(u)) };
  });
  afterAll(() => h?.close());

  it("in no response, header, log line or call-log row, wherever it is placed", async () => {
    const { key, token } = h;
    const unknown = `pk_live_${"ab".repeat(16)}`;
    const secrets = [key, unknown];
    const auth = { authorization: `Bearer ${token}` };
    type Probe = {
      method: string;
      url: string;
      headers?: Record<string, string>;
      payload?: string | object;
    };
    const probes: Probe[] = [];
    for (const k of secrets) {
      const enc = encodeURIComponent(k);
      const hex = k.slice(8);
      probes.push({ method: "GET", url: `${EXT}/boom?k=${k}`, headers: { "x-api-key": key } });
      // Path
      for (const url of [
        `${EXT}/${k}`,
        `${EXT}/subscribers/${k}`,
        `${EXT}/subscribers/%ff${k}`,
        `${EXT}/subscribers/${k}${"0".repeat(80)}`,
        `${EXT}/pk%5Flive%5F${hex}`,
        `/api/${k}`,
        `/api/subscribers/${k}`,
        `/api/subscribers/%ff${k}`,
        `/api/api-keys/${k}/logs`,
        `/${hex}`,
      ]) {
        probes.push({ method: "GET", url, headers: { "x-api-key": key, ...auth } });
        probes.push({ method: "DELETE", url, headers: { "x-api-key": key, ...auth } });
      }
      // Query
      for (const url of [
        `${EXT}/whoami?api_key=${k}`,
        `${EXT}/subscribers?search=${enc}&api_key=${k}`,
        `${EXT}/subscribers/1/usage?to=${k}`,
        `${EXT}/subscribers/%ff?api_key=${k}`,
        `${EXT}/transactions?from=${k}`,
        `/api/subscribers?page=${k}`,
        `/api/api-keys/1/logs?status=${k}`,
        `/api/api-keys/1/logs?before=${k}`,
      ]) {
        probes.push({ method: "GET", url });
        probes.push({ method: "GET", url, headers: { "x-api-key": key, ...auth } });
      }
      // Headers
      for (const headers of <Record<string, string>[]>[
        { "x-api-key": k },
        { "x-api-key": `Bearer ${k}` },
        { "x-api-key": `"${k}"` },
        { "x-api-key": ` ${k} ` },
        { "x-api-key": k.toUpperCase() },
        { "x-api-key": `${k}x` },
        { "x-api-key": k.slice(0, -1) },
        { authorization: `Bearer ${k}` },
        { authorization: `Basic ${Buffer.from(`${k}:`).toString("base64")}` },
        { "user-agent": `client ${k}`, "x-api-key": key },
        { "x-request-id": k, "x-api-key": key },
        { "x-forwarded-for": k, "x-api-key": key },
        { referer: `https://example.test/?k=${k}`, "x-api-key": key },
        { cookie: `keygate_refresh=${k}` },
        { "content-type": `application/json; ${k}`, "x-api-key": key },
      ]) {
        probes.push({ method: "GET", url: `${EXT}/whoami`, headers });
        probes.push({ method: "GET", url: `${EXT}/subscribers/abc`, headers });
        probes.push({ method: "GET", url: "/api/api-keys", headers });
        probes.push({ method: "POST", url: "/api/auth/refresh", headers });
      }
      // Body: field names, values that fail validation, broken JSON.
      for (const payload of [
        { [k]: 1 },
        { name: k, scopes: k },
        { name: "x", allowed_ips: [k] },
        { name: "x", expires_at: k },
        { username: k, password: k, service_id: k, email: k, status: k, phone: k },
        { refresh_token: k },
        `{"name": "${k}"`,
        `{"${k}": }`,
        `[${JSON.stringify(k)}, ${"[".repeat(40)}`,
      ]) {
        for (const url of [
          "/api/api-keys",
          "/api/subscribers",
          "/api/auth/login",
          "/api/auth/refresh",
          `${EXT}/subscribers`,
          `${EXT}/transactions`,
        ]) {
          probes.push({
            method: "POST",
            url,
            headers: { "content-type": "application/json", "x-api-key": key, ...auth },
            payload: typeof payload === "string" ? payload : JSON.stringify(payload),
          });
        }
      }
    }
    const findings: string[] = [];
    const hexes = secrets.map((k) => k.slice(8));
    const leaks = (text: string) => hexes.some((hex) => text.toLowerCase().includes(hex));
    for (const p of probes) {
      const res = await h.app.inject({
        method: p.method as "GET",
        url: p.url,
        headers: p.headers ?? {},
        ...(p.payload === undefined ? {} : { payload: p.payload }),
      });
      if (!p.url.includes("/boom"))
        expect(res.statusCode, `${p.method} ${p.url}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
      if (leaks(res.body)) findings.push(`body of ${p.method} ${p.url}: ${res.body.slice(0, 300)}`);
      for (const [name, value] of Object.entries(res.headers)) {
        if (leaks(String(value))) findings.push(`header ${name} of ${p.method} ${p.url}`);
      }
    }
    await h.kg.callLog.flush();
    const logs = await h.app.inject({
      method: "GET",
      url: `/api/api-keys/${h.id}/logs?limit=1000`,
      headers: auth,
    });
    expect(logs.json().data.length).toBeGreaterThan(20);
    if (leaks(logs.body)) findings.push("the call log");
    const rows = await h.kg.database.db
      .selectFrom("api_key_logs")
      .select(["path", "user_agent"])
      .execute();
    for (const r of rows) if (leaks(`${r.path} ${r.user_agent}`)) findings.push(`row ${r.path}`);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) if (leaks(line)) findings.push(`log line ${line.slice(0, 300)}`);
    expect(findings).toEqual([]);
  });

  it("for any key, in any position, on any route (property)", async () => {
    const hex = fc.stringMatching(/^[0-9a-f]{32}$/);
    const routes = [
      `${EXT}/whoami`,
      `${EXT}/subscribers`,
      `${EXT}/subscribers/1`,
      `${EXT}/transactions`,
      "/api/api-keys",
      "/api/subscribers",
      "/api/auth/login",
    ];
    const position = fc.constantFrom(
      "path",
      "encoded-path",
      "query",
      "x-api-key",
      "authorization",
      "user-agent",
      "x-request-id",
      "body-field",
      "body-value",
      "broken-body",
    );
    const leaked: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        hex,
        fc.boolean(),
        position,
        fc.constantFrom(...routes),
        fc.constantFrom("GET", "POST", "PUT", "DELETE"),
        async (secret, real, where, route, method) => {
          const k = real ? h.key : `pk_live_${secret}`;
          const tail = k.slice(8);
          let url = route;
          const headers: Record<string, string> = {
            "x-api-key": h.key,
            authorization: `Bearer ${h.token}`,
          };
          let payload: string | undefined;
          if (where === "path") url = `${route}/${k}`;
          if (where === "encoded-path") url = `${route}/%ff${encodeURIComponent(k)}`;
          if (where === "query") url = `${route}?q=${k}&api_key=${k}`;
          if (where === "x-api-key") headers["x-api-key"] = `${k}!`;
          if (where === "authorization") headers.authorization = `Bearer ${k}`;
          if (where === "user-agent") headers["user-agent"] = k;
          if (where === "x-request-id") headers["x-request-id"] = k;
          if (where.startsWith("body") || where === "broken-body") {
            headers["content-type"] = "application/json";
            payload =
              where === "body-field"
                ? JSON.stringify({ [k]: 1 })
                : where === "body-value"
                  ? JSON.stringify({ name: 5, email: k, scopes: k })
                  : `{"${k}":`;
          }
          const res = await h.app.inject({
            method: method as "GET",
            url,
            headers,
            ...(payload === undefined ? {} : { payload }),
          });
          const seen = `${res.body} ${JSON.stringify(res.headers)}`.toLowerCase();
          if (seen.includes(tail))
            leaked.push(`${where} ${method} ${url}: ${res.body.slice(0, 200)}`);
          expect(res.statusCode).toBeLessThan(500);
        },
      ),
      { numRuns: 150 },
    );
    await h.kg.callLog.flush();
    const rows = await h.kg.database.db
      .selectFrom("api_key_logs")
      .select(["path", "user_agent", "request_id", "error_message"])
      .execute();
    const real = h.key.slice(8);
    for (const r of rows) {
      const text = `${r.path} ${r.user_agent} ${r.request_id} ${r.error_message}`;
      if (text.includes(real)) leaked.push(`call-log row ${r.path}`);
    }
    for (const line of lines)
      if (line.includes(real)) leaked.push(`log line ${line.slice(0, 200)}`);
    expect(leaked).toEqual([]);
  });
});

describe("transport errors", () => {
  let h: Harness;
  let port: number;
  beforeAll(async () => {
    h = await harness({ KEYGATE_IP_RATE_LIMIT: "0" });
    await h.app.listen({ host: "127.0.0.1", port: 0 });
    const address = h.app.server.address();
    port = typeof address === "object" && address ? address.port : 0;
  });
  afterAll(() => h?.close());

  /** Sends raw bytes and reads the whole answer. */
  function raw(text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let out = "";
      socket.on("data", (d) => (out += d.toString()));
      socket.on("end", () => resolve(out));
      socket.on("close", () => resolve(out));
      socket.on("error", reject);
      socket.write(text);
    });
  }
  const split = (answer: string) => {
    const at = answer.indexOf("\r\n\r\n");
    return { head: answer.slice(0, at), body: JSON.parse(answer.slice(at + 4)) };
  };

  it("headers over the limit are a 431 in the surface's envelope, logged on the external one", async () => {
    const big = "x".repeat(20_000);
    const ext = split(await raw(`GET ${EXT}/whoami HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`));
    expect(ext.head).toMatch(/^HTTP\/1\.1 431 /);
    expect(ext.head).toMatch(/\r\nX-Content-Type-Options: nosniff\r\n/i);
    expect(ext.head).toMatch(/\r\nCache-Control: no-store\r\n/i);
    expect(ext.head).toMatch(/\r\nX-Request-Id: [0-9a-f-]{36}(\r\n|$)/i);
    expect(ext.head).toMatch(/\r\nKeygate-Environment: none(\r\n|$)/i);
    expect(ext.body.success).toBe(false);
    expect(ext.body.error.code).toBe("HEADERS_TOO_LARGE");
    expect(ext.body.timestamp).toBeDefined();
    const api = split(await raw(`GET /api/users HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\n\r\n`));
    expect(api.head).toMatch(/^HTTP\/1\.1 431 /);
    expect(api.head).not.toMatch(/Keygate-Environment/i);
    expect(api.body).toEqual(
      expect.objectContaining({ success: false, code: "HEADERS_TOO_LARGE" }),
    );
    await h.kg.callLog.flush();
    const rows = await h.kg.database.db
      .selectFrom("api_key_logs")
      .select(["path", "status_code", "error_code"])
      .where("status_code", "=", 431)
      .execute();
    expect(rows).toEqual([
      { path: `${EXT}/whoami`, status_code: 431, error_code: "HEADERS_TOO_LARGE" },
    ]);
  });

  it("a broken request line is a 400 in an envelope, not the framework's", async () => {
    const answer = split(await raw("NOT A REQUEST\r\n\r\n"));
    expect(answer.head).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.body).toEqual(
      expect.objectContaining({ success: false, code: "VALIDATION_ERROR" }),
    );
    expect(answer.body.message).toContain("check the request line");
  });

  it("a line break inside a header value (a key read with its newline) is named as such", async () => {
    const key = `pk_live_${"a".repeat(32)}`;
    for (const broken of [`X-API-Key: ${key}\n\r\n`, `X-API-Key: ${key}\r\n\n`]) {
      const answer = split(await raw(`GET ${EXT}/whoami HTTP/1.1\r\nHost: a\r\n${broken}\r\n`));
      expect(answer.head).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer.body.error.code).toBe("VALIDATION_ERROR");
      expect(answer.body.error.message).toContain("a line break inside a header value");
      expect(JSON.stringify(answer)).not.toContain(key.slice(12));
    }
  });
});

describe("while draining for shutdown", () => {
  it("requests still arriving get SERVICE_UNAVAILABLE in the surface's envelope, call-logged", async () => {
    const h = await unstarted({});
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    let started: () => void = () => {};
    const entered = new Promise<void>((r) => (started = r));
    h.app.get("/slow", { schema: { hide: true } }, async () => {
      started();
      await held;
      return { ok: true };
    });
    await h.app.listen({ host: "127.0.0.1", port: 0 });
    const { key } = await h.start();
    const address = h.app.server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    const socket = connect(port, "127.0.0.1");
    let out = "";
    socket.on("data", (d) => (out += d.toString()));
    socket.write("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
    await entered;
    const closing = h.app.close();
    // Pipelined behind the request in progress: they reach the app while it drains.
    socket.write(
      `GET ${EXT}/whoami HTTP/1.1\r\nHost: a\r\nX-API-Key: ${key}\r\n\r\n` +
        "GET /api/users HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    await new Promise((r) => setTimeout(r, 200));
    release();
    await new Promise<void>((r) => socket.on("close", () => r()));
    await closing;
    const answers = out.split(/(?=HTTP\/1\.1 )/);
    expect(answers[0]).toMatch(/^HTTP\/1\.1 200 /);
    const ext = answers.find((a) => a.includes('"error":{'));
    expect(ext, out).toMatch(/^HTTP\/1\.1 503 /);
    expect(ext).toMatch(/retry-after: 1/i);
    expect(ext).toMatch(/"code":"SERVICE_UNAVAILABLE".*shutting down/);
    expect(ext).not.toMatch(/"statusCode"/);
    await h.kg.callLog.flush();
    const rows = await h.kg.database.db
      .selectFrom("api_key_logs")
      .select(["status_code", "error_code"])
      .where("status_code", "=", 503)
      .execute();
    expect(rows).toEqual([{ status_code: 503, error_code: "SERVICE_UNAVAILABLE" }]);
    await h.close();
  });
});
