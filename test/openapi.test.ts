import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES, ERROR_STATUS, type ErrorCode } from "../src/errors.js";
import { type Harness, harness } from "./helpers.js";

/**
 * The reference a client is generated from: every operation named and described, every
 * refusal it can answer listed with codes of the catalogue and an example, the records as
 * named schemas, the external surface on its own, and both pages branded.
 */

type Json = Record<string, unknown>;
type Response = {
  description: string;
  content?: Record<string, { schema: Json; examples?: Record<string, Json> }>;
};
type Operation = {
  operationId?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: unknown[];
  responses: Record<string, Response>;
};
type Doc = {
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, Json>;
    examples: Record<string, { value: Json }>;
    securitySchemes: Record<string, Json>;
  };
};

const EXT = "/api/v1/external";

function operations(doc: Doc) {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ what: `${method} ${path}`, method, path, op })),
  );
}

/** The example bodies of a response, resolved. */
function examples(doc: Doc, response: Response): Json[] {
  const found = response.content?.["application/json"]?.examples ?? {};
  return Object.values(found).map((e) => {
    const ref = String(e.$ref ?? "");
    return ref ? (doc.components.examples[ref.split("/").pop() as string]?.value as Json) : e;
  });
}

describe("the OpenAPI documents", () => {
  let h: Harness;
  let doc: Doc;
  let external: Doc;
  beforeAll(async () => {
    h = await harness();
    doc = (await h.app.inject({ url: "/openapi.json" })).json();
    external = (await h.app.inject({ url: "/openapi/external.json" })).json();
  });
  afterAll(() => h?.close());

  it("name every operation once, in camelCase, external ones as such", () => {
    const ids = operations(doc).map(({ op, path, what }) => {
      expect(op.operationId, what).toMatch(/^[a-z][A-Za-z0-9]+$/);
      if (path.startsWith(EXT)) expect(op.operationId, what).toMatch(/^external[A-Z]/);
      else expect(op.operationId, what).not.toMatch(/^external/);
      return op.operationId;
    });
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.paths["/api/subscribers"]?.get?.operationId).toBe("listSubscribers");
    expect(doc.paths[`${EXT}/subscribers`]?.get?.operationId).toBe("externalListSubscribers");
  });

  it("describe every answer, and list the refusals of each kind of route with codes and examples", () => {
    for (const { what, method, path, op } of operations(doc)) {
      const statuses = Object.keys(op.responses);
      if (op.tags?.includes("oauth")) {
        // OAuth answers RFC 6749 §5.2 bodies, not the envelope; each status is described.
        for (const [status, r] of Object.entries(op.responses)) {
          expect(r.description, `${what} ${status}`).not.toMatch(/^(Default Response)?$/);
          if (method === "post" && !status.startsWith("2"))
            expect(r.content?.["application/json"]?.schema, `${what} ${status}`).toEqual({
              $ref: "#/components/schemas/OAuthError",
            });
        }
        if (method === "post")
          expect(statuses, what).toEqual(expect.arrayContaining(["400", "401"]));
        continue;
      }
      for (const [status, r] of Object.entries(op.responses))
        expect(r.description, `${what} ${status}`).not.toMatch(/^(Default Response)?$/);
      expect(
        statuses.some((s) => s.startsWith("2")),
        what,
      ).toBe(true);
      const keyed = op.security?.some((s) => "apiKey" in s) ?? false;
      const bearer = op.security?.some((s) => "bearer" in s) ?? false;
      expect(keyed || bearer || op.security?.length === 0, `${what} security`).toBe(true);
      const expected = ["429", "default"];
      if (keyed) expected.push("401", "403");
      if (bearer) expected.push("401");
      if (path.includes("{")) expected.push("400", "404");
      if (["post", "put", "delete"].includes(method)) expected.push("400", "413", "415");
      expect(statuses, what).toEqual(expect.arrayContaining(expected));

      for (const [status, r] of Object.entries(op.responses)) {
        if (status.startsWith("2")) continue;
        const name = path.startsWith(EXT) ? "StructuredError" : "FlatError";
        const media = r.content?.["application/json"];
        if (status === "503" && path === `${EXT}/system/health`) continue;
        expect(media?.schema, `${what} ${status}`).toEqual({
          $ref: `#/components/schemas/${name}`,
        });
        const bodies = examples(doc, r);
        expect(bodies.length, `${what} ${status}`).toBeGreaterThan(0);
        for (const body of bodies) {
          const code = (path.startsWith(EXT) ? (body.error as Json).code : body.code) as ErrorCode;
          expect(ERROR_CODES, `${what} ${status}`).toContain(code);
          if (status !== "default")
            expect(ERROR_STATUS[code], `${what} ${code}`).toBe(Number(status));
          expect(r.description, `${what} ${status}`).toContain(code);
        }
      }
    }
    // Codes the route's own logic answers are named where they apply.
    const mint = doc.paths["/api/api-keys"]?.post?.responses["403"];
    expect(mint?.description).toContain("TWO_FACTOR_ENROLMENT_REQUIRED");
    const write = doc.paths[`${EXT}/subscribers`]?.post?.responses["403"];
    expect(write?.description).toContain("SCOPE_REQUIRED");
    // Every operation that needs a permission can refuse a key without it; whoami needs none.
    const read = doc.paths[`${EXT}/subscribers`]?.get?.responses["403"];
    expect(read?.description).toContain("SCOPE_REQUIRED");
    const whoami = doc.paths[`${EXT}/whoami`]?.get?.responses["403"];
    expect(whoami?.description).not.toContain("SCOPE_REQUIRED");
    // Every external answer documents the permission and environment headers; every
    // operation of people takes the environment header.
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const headers = Object.values(op.responses).map(
          (r) => (r as { headers?: Record<string, unknown> }).headers ?? {},
        );
        const bearer = (op.security ?? []).some((s) => "bearer" in s);
        const params = JSON.stringify(op.parameters ?? []);
        if (path.startsWith(EXT) && (op.security ?? []).length > 0 && !op.tags?.includes("oauth")) {
          for (const h of headers) {
            expect(Object.keys(h), `${method} ${path}`).toContain("X-Accepted-Permissions");
            expect(Object.keys(h), `${method} ${path}`).toContain("Keygate-Environment");
          }
        }
        if (bearer) expect(params, `${method} ${path}`).toContain("KeygateEnvironment");
      }
    }
    const login = doc.paths["/api/auth/login"]?.post;
    expect(login?.security).toEqual([]);
    expect(login?.responses["401"]?.description).toContain("TWO_FACTOR_REQUIRED");
  });

  it("name the records and errors, with the catalogue as the error code enum", () => {
    const names = Object.keys(doc.components.schemas);
    for (const name of ["Subscriber", "Service", "Nas", "Transaction", "ApiKey", "User"])
      expect(names).toContain(name);
    expect(doc.components.schemas.ErrorCode?.enum).toEqual(ERROR_CODES);
    const flat = doc.components.schemas.FlatError as { properties: Record<string, Json> };
    expect(flat.properties.code).toEqual({ $ref: "#/components/schemas/ErrorCode" });
    const list = doc.paths["/api/subscribers"]?.get?.responses["200"]?.content;
    expect(JSON.stringify(list)).toContain('"#/components/schemas/Subscriber"');
    for (const path of ["/openapi.json", "/openapi/external.json", `${EXT}/system/health`])
      expect(doc.paths[path]?.get?.security, path).toEqual([]);
    expect(doc.servers).toEqual([{ url: "/", description: "this Keygate" }]);
  });

  it("publish the external surface on its own, with only what it uses", () => {
    const paths = Object.keys(external.paths);
    expect(paths.length).toBeGreaterThan(10);
    for (const p of paths) expect(p.startsWith(`${EXT}/`)).toBe(true);
    expect(Object.keys(external.components.securitySchemes)).toEqual([
      "apiKey",
      "accessToken",
      "oauthClient",
    ]);
    expect(Object.keys(external.components.schemas)).not.toContain("FlatError");
    expect(Object.keys(external.components.schemas)).not.toContain("ApiKey");
    for (const { op, what } of operations(external)) {
      expect(doc.paths[what.split(" ")[1] as string]?.[what.split(" ")[0] as string], what).toEqual(
        op,
      );
    }
    const refs = JSON.stringify(external).match(/#\/components\/\w+\/[\w.]+/g) ?? [];
    for (const ref of new Set(refs)) {
      const [, , kind, name] = ref.split("/") as [string, string, string, string];
      expect((external.components as Record<string, Json>)[kind]?.[name], ref).toBeDefined();
    }
  });

  it("name KEYGATE_PUBLIC_URL as the server when it is set", async () => {
    const other = await harness({ KEYGATE_PUBLIC_URL: "https://keygate.example.com/" });
    try {
      const served = (await other.app.inject({ url: "/openapi.json" })).json() as Doc;
      expect(served.servers.map((s) => s.url)).toEqual(["https://keygate.example.com"]);
    } finally {
      await other.close();
    }
  });

  it("are served as pages titled Keygate, one of them the external surface alone", async () => {
    const page = await h.app.inject({ url: "/docs" });
    expect(page.body).toContain("<title>Keygate API reference</title>");
    expect(page.body).not.toContain("Swagger UI");
    const ext = await h.app.inject({ url: "/docs/external" });
    expect(ext.statusCode).toBe(200);
    expect(ext.body).toContain("<title>Keygate external API reference</title>");
    expect((await h.app.inject({ url: "/docs/external/json" })).json()).toEqual(external);
    expect((await h.app.inject({ url: "/docs/json" })).json()).toEqual(doc);
    const init = (await h.app.inject({ url: "/docs/external/static/swagger-initializer.js" })).body;
    expect(init).toContain("data:image/svg+xml;base64,");
    const css = await h.app.inject({ url: "/docs/static/theme/keygate.css" });
    expect(css.statusCode).toBe(200);
    expect(css.headers["content-type"]).toContain("text/css");
  });
});
