import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashKey } from "../src/keys/format.js";
import { openDatabase } from "../src/store/database.js";
import { migrateToLatest } from "../src/store/migrations.js";
import { expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";
import { type CommandRun, expectOneLine, runKeygate, startRedis } from "./process.js";

// The real `keygate` executable, run as an operator would, against the database (and Redis)
// an in-process Keygate uses: what the command does must show through the API.

const dir = mkdtempSync(join(tmpdir(), "keygate-cli-"));
const KEY = /pk_live_[0-9a-f]{32}/g;

/** Everything any command printed, checked at the end for hashes and secrets. */
const printed: string[] = [];
/** Every key the command minted. */
const minted: string[] = [];
/** Every signing secret the command minted. */
const secrets: string[] = [];

async function keygate(args: string[], env: Record<string, string>, input?: string) {
  const r = await runKeygate(args, env, input);
  printed.push(r.out, r.err);
  for (const k of r.out.match(KEY) ?? []) minted.push(k);
  return r;
}

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("keygate migrate", () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  beforeAll(async () => {
    database = await freshDatabase(join(dir, "migrate.db"));
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("migrates a fresh database, then says it is up to date", async () => {
    const env = { KEYGATE_DATABASE_URL: database.url };
    const first = await keygate(["migrate"], env);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain("applied 0001_initial\n");
    expect(first.out).toContain("applied 0002_call_log_by_second\n");
    expect(first.out).toContain("applied 0004_key_attempts\n");
    const applied = first.out.match(/^applied /gm)?.length;
    expect(first.out).toMatch(new RegExp(`is up to date: ${applied} migration\\(s\\) applied\n$`));

    // The schema is there: nothing is pending and the tables answer.
    const db = await openDatabase(database.url, { migrate: false });
    try {
      expect(await migrateToLatest(db.db, db.dialect)).toEqual([]);
      const keys = await db.db.selectFrom("api_keys").select("id").execute();
      expect(keys).toEqual([]);
    } finally {
      await db.close();
    }

    const second = await keygate(["migrate"], env);
    expect(second.code, second.err).toBe(0);
    expect(second.out).not.toContain("applied");
    expect(second.out).toMatch(/ is up to date\n$/);
  });
});

describe("keygate keys and reset-password", () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let h: Harness;
  let env: Record<string, string>;
  let billing: { key: string; id: number };

  beforeAll(async () => {
    database = await freshDatabase(join(dir, "keys.db"));
    env = { KEYGATE_DATABASE_URL: database.url };
    h = await harness(env);
    await h.user("alice");
  });
  afterAll(async () => {
    await h?.close();
    await database?.drop();
  });

  const auditOf = async (action: string) => {
    const res = await h.api("GET", `/api/audit?action=${action}`, h.adminToken);
    expectStatus(res, 200);
    return res.json().data as Record<string, unknown>[];
  };

  it("mints a key through the key service, shown once, that authenticates whoami", async () => {
    const r = await keygate(
      [
        "keys",
        "mint",
        "--owner",
        "alice",
        "--name",
        "billing",
        "--scopes",
        "write",
        "--allowed-ips",
        "127.0.0.1, 10.0.0.0/8",
      ],
      env,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe("");
    const keys = r.out.match(KEY) ?? [];
    expect(keys).toHaveLength(1);
    const key = keys[0] as string;
    expect(r.out).toContain("shown only once");
    expect(r.out).toMatch(/^minted key (\d+) "billing" for "alice"/);
    billing = { key, id: Number(/^minted key (\d+)/.exec(r.out)?.[1]) };

    const who = await h.ext("GET", "/whoami", key);
    expectStatus(who, 200);
    const data = who.json().data;
    expect(data.id).toBe(billing.id);
    expect(data.owner.username).toBe("alice");
    expect(data.scopes).toBe("write");
    expect(data.allowed_ips).toEqual(["127.0.0.1", "10.0.0.0/8"]);

    const [entry] = await auditOf("key.create");
    expect(entry).toMatchObject({ via: "cli", actor_id: null, target_id: String(billing.id) });
    expect(entry?.actor_username).toMatch(/.@./);
  });

  it("mints with --json: the key, the key's fields and the owner, never a hash", async () => {
    const r = await keygate(
      ["keys", "mint", "--owner", "admin", "--name", "helpdesk", "--expires-at", "2099-01-31"],
      env,
    ).then(() => keygate(["keys", "mint", "--owner", "admin", "--name", "monitor", "--json"], env));
    expect(r.code, r.err).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.key).toMatch(/^pk_live_[0-9a-f]{32}$/);
    expect(json.note).toContain("shown only once");
    expect(json.data).toMatchObject({ name: "monitor", owner: "admin", scopes: "read" });
    expect(Object.keys(json.data).filter((k) => /hash/i.test(k))).toEqual([]);
    expectStatus(await h.ext("GET", "/whoami", json.key), 200);
  });

  it("lists keys with owner, scopes and status, filtered by owner, never with a hash", async () => {
    const all = await keygate(["keys", "list"], env);
    expect(all.code, all.err).toBe(0);
    const [head, ...rows] = all.out.trimEnd().split("\n");
    expect(head).toMatch(
      /^ID\s+NAME\s+PREFIX\s+OWNER\s+SCOPES\s+SIGNING\s+STATUS\s+LAST USED\s+LAST REFUSED\s+QUOTA$/,
    );
    expect(rows).toHaveLength(3);
    const row = rows.find((l) => l.includes("billing")) as string;
    expect(row.split(/\s{2,}/).slice(0, 7)).toEqual([
      String(billing.id),
      "billing",
      `${billing.key.slice(0, 12)}…`,
      "alice",
      "write",
      "off",
      "active",
    ]);

    const mine = await keygate(["keys", "list", "--owner", "alice", "--json"], env);
    expect(mine.code, mine.err).toBe(0);
    const listed = JSON.parse(mine.out) as Record<string, unknown>[];
    expect(listed.map((k) => k.name)).toEqual(["billing"]);
    expect(listed[0]).toMatchObject({
      owner: "alice",
      status: "active",
      key_prefix: "pk_live_" + billing.key.slice(8, 12),
    });
    expect(Object.keys(listed[0] ?? {}).filter((k) => /hash/i.test(k))).toEqual([]);

    const none = await keygate(["keys", "list", "--owner", "admin"], env);
    expect(none.out).not.toContain("billing");
  });

  it("lists a refused attempt apart from last use, and a key whose owner is disabled as owner_disabled", async () => {
    const refused = await h.app.inject({
      method: "GET",
      url: "/api/v1/external/whoami",
      headers: { "x-api-key": billing.key },
      remoteAddress: "192.0.2.9",
    });
    expectStatus(refused, 403);
    const carol = await h.user("carol");
    await h.mint(h.adminToken, { owner_id: carol.id, name: "carols" });
    expectStatus(
      await h.api("PUT", `/api/users/${carol.id}`, h.adminToken, { disabled: true }),
      200,
    );
    await h.kg.callLog.flush();

    const r = await keygate(["keys", "list"], env);
    expect(r.code, r.err).toBe(0);
    const rows = r.out.trimEnd().split("\n").slice(1);
    const cells = (name: string) =>
      (rows.find((l) => l.includes(` ${name} `)) as string).split(/\s{2,}/);
    // Last use stays the accepted whoami; the refusal from 192.0.2.9 is shown apart.
    expect(cells("billing")[6]).toBe("active");
    expect(cells("billing")[7]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(cells("billing")[8]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z IP_NOT_ALLOWED$/);
    expect(cells("carols").slice(3)).toEqual([
      "carol",
      "read",
      "off",
      "owner_disabled",
      "never",
      "never",
      "none",
    ]);

    const json = await keygate(["keys", "list", "--owner", "alice", "--json"], env);
    expect(JSON.parse(json.out)[0]).toMatchObject({
      status: "active",
      last_refused_ip: "192.0.2.9",
      last_refused_code: "IP_NOT_ALLOWED",
    });
  });

  it("revokes: the key is refused, and the command says how long a running server may accept it", async () => {
    const r = await keygate(["keys", "revoke", String(billing.id)], env);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`revoked key ${billing.id} "billing" (${billing.key.slice(0, 12)}…)`);
    expect(r.out).toMatch(/without Redis .* up to 30 s more/);

    // A server that has not cached the key refuses it at once.
    const fresh = await harness(env);
    try {
      const who = await fresh.ext("GET", "/whoami", billing.key);
      expectStatus(who, 401);
      expect(who.json().error.code).toBe("API_KEY_REVOKED");
    } finally {
      await fresh.close();
    }
    const [entry] = await auditOf("key.revoke");
    expect(entry).toMatchObject({ via: "cli", actor_id: null, target_id: String(billing.id) });

    const again = await keygate(["keys", "revoke", String(billing.id)], env);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toContain("was already revoked");
  });

  it("resets a password: the new one signs in, the old one and the old sessions do not", async () => {
    const before = await h.api("POST", "/api/auth/login", undefined, {
      username: "alice",
      password: "alice-password",
    });
    expectStatus(before, 200);
    const refresh = before.json().data.refresh_token as string;

    const r = await keygate(
      ["reset-password", "alice", "--password-stdin"],
      env,
      "a-new-password-for-alice\n",
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('password of "alice" changed');

    const old = await h.api("POST", "/api/auth/login", undefined, {
      username: "alice",
      password: "alice-password",
    });
    expectStatus(old, 401);
    expectStatus(
      await h.api("POST", "/api/auth/login", undefined, {
        username: "alice",
        password: "a-new-password-for-alice",
      }),
      200,
    );
    // The trailing newline of the piped input is not part of the password.
    expectStatus(
      await h.api("POST", "/api/auth/login", undefined, {
        username: "alice",
        password: "a-new-password-for-alice\n",
      }),
      401,
    );
    const ended = await h.api("POST", "/api/auth/refresh", undefined, { refresh_token: refresh });
    expectStatus(ended, 401);

    const [entry] = await auditOf("user.update");
    expect(entry).toMatchObject({ via: "cli", actor_id: null, details: { changed: ["password"] } });
  });

  it("mints a test key with its own permissions, and lists keys of one environment", async () => {
    const r = await keygate(
      [
        "keys",
        "mint",
        "--owner",
        "alice",
        "--name",
        "sandbox",
        "--permissions",
        "transactions:write, subscribers:read",
        "--environment",
        "test",
        "--json",
      ],
      env,
    );
    expect(r.code, r.err).toBe(0);
    const minted = JSON.parse(r.out) as { key: string; data: Record<string, unknown> };
    expect(minted.key).toMatch(/^pk_test_[0-9a-f]{32}$/);
    expect(minted.data).toMatchObject({
      environment: "test",
      scopes: "custom",
      permissions: ["subscribers:read", "transactions:write"],
    });
    const who = await h.ext("GET", "/whoami", minted.key);
    expectStatus(who, 200);
    expect(who.json().data).toMatchObject({
      environment: "test",
      permissions: ["subscribers:read", "transactions:write"],
    });
    expect(who.headers["keygate-environment"]).toBe("test");

    const tests = await keygate(["keys", "list", "--environment", "test"], env);
    expect(tests.code, tests.err).toBe(0);
    const rows = tests.out.trimEnd().split("\n").slice(1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain("pk_test_");
    expect(rows[0]).toContain("subscribers:read,transactions:write");
    const lives = await keygate(["keys", "list", "--environment", "live"], env);
    expect(lives.out).not.toContain("sandbox");
    expect(lives.out).not.toContain("pk_test_");
  });

  it("refuses input the rules refuse with exit code 2 and one keygate: line", async () => {
    const cases: [string[], RegExp, string?][] = [
      [
        ["keys", "mint", "--owner", "nobody", "--name", "x"],
        /no user "nobody"; the users are .*"alice"/,
      ],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--scopes", "admin"],
        /--scopes must be "read"/,
      ],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--allowed-ips", "10.0.0.1/8"],
        /--allowed-ips "10\.0\.0\.1\/8": .*did you mean 10\.0\.0\.0\/8\?/,
      ],
      [["keys", "mint", "--owner", "alice", "--name", " "], /--name must be 1-100 characters/],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--expires-at", "2001-01-01"],
        /--expires-at must lie in the future/,
      ],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--permissions", "subscriber:read"],
        /--permissions "subscriber:read" is not a permission: "subscriber" is not a resource/,
      ],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--permissions", "nas:read"],
        /--permissions nas:read is beyond what the key's owner, a reseller, may do: a key never exceeds its owner's role/,
      ],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--environment", "prod"],
        /--environment must be "live" or "test"/,
      ],
      [["keys", "list", "--environment", "prod"], /--environment must be "live" or "test"/],
      [["keys", "list", "--owner", "nobody"], /no user "nobody"/],
      [["keys", "revoke", "99999"], /API key 99999 not found/],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--signing", "maybe"],
        /--signing must be "off", "optional" or "required" \(got "maybe"\)/,
      ],
      [
        ["keys", "mint", "--owner", "alice", "--name", "x", "--signing", "required"],
        /--signing required needs the master key in this command's environment: set KEYGATE_MASTER_KEY \(or KEYGATE_MASTER_KEY_FILE\) to the running server's value/,
      ],
      [["keys", "roll", "99999"], /API key 99999 not found/],
      [
        ["keys", "roll", String(1), "--grace-hours", "500"],
        /--grace-hours must be a whole number from 0 to 168/,
      ],
      [
        ["keys", "roll", "1", "--grace-hours", "2.5"],
        /--grace-hours must be a whole number from 0 to 168 \(got "2\.5"\)/,
      ],
      [["reset-password", "nobody", "--password-stdin"], /no user "nobody"/, "long-enough-1"],
      [
        ["reset-password", "alice", "--password-stdin"],
        /password must be at least 8 characters/,
        "short",
      ],
    ];
    // A few at a time: each is a process of its own.
    const results: CommandRun[] = [];
    for (let i = 0; i < cases.length; i += 6) {
      results.push(
        ...(await Promise.all(
          cases.slice(i, i + 6).map(([args, , input]) => keygate(args, env, input)),
        )),
      );
    }
    results.forEach((r, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      expect(r.out, args.join(" ")).toBe("");
      expectOneLine(r, 2, message);
    });
    // The refused password left the last one in place.
    expectStatus(
      await h.api("POST", "/api/auth/login", undefined, {
        username: "alice",
        password: "a-new-password-for-alice",
      }),
      200,
    );
  });
});

describe("keygate keys with request signing", () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let h: Harness;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await freshDatabase(join(dir, "signing.db"));
    env = {
      KEYGATE_DATABASE_URL: database.url,
      KEYGATE_MASTER_KEY: "5a".repeat(32),
    };
    h = await harness(env);
  });
  afterAll(async () => {
    await h?.close();
    await database?.drop();
  });

  /** A whoami signed by `keygate sign` itself, as the in-process server receives it. */
  async function signedWhoami(key: string, secret: string) {
    const url = "http://keygate.test/api/v1/external/whoami";
    const r = await keygate(["sign", "--key", key, "--secret", secret, "--url", url], env);
    expect(r.code, r.err).toBe(0);
    const headers = Object.fromEntries(
      r.out
        .trimEnd()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]),
    );
    return h.app.inject({
      method: "GET",
      url: "/api/v1/external/whoami",
      headers: { host: "keygate.test", "x-api-key": key, ...headers },
    });
  }

  let signed: { id: number; key: string; secret: string };

  it("mints a signed key: the key and its signing secret side by side, shown once", async () => {
    const r = await keygate(
      ["keys", "mint", "--owner", "admin", "--name", "payments", "--signing", "required"],
      env,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^minted key (\d+) "payments" for "admin"\n/);
    expect(r.out).toContain(
      "  signing required: every call must carry an RFC 9421 signature made with the signing secret\n",
    );
    const key = /^key: {12}(pk_live_[0-9a-f]{32})$/m.exec(r.out)?.[1] as string;
    const secret = /^signing secret: (pks_live_[0-9a-f]{64})$/m.exec(r.out)?.[1] as string;
    expect(key).toBeDefined();
    expect(secret).toBeDefined();
    expect(r.out).toContain("This key and its signing secret are shown only once: store both now.");
    signed = { id: Number(/^minted key (\d+)/.exec(r.out)?.[1]), key, secret };
    secrets.push(secret);

    expectStatus(await signedWhoami(key, secret), 200);
    const unsigned = await h.ext("GET", "/whoami", key);
    expectStatus(unsigned, 401);
    expect(unsigned.json().error.code).toBe("SIGNATURE_REQUIRED");

    const json = await keygate(
      ["keys", "mint", "--owner", "admin", "--name", "hooks", "--signing", "optional", "--json"],
      env,
    );
    expect(json.code, json.err).toBe(0);
    const out = JSON.parse(json.out);
    expect(out.signing_secret).toMatch(/^pks_live_[0-9a-f]{64}$/);
    expect(out.data.signing).toBe("optional");
    expect(out.note).toContain("signing secret");
    secrets.push(out.signing_secret);
    // Optional: an unsigned call passes, a signed one must verify.
    expectStatus(await h.ext("GET", "/whoami", out.key), 200);
    expectStatus(await signedWhoami(out.key, out.signing_secret), 200);
    expectStatus(await signedWhoami(out.key, `pks_live_${"0".repeat(64)}`), 401);

    // A key without signing prints as before: no secret.
    const off = await keygate(["keys", "mint", "--owner", "admin", "--name", "plain"], env);
    expect(off.out).not.toContain("signing");
    expect(off.out).toMatch(/\n\npk_live_[0-9a-f]{32}\n\nThis key is shown only once/);
  });

  it("lists each key's signing mode", async () => {
    const r = await keygate(["keys", "list"], env);
    expect(r.code, r.err).toBe(0);
    const rows = r.out.trimEnd().split("\n").slice(1);
    const signing = (name: string) =>
      (rows.find((l) => l.includes(` ${name} `)) as string).split(/\s{2,}/)[5];
    expect(signing("payments")).toBe("required");
    expect(signing("hooks")).toBe("optional");
    expect(signing("plain")).toBe("off");
    for (const secret of secrets) expect(r.out).not.toContain(secret.slice(9, 30));
  });

  it("rolls a signed key: a new key and a new secret, printed once; the old pair lasts the grace period", async () => {
    const r = await keygate(["keys", "roll", String(signed.id)], env);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      new RegExp(
        `^rolled key ${signed.id} \\(${signed.key.slice(0, 12)}…\\) into key (\\d+) "payments" for "admin"\n  the old key keeps working until \\d{4}-[^ ]+Z, then is refused\n`,
      ),
    );
    const key = /^key: {12}(pk_live_[0-9a-f]{32})$/m.exec(r.out)?.[1] as string;
    const secret = /^signing secret: (pks_live_[0-9a-f]{64})$/m.exec(r.out)?.[1] as string;
    expect(secret).toBeDefined();
    expect(secret).not.toBe(signed.secret);
    secrets.push(secret);
    expectStatus(await signedWhoami(key, secret), 200);
    // The new key does not take the old secret; the old key still works with it for now.
    expectStatus(await signedWhoami(key, signed.secret), 401);
    expectStatus(await signedWhoami(signed.key, signed.secret), 200);

    const again = await keygate(["keys", "roll", String(signed.id)], env);
    expectOneLine(again, 2, /key \d+ was already rolled into key \d+; roll that one/);

    // --grace-hours 0 revokes the old key at once; a key without signing gets no secret.
    const listed = JSON.parse((await keygate(["keys", "list", "--json"], env)).out) as {
      id: number;
      name: string;
    }[];
    const plain = listed.find((k) => k.name === "plain") as { id: number };
    const now = await keygate(
      ["keys", "roll", String(plain.id), "--grace-hours", "0", "--json"],
      env,
    );
    expect(now.code, now.err).toBe(0);
    const rolled = JSON.parse(now.out);
    expect(rolled).not.toHaveProperty("signing_secret");
    expect(rolled.key).toMatch(/^pk_live_[0-9a-f]{32}$/);
    expect(rolled.data).toMatchObject({ name: "plain", signing: "off", rolled_from_id: plain.id });
    expectStatus(await h.ext("GET", "/whoami", rolled.key), 200);
    const old = await h.api("GET", `/api/api-keys/${plain.id}`, h.adminToken);
    expect(old.json().data.status).toBe("revoked");
  });
});

describe("keygate keys revoke with Redis", () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let h: Harness;
  let env: Record<string, string>;

  beforeAll(async () => {
    redis = await startRedis();
    database = await freshDatabase(join(dir, "redis.db"));
    env = { KEYGATE_DATABASE_URL: database.url, KEYGATE_REDIS_URL: redis.url };
    h = await harness(env);
  });
  afterAll(async () => {
    await h?.close();
    await redis?.stop();
    await database?.drop();
  });

  it("reaches a running instance that has the key cached: refused on its next request", async () => {
    const { key, id } = await h.mint(h.adminToken, { name: "cached" });
    // The running instance verifies the key and caches it.
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    expectStatus(await h.ext("GET", "/whoami", key), 200);

    const r = await keygate(["keys", "revoke", String(id)], env);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`revoked key ${id} "cached"`);
    expect(r.out).toContain("eviction sent through Redis to 1 running instance(s)");

    const who = await h.ext("GET", "/whoami", key);
    expectStatus(who, 401);
    expect(who.json().error.code).toBe("API_KEY_REVOKED");
  });

  it("says the revocation is stored but did not travel when Redis is unreachable (exit 1)", async () => {
    const { id } = await h.mint(h.adminToken, { name: "stranded" });
    const r = await keygate(["keys", "revoke", String(id)], {
      ...env,
      KEYGATE_REDIS_URL: "redis://127.0.0.1:1",
    });
    expect(r.out).toContain(`revoked key ${id} "stranded"`);
    expectOneLine(r, 1, /revoked in the database, but Redis .* up to 10 s more/);
  });
});

describe("everything the command printed", () => {
  it("holds no key hash, each key once, and no password", () => {
    expect(minted.length).toBeGreaterThanOrEqual(3);
    const all = printed.join("\n");
    for (const key of minted) {
      expect(all).not.toContain(hashKey(key));
      expect(all.split(key)).toHaveLength(2);
    }
    expect(secrets.length).toBeGreaterThanOrEqual(3);
    for (const secret of secrets) expect(all.split(secret)).toHaveLength(2);
    expect(all).not.toContain("a-new-password-for-alice");
    expect(all).not.toContain("long-enough-1");
  });
});
