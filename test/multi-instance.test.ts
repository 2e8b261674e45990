import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { createSigner, httpbis } from "http-message-signatures";
import { decodeProtectedHeader } from "jose";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearOfMinuteBoundary, freshDatabase } from "./helpers.js";
import { call, type Server, startKeygate, startRedis } from "./process.js";

/** Budgets are fixed one-minute windows: wait when a burst could straddle two of them. */
async function until(cond: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Two real Keygate processes on two ports sharing one PostgreSQL schema and one Redis:
 * what a load balancer in front of several instances would see.
 */
describe("several instances behind one address", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let a: Server;
  let b: Server;
  let auth: Record<string, string>;

  beforeAll(async () => {
    db = await freshDatabase();
    redis = await startRedis();
    const env = {
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_REDIS_URL: redis.url,
      KEYGATE_ADMIN_PASSWORD: "cluster-password",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
    };
    // Both start at once on an empty schema: migrations must not trip over each other.
    [a, b] = await Promise.all([startKeygate(env), startKeygate(env)]);
    const login = await call(
      a.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "cluster-password" },
    );
    expect(login.status).toBe(200);
    auth = { authorization: `Bearer ${login.json.data.access_token}` };
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await db?.drop();
  });

  it("started both instances from one empty database, creating one admin", async () => {
    const users = await call(b.base, "GET", "/api/users", auth);
    expect(users.json.data.map((u: { username: string }) => u.username)).toEqual(["admin"]);
  });

  it("refuses a key revoked through A on the very next request to B, every time", async () => {
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const minted = await call(a.base, "POST", "/api/api-keys", auth, { name: `k${i}` });
      const key = { "x-api-key": minted.json.key as string };
      // B has the key cached as valid before the revocation.
      expect((await call(b.base, "GET", "/api/v1/external/whoami", key)).status).toBe(200);
      const revoked = await call(a.base, "DELETE", `/api/api-keys/${minted.json.data.id}`, auth);
      expect(revoked.status).toBe(200);
      const after = performance.now();
      const first = await call(b.base, "GET", "/api/v1/external/whoami", key);
      times.push(performance.now() - after);
      expect(first.json.error?.code, `round ${i}`).toBe("API_KEY_REVOKED");
    }
    const worst = Math.max(...times);
    console.log(
      `revocation seen by the other instance on its first request in 50/50 rounds; worst ${worst.toFixed(1)} ms`,
    );
  }, 60_000);

  it("shares a key's budget: hammered through both instances, at most N succeed", async () => {
    const n = 25;
    await clearOfMinuteBoundary();
    const minted = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: n });
    const key = { "x-api-key": minted.json.key as string };
    const results = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        call(i % 2 ? a.base : b.base, "GET", "/api/v1/external/whoami", key),
      ),
    );
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.json.error?.code === "RATE_LIMIT_EXCEEDED").length;
    console.log(
      `shared budget ${n}/min: ${ok} of 120 succeeded across two instances (overshoot ${ok - n})`,
    );
    expect(ok).toBe(n);
    expect(ok + limited).toBe(120);
  });

  it("keeps serving when Redis stops, and shares budgets again when it returns", async () => {
    await clearOfMinuteBoundary(15);
    await redis.stop();
    const minted = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: 10 });
    const key = { "x-api-key": minted.json.key as string };
    await new Promise((r) => setTimeout(r, 300));
    const during = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(i % 2 ? a.base : b.base, "GET", "/api/v1/external/whoami", key),
      ),
    );
    // Each instance falls back to its own budget: up to 10 each, never an error.
    const okDuring = during.filter((r) => r.status === 200).length;
    expect(during.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(okDuring).toBeGreaterThan(10);
    expect(okDuring).toBeLessThanOrEqual(20);
    expect(a.output() + b.output()).toContain("per instance until it returns");

    redis = await startRedis(redis.port);
    const fresh = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: 10 });
    const key2 = { "x-api-key": fresh.json.key as string };
    const deadline = Date.now() + 10_000;
    while (!(
      a.output().includes("shared by every instance again") &&
      b.output().includes("shared by every instance again")
    )) {
      if (Date.now() > deadline) throw new Error("instances did not report Redis recovery");
      await call(a.base, "GET", "/api/v1/external/system/health");
      await call(b.base, "GET", "/api/v1/external/whoami", key2);
      await call(a.base, "GET", "/api/v1/external/whoami", key2);
      await new Promise((r) => setTimeout(r, 200));
    }
    await clearOfMinuteBoundary();
    const third = await call(a.base, "POST", "/api/api-keys", auth, { rate_limit_per_minute: 10 });
    const key3 = { "x-api-key": third.json.key as string };
    const after = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        call(i % 2 ? a.base : b.base, "GET", "/api/v1/external/whoami", key3),
      ),
    );
    const okAfter = after.filter((r) => r.status === 200).length;
    expect(okAfter).toBe(10);
    console.log(
      `Redis down: ${okDuring}/30 served on per-instance budgets of 10; after recovery: ${okAfter}/30 on a shared 10`,
    );
  }, 60_000);

  it("refuses a key revoked through A on B when Redis restarted empty and B missed the eviction", async () => {
    // Twenty revocations carry every instance's eviction epoch well past 1.
    for (let i = 0; i < 20; i++) {
      const minted = await call(a.base, "POST", "/api/api-keys", auth, { name: `r${i}` });
      const revoked = await call(a.base, "DELETE", `/api/api-keys/${minted.json.data.id}`, auth);
      expect(revoked.status).toBe(200);
    }
    // A new, empty redis-server on the same port: its epoch counter starts again at 1.
    await redis.stop();
    redis = await startRedis(redis.port);
    const admin = new Redis(redis.url);
    try {
      // Both instances are back: command connections ready, subscribers subscribed.
      await until(async () => {
        const health = await Promise.all(
          [a, b].map((s) => call(s.base, "GET", "/api/v1/external/system/health")),
        );
        const list = String(await admin.client("LIST"));
        const subscribed = list.split("\n").filter((l) => / sub=1 /.test(l)).length;
        return health.every((h) => h.json.data.redis === "ok") && subscribed === 2;
      }, "both instances reconnected to the restarted Redis");
      const minted = await call(a.base, "POST", "/api/api-keys", auth, { name: "after-restart" });
      const key = { "x-api-key": minted.json.key as string };
      expect((await call(b.base, "GET", "/api/v1/external/whoami", key)).status).toBe(200);
      // B's eviction message is lost: its subscriber is down while A revokes.
      expect(Number(await admin.client("KILL", "TYPE", "pubsub"))).toBe(2);
      const revoked = await call(a.base, "DELETE", `/api/api-keys/${minted.json.data.id}`, auth);
      expect(revoked.status).toBe(200);
      const first = await call(b.base, "GET", "/api/v1/external/whoami", key);
      expect(first.json.error?.code, `B answered ${first.status}`).toBe("API_KEY_REVOKED");
    } finally {
      admin.disconnect();
    }
  }, 60_000);
});

type Answer = { status: number; json: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Sends exactly `headers`, Host included, to the socket `base` names, whatever host they say:
 * a request signed for one instance can then reach another byte for byte.
 */
function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * The headers of a GET of `url` signed with http-message-signatures (an RFC 9421
 * implementation written elsewhere), Host included: `@target-uri` is `url` itself.
 */
async function signedGet(
  key: string,
  secret: string,
  url: string,
  nonce = randomBytes(12).toString("base64url"),
): Promise<Record<string, string>> {
  const headers: Record<string, string> = { host: new URL(url).host, "x-api-key": key };
  const signed = await httpbis.signMessage(
    {
      key: createSigner(Buffer.from(secret, "utf8"), "hmac-sha256", key.slice(0, 12)),
      fields: ["@method", "@target-uri"],
      params: ["created", "keyid", "alg", "nonce"],
      paramValues: { created: new Date(), nonce },
    },
    { method: "GET", url, headers },
  );
  return Object.fromEntries(
    Object.entries(signed.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : `${v}`]),
  );
}

const WHOAMI = "/api/v1/external/whoami";

/**
 * Signed requests and access tokens on two real Keygate processes sharing one PostgreSQL
 * schema, one Redis and one master key (SPEC §8): whatever one instance accepts, records or
 * revokes, the other knows on its next request.
 */
describe("signatures and tokens across instances", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let a: Server;
  let b: Server;
  let auth: Record<string, string>;

  beforeAll(async () => {
    db = await freshDatabase();
    redis = await startRedis();
    const env = {
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_REDIS_URL: redis.url,
      KEYGATE_MASTER_KEY: randomBytes(32).toString("hex"),
      KEYGATE_ADMIN_PASSWORD: "cluster-password",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
    };
    [a, b] = await Promise.all([startKeygate(env), startKeygate(env)]);
    const login = await call(
      a.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "cluster-password" },
    );
    expect(login.status).toBe(200);
    auth = { authorization: `Bearer ${login.json.data.access_token}` };
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await db?.drop();
  });

  async function signedKey(): Promise<{ key: string; secret: string }> {
    const minted = await call(a.base, "POST", "/api/api-keys", auth, { signing: "required" });
    expect(minted.status).toBe(201);
    return { key: minted.json.key as string, secret: minted.json.signing_secret as string };
  }

  async function plainKey(): Promise<{ key: string; id: number }> {
    const minted = await call(a.base, "POST", "/api/api-keys", auth, { scopes: "read" });
    expect(minted.status).toBe(201);
    return { key: minted.json.key as string, id: minted.json.data.id as number };
  }

  const basic = (key: string) =>
    `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}`;

  /** POSTs a form to one of `server`'s OAuth endpoints, authenticated as `key`'s client. */
  async function oauthForm(server: Server, endpoint: string, key: string, form: string) {
    const res = await fetch(`${server.base}/api/v1/external/oauth/${endpoint}`, {
      method: "POST",
      headers: {
        authorization: basic(key),
        "content-type": "application/x-www-form-urlencoded",
      },
      body: form,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  async function tokenFromA(key: string): Promise<string> {
    const res = await oauthForm(a, "token", key, "grant_type=client_credentials");
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    return res.json.access_token as string;
  }

  const bearer = (server: Server, token: string) =>
    call(server.base, "GET", WHOAMI, { authorization: `Bearer ${token}` });

  it("refuses a nonce accepted by one instance when it is replayed to the other, both ways", async () => {
    const { key, secret } = await signedKey();
    for (const [first, second] of [
      [a, b],
      [b, a],
    ] as const) {
      // Signed for the first instance's address; sent to the second with that Host, as a
      // load balancer in front of both would pass it on.
      const headers = await signedGet(key, secret, first.base + WHOAMI);
      expect((await send(first.base, "GET", WHOAMI, headers)).status).toBe(200);
      const replayed = await send(second.base, "GET", WHOAMI, headers);
      expect(replayed.status).toBe(401);
      expect(replayed.json.error.code).toBe("SIGNATURE_REPLAYED");
      // The same request with a nonce of its own verifies there: the refusal was the nonce.
      const fresh = await signedGet(key, secret, first.base + WHOAMI);
      expect((await send(second.base, "GET", WHOAMI, fresh)).status).toBe(200);
    }
    const onB = await signedGet(key, secret, b.base + WHOAMI);
    expect((await send(b.base, "GET", WHOAMI, onB)).status).toBe(200);
  });

  it("accepts a signed request sent to both instances at once exactly once", async () => {
    const { key, secret } = await signedKey();
    for (let i = 0; i < 25; i++) {
      const headers = await signedGet(key, secret, a.base + WHOAMI);
      const both = await Promise.all([a, b].map((s) => send(s.base, "GET", WHOAMI, headers)));
      const codes = both.map((r) => (r.status === 200 ? "ok" : r.json.error.code)).sort();
      expect(codes, `round ${i}`).toEqual(["SIGNATURE_REPLAYED", "ok"]);
    }
  });

  it("verifies on B an access token A issued, with a signing key A made", async () => {
    // B reads the signing keys before any exists: it holds none of A's.
    const before = await call(b.base, "GET", "/.well-known/jwks.json");
    expect(before.json.keys).toEqual([]);
    const { key, id } = await plainKey();
    const token = await tokenFromA(key);
    const { kid } = decodeProtectedHeader(token);
    const who = await bearer(b, token);
    expect(who.status, JSON.stringify(who.json)).toBe(200);
    expect(who.json.data.id).toBe(id);
    const after = await call(b.base, "GET", "/.well-known/jwks.json");
    expect(after.json.keys.map((k: { kid: string }) => k.kid)).toEqual([kid]);
    // B issued nothing: the one token on record is A's.
    const view = await call(b.base, "GET", `/api/api-keys/${id}`, auth);
    expect(view.json.data.tokens_issued).toBe(1);
  });

  it("refuses a token on B on the next request once A revokes its key, every time", async () => {
    for (let i = 0; i < 20; i++) {
      const { key, id } = await plainKey();
      const token = await tokenFromA(key);
      // B has verified the token and cached its key before the revocation.
      expect((await bearer(b, token)).status).toBe(200);
      const revoked = await call(a.base, "DELETE", `/api/api-keys/${id}`, auth);
      expect(revoked.status).toBe(200);
      const next = await bearer(b, token);
      expect(next.status, `round ${i}`).toBe(401);
      expect(next.json.error.code, `round ${i}`).toBe("API_KEY_REVOKED");
    }
  }, 60_000);

  it("refuses a token on B on the next request once A revokes it (RFC 7009), every time", async () => {
    for (let i = 0; i < 20; i++) {
      const { key } = await plainKey();
      const token = await tokenFromA(key);
      expect((await bearer(b, token)).status).toBe(200);
      const revoked = await oauthForm(a, "revoke", key, `token=${encodeURIComponent(token)}`);
      expect(revoked.status).toBe(200);
      const next = await bearer(b, token);
      expect(next.status, `round ${i}`).toBe(401);
      expect(next.json.error.code, `round ${i}`).toBe("INVALID_TOKEN");
      expect(next.json.error.message).toContain("revoked");
      // The key itself is untouched: a new token of it works on B.
      expect((await bearer(b, await tokenFromA(key))).status, `round ${i}`).toBe(200);
    }
  }, 60_000);

  it("refuses a token on B on the next request once A rolls its key, every time", async () => {
    for (let i = 0; i < 20; i++) {
      const { key, id } = await plainKey();
      const token = await tokenFromA(key);
      expect((await bearer(b, token)).status).toBe(200);
      const rolled = await call(a.base, "POST", `/api/api-keys/${id}/roll`, auth, {});
      expect(rolled.status).toBe(201);
      const next = await bearer(b, token);
      expect(next.status, `round ${i}`).toBe(401);
      expect(next.json.error.code, `round ${i}`).toBe("INVALID_TOKEN");
      expect(next.json.error.message).toContain("rolled");
      expect((await bearer(b, await tokenFromA(rolled.json.key))).status, `round ${i}`).toBe(200);
    }
  }, 60_000);

  // When B's budget check tells it missed an eviction, KeyVerifier.recheck re-reads the key
  // and runs every check again, the token's included (revoked jti, rolled key).
  it("refuses a token revoked or rolled through A on B when B missed the eviction", async () => {
    const admin = new Redis(redis.url);
    const seen: string[] = [];
    try {
      for (const change of ["revoke", "roll"] as const) {
        const { key, id } = await plainKey();
        const token = await tokenFromA(key);
        await until(async () => {
          const list = String(await admin.client("LIST"));
          return list.split("\n").filter((l) => / sub=1 /.test(l)).length === 2;
        }, "both instances subscribed to evictions");
        // B has the token verified and its key cached as valid.
        expect((await bearer(b, token)).status).toBe(200);
        // B's eviction message is lost: its subscriber is down, and kept from reconnecting
        // (a reconnection clears the cache) until B has answered.
        const clients = String(await admin.client("LIST"))
          .trim()
          .split("\n").length;
        await admin.config("SET", "maxclients", String(clients));
        expect(Number(await admin.client("KILL", "TYPE", "pubsub"))).toBe(2);
        const changed =
          change === "revoke"
            ? await oauthForm(a, "revoke", key, `token=${encodeURIComponent(token)}`)
            : await call(a.base, "POST", `/api/api-keys/${id}/roll`, auth, {});
        expect(changed.status).toBeLessThan(300);
        const next = await bearer(b, token);
        seen.push(`${change}: ${next.status} ${next.json.error?.code ?? ""}`);
        await admin.config("SET", "maxclients", "10000");
      }
    } finally {
      await admin.config("SET", "maxclients", "10000");
      admin.disconnect();
    }
    expect(seen).toEqual(["revoke: 401 INVALID_TOKEN", "roll: 401 INVALID_TOKEN"]);
  });

  it("still refuses a nonce replayed to the same instance while Redis is down", async () => {
    const { key, secret } = await signedKey();
    await redis.stop();
    try {
      await until(async () => {
        const health = await call(a.base, "GET", "/api/v1/external/system/health");
        return health.json.data.redis !== "ok";
      }, "A saw Redis go");
      const headers = await signedGet(key, secret, a.base + WHOAMI);
      expect((await send(a.base, "GET", WHOAMI, headers)).status).toBe(200);
      const replayed = await send(a.base, "GET", WHOAMI, headers);
      expect(replayed.status).toBe(401);
      expect(replayed.json.error.code).toBe("SIGNATURE_REPLAYED");
    } finally {
      redis = await startRedis(redis.port);
    }
  });
});
