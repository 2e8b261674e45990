import { randomBytes } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import pg from "pg";
import { loadConfig } from "../src/config.js";
import { type App, buildApp } from "../src/http/app.js";
import { createKeygate, type Keygate, type KeygateOptions } from "../src/keygate.js";

export const ADMIN = { username: "admin", password: "admin-password-1" };

/** Which engine this test run uses (the vitest project sets it). */
export const ENGINE = process.env.KEYGATE_TEST_ENGINE === "postgres" ? "postgres" : "sqlite";
export const PG_ADMIN_URL =
  process.env.KEYGATE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * A database no other test touches: in-memory SQLite, or a fresh PostgreSQL schema in the
 * `test` database (selected through the connection's search_path), dropped by `drop()`.
 * `file` gives SQLite a file instead, for tests that start real processes.
 */
export async function freshDatabase(
  file?: string,
): Promise<{ url: string; drop: () => Promise<void> }> {
  if (ENGINE === "sqlite")
    return { url: file ? `sqlite:${file}` : "sqlite::memory:", drop: async () => {} };
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = `${PG_ADMIN_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    },
  };
}

export type Harness = {
  kg: Keygate;
  app: App;
  /** Access token of the bootstrap admin. */
  adminToken: string;
  login(username: string, password: string): Promise<string>;
  /** Creates a user through the API as the admin and returns its id and an access token. */
  user(username: string, role?: "admin" | "reseller"): Promise<{ id: number; token: string }>;
  /** Mints a key through the API with the given token; returns the plaintext and the stored view. */
  mint(
    token: string,
    body?: Record<string, unknown>,
  ): Promise<{ key: string; id: number; data: Record<string, unknown> }>;
  /** A JWT-surface request. */
  api(method: string, url: string, token?: string, body?: unknown): Promise<LightMyRequestResponse>;
  /** An external-surface request (`url` relative to /api/v1/external). */
  ext(
    method: string,
    url: string,
    key?: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
  /** Creates a service as the admin and returns its id. */
  service(name?: string): Promise<number>;
  close(): Promise<void>;
};

/**
 * A Keygate on a fresh in-memory SQLite database (or `env.KEYGATE_DATABASE_URL`), driven
 * through Fastify's inject: the real app, hooks and store, without a socket.
 */
export async function harness(
  env: Record<string, string> = {},
  opts: KeygateOptions = {},
): Promise<Harness> {
  const database = env.KEYGATE_DATABASE_URL ? null : await freshDatabase();
  const config = loadConfig({
    KEYGATE_DATABASE_URL: database?.url ?? "sqlite::memory:",
    KEYGATE_ADMIN_USERNAME: ADMIN.username,
    KEYGATE_ADMIN_PASSWORD: ADMIN.password,
    KEYGATE_LOG_LEVEL: "silent",
    ...env,
  });
  const kg = await createKeygate(config, opts);
  const app = await buildApp(kg, { logger: false });
  await kg.auth.bootstrap(config.adminUsername, config.adminPassword);

  const api: Harness["api"] = (method, url, token, body) =>
    app.inject({
      method: method as "GET",
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(body === undefined ? {} : { payload: body as object }),
    });

  const login = async (username: string, password: string) => {
    const res = await api("POST", "/api/auth/login", undefined, { username, password });
    if (res.statusCode !== 200) throw new Error(`login ${username} failed: ${res.body}`);
    return res.json().data.access_token as string;
  };
  const adminToken = await login(ADMIN.username, ADMIN.password);

  const h: Harness = {
    kg,
    app,
    adminToken,
    login,
    api,
    async user(username, role = "reseller") {
      const password = `${username}-password`;
      const res = await api("POST", "/api/users", adminToken, { username, password, role });
      if (res.statusCode !== 201) throw new Error(`create user ${username} failed: ${res.body}`);
      return { id: res.json().data.id as number, token: await login(username, password) };
    },
    async mint(token, body = {}) {
      const res = await api("POST", "/api/api-keys", token, body);
      if (res.statusCode !== 201) throw new Error(`mint failed (${res.statusCode}): ${res.body}`);
      const json = res.json();
      return { key: json.key as string, id: json.data.id as number, data: json.data };
    },
    ext(method, url, key, body, headers = {}) {
      return app.inject({
        method: method as "GET",
        url: `/api/v1/external${url}`,
        headers: { ...(key === undefined ? {} : { "x-api-key": key }), ...headers },
        ...(body === undefined ? {} : { payload: body as object }),
      });
    },
    async service(name = "Basic") {
      const res = await api("POST", "/api/services", adminToken, {
        name,
        price: "19.99",
        download_kbps: 10_000,
        upload_kbps: 2_000,
      });
      if (res.statusCode !== 201) throw new Error(`create service failed: ${res.body}`);
      return res.json().data.id as number;
    },
    async close() {
      await app.close();
      await kg.close();
      await database?.drop();
    },
  };
  return h;
}

/** Fails with the response body when the status is not the expected one. */
/**
 * Waits, when fewer than `needS` seconds are left of this UTC minute, for the next one: budgets
 * count in fixed minute windows, so a test that spends one on the real clock must not straddle two.
 */
export async function clearOfMinuteBoundary(needS = 5): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needS * 1000) await new Promise((r) => setTimeout(r, left + 50));
}

export function expectStatus(res: LightMyRequestResponse, status: number): void {
  if (res.statusCode !== status) {
    throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body.slice(0, 500)}`);
  }
}
