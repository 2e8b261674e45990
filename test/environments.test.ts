import type { LightMyRequestResponse } from "fastify";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiWith, keyLog, ROUTES, type RouteName } from "./access.js";
import { clearOfMinuteBoundary, expectStatus, type Harness, harness } from "./helpers.js";

/**
 * The isolation matrix: live and test data side by side, for an admin and a reseller, and
 * every external route of ROUTE_PERMISSIONS called with a `*:delete` key of each environment
 * against the other environment's records. What each key should see is kept here, in a model
 * of everything this file created, not read back from the server. Then the JWT surface with
 * `Keygate-Environment`, keys and call logs per environment, the test-data reset, and rate
 * limits per key.
 */

type Env = "live" | "test";
type Owner = "admin" | "reseller";
const ENVS: Env[] = ["live", "test"];
const OWNERS: Owner[] = ["admin", "reseller"];
const otherOf = (e: Env): Env => (e === "live" ? "test" : "live");

type Sub = {
  id: number;
  username: string;
  env: Env;
  owner: Owner;
  deleted: boolean;
  status: "active" | "suspended";
  full_name: string | null;
};
type Tx = {
  id: number;
  env: Env;
  owner: Owner;
  subscriberId: number;
  reference: string | null;
  amount: number;
};
type MintedKey = { id: number; key: string; env: Env; owner: Owner };

/** Everything this file created, and so what each key and each user should see. */
const subs: Sub[] = [];
const txs: Tx[] = [];
/** Subscriber-days with usage: `${env} ${subscriberId} ${date}`, and the bytes recorded. */
const usage = new Map<string, number>();
const keysMinted: MintedKey[] = [];

/** A fixed instant a second into a minute, so no minute window rolls over by itself. */
const T0 = Math.floor(Date.now() / 60_000) * 60_000 + 1_000;

let h: Harness;
let reseller: { id: number; token: string };
let serviceId: number;
let nasId: number;
/** The `*:delete` key of each environment and owner. */
const keys = {} as Record<Env, Record<Owner, MintedKey>>;

const ownerId = (o: Owner) => (o === "admin" ? 1 : reseller.id);
const tokenOf = (o: Owner) => (o === "admin" ? h.adminToken : reseller.token);

async function mint(env: Env, owner: Owner, extra: Record<string, unknown> = {}) {
  const k = await h.mint(h.adminToken, {
    name: `${env} ${owner}`,
    permissions: ["*:delete"],
    environment: env,
    owner_id: ownerId(owner),
    ...extra,
  });
  expect(k.key.startsWith(`pk_${env}_`), k.key.slice(0, 12)).toBe(true);
  expect(k.data.environment).toBe(env);
  const m = { id: k.id, key: k.key, env, owner };
  keysMinted.push(m);
  return m;
}

/** An external call with the key of `env`/`owner`; every answer must say `env`. */
async function ext(
  env: Env,
  owner: Owner,
  method: string,
  path: string,
  body?: unknown,
): Promise<LightMyRequestResponse> {
  const res = await h.ext(method, path, keys[env][owner].key, body);
  expect(res.headers["keygate-environment"], `${env} ${owner} ${method} ${path}`).toBe(env);
  return res;
}

let seq = 0;
const unique = (p: string) => `${p}-${++seq}`;

async function createSub(env: Env, owner: Owner, username = unique(`${env}-${owner}`)) {
  const res = await ext(env, owner, "POST", "/subscribers", {
    username,
    password: "pass-1234",
    service_id: serviceId,
  });
  expectStatus(res, 201);
  const data = res.json().data;
  expect(data).toMatchObject({ username, environment: env, owner_id: ownerId(owner) });
  const s: Sub = {
    id: data.id,
    username,
    env,
    owner,
    deleted: false,
    status: "active",
    full_name: null,
  };
  subs.push(s);
  return s;
}

async function createTx(env: Env, owner: Owner, sub: Sub, amount: number, reference?: string) {
  const res = await ext(env, owner, "POST", "/transactions", {
    subscriber_id: sub.id,
    amount: amount.toFixed(2),
    ...(reference === undefined ? {} : { reference }),
  });
  expectStatus(res, 201);
  const data = res.json().data;
  expect(data).toMatchObject({ subscriber_id: sub.id, environment: env });
  const tx: Tx = {
    id: data.id,
    env,
    owner,
    subscriberId: sub.id,
    reference: reference ?? null,
    amount,
  };
  txs.push(tx);
  return tx;
}

/** Records usage through the JWT surface in `env`. */
async function recordUsage(env: Env, sub: Sub, date: string, bytes: number) {
  const res = await apiWith(
    h,
    "POST",
    `/api/subscribers/${sub.id}/usage`,
    h.adminToken,
    { "keygate-environment": env },
    { date, bytes_in: bytes, bytes_out: 1, session_seconds: 1 },
  );
  expectStatus(res, 201);
  expect(res.headers["keygate-environment"]).toBe(env);
  const k = `${env} ${sub.id} ${date}`;
  usage.set(k, (usage.get(k) ?? 0) + bytes);
}

const seesOwner = (viewer: Owner, owner: Owner) => viewer === "admin" || owner === viewer;
const visibleSubs = (env: Env, viewer: Owner) =>
  subs.filter((s) => s.env === env && !s.deleted && seesOwner(viewer, s.owner));
/** Transactions stay listed when their subscriber is deleted (soft delete). */
const visibleTxs = (env: Env, viewer: Owner) =>
  txs.filter((x) => x.env === env && seesOwner(viewer, x.owner));
const ids = (rows: { id: number }[]) => rows.map((r) => r.id).sort((a, b) => a - b);

/** The first subscriber of an environment and owner still there: what the other side aims at. */
function target(env: Env, owner: Owner): Sub {
  const s = subs.find((x) => x.env === env && x.owner === owner && !x.deleted);
  if (!s) throw new Error(`no ${env} subscriber of ${owner}`);
  return s;
}

/** What a key of `env` must not reach: every record of the other environment it could otherwise see. */
const foreignSubs = (env: Env, owner: Owner) => visibleSubs(otherOf(env), owner);

async function dbCounts(env: Env) {
  const n = async (table: "subscribers" | "transactions" | "usage_daily") =>
    Number(
      (
        await h.kg.database.db
          .selectFrom(table)
          .select(sql<number>`count(*)`.as("n"))
          .where("environment", "=", env)
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    subscribers: await n("subscribers"),
    transactions: await n("transactions"),
    usage: await n("usage_daily"),
  };
}

beforeAll(async () => {
  h = await harness(
    {
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
      KEYGATE_KEY_RATE_LIMIT: "100000",
    },
    { now: () => new Date(T0) },
  );
  reseller = await h.user("env-reseller");
  serviceId = await h.service();
  await h.service("Premium");
  const nas = await h.api("POST", "/api/nas", h.adminToken, {
    name: "edge-1",
    ip_address: "10.0.0.1",
    secret: "radius-secret",
  });
  expectStatus(nas, 201);
  nasId = nas.json().data.id;
  for (const env of ENVS) {
    keys[env] = {} as Record<Owner, MintedKey>;
    for (const owner of OWNERS) keys[env][owner] = await mint(env, owner);
  }
  for (const env of ENVS)
    for (const owner of OWNERS) {
      const a = await createSub(env, owner, `${env}-${owner}-a`);
      // The same username in both environments: one subscriber in each.
      await createSub(env, owner, `shared-${owner}`);
      await createSub(env, owner);
      await createTx(env, owner, a, env === "live" ? 10.5 : 1.25, `INV-SAME-${owner}`);
      await createTx(env, owner, a, env === "live" ? 20 : 2, `${env}-${owner}-ref`);
      await createTx(env, owner, a, env === "live" ? 3 : 0.5);
      await recordUsage(env, a, "2026-01-10", env === "live" ? 1000 : 7);
      await recordUsage(env, a, "2026-01-11", env === "live" ? 500 : 3);
    }
});
afterAll(() => h?.close());

describe("seeding both environments", () => {
  it("gives each environment its own transaction for the same reference", async () => {
    for (const owner of OWNERS) {
      const [live, test] = ENVS.map(
        (env) => txs.find((x) => x.env === env && x.reference === `INV-SAME-${owner}`) as Tx,
      );
      expect(live?.id).not.toBe(test?.id);
      // Sent again in test, the reference returns the test transaction, and nothing is added.
      const again = await ext("test", owner, "POST", "/transactions", {
        subscriber_id: test?.subscriberId,
        amount: "1.25",
        reference: `INV-SAME-${owner}`,
      });
      expectStatus(again, 200);
      expect(again.json().data).toMatchObject({ id: test?.id, environment: "test" });
      const liveAgain = await ext("live", owner, "POST", "/transactions", {
        subscriber_id: live?.subscriberId,
        amount: "10.50",
        reference: `INV-SAME-${owner}`,
      });
      expectStatus(liveAgain, 200);
      expect(liveAgain.json().data).toMatchObject({ id: live?.id, environment: "live" });
    }
  });

  it("keeps usage recorded in one environment out of the other", async () => {
    for (const env of ENVS) {
      // Recording on the JWT surface in the wrong environment finds no such subscriber.
      const sub = target(otherOf(env), "admin");
      const res = await apiWith(
        h,
        "POST",
        `/api/subscribers/${sub.id}/usage`,
        h.adminToken,
        { "keygate-environment": env },
        { date: "2026-01-10", bytes_in: 999_999 },
      );
      expect(res.statusCode, res.body).toBe(404);
      expect(res.headers["keygate-environment"]).toBe(env);
    }
    // Nothing was added by the refused records: the model's totals are the server's.
    for (const env of ENVS) {
      const sub = target(env, "admin");
      const report = await ext(
        env,
        "admin",
        "GET",
        `/subscribers/${sub.id}/usage?from=2026-01-01&to=2026-01-31`,
      );
      expectStatus(report, 200);
      expect(report.json().data.totals.bytes_in).toBe(env === "live" ? 1500 : 10);
    }
  });
});

type Ctx = { env: Env; owner: Owner; other: Env };

/** For each route of the table: what a key of one environment may and may not do to the other's records. */
const CHECKS: Record<RouteName, (c: Ctx) => Promise<void>> = {
  "GET /whoami": async ({ env, owner }) => {
    const res = await ext(env, owner, "GET", "/whoami");
    expectStatus(res, 200);
    expect(res.json().data).toMatchObject({ environment: env, id: keys[env][owner].id });
    expect(res.json().data.key_prefix.startsWith(`pk_${env}_`)).toBe(true);
  },
  "GET /subscribers": async ({ env, owner }) => {
    const res = await ext(env, owner, "GET", "/subscribers?per_page=500");
    expectStatus(res, 200);
    const rows = res.json().data as { id: number; environment: string }[];
    for (const r of rows) expect(r.environment, `subscriber ${r.id}`).toBe(env);
    expect(ids(rows)).toEqual(ids(visibleSubs(env, owner)));
    expect(res.json().meta.total).toBe(visibleSubs(env, owner).length);
    // A search for a name of the other environment finds nothing of it either.
    const search = await ext(env, owner, "GET", `/subscribers?search=${otherOf(env)}-`);
    expectStatus(search, 200);
    expect(
      (search.json().data as { environment: string }[]).every((r) => r.environment === env),
    ).toBe(true);
  },
  "GET /subscribers/by-username/:username": async ({ env, owner, other }) => {
    const theirs = await ext(env, owner, "GET", `/subscribers/by-username/${other}-${owner}-a`);
    expect(theirs.statusCode, theirs.body).toBe(404);
    expect(theirs.json().error.code).toBe("NOT_FOUND");
    const shared = await ext(env, owner, "GET", `/subscribers/by-username/shared-${owner}`);
    expectStatus(shared, 200);
    const mine = subs.find((s) => s.env === env && s.username === `shared-${owner}` && !s.deleted);
    expect(shared.json().data).toMatchObject({ id: mine?.id, environment: env });
  },
  "GET /subscribers/:id": async ({ env, owner }) => {
    for (const s of foreignSubs(env, owner)) {
      const res = await ext(env, owner, "GET", `/subscribers/${s.id}`);
      expect(res.statusCode, `${env} key reads ${s.env} subscriber ${s.id}`).toBe(404);
      // A test key is told it sees test data only, whether or not the record lives elsewhere.
      const says = res.json().error.message as string;
      if (env === "test") expect(says).toContain("this is a test key (pk_test_…)");
      else expect(says).not.toContain("test key");
    }
    if (env === "test") {
      const none = await ext(env, owner, "GET", "/subscribers/2147483000");
      expect(none.json().error.message).toContain("this is a test key (pk_test_…)");
    }
    const own = await ext(env, owner, "GET", `/subscribers/${target(env, owner).id}`);
    expectStatus(own, 200);
    expect(own.json().data.environment).toBe(env);
  },
  "POST /subscribers": async ({ env, owner, other }) => {
    // A username only the other environment has is free here, once.
    const username = `${other}-${owner}-a`;
    const made = await createSub(env, owner, username);
    const again = await ext(env, owner, "POST", "/subscribers", {
      username,
      password: "pass-1234",
      service_id: serviceId,
    });
    expect(again.statusCode, again.body).toBe(409);
    expect(again.json().error.code).toBe("CONFLICT");
    // The other environment's key cannot see what was made here.
    const seen = await h.ext("GET", `/subscribers/${made.id}`, keys[other][owner].key);
    expect(seen.statusCode).toBe(404);
    expect(seen.headers["keygate-environment"]).toBe(other);
    // And its own subscriber of that name is still the one it finds.
    const theirs = await h.ext(
      "GET",
      `/subscribers/by-username/${username}`,
      keys[other][owner].key,
    );
    expectStatus(theirs, 200);
    expect(theirs.json().data.environment).toBe(other);
    expect(theirs.json().data.id).not.toBe(made.id);
  },
  "PUT /subscribers/:id": async ({ env, owner, other }) => {
    const victim = target(other, owner);
    const res = await ext(env, owner, "PUT", `/subscribers/${victim.id}`, {
      full_name: "hijacked",
    });
    expect(res.statusCode, res.body).toBe(404);
    const after = await h.ext("GET", `/subscribers/${victim.id}`, keys[other][owner].key);
    expect(after.json().data.full_name).toBe(victim.full_name);
    // Its own subscriber it changes.
    const own = target(env, owner);
    const mine = await ext(env, owner, "PUT", `/subscribers/${own.id}`, {
      full_name: `${env} name`,
    });
    expectStatus(mine, 200);
    expect(mine.json().data).toMatchObject({ full_name: `${env} name`, environment: env });
    own.full_name = `${env} name`;
  },
  "DELETE /subscribers/:id": async ({ env, owner, other }) => {
    for (const victim of foreignSubs(env, owner)) {
      const res = await ext(env, owner, "DELETE", `/subscribers/${victim.id}`);
      expect(res.statusCode, `${env} key deletes ${victim.env} ${victim.id}`).toBe(404);
    }
    for (const victim of foreignSubs(env, owner)) {
      const still = await h.ext("GET", `/subscribers/${victim.id}`, keys[other][victim.owner].key);
      expectStatus(still, 200);
    }
    const own = await createSub(env, owner);
    expectStatus(await ext(env, owner, "DELETE", `/subscribers/${own.id}`), 200);
    own.deleted = true;
    expect((await ext(env, owner, "GET", `/subscribers/${own.id}`)).statusCode).toBe(404);
  },
  "POST /subscribers/:id/suspend": async ({ env, owner, other }) => {
    const victim = target(other, owner);
    const res = await ext(env, owner, "POST", `/subscribers/${victim.id}/suspend`);
    expect(res.statusCode, res.body).toBe(404);
    const after = await h.ext("GET", `/subscribers/${victim.id}`, keys[other][owner].key);
    expect(after.json().data.status).toBe("active");
  },
  "POST /subscribers/:id/activate": async ({ env, owner, other }) => {
    const victim = target(other, owner);
    expectStatus(
      await h.ext("POST", `/subscribers/${victim.id}/suspend`, keys[other][owner].key),
      200,
    );
    try {
      const res = await ext(env, owner, "POST", `/subscribers/${victim.id}/activate`);
      expect(res.statusCode, res.body).toBe(404);
      const after = await h.ext("GET", `/subscribers/${victim.id}`, keys[other][owner].key);
      expect(after.json().data.status).toBe("suspended");
    } finally {
      await h.ext("POST", `/subscribers/${victim.id}/activate`, keys[other][owner].key);
    }
  },
  "GET /subscribers/:id/usage": async ({ env, owner }) => {
    for (const s of foreignSubs(env, owner)) {
      const res = await ext(
        env,
        owner,
        "GET",
        `/subscribers/${s.id}/usage?from=2026-01-01&to=2026-01-31`,
      );
      expect(res.statusCode, `${env} key reads usage of ${s.env} ${s.id}`).toBe(404);
    }
    const own = target(env, owner);
    const res = await ext(
      env,
      owner,
      "GET",
      `/subscribers/${own.id}/usage?from=2026-01-01&to=2026-01-31`,
    );
    expectStatus(res, 200);
    const expected = [...usage.entries()]
      .filter(([k]) => k.startsWith(`${env} ${own.id} `))
      .reduce((sum, [, v]) => sum + v, 0);
    expect(res.json().data.totals.bytes_in).toBe(expected);
    expect(res.json().data.days).toHaveLength(2);
  },
  "GET /services": async ({ env, owner, other }) => {
    const res = await ext(env, owner, "GET", "/services");
    expectStatus(res, 200);
    const theirs = await h.ext("GET", "/services", keys[other][owner].key);
    expect(ids(res.json().data)).toEqual(ids(theirs.json().data));
    expect(ids(res.json().data)).toContain(serviceId);
  },
  "GET /services/:id": async ({ env, owner }) => {
    const res = await ext(env, owner, "GET", `/services/${serviceId}`);
    expectStatus(res, 200);
    expect(res.json().data.id).toBe(serviceId);
  },
  "GET /nas": async ({ env, owner }) => {
    const res = await ext(env, owner, "GET", "/nas");
    if (owner === "reseller") {
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe("FORBIDDEN");
      return;
    }
    expectStatus(res, 200);
    expect(ids(res.json().data)).toEqual([nasId]);
  },
  "GET /nas/:id": async ({ env, owner }) => {
    const res = await ext(env, owner, "GET", `/nas/${nasId}`);
    if (owner === "reseller") {
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe("FORBIDDEN");
      return;
    }
    expectStatus(res, 200);
    expect(res.json().data.id).toBe(nasId);
  },
  "GET /transactions": async ({ env, owner }) => {
    const res = await ext(env, owner, "GET", "/transactions?per_page=500");
    expectStatus(res, 200);
    const rows = res.json().data as { id: number; environment: string; reference: string | null }[];
    for (const r of rows) expect(r.environment, `transaction ${r.id}`).toBe(env);
    expect(ids(rows)).toEqual(ids(visibleTxs(env, owner)));
    expect(res.json().meta.total).toBe(visibleTxs(env, owner).length);
    for (const o of OWNERS.filter((o) => seesOwner(owner, o))) {
      const same = rows.filter((r) => r.reference === `INV-SAME-${o}`);
      expect(same.map((r) => r.id)).toEqual(
        txs.filter((x) => x.env === env && x.reference === `INV-SAME-${o}`).map((x) => x.id),
      );
    }
  },
  "GET /transactions/:id": async ({ env, owner, other }) => {
    for (const x of visibleTxs(other, owner)) {
      const res = await ext(env, owner, "GET", `/transactions/${x.id}`);
      expect(res.statusCode, `${env} key reads ${x.env} transaction ${x.id}`).toBe(404);
    }
    const own = visibleTxs(env, owner)[0] as Tx;
    const res = await ext(env, owner, "GET", `/transactions/${own.id}`);
    expectStatus(res, 200);
    expect(res.json().data.environment).toBe(env);
  },
  "POST /transactions": async ({ env, owner, other }) => {
    const before = { [env]: await dbCounts(env), [other]: await dbCounts(other) };
    const victim = target(other, owner);
    const res = await ext(env, owner, "POST", "/transactions", {
      subscriber_id: victim.id,
      amount: "5.00",
      reference: unique("cross"),
    });
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().error.code).toBe("VALIDATION_ERROR");
    expect(res.json().error.details.map((d: { field: string }) => d.field)).toEqual([
      "subscriber_id",
    ]);
    expect((await dbCounts(env)).transactions).toBe(before[env]?.transactions);
    expect((await dbCounts(other)).transactions).toBe(before[other]?.transactions);
    // A reference only the other environment has used is new here: a new transaction.
    const theirs = txs.find(
      (x) => x.env === other && x.reference === `${other}-${owner}-ref`,
    ) as Tx;
    const mine = await createTx(env, owner, target(env, owner), 4, `${other}-${owner}-ref`);
    expect(mine.id).not.toBe(theirs.id);
  },
  "GET /system/stats": async ({ env, owner }) => {
    const res = await ext(env, owner, "GET", "/system/stats");
    expectStatus(res, 200);
    const data = res.json().data;
    const mine = visibleSubs(env, owner);
    expect(data.subscribers).toEqual({
      total: mine.length,
      active: mine.filter((s) => s.status === "active").length,
      suspended: mine.filter((s) => s.status === "suspended").length,
      expired: 0,
    });
    expect(data.services).toBe(2);
    if (owner === "admin") expect(data.nas).toBe(1);
    else expect(data.nas).toBeUndefined();
    const money = visibleTxs(env, owner);
    expect(data.transactions_30d).toEqual([
      {
        currency: "USD",
        count: money.length,
        amount: Math.round(money.reduce((s, x) => s + x.amount, 0) * 100) / 100,
      },
    ]);
  },
};

describe("the isolation matrix: every external route, a *:delete key of each environment", () => {
  it("has a check here for every route of the table, and nothing else", () => {
    expect(Object.keys(CHECKS).sort()).toEqual([...ROUTES].sort());
  });

  describe.each([
    ["test", "admin"],
    ["live", "admin"],
    ["test", "reseller"],
    ["live", "reseller"],
  ] as [Env, Owner][])("a %s key of the %s", (env, owner) => {
    it.each(ROUTES)("%s", async (route) => {
      await CHECKS[route]({ env, owner, other: otherOf(env) });
    });
  });

  it("says which environment answered on refusals and for unknown keys too", async () => {
    for (const env of ENVS) {
      const k = await mint(env, "admin", { permissions: ["stats:read"] });
      const refused = await h.ext("GET", "/subscribers", k.key);
      expect(refused.statusCode).toBe(403);
      expect(refused.headers["keygate-environment"]).toBe(env);
      const miss = await h.ext("GET", "/no-such-route", k.key);
      expect(miss.statusCode).toBe(404);
      expect(miss.headers["keygate-environment"]).toBe(env);
      const who = await h.ext("GET", "/whoami", k.key);
      expect(who.json().data.environment).toBe(env);
      expect(who.headers["keygate-environment"]).toBe(env);
      const unknown = await h.ext("GET", "/whoami", `pk_${env}_${"ab".repeat(16)}`);
      expect(unknown.statusCode).toBe(401);
      expect(unknown.headers["keygate-environment"]).toBe(env);
      const short = await h.ext("GET", "/subscribers", `pk_${env}_abc`);
      expect(short.statusCode).toBe(401);
      expect(short.headers["keygate-environment"]).toBe(env);
    }
    for (const sent of [undefined, "garbage", `pk_prod_${"ab".repeat(16)}`]) {
      const res = await h.ext("GET", "/subscribers", sent);
      expect(res.statusCode).toBe(401);
      expect(res.headers["keygate-environment"], String(sent)).toBe("none");
    }
    const health = await h.ext("GET", "/system/health");
    expect(health.headers["keygate-environment"]).toBe("none");
    // A live key turned into a test one by its prefix is no key at all.
    const live = keys.live.admin.key;
    const forged = await h.ext("GET", "/whoami", `pk_test_${live.slice(8)}`);
    expect(forged.statusCode).toBe(401);
    expect(forged.json().error.code).toBe("INVALID_API_KEY");
  });

  it("lets the same username exist once per environment", async () => {
    for (const env of ENVS) {
      const res = await ext(env, "admin", "POST", "/subscribers", {
        username: "shared-admin",
        password: "pass-1234",
        service_id: serviceId,
      });
      expect(res.statusCode, res.body).toBe(409);
    }
    // A rename to a name only the other environment has is fine; to one of its own, not.
    const onlyTest = await createSub("test", "admin", unique("only-in-test"));
    const liveOne = await createSub("live", "admin");
    const renamed = await ext("live", "admin", "PUT", `/subscribers/${liveOne.id}`, {
      username: onlyTest.username,
    });
    expectStatus(renamed, 200);
    expect(renamed.json().data).toMatchObject({ username: onlyTest.username, environment: "live" });
    liveOne.username = onlyTest.username;
    const clash = await ext("live", "admin", "PUT", `/subscribers/${liveOne.id}`, {
      username: "live-admin-a",
    });
    expect(clash.statusCode, clash.body).toBe(409);
    // Each environment finds its own by that name.
    for (const [env, id] of [
      ["live", liveOne.id],
      ["test", onlyTest.id],
    ] as [Env, number][]) {
      const found = await ext(env, "admin", "GET", `/subscribers/by-username/${onlyTest.username}`);
      expect(found.json().data.id).toBe(id);
    }
  });
});

describe("a key's environment is fixed", () => {
  it("rolls a test key into a test key, and refuses a PUT that changes the environment", async () => {
    const old = await mint("test", "admin", { name: "to roll" });
    const res = await h.api("POST", `/api/api-keys/${old.id}/roll`, h.adminToken, {
      grace_period_hours: 0,
    });
    expectStatus(res, 201);
    const rolled = res.json();
    expect(rolled.key.startsWith("pk_test_")).toBe(true);
    expect(rolled.data).toMatchObject({ environment: "test", permissions: ["*:delete"] });
    keysMinted.push({ id: rolled.data.id, key: rolled.key, env: "test", owner: "admin" });
    const who = await h.ext("GET", "/whoami", rolled.key);
    expectStatus(who, 200);
    expect(who.json().data.environment).toBe("test");
    const list = await h.ext("GET", "/subscribers?per_page=500", rolled.key);
    expect(list.headers["keygate-environment"]).toBe("test");
    expect(ids(list.json().data)).toEqual(ids(visibleSubs("test", "admin")));

    const put = await h.api("PUT", `/api/api-keys/${keys.test.admin.id}`, h.adminToken, {
      environment: "live",
    });
    expectStatus(put, 400);
    expect(put.json().details.map((d: { field: string }) => d.field)).toEqual(["environment"]);
    const same = await h.api("PUT", `/api/api-keys/${keys.test.admin.id}`, h.adminToken, {
      environment: "test",
      name: "test admin",
    });
    expectStatus(same, 200);
    expect(same.json().data.environment).toBe("test");
    expect((await ext("test", "admin", "GET", "/whoami")).json().data.environment).toBe("test");
  });

  it("says the environment the key names on an answer refused for the client IP's budget", async () => {
    const g = await harness({ KEYGATE_IP_RATE_LIMIT: "6" });
    try {
      const k = await g.mint(g.adminToken, { environment: "test" });
      let refused: LightMyRequestResponse | null = null;
      await clearOfMinuteBoundary();
      for (let i = 0; i < 12 && refused === null; i++) {
        const res = await g.ext("GET", "/subscribers", k.key);
        if (res.statusCode === 429) refused = res;
        else expect(res.headers["keygate-environment"]).toBe("test");
      }
      expect(refused, "the IP budget ran out").not.toBeNull();
      expect(refused?.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
      expect(refused?.headers["keygate-environment"], "Keygate-Environment on the IP's 429").toBe(
        "test",
      );
    } finally {
      await g.close();
    }
  });
});

describe("the JWT surface with Keygate-Environment", () => {
  const get = (url: string, env?: string, owner: Owner = "admin") =>
    apiWith(h, "GET", url, tokenOf(owner), env === undefined ? {} : { "keygate-environment": env });

  it("works on live data by default and on test data with the header", async () => {
    for (const owner of OWNERS) {
      for (const env of [undefined, "live", "test"] as const) {
        const expected: Env = env ?? "live";
        const res = await get("/api/subscribers?per_page=500", env, owner);
        expectStatus(res, 200);
        expect(res.headers["keygate-environment"]).toBe(expected);
        const rows = res.json().data as { id: number; environment: string }[];
        for (const r of rows) expect(r.environment).toBe(expected);
        expect(ids(rows)).toEqual(ids(visibleSubs(expected, owner)));
        const tx = await get("/api/transactions?per_page=500", env, owner);
        expectStatus(tx, 200);
        expect(ids(tx.json().data)).toEqual(ids(visibleTxs(expected, owner)));
        const stats = await get("/api/system/stats", env, owner);
        expectStatus(stats, 200);
        expect(stats.json().data.subscribers.total).toBe(visibleSubs(expected, owner).length);
        expect(stats.json().data.transactions_30d[0].count).toBe(
          visibleTxs(expected, owner).length,
        );
      }
    }
  });

  it("never crosses: a record of the other environment is not found", async () => {
    for (const env of ENVS) {
      const header = { "keygate-environment": env };
      for (const s of foreignSubs(env, "admin")) {
        const res = await apiWith(h, "GET", `/api/subscribers/${s.id}`, h.adminToken, header);
        expect(res.statusCode, `${env} reads ${s.env} ${s.id}`).toBe(404);
        const put = await apiWith(h, "PUT", `/api/subscribers/${s.id}`, h.adminToken, header, {
          full_name: "hijacked",
        });
        expect(put.statusCode).toBe(404);
        const del = await apiWith(h, "DELETE", `/api/subscribers/${s.id}`, h.adminToken, header);
        expect(del.statusCode).toBe(404);
      }
      for (const x of visibleTxs(otherOf(env), "admin")) {
        const res = await apiWith(h, "GET", `/api/transactions/${x.id}`, h.adminToken, header);
        expect(res.statusCode).toBe(404);
      }
      const cross = await apiWith(h, "POST", "/api/transactions", h.adminToken, header, {
        subscriber_id: target(otherOf(env), "admin").id,
        amount: "1.00",
      });
      expect(cross.statusCode).toBe(400);
      // Made on the JWT surface in an environment, a subscriber is of that environment.
      const username = unique(`jwt-${env}`);
      const made = await apiWith(h, "POST", "/api/subscribers", h.adminToken, header, {
        username,
        password: "pass-1234",
        service_id: serviceId,
      });
      expectStatus(made, 201);
      expect(made.json().data.environment).toBe(env);
      subs.push({
        id: made.json().data.id,
        username,
        env,
        owner: "admin",
        deleted: false,
        status: "active",
        full_name: null,
      });
      const seen = await h.ext(
        "GET",
        `/subscribers/${made.json().data.id}`,
        keys[otherOf(env)].admin.key,
      );
      expect(seen.statusCode).toBe(404);
      const own = await h.ext("GET", `/subscribers/${made.json().data.id}`, keys[env].admin.key);
      expectStatus(own, 200);
    }
    // Every foreign record is as it was.
    for (const s of subs.filter((x) => !x.deleted)) {
      const res = await h.ext("GET", `/subscribers/${s.id}`, keys[s.env][s.owner].key);
      expectStatus(res, 200);
      expect(res.json().data.full_name).toBe(s.full_name);
    }
  });

  it("answers 400 to any other Keygate-Environment", async () => {
    for (const value of ["prod", "production", "all", "live,test"]) {
      for (const url of ["/api/subscribers", "/api/api-keys", "/api/system/stats"]) {
        const res = await get(url, value);
        expect(res.statusCode, `${url} with ${value}`).toBe(400);
        expect(res.json().code).toBe("VALIDATION_ERROR");
        expect(res.json().details.map((d: { field: string }) => d.field)).toEqual([
          "headers.keygate-environment",
        ]);
      }
    }
  });

  it("lists keys of the request's environment, or the one asked for", async () => {
    const of = (env: Env | null, owner: Owner = "admin") =>
      ids(keysMinted.filter((k) => (env === null || k.env === env) && seesOwner(owner, k.owner)));
    const cases: [string, string | undefined, Env | null][] = [
      ["/api/api-keys", undefined, "live"],
      ["/api/api-keys", "live", "live"],
      ["/api/api-keys", "test", "test"],
      ["/api/api-keys?environment=test", undefined, "test"],
      ["/api/api-keys?environment=live", "test", "live"],
      ["/api/api-keys?environment=all", undefined, null],
      ["/api/api-keys?environment=all", "test", null],
    ];
    for (const [url, header, env] of cases) {
      const res = await get(url, header);
      expectStatus(res, 200);
      const rows = res.json().data as { id: number; environment: string; key_prefix: string }[];
      expect(ids(rows), `${url} ${header}`).toEqual(of(env));
      for (const r of rows) {
        if (env !== null) expect(r.environment).toBe(env);
        expect(r.key_prefix.startsWith(`pk_${r.environment}_`)).toBe(true);
      }
    }
    // A reseller lists its own keys, per environment too.
    for (const env of ENVS) {
      const res = await get("/api/api-keys", env, "reseller");
      expectStatus(res, 200);
      expect(ids(res.json().data)).toEqual(of(env, "reseller"));
    }
    const bad = await get("/api/api-keys?environment=prod");
    expect(bad.statusCode).toBe(400);
  });

  it("marks call-log rows with the key's environment", async () => {
    for (const env of ENVS) {
      const log = await keyLog(h, keys[env].admin.id);
      expect(log.length).toBeGreaterThan(10);
      expect(new Set(log.map((r) => r.environment))).toEqual(new Set([env]));
    }
    // Without a known key, the row says the environment the value names (live if none).
    const marker = `/whoami-${Date.now()}`;
    await h.ext("GET", `${marker}-t`, `pk_test_${"cd".repeat(16)}`);
    await h.ext("GET", `${marker}-l`, `pk_live_${"cd".repeat(16)}`);
    await h.ext("GET", `${marker}-n`, "garbage");
    await h.kg.callLog.flush();
    const rows = await h.kg.database.db
      .selectFrom("api_key_logs")
      .select(["path", "environment"])
      .where("path", "like", `%${marker}%`)
      .orderBy("id")
      .execute();
    expect(rows.map((r) => [r.path.slice(-2), r.environment])).toEqual([
      ["-t", "test"],
      ["-l", "live"],
      ["-n", "live"],
    ]);
  });

  it("counts keys and calls per environment in /api/api-keys/stats", async () => {
    const stats = async (env: string) => {
      await h.kg.callLog.flush();
      const res = await get(`/api/api-keys/stats?environment=${env}`);
      expectStatus(res, 200);
      return res.json().data as { total: number; active: number; calls_24h: number };
    };
    const before = {
      test: await stats("test"),
      live: await stats("live"),
      all: await stats("all"),
    };
    expect(before.test.total).toBe(keysMinted.filter((k) => k.env === "test").length);
    expect(before.live.total).toBe(keysMinted.filter((k) => k.env === "live").length);
    expect(before.all.total).toBe(keysMinted.length);
    expect(before.all.calls_24h).toBe(before.test.calls_24h + before.live.calls_24h);
    const dflt = await get("/api/api-keys/stats");
    expect(dflt.json().data.total).toBe(keysMinted.length);

    for (let i = 0; i < 3; i++) expectStatus(await ext("test", "reseller", "GET", "/whoami"), 200);
    expect(
      (await ext("test", "reseller", "GET", `/subscribers/${target("live", "reseller").id}`))
        .statusCode,
    ).toBe(404);
    await h.ext("GET", "/whoami", `pk_test_${"ef".repeat(16)}`);
    const after = { test: await stats("test"), live: await stats("live"), all: await stats("all") };
    expect(after.test.calls_24h - before.test.calls_24h).toBe(5);
    expect(after.live.calls_24h - before.live.calls_24h).toBe(0);
    expect(after.all.calls_24h - before.all.calls_24h).toBe(5);

    // A new test key counts under test only.
    await mint("test", "reseller", { name: "counted" });
    expect((await stats("test")).total).toBe(before.test.total + 1);
    expect((await stats("live")).total).toBe(before.live.total);
  });

  it("shows activity of the request's environment", async () => {
    for (const env of ENVS) {
      const res = await get("/api/api-keys/activity", env);
      expectStatus(res, 200);
      const busiest = res.json().data.busiest as { api_key_id: number }[];
      expect(busiest.length).toBeGreaterThan(0);
      const mine = new Set(keysMinted.filter((k) => k.env === env).map((k) => k.id));
      for (const b of busiest)
        expect(mine.has(b.api_key_id), `${env}: key ${b.api_key_id}`).toBe(true);
      for (const r of res.json().data.recent_refusals as { environment: string }[])
        expect(r.environment).toBe(env);
    }
  });
});

describe("rate limits are per key, so per environment", () => {
  it("leaves a live key untouched when the test key of the same owner is spent, and back", async () => {
    for (const spent of ENVS) {
      const pair = {
        live: await mint("live", "reseller", { rate_limit_per_minute: 3 }),
        test: await mint("test", "reseller", { rate_limit_per_minute: 3 }),
      };
      const fresh = otherOf(spent);
      for (let i = 0; i < 3; i++) expectStatus(await h.ext("GET", "/whoami", pair[spent].key), 200);
      const over = await h.ext("GET", "/subscribers", pair[spent].key);
      expect(over.statusCode).toBe(429);
      expect(over.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
      expect(over.headers["keygate-environment"]).toBe(spent);
      const other = await h.ext("GET", "/subscribers", pair[fresh].key);
      expectStatus(other, 200);
      expect(other.headers["ratelimit-limit"]).toBe("3");
      expect(other.headers["ratelimit-remaining"]).toBe("2");
      expect(other.headers["keygate-environment"]).toBe(fresh);
      // The spent key's refusal is in its log, in its environment.
      const log = await keyLog(h, pair[spent].id);
      expect(log.map((r) => [r.error_code, r.environment]).at(-1)).toEqual([
        "RATE_LIMIT_EXCEEDED",
        spent,
      ]);
    }
  });
});

describe("POST /api/test-data/reset", () => {
  it("is refused to a reseller, and deletes nothing", async () => {
    const before = await dbCounts("test");
    for (const header of [{}, { "keygate-environment": "test" }] as Record<string, string>[]) {
      const res = await apiWith(h, "POST", "/api/test-data/reset", reseller.token, header);
      expect(res.statusCode, res.body).toBe(403);
      expect(res.json().code).toBe("FORBIDDEN");
    }
    expect(await dbCounts("test")).toEqual(before);
    expect(before.subscribers).toBeGreaterThan(0);
  });

  it("deletes every test row and no live one, audited", async () => {
    const created = {
      subscribers: subs.filter((s) => s.env === "test").length,
      transactions: txs.filter((x) => x.env === "test").length,
      usage: [...usage.keys()].filter((k) => k.startsWith("test ")).length,
    };
    expect(await dbCounts("test")).toEqual(created);
    const liveBefore = await dbCounts("live");
    expect(liveBefore).toEqual({
      subscribers: subs.filter((s) => s.env === "live").length,
      transactions: txs.filter((x) => x.env === "live").length,
      usage: [...usage.keys()].filter((k) => k.startsWith("live ")).length,
    });

    const res = await h.api("POST", "/api/test-data/reset", h.adminToken);
    expectStatus(res, 200);
    expect(res.json().data).toEqual(created);

    expect(await dbCounts("test")).toEqual({ subscribers: 0, transactions: 0, usage: 0 });
    expect(await dbCounts("live")).toEqual(liveBefore);
    // Every live record is still there, as the live keys see it.
    for (const s of subs.filter((x) => x.env === "live" && !x.deleted)) {
      const got = await ext("live", s.owner, "GET", `/subscribers/${s.id}`);
      expectStatus(got, 200);
    }
    for (const owner of OWNERS) {
      const list = await ext("live", owner, "GET", "/transactions?per_page=500");
      expect(ids(list.json().data)).toEqual(ids(visibleTxs("live", owner)));
      const own = target("live", owner);
      const u = await ext(
        "live",
        owner,
        "GET",
        `/subscribers/${own.id}/usage?from=2026-01-01&to=2026-01-31`,
      );
      expect(u.json().data.totals.bytes_in).toBe(1500);
    }
    // The test keys still work, on nothing.
    for (const owner of OWNERS) {
      const list = await ext("test", owner, "GET", "/subscribers");
      expectStatus(list, 200);
      expect(list.json().data).toEqual([]);
      expect(list.json().meta.total).toBe(0);
      const stats = await ext("test", owner, "GET", "/system/stats");
      expect(stats.json().data.subscribers.total).toBe(0);
      expect(stats.json().data.transactions_30d).toEqual([]);
    }
    // Keys and their logs stay.
    expect((await keyLog(h, keys.test.admin.id)).length).toBeGreaterThan(0);

    const audit = await h.api("GET", "/api/audit?action=test_data.reset", h.adminToken);
    expectStatus(audit, 200);
    const entries = audit.json().data as {
      action: string;
      actor_id: number | null;
      details: unknown;
    }[];
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ action: "test_data.reset", details: created });

    // Names used in test are free again there; a second reset deletes nothing.
    const again = await ext("test", "admin", "POST", "/subscribers", {
      username: "shared-admin",
      password: "pass-1234",
      service_id: serviceId,
    });
    expectStatus(again, 201);
    const second = await h.api("POST", "/api/test-data/reset", h.adminToken);
    expect(second.json().data).toEqual({ subscribers: 1, transactions: 0, usage: 0 });
  });
});
