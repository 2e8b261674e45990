/**
 * What the SQLite work on Keygate's hot path costs in isolation — the call-log batch and the
 * key look-up on a cache miss — written three ways: through the Kysely query builder with
 * every statement prepared anew (how `SqlKeyRepo.writeBatch`/`loadRecord` were first written),
 * through Kysely over a connection that caches prepared statements, and as plain prepared
 * statements. Self-contained: it uses the schema, not the repository classes.
 *
 *   node --import tsx bench/store-micro.ts
 */
import { hash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import type { CallLogEntry, LastUse } from "../src/calllog/writer.js";
import { openDatabase } from "../src/store/database.js";
import { SqlKeyRepo } from "../src/store/keys.js";
import type { DB } from "../src/store/schema.js";
import { keyMaker, seedKeys } from "./keygate.js";

const BATCH = 1000;

function batch(keys: number): [CallLogEntry[], Map<number, LastUse>] {
  const entries: CallLogEntry[] = [];
  const lastUsed = new Map<number, LastUse>();
  const t = Date.now();
  for (let i = 0; i < BATCH; i++) {
    const id = 1 + (i % keys);
    const at = new Date(t + i).toISOString();
    entries.push({
      apiKeyId: id,
      timestamp: at,
      method: "GET",
      path: "/api/v1/external/whoami",
      statusCode: 200,
      ip: "127.0.0.1",
      latencyMs: 0.5,
      userAgent: null,
      errorCode: null,
      requestId: null,
      message: null,
    });
    lastUsed.set(id, { at, ip: "127.0.0.1" });
  }
  return [entries, lastUsed];
}

async function perRow(label: string, write: (keys: number) => unknown, keys: number) {
  await write(keys); // warm
  const reps = 10;
  const t = performance.now();
  for (let i = 0; i < reps; i++) await write(keys);
  const us = ((performance.now() - t) * 1000) / (reps * BATCH);
  process.stdout.write(`| ${label} | ${keys} | ${us.toFixed(1)} |\n`);
}

async function perLookup(label: string, find: (h: string) => unknown, hashes: string[]) {
  for (const h of hashes) await find(h); // warm
  const t = performance.now();
  for (const h of hashes) await find(h);
  const us = ((performance.now() - t) * 1000) / hashes.length;
  process.stdout.write(`| ${label} | ${us.toFixed(1)} |\n`);
}

const dir = mkdtempSync(join(tmpdir(), "keygate-store-micro-"));
try {
  const path = join(dir, "keygate.db");
  const database = await openDatabase(`sqlite:${path}`);
  const now = new Date().toISOString();
  await sql`insert into users (username, password_hash, role, created_at, updated_at)
    values ('micro', 'x', 'admin', ${now}, ${now})`.execute(database.db);
  const keyOf = keyMaker();
  seedKeys(path, 1, 10_000, keyOf);
  const hashes = Array.from({ length: 2000 }, (_, i) => hash("sha256", keyOf(i), "hex"));

  // Through the query builder; better-sqlite3 prepares every statement anew.
  const built = database.db;

  // The same queries over a connection whose prepare() is cached by SQL text.
  const raw = new SQLite(path);
  raw.pragma("busy_timeout = 5000");
  const statements = new Map<string, SQLite.Statement>();
  const cached = new Kysely<DB>({
    dialect: new SqliteDialect({
      database: {
        prepare: (text: string) => {
          let st = statements.get(text);
          if (!st) statements.set(text, (st = raw.prepare(text)));
          return st;
        },
        close: () => raw.close(),
      },
    }),
  });

  /** The call-log batch through Kysely: 500-row inserts, then one UPDATE per key. */
  const writeBatch = async (
    db: Kysely<DB>,
    entries: CallLogEntry[],
    lastUsed: Map<number, LastUse>,
  ) => {
    await db.transaction().execute(async (trx) => {
      for (let i = 0; i < entries.length; i += 500) {
        await trx
          .insertInto("api_key_logs")
          .values(
            entries.slice(i, i + 500).map((e) => ({
              api_key_id: e.apiKeyId,
              timestamp: e.timestamp,
              method: e.method,
              path: e.path,
              status_code: e.statusCode,
              ip: e.ip,
              latency_ms: e.latencyMs,
              user_agent: e.userAgent,
              error_code: e.errorCode,
            })),
          )
          .execute();
      }
      await perKeyIn(trx, lastUsed);
    });
  };
  const perKeyIn = async (db: Kysely<DB>, lastUsed: Map<number, LastUse>) => {
    for (const [id, use] of lastUsed) {
      await db
        .updateTable("api_keys")
        .set({ last_used_at: use.at, last_used_ip: use.ip })
        .where("id", "=", id)
        .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", use.at)]))
        .execute();
    }
  };
  /** The verification view of a key through Kysely: the key, its owner, its successor. */
  const loadRecord = (db: Kysely<DB>, keyHash: string) =>
    db
      .selectFrom("api_keys as k")
      .innerJoin("users as u", "u.id", "k.owner_id")
      .leftJoin("api_keys as n", "n.id", "k.replaced_by_id")
      .selectAll("k")
      .select([
        "u.username as owner_username",
        "u.role as owner_role",
        "u.disabled_at as owner_disabled_at",
      ])
      .select(["u.deleted_at as owner_deleted_at", "n.key_prefix as next_prefix"])
      .where("k.key_hash", "=", keyHash)
      .executeTakeFirst();

  // Set-based last-use update: one statement per 300 keys (SQLite 3.33+ and PostgreSQL).
  const setBased = async (lastUsed: Map<number, LastUse>) => {
    const list = [...lastUsed];
    await database.db.transaction().execute(async (trx) => {
      for (let i = 0; i < list.length; i += 300) {
        const values = sql.join(
          list.slice(i, i + 300).map(([id, u]) => sql`(cast(${id} as integer), ${u.at}, ${u.ip})`),
        );
        await sql`with v(id, at, ip) as (values ${values})
          update api_keys set last_used_at = v.at, last_used_ip = v.ip from v
          where api_keys.id = v.id and (api_keys.last_used_at is null or api_keys.last_used_at < v.at)`.execute(
          trx,
        );
      }
    });
  };
  const perKey = (lastUsed: Map<number, LastUse>) =>
    built.transaction().execute((trx) => perKeyIn(trx, lastUsed));

  // Keygate's own batch writer: prepared statements in one synchronous transaction.
  const repo = new SqlKeyRepo(database);
  const touch = raw.prepare(
    `update api_keys set last_used_at = ?, last_used_ip = ?
     where id = ? and (last_used_at is null or last_used_at < ?)`,
  );
  // The same with the rows inserted 50 at a time by one prepared multi-row INSERT.
  const ROWS = 50;
  const insertMany = raw.prepare(
    `insert into api_key_logs
       (api_key_id, timestamp, method, path, status_code, ip, latency_ms, user_agent, error_code)
     values ${Array.from({ length: ROWS }, () => "(?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", ")}`,
  );
  const preparedMany = raw.transaction(
    (entries: CallLogEntry[], lastUsed: Map<number, LastUse>) => {
      let i = 0;
      for (; i + ROWS <= entries.length; i += ROWS) {
        const params: unknown[] = [];
        for (const e of entries.slice(i, i + ROWS))
          params.push(
            e.apiKeyId,
            e.timestamp,
            e.method,
            e.path,
            e.statusCode,
            e.ip,
            e.latencyMs,
            e.userAgent,
            e.errorCode,
          );
        insertMany.run(params);
      }
      // BATCH is a multiple of ROWS: no rows are left over.
      if (i !== entries.length)
        throw new Error(`batch of ${entries.length} is not a multiple of ${ROWS}`);
      for (const [id, u] of lastUsed) touch.run(u.at, u.ip, id, u.at);
    },
  );
  const select = raw.prepare(
    `select k.*, u.username as owner_username, u.role as owner_role,
       u.disabled_at as owner_disabled_at, u.deleted_at as owner_deleted_at, n.key_prefix as next_prefix
     from api_keys k join users u on u.id = k.owner_id left join api_keys n on n.id = k.replaced_by_id
     where k.key_hash = ?`,
  );

  process.stdout.write(
    `Call-log batches of ${BATCH} rows:\n\n| how | distinct keys | µs per row |\n| --- | ---: | ---: |\n`,
  );
  for (const keys of [1, 1000]) {
    await perRow("Kysely, prepared anew", (k) => writeBatch(built, ...batch(k)), keys);
    await perRow("Kysely, statements cached", (k) => writeBatch(cached, ...batch(k)), keys);
    await perRow(
      "SqlKeyRepo.writeBatch (prepared, one sync transaction)",
      (k) => repo.writeBatch(...batch(k)),
      keys,
    );
    await perRow(`the same, ${ROWS} rows per INSERT`, (k) => preparedMany(...batch(k)), keys);
  }
  process.stdout.write(
    `\nLast-use updates alone, per distinct key:\n\n| how | distinct keys | µs per key |\n| --- | ---: | ---: |\n`,
  );
  await perRow("one Kysely UPDATE per key", (k) => perKey(batch(k)[1]), 1000);
  await perRow("one set-based UPDATE per 300 keys", (k) => setBased(batch(k)[1]), 1000);

  process.stdout.write(
    `\nKey look-up on a cache miss (${hashes.length} keys):\n\n| how | µs per look-up |\n| --- | ---: |\n`,
  );
  await perLookup("Kysely, prepared anew", (h) => loadRecord(built, h), hashes);
  await perLookup("Kysely, statements cached", (h) => loadRecord(cached, h), hashes);
  await perLookup("the same select, prepared once", (h) => select.get(h), hashes);

  await cached.destroy();
  await database.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
