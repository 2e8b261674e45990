import { randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/store/database.js";
import { migrateToLatest } from "../src/store/migrations.js";
import {
  ADMIN,
  ENGINE,
  expectStatus,
  freshDatabase,
  type Harness,
  harness,
  PG_ADMIN_URL,
} from "./helpers.js";
import { ROOT } from "./process.js";

// Upgrades a database written by the released Keygate (commit f8c9bcf, with data in it) with
// today's code, on this run's engine. The fixtures are remade by
// `node --import tsx scripts/make-upgrade-fixture.ts` (test/fixtures/upgrade/README.md).

const DIR = join(ROOT, "test/fixtures/upgrade");

type KeyMade = { name: string; prefix: string; scopes: string; state: string };
type EngineFixture = {
  tables: Record<string, number>;
  migrations: string[];
  reseller: string;
  keys: KeyMade[];
  services: string[];
  nas: string[];
  subscribers: { username: string; owner: string; deleted: boolean; status: string }[];
  transaction_references: string[];
  usage_days: { username: string; day: string }[];
  external_calls: { key: string; path: string; status: number; code?: string }[];
  active_key: { name: string; prefix: string; key: string; scopes: string };
  revoked_key: { name: string; prefix: string; key: string };
};
type Manifest = {
  commit: string;
  admin: { username: string; password: string };
  reseller: { username: string; password: string };
  sqlite: EngineFixture;
  postgres: EngineFixture;
};

const manifest = JSON.parse(readFileSync(join(DIR, "f8c9bcf.json"), "utf8")) as Manifest;
const fx = manifest[ENGINE];

const ENV_TABLES = ["api_keys", "subscribers", "transactions", "usage_daily", "api_key_logs"];

async function pgAdmin(text: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

/**
 * A private copy of the fixture: the SQLite file copied to a temp dir, or a fresh PostgreSQL
 * database (as f8c9bcf ran: everything in its `public` schema) loaded from the dump.
 */
async function privateCopy(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (ENGINE === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "keygate-upgrade-"));
    const file = join(dir, "keygate.db");
    copyFileSync(join(DIR, "f8c9bcf.sqlite"), file);
    return {
      url: `sqlite:${file}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `kg_upgrade_${randomBytes(6).toString("hex")}`;
  await pgAdmin(`create database ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const drop = () => pgAdmin(`drop database if exists ${name} with (force)`);
  // Plain SQL from pg_dump; psql's own commands (\restrict and the like), if any, are skipped.
  const dump = readFileSync(join(DIR, "f8c9bcf.pg.sql"), "utf8")
    .split("\n")
    .filter((l) => !l.startsWith("\\"))
    .join("\n");
  const c = new pg.Client({ connectionString: url.toString() });
  try {
    await c.connect();
    await c.query(dump);
  } catch (err) {
    await drop();
    throw err;
  } finally {
    await c.end();
  }
  return { url: url.toString(), drop };
}

async function migrationNames(database: Database): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(
    database.db,
  );
  return rows.rows.map((r) => r.name);
}

async function count(database: Database, table: string, where = sql`1 = 1`): Promise<number> {
  const rows = await sql<{
    n: number | string;
  }>`select count(*) as n from ${sql.table(table)} where ${where}`.execute(database.db);
  return Number(rows.rows[0]?.n);
}

async function columns(database: Database, table: string): Promise<string[]> {
  const rows =
    database.dialect === "sqlite"
      ? await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(
          database.db,
        )
      : await sql<{ name: string }>`select column_name as name from information_schema.columns
          where table_schema = current_schema() and table_name = ${table}`.execute(database.db);
  return rows.rows.map((r) => r.name);
}

describe(`a ${ENGINE} database written by f8c9bcf, migrated by today's code`, () => {
  let copy: Awaited<ReturnType<typeof privateCopy>> | undefined;
  let database: Database | undefined;
  let before: string[] = [];
  let applied: string[] = [];
  const db = () => database as Database;

  beforeAll(async () => {
    copy = await privateCopy();
    // What openDatabase does, in two steps, to see which migrations ran.
    database = await openDatabase(copy.url, { migrate: false });
    before = await migrationNames(database);
    applied = await migrateToLatest(database.db, database.dialect);
  });
  afterAll(async () => {
    await database?.close();
    await copy?.drop();
  });

  it("held the migrations f8c9bcf shipped, and migrates to the latest without error", async () => {
    expect(before).toEqual(fx.migrations);
    // The latest: what a new database gets from today's code.
    const fresh = await freshDatabase();
    const latestDb = await openDatabase(fresh.url);
    const latest = await migrationNames(latestDb);
    await latestDb.close();
    await fresh.drop();

    expect(await migrationNames(db())).toEqual(latest);
    expect(applied).toEqual(latest.filter((n) => !before.includes(n)));
    expect(await migrateToLatest(db().db, db().dialect)).toEqual([]);
  });

  it("keeps every row counted when the fixture was made", async () => {
    const found: Record<string, number> = {};
    for (const table of Object.keys(fx.tables)) found[table] = await count(db(), table);
    const expected = { ...fx.tables };
    // Today's migrations add their own bookkeeping rows.
    expect(found.kysely_migration).toBeGreaterThanOrEqual(fx.tables.kysely_migration ?? 0);
    found.kysely_migration = expected.kysely_migration ?? 0;
    expect(found).toEqual(expected);
    expect(fx.tables.api_key_logs).toBeGreaterThan(0);
    expect(fx.tables.usage_daily).toBeGreaterThan(0);
  });

  it("keeps the keys, subscribers, transactions, usage and call log as they were", async () => {
    const keys = await db()
      .db.selectFrom("api_keys")
      .select(["key_prefix", "name", "scopes", "revoked_at", "rolled_from_id", "replaced_by_id"])
      .orderBy("id")
      .execute();
    expect(keys.map((k) => [k.key_prefix, k.name, k.scopes])).toEqual(
      fx.keys.map((k) => [k.prefix, k.name, k.scopes]),
    );
    fx.keys.forEach((made, i) => {
      const k = keys[i];
      expect(k?.revoked_at !== null, `${made.prefix} revoked`).toBe(made.state === "revoked");
      expect(k?.replaced_by_id !== null, `${made.prefix} rolled`).toBe(made.state === "rolled");
      expect(k?.rolled_from_id !== null, `${made.prefix} replacement`).toBe(
        made.state === "replacement",
      );
    });

    const subscribers = await db()
      .db.selectFrom("subscribers")
      .innerJoin("users", "users.id", "subscribers.owner_id")
      .select([
        "subscribers.username",
        "subscribers.status",
        "subscribers.deleted_at",
        "users.username as owner",
      ])
      .orderBy("subscribers.id")
      .execute();
    expect(
      subscribers.map((s) => ({
        username: s.username,
        owner: s.owner,
        deleted: s.deleted_at !== null,
        status: s.status,
      })),
    ).toEqual(fx.subscribers);

    const references = await db()
      .db.selectFrom("transactions")
      .select("reference")
      .where("reference", "is not", null)
      .execute();
    expect(references.map((r) => r.reference).sort()).toEqual(
      [...fx.transaction_references].sort(),
    );

    const usage = await db()
      .db.selectFrom("usage_daily")
      .innerJoin("subscribers", "subscribers.id", "usage_daily.subscriber_id")
      .select(["subscribers.username", "usage_daily.day"])
      .orderBy("subscribers.username")
      .orderBy("usage_daily.day")
      .execute();
    expect(usage).toEqual(fx.usage_days);

    const logged = await db()
      .db.selectFrom("api_key_logs")
      .select(["path", "status_code", "error_code"])
      .orderBy("id")
      .execute();
    expect(logged.map((l) => [l.path, l.status_code, l.error_code ?? undefined])).toEqual(
      fx.external_calls.map((c) => [`/api/v1/external${c.path}`, c.status, c.code]),
    );
  });

  // Every row that existed before the environment migration is live; old keys get the
  // permissions their scope stood for.
  describe("rows become live", () => {
    it("gives api_keys, subscribers, transactions, usage_daily and api_key_logs an environment column, 'live' on every old row", async () => {
      for (const table of ENV_TABLES) {
        expect(await columns(db(), table), table).toContain("environment");
        const rows = fx.tables[table] ?? 0;
        expect(await count(db(), table), table).toBe(rows);
        expect(await count(db(), table, sql`environment = 'live'`), table).toBe(rows);
      }
      const keys = await db().db.selectFrom("api_keys").select(["scopes", "permissions"]).execute();
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) expect(JSON.parse(k.permissions)).toEqual([`*:${k.scopes}`]);
    });
  });
});

describe(`today's app on a ${ENGINE} database written by f8c9bcf`, () => {
  let copy: Awaited<ReturnType<typeof privateCopy>> | undefined;
  let h: Harness | undefined;
  const app = () => h as Harness;

  beforeAll(async () => {
    // The fixture's admin is the harness's, so the harness signs in as it.
    expect(manifest.admin).toEqual(ADMIN);
    copy = await privateCopy();
    // createKeygate opens the database and migrates it, as a serving process does. The call
    // log is years old by the time this runs: keep it from being pruned.
    h = await harness({ KEYGATE_DATABASE_URL: copy.url, KEYGATE_LOG_RETENTION_DAYS: "3650" });
  });
  afterAll(async () => {
    await h?.close();
    await copy?.drop();
  });

  it("lets the admin sign in with the fixture's password and list every key", async () => {
    const token = await app().login(manifest.admin.username, manifest.admin.password);
    const res = await app().api("GET", "/api/api-keys", token);
    expectStatus(res, 200);
    const listed = (res.json().data as { key_prefix: string; name: string }[])
      .map((k) => `${k.key_prefix} ${k.name}`)
      .sort();
    expect(listed).toEqual(fx.keys.map((k) => `${k.prefix} ${k.name}`).sort());
    await app().login(manifest.reseller.username, manifest.reseller.password);
  });

  it("accepts a key minted before the upgrade, and still refuses the revoked one", async () => {
    const who = await app().ext("GET", "/whoami", fx.active_key.key);
    expectStatus(who, 200);
    expect(who.json().data).toMatchObject({
      name: fx.active_key.name,
      key_prefix: fx.active_key.prefix,
      owner: { username: manifest.admin.username },
    });

    const list = await app().ext("GET", "/subscribers", fx.active_key.key);
    expectStatus(list, 200);
    expect((list.json().data as { username: string }[]).map((s) => s.username).sort()).toEqual(
      fx.subscribers
        .filter((s) => !s.deleted)
        .map((s) => s.username)
        .sort(),
    );

    const revoked = await app().ext("GET", "/subscribers", fx.revoked_key.key);
    expect(revoked.statusCode).toBe(401);
    expect(revoked.body).toContain("API_KEY_REVOKED");
  });

  it("adds new records after the old ones (ids continue)", async () => {
    const services = await app().api("GET", "/api/services", app().adminToken);
    expectStatus(services, 200);
    const serviceId = (services.json().data as { id: number }[])[0]?.id;
    const res = await app().api("POST", "/api/subscribers", app().adminToken, {
      username: "after.upgrade",
      password: "after-pass-1",
      service_id: serviceId,
    });
    expectStatus(res, 201);
    expect(res.json().data.id).toBe(fx.subscribers.length + 1);
    const { key } = await app().mint(app().adminToken, { name: "after-upgrade", scopes: "read" });
    expectStatus(await app().ext("GET", "/whoami", key), 200);
  });
});
