import { vi } from "vitest";
import { api } from "../lib/api";
import { ENVIRONMENT_HEADER, type Environment, setEnvironment } from "../lib/environment";
import { beyond, limitsFor, normalise, parsePermission } from "../lib/permissions";
import type { ApiKey, KeyPresets, Me, TestDataReset, UserRow } from "../lib/types";

export type Request = {
  method: string;
  path: string;
  url: URL;
  body?: unknown;
  headers: Record<string, string>;
  /** What `Keygate-Environment` asked for (live when absent, as on the server). */
  environment: Environment;
};
export type Handler = (req: Request) => unknown;

/** A JSON answer that names its environment, as the server's do. */
export const reply = (status: number, body: unknown, environment: Environment = "live") =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", [ENVIRONMENT_HEADER]: environment },
  });

/** `GET /api/api-keys/presets` as the server answers it. */
export const PRESETS: KeyPresets = {
  resources: ["subscribers", "transactions", "usage", "services", "nas", "stats"],
  actions: ["read", "write", "delete"],
  presets: [
    {
      name: "read_only",
      label: "Read only",
      description: "Reads everything the owner sees; changes nothing.",
      permissions: ["*:read"],
    },
    {
      name: "billing",
      label: "Billing",
      description: "Reads subscribers and usage, posts transactions.",
      permissions: ["subscribers:read", "transactions:write", "usage:read"],
    },
    {
      name: "provisioning",
      label: "Provisioning",
      description: "Creates, changes and deletes subscribers; reads the service catalogue.",
      permissions: ["subscribers:delete", "services:read"],
    },
    {
      name: "monitoring",
      label: "Monitoring",
      description: "Reads the system's stats.",
      permissions: ["stats:read"],
    },
    {
      name: "read_write",
      label: "Read and write",
      description: "Reads and changes everything the owner can; deletes nothing.",
      permissions: ["*:write"],
    },
    {
      name: "full",
      label: "Full access",
      description: "Everything the owner may do, deleting included.",
      permissions: ["*:delete"],
    },
  ],
  role_limits: {
    admin: ["*:delete"],
    reseller: [
      "subscribers:delete",
      "transactions:delete",
      "usage:delete",
      "services:read",
      "stats:read",
    ],
  },
};

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
 * its session, answers `GET /api/auth/me`, and whatever `routes` answers (`undefined`: 404;
 * `GET /api/api-keys/presets` answers PRESETS unless `routes` does). Every request is
 * recorded in `calls`, with its headers and the environment it asked for; every answer
 * names that environment in `Keygate-Environment`.
 */
export function fakeApi(user: Me, routes: Handler = () => undefined) {
  const sessionUser = { id: user.id, username: user.username, role: user.role };
  const calls: Request[] = [];
  let meFails = false;
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), "http://console.test");
    const method = init?.method ?? "GET";
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    const headers = Object.fromEntries(
      Object.entries((init?.headers ?? {}) as Record<string, string>).map(([k, v]) => [
        k.toLowerCase(),
        v,
      ]),
    );
    const environment: Environment =
      headers[ENVIRONMENT_HEADER.toLowerCase()] === "test" ? "test" : "live";
    const req: Request = { method, path: url.pathname, url, body, headers, environment };
    calls.push(req);
    const json = (status: number, body: unknown) => reply(status, body, environment);
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
    let data = routes(req);
    if (data === undefined && method === "GET" && url.pathname === "/api/api-keys/presets")
      data = PRESETS;
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

/** Forgets the console client's session, the fake server and the Test data switch between tests. */
export function resetApi() {
  api.drop({ reason: "signed-out", message: "" });
  vi.unstubAllGlobals();
  setEnvironment("live");
}

/** A key as the server answers it: live, `*:write`, active, unless `overrides` say otherwise. */
export function apiKey(overrides: Partial<ApiKey> = {}): ApiKey {
  const environment = overrides.environment ?? "live";
  return {
    id: 3,
    name: "billing",
    description: null,
    key_prefix: `pk_${environment}_a8f3`,
    scopes: "write",
    permissions: ["*:write"],
    environment,
    owner_id: 7,
    allowed_ips: null,
    rate_limit_per_minute: null,
    quota: null,
    signing: "off",
    tokens_issued: 0,
    last_token_at: null,
    last_used_at: null,
    last_used_ip: null,
    last_refused_at: null,
    last_refused_ip: null,
    last_refused_code: null,
    expires_at: null,
    created_at: "2026-04-01T00:00:00.000Z",
    updated_at: "2026-04-01T00:00:00.000Z",
    revoked_at: null,
    is_active: true,
    status: "active",
    rolled_from_id: null,
    replaced_by_id: null,
    ...overrides,
  };
}

const SCOPE_OF: Record<string, ApiKey["scopes"]> = {
  "*:read": "read",
  "*:write": "write",
  "*:delete": "delete",
};

type KeyWrite = {
  name?: string;
  description?: string | null;
  scopes?: string;
  permissions?: string[];
  environment?: Environment;
  owner_id?: number;
  signing?: ApiKey["signing"];
};

/**
 * The key routes of a Keygate with permissions and environments, in memory: `GET
 * /api/api-keys` lists the keys of the environment asked for; minting takes `permissions`
 * (or `scopes`) and `environment`, refuses a NAS permission for a reseller's key (400
 * VALIDATION_ERROR on `permissions`), and answers the key once, with a signing secret when
 * `signing` is not off; `PUT` changes permissions;
 * `stats` counts each environment; `POST /api/test-data/reset` (admins only) answers `reset`.
 */
export function keysServer(
  user: Me,
  {
    keys = [],
    users = [],
    reset = { subscribers: 0, transactions: 0, usage: 0 },
    calls24h = { live: 0, test: 0 },
  }: {
    keys?: ApiKey[];
    users?: UserRow[];
    reset?: TestDataReset;
    calls24h?: Record<Environment, number>;
  } = {},
) {
  const state = { keys: [...keys], next: 100, resets: 0 };
  const roleOf = (id: number) =>
    id === user.id ? user.role : (users.find((u) => u.id === id)?.role ?? "reseller");
  const refuse = (env: Environment, message: string, field: string, problem: string) =>
    reply(
      400,
      {
        success: false,
        code: "VALIDATION_ERROR",
        message,
        details: [{ field, message: problem }],
      },
      env,
    );
  /** The permissions a body asks for, normalised; or the refusal. */
  const permissionsOf = (req: Request, b: KeyWrite, ownerId: number): string[] | Response => {
    const asked = b.permissions ?? (b.scopes ? [`*:${b.scopes}`] : ["*:read"]);
    const bad = asked.find((p) => parsePermission(p) === null);
    if (bad !== undefined)
      return refuse(req.environment, `invalid body: ${bad}`, "permissions", `unknown: ${bad}`);
    const role = roleOf(ownerId);
    const extra = beyond(asked, limitsFor(role, PRESETS.role_limits)).join(", ");
    if (extra)
      return refuse(
        req.environment,
        `invalid body: permissions ${extra} beyond the owner's role`,
        "permissions",
        `${extra} is beyond what the key's owner, a ${role}, may do: a key never exceeds its owner's role`,
      );
    return normalise(asked);
  };
  const stats = (env?: Environment) => {
    const of = state.keys.filter((k) => !env || k.environment === env);
    const by = (s: string) => of.filter((k) => k.status === s).length;
    return {
      total: of.length,
      active: by("active"),
      revoked: by("revoked"),
      expired: by("expired"),
      owner_disabled: by("owner_disabled"),
      owner_deleted: by("owner_deleted"),
      calls_24h: env ? calls24h[env] : calls24h.live + calls24h.test,
    };
  };

  const routes: Handler = (req) => {
    const id = /^\/api\/api-keys\/(\d+)$/.exec(req.path)?.[1];
    const found = id ? state.keys.find((k) => k.id === Number(id)) : undefined;
    if (req.method === "GET" && req.path === "/api/api-keys")
      return state.keys.filter((k) => k.environment === req.environment);
    if (req.method === "GET" && req.path === "/api/users") return users;
    if (req.method === "GET" && req.path === "/api/api-keys/stats") {
      const env = req.url.searchParams.get("environment");
      return env === "live" || env === "test" ? stats(env) : stats();
    }
    if (req.method === "GET" && found) return found;
    if (req.method === "POST" && req.path === "/api/api-keys") {
      const b = (req.body ?? {}) as KeyWrite;
      const ownerId = b.owner_id ?? user.id;
      const permissions = permissionsOf(req, b, ownerId);
      if (permissions instanceof Response) return permissions;
      const environment = b.environment ?? "live";
      const secret = `pk_${environment}_${"0123456789abcdef".repeat(2)}`;
      const k = apiKey({
        id: state.next++,
        name: b.name ?? "API Key",
        description: b.description ?? null,
        owner_id: ownerId,
        permissions,
        scopes: SCOPE_OF[permissions.join(",")] ?? "custom",
        environment,
        key_prefix: secret.slice(0, 12),
        signing: b.signing ?? "off",
      });
      state.keys.push(k);
      const signing_secret =
        k.signing === "off" ? undefined : `pks_${environment}_${"0123456789abcdef".repeat(4)}`;
      return reply(201, { success: true, data: k, key: secret, signing_secret }, req.environment);
    }
    if (req.method === "PUT" && found) {
      const b = (req.body ?? {}) as KeyWrite;
      const permissions =
        b.permissions || b.scopes ? permissionsOf(req, b, found.owner_id) : found.permissions;
      if (permissions instanceof Response) return permissions;
      Object.assign(found, {
        ...(b.name !== undefined ? { name: b.name } : {}),
        permissions,
        scopes: SCOPE_OF[permissions.join(",")] ?? "custom",
      });
      return found;
    }
    if (req.method === "POST" && req.path === "/api/test-data/reset") {
      if (user.role !== "admin")
        return reply(
          403,
          { success: false, code: "FORBIDDEN", message: "only an admin can reset test data" },
          req.environment,
        );
      state.resets++;
      return reset;
    }
    return undefined;
  };
  return { state, routes };
}
