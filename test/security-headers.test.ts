/**
 * Security headers on every kind of response: the console's index (with a per-response
 * style nonce), its static files, Swagger UI, the OpenAPI document, both API surfaces,
 * their errors and 404s, and the health check; HSTS only behind an https public URL.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type App, buildApp } from "../src/http/app.js";
import { NONCE_PLACEHOLDER } from "../src/http/security.js";
import { createKeygate, type Keygate } from "../src/keygate.js";
import { ADMIN, freshDatabase } from "./helpers.js";

const JSON_CSP = "default-src 'none';frame-ancestors 'none'";

type Site = {
  app: App;
  token: string;
  key: string;
  get(url: string, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
};

/** A Keygate serving a small built console from a temporary directory. */
async function site(env: Record<string, string> = {}): Promise<Site> {
  const dir = mkdtempSync(join(tmpdir(), "keygate-headers-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(
    join(dir, "index.html"),
    `<!doctype html><title>Keygate</title><meta property="csp-nonce" nonce="${NONCE_PLACEHOLDER}">` +
      `<script type="module" src="/assets/app.js" nonce="${NONCE_PLACEHOLDER}"></script><div id=root></div>`,
  );
  writeFileSync(join(dir, "assets", "app.js"), "console.log(1)");
  const database = await freshDatabase();
  const config = loadConfig({
    KEYGATE_DATABASE_URL: database.url,
    KEYGATE_ADMIN_USERNAME: ADMIN.username,
    KEYGATE_ADMIN_PASSWORD: ADMIN.password,
    KEYGATE_LOG_LEVEL: "silent",
    ...env,
  });
  const kg: Keygate = await createKeygate(config);
  const app = await buildApp(kg, { logger: false, consoleDir: dir });
  await kg.auth.bootstrap(config.adminUsername, config.adminPassword);
  const login = await app.inject({
    method: "POST",
    url: "/api/auth/login",
    payload: ADMIN,
  });
  const token = login.json().data.access_token as string;
  const minted = await app.inject({
    method: "POST",
    url: "/api/api-keys",
    headers: { authorization: `Bearer ${token}` },
    payload: { name: "headers", scopes: "read" },
  });
  return {
    app,
    token,
    key: minted.json().key as string,
    get: (url, headers = {}) => app.inject({ method: "GET", url, headers }),
    async close() {
      await app.close();
      await kg.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The directives of a Content-Security-Policy, by name. */
function directives(res: LightMyRequestResponse): Map<string, string[]> {
  const csp = String(res.headers["content-security-policy"] ?? "");
  const out = new Map<string, string[]>();
  for (const part of csp.split(";")) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) out.set(name, values);
  }
  return out;
}

/** What every response carries, whatever it is. */
function expectBaseline(res: LightMyRequestResponse, what: string) {
  expect(res.headers["x-content-type-options"], what).toBe("nosniff");
  expect(res.headers["referrer-policy"], what).toBe("no-referrer");
  expect(res.headers["cross-origin-resource-policy"], what).toBe("same-origin");
  expect(res.headers["content-security-policy"], what).toBeDefined();
  expect(res.headers["content-security-policy"], what).not.toMatch(/unsafe-inline|unsafe-eval/);
  expect(directives(res).get("frame-ancestors"), what).toEqual(["'none'"]);
  expect(res.headers["strict-transport-security"], what).toBeUndefined();
}

/** A JSON answer from either API surface. */
function expectApi(res: LightMyRequestResponse, status: number, what: string) {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 200)}`).toBe(status);
  expect(res.headers["content-type"], what).toContain("application/json");
  expectBaseline(res, what);
  expect(res.headers["content-security-policy"], what).toBe(JSON_CSP);
  expect(res.headers["cache-control"], what).toBe("no-store");
  // Document-only headers stay off the hot path.
  expect(res.headers["x-frame-options"], what).toBeUndefined();
  expect(res.headers["cross-origin-opener-policy"], what).toBeUndefined();
}

describe("security headers", () => {
  let s: Site;
  beforeAll(async () => {
    s = await site();
  });
  afterAll(() => s.close());

  it("puts a strict, freshly nonced policy on the console's index, however it is reached", async () => {
    const nonces = new Set<string>();
    for (const url of ["/", "/keys/12", "/subscribers?page=2", "/index.html"]) {
      const res = await s.get(url);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers["content-type"], url).toContain("text/html");
      expectBaseline(res, url);
      expect(res.headers["cache-control"], url).toBe("no-store");
      expect(res.headers["x-frame-options"], url).toBe("DENY");
      expect(res.headers["cross-origin-opener-policy"], url).toBe("same-origin");
      const d = directives(res);
      expect(d.get("default-src"), url).toEqual(["'self'"]);
      expect(d.get("script-src"), url).toEqual(["'self'"]);
      expect(d.get("script-src-attr"), url).toEqual(["'none'"]);
      expect(d.get("object-src"), url).toEqual(["'none'"]);
      expect(d.get("base-uri"), url).toEqual(["'self'"]);
      expect(d.get("form-action"), url).toEqual(["'self'"]);
      expect(d.get("img-src"), url).toEqual(["'self'", "data:"]);
      expect(d.has("upgrade-insecure-requests"), url).toBe(false);
      const style = d.get("style-src") ?? [];
      expect(style[0], url).toBe("'self'");
      const nonce = /^'nonce-([A-Za-z0-9+/=]{22,})'$/.exec(style[1] ?? "")?.[1];
      expect(nonce, `${url}: ${style.join(" ")}`).toBeDefined();
      expect(style).toHaveLength(2);
      // The page carries the same nonce for Mantine to read, and no placeholder is left.
      expect(res.body).toContain(`<meta property="csp-nonce" nonce="${nonce}">`);
      expect(res.body).not.toContain(NONCE_PLACEHOLDER);
      nonces.add(nonce as string);
    }
    expect(nonces.size).toBe(4);
  });

  it("answers HEAD for the index with the same headers", async () => {
    const res = await s.app.inject({ method: "HEAD", url: "/" });
    expect(res.statusCode).toBe(200);
    expectBaseline(res, "HEAD /");
    expect(directives(res).get("style-src")?.[1]).toMatch(/^'nonce-/);
  });

  it("serves the console's static files with the resource policy", async () => {
    const res = await s.get("/assets/app.js");
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe("console.log(1)");
    expectBaseline(res, "asset");
    expect(res.headers["content-security-policy"]).toBe(JSON_CSP);
    expect(res.headers["cache-control"]).not.toBe("no-store");
  });

  it("gives Swagger UI its own policy without inline script or style", async () => {
    const page = await s.get("/docs");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toContain("text/html");
    expectBaseline(page, "/docs");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    const d = directives(page);
    expect(d.get("default-src")).toEqual(["'self'"]);
    expect(d.get("script-src")).toEqual(["'self'"]);
    // Swagger UI's one inline <style>, in its logo, by its hash.
    expect(d.get("style-src")).toEqual(["'self'", expect.stringMatching(/^'sha256-[\w+/]+=*'$/)]);
    expect(d.get("object-src")).toEqual(["'none'"]);
    expect(d.get("form-action")).toEqual(["'self'"]);
    const asset = await s.get("/docs/static/swagger-ui-bundle.js");
    expect(asset.statusCode).toBe(200);
    expectBaseline(asset, "/docs asset");
  });

  it("serves the OpenAPI document with the JSON policy", async () => {
    const res = await s.get("/openapi.json");
    expect(res.statusCode).toBe(200);
    expectBaseline(res, "/openapi.json");
    expect(res.headers["content-security-policy"]).toBe(JSON_CSP);
  });

  it("marks every JWT-surface answer no-store, success or error", async () => {
    const auth = { authorization: `Bearer ${s.token}` };
    expectApi(await s.get("/api/auth/me", auth), 200, "me");
    expectApi(await s.get("/api/users"), 401, "no token");
    expectApi(await s.get("/api/subscribers/999999", auth), 404, "unknown subscriber");
    expectApi(await s.get("/api/nothing"), 404, "unknown route");
    expectApi(await s.get("/api"), 404, "bare /api");
    const badJson = await s.app.inject({
      method: "POST",
      url: "/api/auth/login",
      headers: { "content-type": "application/json" },
      payload: "{not json",
    });
    expectApi(badJson, 400, "malformed body");
    const text = await s.app.inject({
      method: "POST",
      url: "/api/auth/login",
      headers: { "content-type": "text/plain" },
      payload: "hello",
    });
    expectApi(text, 415, "text body");
  });

  it("marks the external surface no-store too: its success, refusals, 404 and health", async () => {
    const key = { "x-api-key": s.key };
    expectApi(await s.get("/api/v1/external/whoami", key), 200, "whoami");
    expectApi(await s.get("/api/v1/external/whoami"), 401, "no key");
    expectApi(
      await s.get("/api/v1/external/whoami", { "x-api-key": "pk_live_nope" }),
      401,
      "bad key",
    );
    expectApi(await s.get("/api/v1/external/nothing-here", key), 404, "external 404");
    expectApi(await s.get("/api/v1/external/system/health"), 200, "health");
  });

  it("carries them on the router's own refusals: a path that is not valid percent-encoding", async () => {
    expectApi(await s.get("/api/v1/external/%zz", { "x-api-key": s.key }), 400, "external bad URL");
    expectApi(await s.get("/api/%zz"), 400, "JWT bad URL");
    const page = await s.get("/%zz");
    expect(page.statusCode).toBe(400);
    expectBaseline(page, "bad URL outside /api");
    expect(page.headers["content-security-policy"]).toBe(JSON_CSP);
  });

  it("answers an unknown non-API method in JSON with the JSON policy", async () => {
    const res = await s.app.inject({ method: "POST", url: "/keys" });
    expect(res.statusCode).toBe(404);
    expectBaseline(res, "POST /keys");
    expect(res.headers["content-security-policy"]).toBe(JSON_CSP);
  });
});

describe("security headers with a rate limit refusing before any route runs", () => {
  it("still carries them on the 429", async () => {
    const s = await site({ KEYGATE_IP_RATE_LIMIT: "3" });
    try {
      let last: LightMyRequestResponse | undefined;
      for (let i = 0; i < 5; i++) last = await s.get("/api/v1/external/system/health");
      expectApi(last as LightMyRequestResponse, 429, "ip limit");
      const page = await s.get("/");
      expect(page.statusCode).toBe(429);
      expectBaseline(page, "console behind the ip limit");
    } finally {
      await s.close();
    }
  });
});

describe("HSTS", () => {
  it("is sent on every response when KEYGATE_PUBLIC_URL is https, with upgrade-insecure-requests", async () => {
    const s = await site({ KEYGATE_PUBLIC_URL: "https://keygate.example.com/" });
    try {
      for (const url of [
        "/",
        "/assets/app.js",
        "/docs",
        "/openapi.json",
        "/api/nothing",
        "/api/v1/external/system/health",
      ]) {
        const res = await s.get(url);
        expect(res.headers["strict-transport-security"], url).toBe(
          "max-age=31536000; includeSubDomains",
        );
      }
      expect(directives(await s.get("/")).has("upgrade-insecure-requests")).toBe(true);
      expect(directives(await s.get("/docs")).has("upgrade-insecure-requests")).toBe(true);
    } finally {
      await s.close();
    }
  });

  it("is never sent when the public URL is http", async () => {
    const s = await site({ KEYGATE_PUBLIC_URL: "http://10.0.0.5:8080" });
    try {
      for (const url of ["/", "/docs", "/api/v1/external/system/health"]) {
        const res = await s.get(url);
        expect(res.headers["strict-transport-security"], url).toBeUndefined();
        expect(directives(res).has("upgrade-insecure-requests"), url).toBe(false);
      }
    } finally {
      await s.close();
    }
  });
});
