import type { LightMyRequestResponse } from "fastify";
import { loadConfig } from "../src/config.js";
import { type App, buildApp } from "../src/http/app.js";
import { createKeygate, type Keygate, type KeygateOptions } from "../src/keygate.js";

export const ADMIN = { username: "admin", password: "admin-password-1" };

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
  const config = loadConfig({
    KEYGATE_DATABASE_URL: "sqlite::memory:",
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
    },
  };
  return h;
}

/** Fails with the response body when the status is not the expected one. */
export function expectStatus(res: LightMyRequestResponse, status: number): void {
  if (res.statusCode !== status) {
    throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body.slice(0, 500)}`);
  }
}
