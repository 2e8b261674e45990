/**
 * Makes the upgrade fixtures in test/fixtures/upgrade/: a database written by Keygate as it
 * was at one commit (default f8c9bcf), with data in it, on SQLite and on PostgreSQL, so a
 * later migration can be tested as an upgrade (test/upgrade.test.ts).
 *
 *   node --import tsx scripts/make-upgrade-fixture.ts [commit]
 *
 * It checks that commit out in a detached git worktree (/tmp/kg-<commit>), links this clone's
 * node_modules into it when the lock files are identical (else runs `npm ci` there), starts
 * that version's own server twice (a fresh SQLite file; a fresh PostgreSQL database
 * `kg_upgrade_src`), fills it through the real HTTP API, stops it with SIGTERM (which flushes
 * the call log), then writes <commit>.sqlite, <commit>.pg.sql (pg_dump, whose version must
 * match the server's) and <commit>.json (rows per table, the keys and subscribers made, and
 * the plaintext of an active and of a revoked key: this is test data). The worktree and the
 * PostgreSQL database are removed afterwards.
 *
 * Environment: KEYGATE_FIXTURE_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * a maintenance database on the server the fixture database is created on.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import pg from "pg";

const ROOT = join(import.meta.dirname, "..");
const OUT = join(ROOT, "test/fixtures/upgrade");
const COMMIT_ARG = process.argv[2] ?? "f8c9bcf";
const WORKTREE = `/tmp/kg-${COMMIT_ARG}`;
const PG_MAINT_URL =
  process.env.KEYGATE_FIXTURE_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const PG_DB = "kg_upgrade_src";
// The same admin as test/helpers.ts (ADMIN), so the test's harness signs in as it.
const ADMIN = { username: "admin", password: "admin-password-1" };
const RESELLER = { username: "reseller.one", password: "reseller-password-1", role: "reseller" };

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function git(...args: string[]): string {
  return execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
}

function log(msg: string): void {
  process.stderr.write(`make-upgrade-fixture: ${msg}\n`);
}

// ---------------------------------------------------------------- worktree

function removeWorktree(): void {
  const listed = git("worktree", "list", "--porcelain")
    .split("\n")
    .some((l) => l === `worktree ${WORKTREE}`);
  if (listed) git("worktree", "remove", "--force", WORKTREE);
  rmSync(WORKTREE, { recursive: true, force: true });
  git("worktree", "prune");
}

function makeWorktree(commit: string): void {
  removeWorktree();
  git("worktree", "add", "--detach", WORKTREE, commit);
  const lockThen = git("show", `${commit}:package-lock.json`);
  const lockHere = readFileSync(join(ROOT, "package-lock.json"), "utf8").trim();
  let sameLock = lockThen === lockHere;
  try {
    git("diff", "--quiet", commit, "HEAD", "--", "package-lock.json");
  } catch {
    sameLock = false;
  }
  if (sameLock && existsSync(join(ROOT, "node_modules"))) {
    log("package-lock.json is identical: linking this clone's node_modules");
    symlinkSync(join(ROOT, "node_modules"), join(WORKTREE, "node_modules"), "dir");
  } else {
    log("package-lock.json differs: npm ci in the worktree");
    execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: WORKTREE, stdio: "inherit" });
  }
}

// ---------------------------------------------------------------- server

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

type Server = { proc: ChildProcess; base: string; output: () => string };

async function startServer(databaseUrl: string): Promise<Server> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("KEYGATE_")) env[k] = v;
  Object.assign(env, {
    KEYGATE_DATABASE_URL: databaseUrl,
    KEYGATE_PORT: String(await freePort()),
    KEYGATE_ADMIN_USERNAME: ADMIN.username,
    KEYGATE_ADMIN_PASSWORD: ADMIN.password,
    KEYGATE_LOG_LEVEL: "warn",
  });
  const proc = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: WORKTREE,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      // The admin is created once it listens; wait for that line too.
      if (m && out.includes('created admin "')) {
        clearTimeout(timer);
        resolve({ proc, base: m[1] as string, output: () => out });
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
}

function stopServer(server: Server): Promise<number | null> {
  return new Promise((resolve) => {
    const { proc } = server;
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    proc.removeAllListeners("exit");
    proc.on("exit", (code) => resolve(code));
    proc.kill("SIGTERM");
  });
}

// ---------------------------------------------------------------- filling it

type Call = (
  method: string,
  path: string,
  expected: number,
  opts?: { token?: string; key?: string; body?: unknown },
) => Promise<Json>;

function caller(base: string): Call {
  return async (method, path, expected, opts = {}) => {
    const headers: Record<string, string> = { "user-agent": "keygate-upgrade-fixture/1" };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.key) headers["x-api-key"] = opts.key;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(base + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
    const text = await res.text();
    if (res.status !== expected)
      throw new Error(`${method} ${path}: expected ${expected}, got ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : {}) as Json;
  };
}

type KeyMade = {
  name: string;
  prefix: string;
  scopes: string;
  state: "active" | "revoked" | "rolled" | "replacement";
  allowed_ips: string[] | null;
};

type Made = {
  reseller: string;
  keys: KeyMade[];
  services: string[];
  nas: string[];
  subscribers: { username: string; owner: string; deleted: boolean; status: string }[];
  transaction_references: string[];
  usage_days: { username: string; day: string }[];
  external_calls: { key: string; method: string; path: string; status: number; code?: string }[];
  active_key: { name: string; prefix: string; key: string; scopes: string };
  revoked_key: { name: string; prefix: string; key: string };
};

async function fill(base: string): Promise<Made> {
  const call = caller(base);
  const login = async (username: string, password: string) =>
    (await call("POST", "/api/auth/login", 200, { body: { username, password } })).data
      .access_token as string;
  const token = await login(ADMIN.username, ADMIN.password);
  const admin = { token };

  const reseller = (await call("POST", "/api/users", 201, { ...admin, body: RESELLER })).data;
  const resellerToken = await login(RESELLER.username, RESELLER.password);

  const basic = (
    await call("POST", "/api/services", 201, {
      ...admin,
      body: { name: "Basic 10M", download_kbps: 10_000, upload_kbps: 2_000, price: "19.99" },
    })
  ).data;
  const fibre = (
    await call("POST", "/api/services", 201, {
      ...admin,
      body: {
        name: "Fibre 100M",
        download_kbps: 100_000,
        upload_kbps: 50_000,
        price: 49.5,
        currency: "EUR",
        duration_days: 90,
        is_active: false,
      },
    })
  ).data;
  const nas = (
    await call("POST", "/api/nas", 201, {
      ...admin,
      body: {
        name: "core-router-1",
        ip_address: "10.0.0.1",
        type: "mikrotik",
        description: "rack A",
        secret: "radius-shared-secret",
      },
    })
  ).data;

  const subscriber = async (body: Json) =>
    (await call("POST", "/api/subscribers", 201, { ...admin, body })).data;
  const alice = await subscriber({
    username: "alice.fixture",
    password: "alice-pass-1",
    full_name: "Alice Fixture",
    email: "alice@example.com",
    phone: "+15550001",
    service_id: basic.id,
    expiry_date: "2030-01-31",
  });
  const bob = await subscriber({
    username: "bob.reseller",
    password: "bob-pass-1",
    full_name: "Bob of the reseller",
    service_id: fibre.id,
    owner_id: reseller.id,
  });
  const carol = await subscriber({
    username: "carol.deleted",
    password: "carol-pass-1",
    service_id: basic.id,
  });
  await call("POST", `/api/subscribers/${bob.id}/suspend`, 200, admin);
  await call("DELETE", `/api/subscribers/${carol.id}`, 200, admin);

  const keys: KeyMade[] = [];
  const mint = async (body: Json, state: KeyMade["state"] = "active", as = admin) => {
    const res = await call("POST", "/api/api-keys", 201, { ...as, body });
    keys.push({
      name: res.data.name,
      prefix: res.data.key_prefix,
      scopes: res.data.scopes,
      state,
      allowed_ips: res.data.allowed_ips ?? null,
    });
    return { key: res.key as string, id: res.data.id as number, prefix: res.data.key_prefix };
  };
  const billing = await mint({ name: "billing-read", scopes: "read", description: "billing" });
  const crm = await mint({
    name: "crm-write",
    scopes: "write",
    owner_id: reseller.id,
    allowed_ips: ["127.0.0.1", "10.0.0.0/8"],
    rate_limit_per_minute: 120,
  });
  const cleanup = await mint({
    name: "cleanup-delete",
    scopes: "delete",
    expires_at: "2099-12-31",
  });
  const fenced = await mint({ name: "fenced-read", scopes: "read", allowed_ips: ["192.0.2.0/24"] });
  const old = await mint({ name: "old-integration", scopes: "write" }, "revoked");
  const rolling = await mint({ name: "rolling-read", scopes: "read" }, "rolled");
  // A reseller may not mint keys without KEYGATE_SELF_SERVICE_KEYS: the refusal is recorded too.
  await call("POST", "/api/api-keys", 403, { token: resellerToken, body: { name: "nope" } });

  const externalCalls: Made["external_calls"] = [];
  const ext = async (
    name: string,
    key: string,
    method: string,
    path: string,
    status: number,
    body?: unknown,
  ) => {
    const res = await call(method, `/api/v1/external${path}`, status, { key, body });
    const code = res.error?.code as string | undefined;
    externalCalls.push({ key: name, method, path, status, ...(code ? { code } : {}) });
    return res;
  };
  await ext("billing-read", billing.key, "GET", "/subscribers", 200);
  await ext("billing-read", billing.key, "GET", "/whoami", 200);
  await ext("billing-read", billing.key, "GET", `/subscribers/${alice.id}/usage`, 200);
  await ext("billing-read", billing.key, "POST", "/subscribers", 403, {
    username: "refused.one",
    password: "refused-pass",
    service_id: basic.id,
  });
  await ext("crm-write", crm.key, "GET", "/subscribers", 200);
  const extTx = await ext("crm-write", crm.key, "POST", "/transactions", 201, {
    subscriber_id: bob.id,
    amount: "49.50",
    currency: "EUR",
    type: "payment",
    reference: "EXT-2001",
    description: "paid through the billing system",
  });
  await ext("cleanup-delete", cleanup.key, "GET", "/nas", 200);
  await ext("cleanup-delete", cleanup.key, "GET", `/subscribers/${carol.id}`, 404);
  await ext("fenced-read", fenced.key, "GET", "/subscribers", 403);
  await ext("rolling-read", rolling.key, "GET", "/whoami", 200);
  // Well formed, but no such key.
  await ext("unknown", `pk_live_${"0".repeat(32)}`, "GET", "/subscribers", 401);

  await call("DELETE", `/api/api-keys/${old.id}`, 200, admin);
  await ext("old-integration", old.key, "GET", "/subscribers", 401);

  const rolled = await call("POST", `/api/api-keys/${rolling.id}/roll`, 201, {
    ...admin,
    body: { grace_period_hours: 24 },
  });
  keys.push({
    name: rolled.data.name,
    prefix: rolled.data.key_prefix,
    scopes: rolled.data.scopes,
    state: "replacement",
    allowed_ips: rolled.data.allowed_ips ?? null,
  });
  await ext("rolling-read (replacement)", rolled.key, "GET", "/whoami", 200);
  await ext("rolling-read", rolling.key, "GET", "/services", 200);

  const tx = async (body: Json) =>
    (await call("POST", "/api/transactions", 201, { ...admin, body })).data;
  await tx({
    subscriber_id: alice.id,
    amount: "19.99",
    type: "payment",
    reference: "INV-1001",
    description: "January",
  });
  await tx({ subscriber_id: alice.id, amount: 5, type: "refund", description: "outage credit" });
  await tx({ subscriber_id: bob.id, amount: "2.50", type: "adjustment" });

  const usage: Made["usage_days"] = [];
  const use = async (sub: Json, day: string, bytes: number) => {
    await call("POST", `/api/subscribers/${sub.id}/usage`, 201, {
      ...admin,
      body: { date: day, bytes_in: bytes, bytes_out: bytes * 3, session_seconds: 3_600 },
    });
    usage.push({ username: sub.username, day });
  };
  await use(alice, "2025-01-15", 1_000_000);
  await use(alice, "2025-01-16", 2_500_000);
  await use(bob, "2025-01-15", 9_007_199_254);

  const list = (await call("GET", "/api/api-keys", 200, admin)).data as Json[];
  if (list.length !== keys.length)
    throw new Error(`listed ${list.length} keys, made ${keys.length}`);

  return {
    reseller: reseller.username,
    keys,
    services: [basic.name, fibre.name],
    nas: [nas.name],
    subscribers: [
      { username: alice.username, owner: ADMIN.username, deleted: false, status: "active" },
      { username: bob.username, owner: RESELLER.username, deleted: false, status: "suspended" },
      { username: carol.username, owner: ADMIN.username, deleted: true, status: carol.status },
    ],
    transaction_references: ["INV-1001", extTx.data.reference],
    usage_days: usage,
    external_calls: externalCalls,
    active_key: { name: "billing-read", prefix: billing.prefix, key: billing.key, scopes: "read" },
    revoked_key: { name: "old-integration", prefix: old.prefix, key: old.key },
  };
}

// ---------------------------------------------------------------- reading what was written

async function pgRows(
  url: string,
): Promise<{ tables: Record<string, number>; migrations: string[] }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const names = (
      await c.query<{ table_name: string }>(
        `select table_name from information_schema.tables
         where table_schema = 'public' and table_type = 'BASE TABLE' order by table_name`,
      )
    ).rows.map((r) => r.table_name);
    const tables: Record<string, number> = {};
    for (const n of names)
      tables[n] = Number((await c.query(`select count(*) as n from "${n}"`)).rows[0].n);
    const migrations = (
      await c.query<{ name: string }>(`select name from kysely_migration order by name`)
    ).rows.map((r) => r.name);
    return { tables, migrations };
  } finally {
    await c.end();
  }
}

function sqliteRows(file: string): { tables: Record<string, number>; migrations: string[] } {
  const db = new SQLite(file, { readonly: true });
  try {
    const names = (
      db
        .prepare(
          `select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`,
        )
        .all() as { name: string }[]
    ).map((r) => r.name);
    const tables: Record<string, number> = {};
    for (const n of names)
      tables[n] = (db.prepare(`select count(*) as n from "${n}"`).get() as { n: number }).n;
    const migrations = (
      db.prepare(`select name from kysely_migration order by name`).all() as { name: string }[]
    ).map((r) => r.name);
    return { tables, migrations };
  } finally {
    db.close();
  }
}

function pgUrl(database: string): string {
  const u = new URL(PG_MAINT_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

async function pgAdmin(sql: string): Promise<Json[]> {
  const c = new pg.Client({ connectionString: PG_MAINT_URL });
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

/** pg_dump of the fixture database, checked to be the server's own version. */
async function pgDump(url: string): Promise<{ text: string; version: string }> {
  let dumpVersion: string;
  try {
    dumpVersion = execFileSync("pg_dump", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("pg_dump is not installed (apt-get install postgresql-client)");
  }
  const server = String((await pgAdmin("show server_version"))[0]?.server_version);
  const dumpNumber = /(\d+(?:\.\d+)*)/.exec(dumpVersion)?.[1] ?? "";
  const serverNumber = /^(\d+(?:\.\d+)*)/.exec(server)?.[1] ?? "";
  if (dumpNumber.split(".")[0] !== serverNumber.split(".")[0])
    throw new Error(`${dumpVersion} does not match the server (PostgreSQL ${server})`);
  const text = execFileSync(
    "pg_dump",
    ["--no-owner", "--no-privileges", "--inserts", "--dbname", url],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  return { text, version: `${dumpVersion}; server ${server}` };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const commit = git("rev-parse", `${COMMIT_ARG}^{commit}`);
  const short = COMMIT_ARG;
  log(`commit ${commit}`);
  mkdirSync(OUT, { recursive: true });
  makeWorktree(commit);
  const tmp = mkdtempSync(join(tmpdir(), "kg-upgrade-fixture-"));
  try {
    // SQLite
    const file = join(tmp, "keygate.db");
    let server = await startServer(`sqlite:${file}`);
    log(`SQLite server at ${server.base}`);
    const sqliteMade = await fill(server.base);
    let code = await stopServer(server);
    if (code !== 0) throw new Error(`SQLite server stopped with ${code}:\n${server.output()}`);
    {
      const db = new SQLite(file);
      db.pragma("wal_checkpoint(TRUNCATE)");
      db.close();
    }
    if (existsSync(`${file}-wal`) && statSync(`${file}-wal`).size > 0)
      throw new Error("the WAL still holds pages after a checkpoint");
    copyFileSync(file, join(OUT, `${short}.sqlite`));
    const sqliteCounts = sqliteRows(join(OUT, `${short}.sqlite`));

    // PostgreSQL
    await pgAdmin(`drop database if exists ${PG_DB} with (force)`);
    await pgAdmin(`create database ${PG_DB}`);
    let pgMade: Made;
    let pgCounts: Awaited<ReturnType<typeof pgRows>>;
    let dumpVersion: string;
    try {
      server = await startServer(pgUrl(PG_DB));
      log(`PostgreSQL server at ${server.base}`);
      pgMade = await fill(server.base);
      code = await stopServer(server);
      if (code !== 0)
        throw new Error(`PostgreSQL server stopped with ${code}:\n${server.output()}`);
      pgCounts = await pgRows(pgUrl(PG_DB));
      const dump = await pgDump(pgUrl(PG_DB));
      dumpVersion = dump.version;
      // psql-only lines (\restrict / \unrestrict, a random key per dump) are dropped, so any
      // client can run the file as plain SQL.
      const body = dump.text
        .split("\n")
        .filter((l) => !/^\\(un)?restrict\b/.test(l))
        .join("\n");
      writeFileSync(
        join(OUT, `${short}.pg.sql`),
        `-- Keygate database written by commit ${commit} on PostgreSQL.\n` +
          `-- Made by: node --import tsx scripts/make-upgrade-fixture.ts ${short}\n` +
          `-- ${dumpVersion}; pg_dump --no-owner --no-privileges --inserts\n` +
          body,
      );
    } finally {
      await pgAdmin(`drop database if exists ${PG_DB} with (force)`);
    }

    const engine = (
      made: Made,
      counts: { tables: Record<string, number>; migrations: string[] },
    ) => ({
      tables: counts.tables,
      migrations: counts.migrations,
      ...made,
    });
    const manifest = {
      commit,
      made_by: `node --import tsx scripts/make-upgrade-fixture.ts ${short}`,
      admin: ADMIN,
      reseller: { username: RESELLER.username, password: RESELLER.password },
      pg_dump: dumpVersion,
      sqlite: engine(sqliteMade, sqliteCounts),
      postgres: engine(pgMade, pgCounts),
    };
    for (const [name, e] of [
      ["sqlite", manifest.sqlite],
      ["postgres", manifest.postgres],
    ] as const) {
      if ((e.tables.subscribers ?? 0) !== 3 || (e.tables.api_key_logs ?? 0) === 0)
        throw new Error(`${name}: unexpected rows ${JSON.stringify(e.tables)}`);
    }
    const jsonPath = join(OUT, `${short}.json`);
    writeFileSync(jsonPath, `${JSON.stringify(manifest, null, 2)}\n`);
    execFileSync(join(ROOT, "node_modules/.bin/prettier"), ["--write", jsonPath], {
      cwd: ROOT,
      stdio: "ignore",
    });
    for (const f of [`${short}.sqlite`, `${short}.pg.sql`, `${short}.json`])
      log(`wrote ${join(OUT, f)} (${statSync(join(OUT, f)).size} bytes)`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    removeWorktree();
  }
}

main().catch((err) => {
  process.stderr.write(`make-upgrade-fixture: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
