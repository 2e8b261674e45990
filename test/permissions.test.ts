import type { LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTE_PERMISSIONS } from "../src/http/permissions.js";
import { grants, keyLog, methodOf, ROUTES, type RouteName } from "./access.js";
import { clearOfMinuteBoundary, expectStatus, type Harness, harness } from "./helpers.js";

/**
 * The permission matrix: every route of ROUTE_PERMISSIONS called with keys of every single
 * permission, of every `*` permission and of every preset, with real ids so that a permitted
 * call succeeds. What is permitted is worked out here from the contract's rules, not read
 * back from the server. Then the owner's role as a limit, the old scopes, and the document.
 */

const RESOURCES = ["subscribers", "transactions", "usage", "services", "nas", "stats"];
const ACTIONS = ["read", "write", "delete"];
const SINGLES = RESOURCES.flatMap((r) => ACTIONS.map((a) => `${r}:${a}`));
const STARS = ACTIONS.map((a) => `*:${a}`);
const EXT = "/api/v1/external";

let h: Harness;
let serviceId: number;
let nasId: number;
/** An admin's `*:delete` key, for setting up and for checking what a call changed. */
let full: string;
/** The subscriber reads and updates go to, its transaction, and one that is suspended and activated. */
let subscriber: { id: number; username: string };
let transactionId: number;
let toggled: number;

let seq = 0;
const unique = (p: string) => `${p}${Date.now().toString(36)}${++seq}`;

async function newSubscriber(): Promise<{ id: number; username: string }> {
  const username = unique("perm");
  const res = await h.ext("POST", "/subscribers", full, {
    username,
    password: "pass-1234",
    service_id: serviceId,
  });
  expectStatus(res, 201);
  return { id: res.json().data.id as number, username };
}

async function statusOf(id: number): Promise<string> {
  const res = await h.ext("GET", `/subscribers/${id}`, full);
  expectStatus(res, 200);
  return res.json().data.status as string;
}

async function transactionsWith(reference: string): Promise<number> {
  const rows = await h.kg.database.db
    .selectFrom("transactions")
    .select("id")
    .where("reference", "=", reference)
    .execute();
  return rows.length;
}

/** One call of a route: where it goes, what it sends, its success status, and what to check after. */
type Call = {
  path: string;
  body?: unknown;
  ok: number;
  /** Checks the call's effect (or, refused, that it had none). */
  after?: (permitted: boolean) => Promise<void>;
};

/** A real request for each route of the table; a route added there without one here fails. */
const CALLS: Record<RouteName, () => Promise<Call>> = {
  "GET /whoami": async () => ({ path: "/whoami", ok: 200 }),
  "GET /subscribers": async () => ({ path: "/subscribers", ok: 200 }),
  "GET /subscribers/by-username/:username": async () => ({
    path: `/subscribers/by-username/${subscriber.username}`,
    ok: 200,
  }),
  "GET /subscribers/:id": async () => ({ path: `/subscribers/${subscriber.id}`, ok: 200 }),
  "POST /subscribers": async () => {
    const username = unique("made");
    return {
      path: "/subscribers",
      body: { username, password: "auto-generate", service_id: serviceId },
      ok: 201,
      after: async (permitted) => {
        const found = await h.ext("GET", `/subscribers/by-username/${username}`, full);
        expect(found.statusCode, `subscriber ${username} created`).toBe(permitted ? 200 : 404);
      },
    };
  },
  "PUT /subscribers/:id": async () => {
    const name = unique("Name ");
    return {
      path: `/subscribers/${subscriber.id}`,
      body: { full_name: name },
      ok: 200,
      after: async (permitted) => {
        const res = await h.ext("GET", `/subscribers/${subscriber.id}`, full);
        expect(res.json().data.full_name === name, "full_name changed").toBe(permitted);
      },
    };
  },
  "DELETE /subscribers/:id": async () => {
    const victim = await newSubscriber();
    return {
      path: `/subscribers/${victim.id}`,
      ok: 200,
      after: async (permitted) => {
        const res = await h.ext("GET", `/subscribers/${victim.id}`, full);
        expect(res.statusCode, "subscriber deleted").toBe(permitted ? 404 : 200);
      },
    };
  },
  "POST /subscribers/:id/suspend": async () => {
    expectStatus(await h.ext("POST", `/subscribers/${toggled}/activate`, full), 200);
    return {
      path: `/subscribers/${toggled}/suspend`,
      ok: 200,
      after: async (permitted) =>
        expect(await statusOf(toggled)).toBe(permitted ? "suspended" : "active"),
    };
  },
  "POST /subscribers/:id/activate": async () => {
    expectStatus(await h.ext("POST", `/subscribers/${toggled}/suspend`, full), 200);
    return {
      path: `/subscribers/${toggled}/activate`,
      ok: 200,
      after: async (permitted) =>
        expect(await statusOf(toggled)).toBe(permitted ? "active" : "suspended"),
    };
  },
  "GET /subscribers/:id/usage": async () => ({
    path: `/subscribers/${subscriber.id}/usage?from=2026-01-01&to=2026-01-31`,
    ok: 200,
  }),
  "GET /services": async () => ({ path: "/services", ok: 200 }),
  "GET /services/:id": async () => ({ path: `/services/${serviceId}`, ok: 200 }),
  "GET /nas": async () => ({ path: "/nas", ok: 200 }),
  "GET /nas/:id": async () => ({ path: `/nas/${nasId}`, ok: 200 }),
  "GET /transactions": async () => ({ path: "/transactions", ok: 200 }),
  "GET /transactions/:id": async () => ({ path: `/transactions/${transactionId}`, ok: 200 }),
  "POST /transactions": async () => {
    const reference = unique("ref-");
    return {
      path: "/transactions",
      body: { subscriber_id: subscriber.id, amount: "1.25", reference },
      ok: 201,
      after: async (permitted) =>
        expect(await transactionsWith(reference), "transaction recorded").toBe(permitted ? 1 : 0),
    };
  },
  "GET /system/stats": async () => ({ path: "/system/stats", ok: 200 }),
};

const pathOnly = (p: string) => p.split("?")[0] as string;

/** Asserts one refusal for lack of permission: 403 SCOPE_REQUIRED naming both sides. */
function expectScopeRequired(
  res: LightMyRequestResponse,
  what: string,
  need: string,
  has: readonly string[],
): void {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBe(403);
  const error = res.json().error as { code: string; message: string };
  expect(error.code, what).toBe("SCOPE_REQUIRED");
  expect(error.message, what).toContain(need);
  for (const p of has) expect(error.message, `${what}: names the key's ${p}`).toContain(p);
  expect(error.message, what).toContain(has.join(", "));
}

type Minted = { key: string; id: number; permissions: string[] };

async function mintWith(permissions: string[]): Promise<Minted> {
  const k = await h.mint(h.adminToken, { name: `perm ${permissions.join(" ")}`, permissions });
  return { key: k.key, id: k.id, permissions: k.data.permissions as string[] };
}

/**
 * Runs every route (and HEAD of every GET route, and an unknown route) with one key and checks
 * each answer against `given`, then the key's log against the refusals.
 */
async function runMatrix(given: string[]): Promise<void> {
  const k = await mintWith(given);
  // The stored list grants exactly what was asked, by the rule.
  for (const r of RESOURCES)
    for (const a of ACTIONS)
      expect(
        grants(k.permissions, `${r}:${a}`),
        `${given} stored as ${k.permissions}: ${r}:${a}`,
      ).toBe(grants(given, `${r}:${a}`));
  const refused: string[] = [];
  for (const route of ROUTES) {
    const need = ROUTE_PERMISSIONS[route];
    const accepted = need ?? "none";
    const permitted = grants(given, need);
    const method = methodOf(route);
    const call = await CALLS[route]();
    const what = `[${given}] ${route}`;
    const res = await h.ext(method, call.path, k.key, call.body);
    expect(res.headers["x-accepted-permissions"], `${what}: X-Accepted-Permissions`).toBe(accepted);
    if (permitted) {
      expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBe(call.ok);
      expect(res.json().success, what).toBe(true);
    } else {
      expectScopeRequired(res, what, need as string, k.permissions);
      refused.push(`${method} ${EXT}${pathOnly(call.path)}`);
    }
    await call.after?.(permitted);

    if (method === "GET") {
      // HEAD needs what its GET needs.
      const head = await h.ext("HEAD", call.path, k.key);
      expect(head.statusCode, `${what} (HEAD)`).toBe(permitted ? call.ok : 403);
      expect(head.headers["x-accepted-permissions"], `${what} (HEAD)`).toBe(accepted);
      if (!permitted) refused.push(`HEAD ${EXT}${pathOnly(call.path)}`);
    }
  }
  // A route Keygate does not serve: 404 once the key may use the method on something, and
  // needs no permission of its own.
  const miss = await h.ext("GET", "/no-such-route", k.key);
  expect(miss.statusCode, `[${given}] GET miss`).toBe(404);
  expect(miss.json().error.code).toBe("NOT_FOUND");
  expect(miss.headers["x-accepted-permissions"]).toBe("none");
  const writes = RESOURCES.some((r) => grants(given, `${r}:write`));
  const missPost = await h.ext("POST", "/no-such-route", k.key, {});
  expect(missPost.statusCode, `[${given}] POST miss`).toBe(writes ? 404 : 403);
  expect(missPost.json().error.code).toBe(writes ? "NOT_FOUND" : "SCOPE_REQUIRED");
  expect(missPost.headers["x-accepted-permissions"]).toBe("none");
  if (!writes) refused.push(`POST ${EXT}/no-such-route`);

  // Each refusal is in the key's own log, as a 403 SCOPE_REQUIRED; nothing else is.
  const log = await keyLog(h, k.id);
  const scopeRows = log.filter((r) => r.error_code === "SCOPE_REQUIRED");
  expect(scopeRows.map((r) => `${r.method} ${r.path}`)).toEqual(refused);
  for (const r of scopeRows) expect(r.status_code).toBe(403);
}

beforeAll(async () => {
  h = await harness({
    KEYGATE_IP_RATE_LIMIT: "0",
    KEYGATE_FAILED_KEY_LIMIT: "0",
    KEYGATE_KEY_RATE_LIMIT: "100000",
  });
  serviceId = await h.service();
  const nas = await h.api("POST", "/api/nas", h.adminToken, {
    name: "edge-1",
    ip_address: "10.0.0.1",
    secret: "radius-secret",
  });
  expectStatus(nas, 201);
  nasId = nas.json().data.id;
  full = (await h.mint(h.adminToken, { name: "setup", scopes: "delete" })).key;
  subscriber = await newSubscriber();
  toggled = (await newSubscriber()).id;
  const usage = await h.api("POST", `/api/subscribers/${subscriber.id}/usage`, h.adminToken, {
    date: "2026-01-05",
    bytes_in: 100,
    bytes_out: 200,
    session_seconds: 60,
  });
  expectStatus(usage, 201);
  const tx = await h.ext("POST", "/transactions", full, {
    subscriber_id: subscriber.id,
    amount: "10.00",
    reference: "seed",
  });
  expectStatus(tx, 201);
  transactionId = tx.json().data.id;
});
afterAll(() => h?.close());

describe("the permission matrix: every route of ROUTE_PERMISSIONS", () => {
  it("has a request here for every route of the table, and nothing else", () => {
    expect(Object.keys(CALLS).sort()).toEqual([...ROUTES].sort());
    for (const need of Object.values(ROUTE_PERMISSIONS)) {
      if (need === null) continue;
      const [r, a] = need.split(":");
      expect(RESOURCES).toContain(r);
      expect(ACTIONS).toContain(a);
    }
  });

  it.each(SINGLES)("a key with only %s", async (p) => {
    await runMatrix([p]);
  });

  it.each(STARS)("a key with %s", async (p) => {
    await runMatrix([p]);
  });

  it("keys of every preset from GET /api/api-keys/presets", async () => {
    const res = await h.api("GET", "/api/api-keys/presets", h.adminToken);
    expectStatus(res, 200);
    const data = res.json().data as {
      resources: string[];
      actions: string[];
      presets: { name: string; permissions: string[]; summary: string }[];
    };
    expect(data.resources).toEqual(RESOURCES);
    expect(data.actions).toEqual(ACTIONS);
    const byName = new Map(data.presets.map((p) => [p.name, p.permissions]));
    // The contract's presets, at least.
    const contract: Record<string, string[]> = {
      read_only: ["*:read"],
      billing: ["subscribers:read", "transactions:write", "usage:read"],
      provisioning: ["subscribers:delete", "services:read"],
      monitoring: ["stats:read"],
      full: ["*:delete"],
    };
    for (const [name, perms] of Object.entries(contract))
      expect([...(byName.get(name) ?? [])].sort(), name).toEqual([...perms].sort());
    for (const p of data.presets) expect(p.summary.length, p.name).toBeGreaterThan(5);
    for (const p of data.presets) await runMatrix(p.permissions);
  });

  it("states each route's permission in X-Accepted-Permissions on 401s too", async () => {
    const unknown = `pk_live_${"0123456789abcdef".repeat(2)}`;
    const revoked = await mintWith(["*:delete"]);
    expectStatus(await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken), 200);
    for (const route of ROUTES) {
      const call = await CALLS[route]();
      const accepted = ROUTE_PERMISSIONS[route] ?? "none";
      for (const [sent, code] of [
        [undefined, "MISSING_API_KEY"],
        ["not-a-key", "INVALID_API_KEY"],
        [unknown, "INVALID_API_KEY"],
        [revoked.key, "API_KEY_REVOKED"],
      ] as const) {
        const res = await h.ext(methodOf(route), call.path, sent, call.body);
        const what = `${route} with ${code}`;
        expect(res.statusCode, what).toBe(401);
        expect(res.json().error.code, what).toBe(code);
        expect(res.headers["x-accepted-permissions"], what).toBe(accepted);
        await call.after?.(false);
      }
    }
    const miss = await h.ext("GET", "/no-such-route", unknown);
    expect(miss.statusCode).toBe(401);
    expect(miss.headers["x-accepted-permissions"]).toBe("none");
    const health = await h.ext("GET", "/system/health");
    expectStatus(health, 200);
    expect(health.headers["x-accepted-permissions"]).toBe("none");
  });
});

describe("X-Accepted-Permissions before the key is checked", () => {
  it("is on an answer refused for the client IP's budget, naming the route's permission", async () => {
    const g = await harness({ KEYGATE_IP_RATE_LIMIT: "6" });
    try {
      const k = await g.mint(g.adminToken, { scopes: "read" });
      let refused: LightMyRequestResponse | null = null;
      await clearOfMinuteBoundary();
      for (let i = 0; i < 12 && refused === null; i++) {
        const res = await g.ext("GET", "/subscribers", k.key);
        if (res.statusCode === 429) refused = res;
        else expect(res.headers["x-accepted-permissions"]).toBe("subscribers:read");
      }
      expect(refused, "the IP budget ran out").not.toBeNull();
      expect(refused?.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
      expect(
        refused?.headers["x-accepted-permissions"],
        "X-Accepted-Permissions on the IP's 429",
      ).toBe("subscribers:read");
    } finally {
      await g.close();
    }
  });
});

describe("a key never exceeds its owner's role", () => {
  it("refuses to mint nas:read for a reseller, naming the role as the limit", async () => {
    const reseller = await h.user("limited-reseller");
    for (const permissions of [["nas:read"], ["subscribers:read", "nas:read"], ["nas:delete"]]) {
      const res = await h.api("POST", "/api/api-keys", h.adminToken, {
        owner_id: reseller.id,
        permissions,
      });
      expectStatus(res, 400);
      const body = res.json();
      expect(body.code).toBe("VALIDATION_ERROR");
      const problem = (body.details as { field: string; message: string }[]).find(
        (d) => d.field === "permissions",
      );
      expect(problem, JSON.stringify(body)).toBeDefined();
      expect(problem?.message).toContain(permissions.find((p) => p.startsWith("nas")));
      expect(problem?.message).toContain("reseller");
      expect(problem?.message).toContain("never exceeds its owner's role");
    }
    // Nothing was minted for the reseller.
    const keys = await h.api("GET", "/api/api-keys?environment=all", h.adminToken);
    expect(
      (keys.json().data as { owner_id: number }[]).filter((k) => k.owner_id === reseller.id),
    ).toEqual([]);
  });

  it("refuses a reseller's *:read key on /nas with 403 FORBIDDEN naming the role", async () => {
    const reseller = await h.user("star-reseller");
    const k = await h.mint(h.adminToken, { owner_id: reseller.id, permissions: ["*:read"] });
    expect(k.data.permissions).toEqual(["*:read"]);
    for (const path of ["/nas", `/nas/${nasId}`]) {
      const res = await h.ext("GET", path, k.key);
      expect(res.statusCode, path).toBe(403);
      const error = res.json().error;
      expect(error.code).toBe("FORBIDDEN");
      expect(error.message).toContain("nas:read");
      expect(error.message).toContain('reseller "star-reseller"');
      expect(error.message).toContain("never exceeds its owner's role");
      expect(res.headers["x-accepted-permissions"]).toBe("nas:read");
    }
    // What a reseller may read, the key reads.
    expectStatus(await h.ext("GET", "/services", k.key), 200);
    expectStatus(await h.ext("GET", "/system/stats", k.key), 200);
    expectStatus(await h.ext("GET", "/subscribers", k.key), 200);
    const log = await keyLog(h, k.id);
    expect(log.filter((r) => r.error_code === "FORBIDDEN").map((r) => r.path)).toEqual([
      `${EXT}/nas`,
      `${EXT}/nas/${nasId}`,
    ]);
  });

  it("refuses a nas:read key on the next request once its admin owner becomes a reseller", async () => {
    const owner = await h.user("demoted-admin", "admin");
    const k = await h.mint(h.adminToken, { owner_id: owner.id, permissions: ["nas:read"] });
    expect(k.data.permissions).toEqual(["nas:read"]);
    expectStatus(await h.ext("GET", "/nas", k.key), 200);
    expectStatus(await h.ext("GET", `/nas/${nasId}`, k.key), 200);
    expectStatus(
      await h.api("PUT", `/api/users/${owner.id}`, h.adminToken, { role: "reseller" }),
      200,
    );
    const res = await h.ext("GET", "/nas", k.key);
    expect(res.statusCode, res.body).toBe(403);
    expect(res.json().error.code).toBe("FORBIDDEN");
    expect(res.json().error.message).toContain('reseller "demoted-admin"');
    // And back: an admin again, the key reads NAS devices again.
    expectStatus(
      await h.api("PUT", `/api/users/${owner.id}`, h.adminToken, { role: "admin" }),
      200,
    );
    expectStatus(await h.ext("GET", "/nas", k.key), 200);
  });
});

describe("permissions and the old scopes", () => {
  async function view(id: number) {
    const res = await h.api("GET", `/api/api-keys/${id}`, h.adminToken);
    expectStatus(res, 200);
    return res.json().data as { scopes: string; permissions: string[] };
  }

  it("keeps scopes exactly: a scope key reads back its scope and its * permission", async () => {
    for (const scope of ["read", "write", "delete"]) {
      const k = await h.mint(h.adminToken, { scopes: scope });
      expect(k.data.scopes).toBe(scope);
      expect(k.data.permissions).toEqual([`*:${scope}`]);
      expect(await view(k.id)).toMatchObject({ scopes: scope, permissions: [`*:${scope}`] });
      const who = await h.ext("GET", "/whoami", k.key);
      expectStatus(who, 200);
      expect(who.json().data).toMatchObject({ scopes: scope, permissions: [`*:${scope}`] });
    }
    // No scopes and no permissions: a read key, as before.
    const plain = await h.mint(h.adminToken, {});
    expect(plain.data).toMatchObject({ scopes: "read", permissions: ["*:read"] });
  });

  it("names the preset that permissions are exactly, else custom", async () => {
    const cases: [string[], string][] = [
      [["*:read"], "read"],
      [["*:write"], "write"],
      [["*:delete"], "delete"],
      [RESOURCES.map((r) => `${r}:delete`), "delete"],
      [["subscribers:read", "transactions:write", "usage:read"], "custom"],
      [["subscribers:delete", "services:read"], "custom"],
      [["stats:read"], "custom"],
    ];
    for (const [permissions, scopes] of cases) {
      const k = await h.mint(h.adminToken, { permissions });
      expect(k.data.scopes, permissions.join(",")).toBe(scopes);
      expect((await view(k.id)).scopes).toBe(scopes);
    }
  });

  it("refuses scopes and permissions together", async () => {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, {
      scopes: "read",
      permissions: ["*:read"],
    });
    expectStatus(res, 400);
    expect(res.json().code).toBe("VALIDATION_ERROR");
    expect(res.json().message).toMatch(/permissions|scopes/);
  });

  it("refuses unknown resources and actions, naming each bad entry", async () => {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, {
      permissions: ["subscribers:read", "routers:read", "transactions:destroy", "read"],
    });
    expectStatus(res, 400);
    const body = res.json();
    expect(body.code).toBe("VALIDATION_ERROR");
    const details = body.details as { field: string; message: string }[];
    expect(details.map((d) => d.field)).toEqual([
      "permissions[1]",
      "permissions[2]",
      "permissions[3]",
    ]);
    expect(details[0]?.message).toContain("routers");
    expect(details[1]?.message).toContain("destroy");
    // And on PUT.
    const k = await h.mint(h.adminToken, { permissions: ["stats:read"] });
    const put = await h.api("PUT", `/api/api-keys/${k.id}`, h.adminToken, {
      permissions: ["stats:read", "stats:admin"],
    });
    expectStatus(put, 400);
    expect(put.json().details.map((d: { field: string }) => d.field)).toEqual(["permissions[1]"]);
    expect((await view(k.id)).permissions).toEqual(["stats:read"]);
  });

  it("normalises the list: implied permissions dropped, * first", async () => {
    const cases: [string[], string[]][] = [
      [
        ["subscribers:read", "subscribers:write", "*:read"],
        ["*:read", "subscribers:write"],
      ],
      [["usage:read", "usage:delete", "usage:write"], ["usage:delete"]],
      [["nas:read", "*:write", "stats:write"], ["*:write"]],
      [RESOURCES.map((r) => `${r}:write`), ["*:write"]],
      [["*:read", "*:delete"], ["*:delete"]],
    ];
    for (const [given, stored] of cases) {
      const k = await h.mint(h.adminToken, { permissions: given });
      expect(k.data.permissions, given.join(",")).toEqual(stored);
      const who = await h.ext("GET", "/whoami", k.key);
      expect(who.json().data.permissions).toEqual(stored);
    }
  });

  it("applies a PUT of permissions on the very next request", async () => {
    const k = await h.mint(h.adminToken, { permissions: ["subscribers:read"] });
    expectStatus(await h.ext("GET", "/subscribers", k.key), 200);
    expect((await h.ext("GET", "/transactions", k.key)).statusCode).toBe(403);
    const put = await h.api("PUT", `/api/api-keys/${k.id}`, h.adminToken, {
      permissions: ["transactions:read"],
    });
    expectStatus(put, 200);
    expect(put.json().data).toMatchObject({ permissions: ["transactions:read"], scopes: "custom" });
    expectStatus(await h.ext("GET", "/transactions", k.key), 200);
    const now = await h.ext("GET", "/subscribers", k.key);
    expectScopeRequired(now, "after PUT", "subscribers:read", ["transactions:read"]);
    const who = await h.ext("GET", "/whoami", k.key);
    expect(who.json().data).toMatchObject({ permissions: ["transactions:read"], scopes: "custom" });
    // A PUT of a scope replaces the permissions with its preset.
    const scoped = await h.api("PUT", `/api/api-keys/${k.id}`, h.adminToken, { scopes: "write" });
    expectStatus(scoped, 200);
    expect(scoped.json().data).toMatchObject({ permissions: ["*:write"], scopes: "write" });
    expectStatus(await h.ext("GET", "/subscribers", k.key), 200);
    expect((await h.ext("DELETE", `/subscribers/${subscriber.id}`, k.key)).statusCode).toBe(403);
    // And the owner's role limits a PUT as it limits a mint.
    const reseller = await h.user("put-reseller");
    const rk = await h.mint(h.adminToken, { owner_id: reseller.id, permissions: ["stats:read"] });
    const over = await h.api("PUT", `/api/api-keys/${rk.id}`, h.adminToken, {
      permissions: ["nas:read"],
    });
    expectStatus(over, 400);
    expect(over.json().details.map((d: { field: string }) => d.field)).toContain("permissions");
  });

  it("shows a key's permissions, scopes and environment in whoami", async () => {
    const k = await h.mint(h.adminToken, {
      permissions: ["transactions:write", "subscribers:read", "usage:read"],
    });
    const who = await h.ext("GET", "/whoami", k.key);
    expectStatus(who, 200);
    expect(who.headers["x-accepted-permissions"]).toBe("none");
    expect(who.json().data).toMatchObject({
      id: k.id,
      scopes: "custom",
      permissions: ["subscribers:read", "transactions:write", "usage:read"],
      environment: "live",
    });
  });
});

describe("the OpenAPI documents", () => {
  type Op = { "x-keygate-permission"?: string; security?: Record<string, unknown>[] };
  type Doc = { paths: Record<string, Record<string, Op>> };

  /** `METHOD /relative/:param` → x-keygate-permission of every operation a key calls. */
  function permissionsIn(doc: Doc): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith(EXT)) continue;
      const relative = path.slice(EXT.length).replace(/\{(\w+)\}/g, ":$1");
      for (const [method, op] of Object.entries(item)) {
        if (!op.security?.some((s) => "apiKey" in s)) continue;
        out[`${method.toUpperCase()} ${relative}`] = op["x-keygate-permission"];
      }
    }
    return out;
  }

  const expected = Object.fromEntries(
    ROUTES.map((r) => [r, ROUTE_PERMISSIONS[r] ?? "none"]),
  ) as Record<string, string>;

  it.each(["/openapi.json", "/openapi/external.json"])(
    "served %s states each external operation's permission as the table does",
    async (url) => {
      const res = await h.app.inject({ url });
      expectStatus(res, 200);
      expect(permissionsIn(res.json() as Doc)).toEqual(expected);
    },
  );

  it.each(["docs/openapi.json", "docs/openapi-external.json"])(
    "committed %s states each external operation's permission as the table does",
    async (file) => {
      const { readFile } = await import("node:fs/promises");
      const doc = JSON.parse(await readFile(new URL(`../${file}`, import.meta.url), "utf8"));
      expect(permissionsIn(doc as Doc)).toEqual(expected);
    },
  );
});
