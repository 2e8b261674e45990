import { vi } from "vitest";
import { api } from "../lib/api";
import type { Me } from "../lib/types";

export type Request = { method: string; path: string; url: URL; body?: unknown };
type Handler = (req: Request) => unknown;

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export function me(overrides: Partial<Me> & { manage_keys?: boolean } = {}): Me {
  const { manage_keys, ...rest } = overrides;
  const role = rest.role ?? "reseller";
  return {
    id: 7,
    username: role === "admin" ? "admin" : "acme",
    role,
    disabled: false,
    two_factor_enabled: false,
    created_at: "2026-04-01T00:00:00.000Z",
    updated_at: "2026-04-01T00:00:00.000Z",
    permissions: { manage_keys: manage_keys ?? role === "admin" },
    defaults: { key_rate_limit_per_minute: 600 },
    two_factor_required: false,
    ...rest,
  };
}

/**
 * Stands in for the Keygate behind the console's client (`fetch`): signs `user` in, restores
 * its session, answers `GET /api/auth/me`, and whatever `routes` answers (`undefined`: 404).
 * Every request is recorded in `calls`.
 */
export function fakeApi(user: Me, routes: Handler = () => undefined) {
  const sessionUser = { id: user.id, username: user.username, role: user.role };
  const calls: Request[] = [];
  let meFails = false;
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), "http://console.test");
    const method = init?.method ?? "GET";
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    const req = { method, path: url.pathname, url, body };
    calls.push(req);
    await new Promise((r) => setTimeout(r, 1));
    if (url.pathname === "/api/auth/refresh")
      return json(200, {
        success: true,
        data: {
          access_token: `token-${calls.length}`,
          token_type: "Bearer",
          expires_in: 900,
          user: sessionUser,
        },
      });
    if (url.pathname === "/api/auth/me")
      return meFails
        ? json(503, { success: false, code: "SERVICE_UNAVAILABLE", message: "try again" })
        : json(200, { success: true, data: user });
    if (url.pathname === "/api/auth/login") {
      const data = { access_token: `token-${calls.length}`, token_type: "Bearer", expires_in: 900 };
      return json(200, { success: true, data: { ...data, user: sessionUser } });
    }
    if (url.pathname === "/api/auth/logout") return json(200, { success: true });
    const data = routes(req);
    if (data === undefined)
      return json(404, { success: false, code: "NOT_FOUND", message: `${url.pathname} not found` });
    if (data instanceof Response) return data;
    return json(200, { success: true, data });
  });
  vi.stubGlobal("fetch", fetch);
  return {
    calls,
    /** The requests made to `path` (query ignored). */
    to: (path: string) => calls.filter((c) => c.path === path),
    /** From now on `GET /api/auth/me` answers 503. */
    failMe: () => {
      meFails = true;
    },
  };
}

/** Forgets the console client's session and the fake server between tests. */
export function resetApi() {
  api.drop({ reason: "signed-out", message: "" });
  vi.unstubAllGlobals();
}
