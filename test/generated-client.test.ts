import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import createClient, { type Middleware } from "openapi-fetch";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import type { components, paths } from "../console/src/lib/api-types.js";
import { FILES, ROOT, typesOf } from "../scripts/reference.js";
import { freshDatabase } from "./helpers.js";
import { type Server, startKeygate } from "./process.js";

/**
 * A client generated from the OpenAPI document (openapi-typescript's types, openapi-fetch)
 * runs the first calls an integrator makes against the real process: sign in, mint a key,
 * create a service and a subscriber, read it on the external surface, post a transaction,
 * read usage, whoami. The types are checked by the compiler; every answer the client sees
 * is checked at run time against the schema the document gives its operation and status.
 */

type Schemas = components["schemas"];
type Doc = { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };

const PASSWORD = "generated-client-password";

/** Checks each response against the document: the schema of its operation and status. */
function conformance(doc: Doc, seen: string[]): Middleware {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(doc, "openapi.json");
  const compiled = new Map<string, ValidateFunction>();
  const escape = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");
  return {
    async onResponse({ request, response, schemaPath }) {
      const method = request.method.toLowerCase();
      const responses = doc.paths[schemaPath]?.[method]?.responses;
      expect(responses, `${method} ${schemaPath} is in the document`).toBeDefined();
      const status =
        String(response.status) in (responses ?? {}) ? String(response.status) : "default";
      const pointer = `openapi.json#/paths/${escape(schemaPath)}/${method}/responses/${status}/content/application~1json/schema`;
      let validate = compiled.get(pointer);
      if (!validate) {
        validate = ajv.compile({ $ref: pointer });
        compiled.set(pointer, validate);
      }
      const body: unknown = await response.clone().json();
      const what = `${request.method} ${schemaPath} ${response.status}`;
      expect(validate(body), `${what}: ${JSON.stringify(validate.errors)}`).toBe(true);
      seen.push(what);
    },
  };
}

describe("a client generated from the OpenAPI document", () => {
  let dir: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let server: Server;
  let doc: Doc;
  const seen: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "keygate-client-"));
    db = await freshDatabase(join(dir, "keygate.db"));
    server = await startKeygate({
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_ADMIN_PASSWORD: PASSWORD,
      KEYGATE_PUBLIC_URL: undefined,
      KEYGATE_IP_RATE_LIMIT: "0",
    });
    doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as Doc;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("is generated from the document this server serves: the checked-in types and copy are current", async () => {
    expect(doc).toEqual(JSON.parse(readFileSync(join(ROOT, FILES.full), "utf8")));
    expect(await typesOf(doc)).toBe(readFileSync(join(ROOT, FILES.types), "utf8"));
  });

  it("runs the first calls of an integration, typed, each answer as the document says", async () => {
    const client = (headers: Record<string, string> = {}) => {
      const c = createClient<paths>({ baseUrl: server.base, headers });
      c.use(conformance(doc, seen));
      return c;
    };
    const anonymous = client();

    const login = await anonymous.POST("/api/auth/login", {
      body: { username: "admin", password: PASSWORD },
    });
    expect(login.response.status).toBe(200);
    const session = login.data?.data;
    expectTypeOf(session).toEqualTypeOf<Schemas["TokenPair"] | undefined>();
    expect(session?.token_type).toBe("Bearer");
    expect(session?.user.role).toBe("admin");
    const people = client({ authorization: `Bearer ${session?.access_token}` });

    const me = await people.GET("/api/auth/me");
    expectTypeOf(me.data?.data).toEqualTypeOf<Schemas["Me"] | undefined>();
    expect(me.data?.data.permissions.manage_keys).toBe(true);

    const minted = await people.POST("/api/api-keys", {
      body: { name: "billing", scopes: "write" },
    });
    expect(minted.response.status).toBe(201);
    expectTypeOf(minted.data?.data).toEqualTypeOf<Schemas["ApiKey"] | undefined>();
    const key = minted.data?.key ?? "";
    expect(key).toMatch(/^pk_live_[0-9a-f]{32}$/);
    expect(minted.data?.data.status).toBe("active");

    const service = await people.POST("/api/services", {
      body: {
        name: "Fibre 100",
        download_kbps: 100_000,
        upload_kbps: 20_000,
        price: "19.99",
        currency: "EUR",
        duration_days: 30,
      },
    });
    expect(service.response.status).toBe(201);
    expectTypeOf(service.data?.data).toEqualTypeOf<Schemas["Service"] | undefined>();
    const serviceId = service.data?.data.id ?? 0;
    expect(service.data?.data.price).toBe(19.99);

    const machine = client({ "x-api-key": key });
    const created = await machine.POST("/api/v1/external/subscribers", {
      body: { username: "alice", password: "auto-generate", service_id: serviceId },
    });
    expect(created.response.status).toBe(201);
    expectTypeOf(created.data?.data).toEqualTypeOf<Schemas["SubscriberWithPassword"] | undefined>();
    const subscriberId = created.data?.data.id ?? 0;
    expect(created.data?.data.password).toHaveLength(20);

    const read = await machine.GET("/api/v1/external/subscribers/{id}", {
      params: { path: { id: subscriberId } },
    });
    expectTypeOf(read.data?.data).toEqualTypeOf<Schemas["Subscriber"] | undefined>();
    expect(read.data?.data).toMatchObject({ username: "alice", status: "active" });
    expect(read.data?.data).not.toHaveProperty("password");

    const listed = await machine.GET("/api/v1/external/subscribers", {
      params: { query: { search: "ali", per_page: 10 } },
    });
    expect(listed.data?.meta).toEqual({ page: 1, per_page: 10, total: 1 });

    const payment = { subscriber_id: subscriberId, amount: 19.99, reference: "inv-1" };
    const paid = await machine.POST("/api/v1/external/transactions", { body: payment });
    expect(paid.response.status).toBe(201);
    expectTypeOf(paid.data?.data).toEqualTypeOf<Schemas["Transaction"] | undefined>();
    expect(paid.data?.data).toMatchObject({ amount: 19.99, currency: "USD", type: "payment" });
    const replayed = await machine.POST("/api/v1/external/transactions", { body: payment });
    expect(replayed.response.status).toBe(200);
    expect(replayed.response.headers.get("idempotent-replayed")).toBe("true");
    expect(replayed.data?.data.id).toBe(paid.data?.data.id);

    const recorded = await people.POST("/api/subscribers/{id}/usage", {
      params: { path: { id: subscriberId } },
      body: { bytes_in: 1_000, bytes_out: 250, session_seconds: 60 },
    });
    expect(recorded.response.status).toBe(201);
    const usage = await machine.GET("/api/v1/external/subscribers/{id}/usage", {
      params: { path: { id: subscriberId } },
    });
    expectTypeOf(usage.data?.data).toEqualTypeOf<Schemas["UsageReport"] | undefined>();
    expect(usage.data?.data.totals).toEqual({
      bytes_in: 1_000,
      bytes_out: 250,
      session_seconds: 60,
    });

    const whoami = await machine.GET("/api/v1/external/whoami");
    expect(whoami.data?.data).toMatchObject({
      id: minted.data?.data.id,
      key_prefix: minted.data?.data.key_prefix,
      scopes: "write",
      owner: { username: "admin", role: "admin" },
    });

    const health = await anonymous.GET("/api/v1/external/system/health");
    expectTypeOf(health.data?.data).toEqualTypeOf<Schemas["Health"] | undefined>();
    expect(health.data?.data.database).toBe("ok");
  });

  it("answers refusals in the typed envelope of each surface, with a code of the catalogue", async () => {
    const machine = createClient<paths>({ baseUrl: server.base });
    machine.use(conformance(doc, seen));

    const missing = await machine.GET("/api/v1/external/whoami");
    expect(missing.response.status).toBe(401);
    expectTypeOf(missing.error).toEqualTypeOf<Schemas["StructuredError"] | undefined>();
    expectTypeOf(missing.error?.error.code).toEqualTypeOf<Schemas["ErrorCode"] | undefined>();
    expect(missing.error?.error.code).toBe("MISSING_API_KEY");
    expect(missing.data).toBeUndefined();

    const wrong = await machine.POST("/api/auth/login", {
      body: { username: "admin", password: "not-the-password" },
    });
    expect(wrong.response.status).toBe(401);
    expectTypeOf(wrong.error).toEqualTypeOf<Schemas["FlatError"] | undefined>();
    expect(wrong.error?.code).toBe("INVALID_CREDENTIALS");

    const login = await machine.POST("/api/auth/login", {
      body: { username: "admin", password: PASSWORD },
    });
    const people = createClient<paths>({
      baseUrl: server.base,
      headers: { authorization: `Bearer ${login.data?.data.access_token}` },
    });
    people.use(conformance(doc, seen));
    const reader = await people.POST("/api/api-keys", { body: { name: "reader" } });
    const keyed = createClient<paths>({
      baseUrl: server.base,
      headers: { "x-api-key": reader.data?.key ?? "" },
    });
    keyed.use(conformance(doc, seen));

    const scope = await keyed.DELETE("/api/v1/external/subscribers/{id}", {
      params: { path: { id: 1 } },
    });
    expect(scope.response.status).toBe(403);
    expect(scope.error?.error.code).toBe("SCOPE_REQUIRED");
    expect(scope.error?.error.message).toContain("needs delete");

    const absent = await keyed.GET("/api/v1/external/subscribers/{id}", {
      params: { path: { id: 999_999 } },
    });
    expect(absent.response.status).toBe(404);
    expect(absent.error?.error.code).toBe("NOT_FOUND");

    const bad = await keyed.GET("/api/v1/external/transactions", {
      params: { query: { from: "2023-02-30" } },
    });
    expect(bad.response.status).toBe(400);
    expect(bad.error?.error.details?.[0]?.field).toBe("from");
  });

  it("saw every answer match its documented schema", () => {
    expect(seen.length).toBeGreaterThanOrEqual(20);
    expect(seen).toContain("POST /api/v1/external/transactions 200");
    expect(seen).toContain("GET /api/v1/external/whoami 401");
  });
});
