import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { LRUCache } from "lru-cache";
import { Kysely, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { migrateToLatest } from "./migrations.js";
import type { DB } from "./schema.js";

import type { Dialect } from "./dialect.js";

export type { Dialect };

export type Database = {
  db: Kysely<DB>;
  dialect: Dialect;
  /** The driver underneath, for the few hot statements that skip the query builder. */
  raw: { sqlite: SQLite.Database; pg?: undefined } | { pg: pg.Pool; sqlite?: undefined };
  /** Answers whether the database can run a trivial query right now. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
};

/**
 * Opens `sqlite:PATH`, `sqlite::memory:` or `postgres://…` and applies migrations (all of
 * them, or up to `migrateTo`: tests of a migration start from the schema before it; none
 * with `migrate: false`, for a caller that applies them itself and reports what it did).
 */
export async function openDatabase(
  url: string,
  opts: { migrateTo?: string; migrate?: boolean; sqliteSynchronous?: SqliteSynchronous } = {},
): Promise<Database> {
  const database = url.startsWith("sqlite:")
    ? openSqlite(url.slice("sqlite:".length), opts.sqliteSynchronous ?? "normal")
    : openPostgres(url);
  if (opts.migrate === false) return database;
  try {
    await migrateToLatest(database.db, database.dialect, opts.migrateTo);
  } catch (err) {
    await database.close();
    throw err;
  }
  return database;
}

async function ping(db: Kysely<DB>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}

/**
 * How SQLite syncs its WAL: `normal` (the default) can lose the last transactions committed
 * before a power loss or OS crash, never corrupt the file; `full` syncs every commit.
 */
export type SqliteSynchronous = "normal" | "full";

function openSqlite(path: string, synchronous: SqliteSynchronous): Database {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const conn = new SQLite(path);
  conn.pragma("journal_mode = WAL");
  conn.pragma(`synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`);
  conn.pragma("foreign_keys = ON");
  conn.pragma("busy_timeout = 5000");
  // SQLite's own lower() folds ASCII only; PostgreSQL's folds all of Unicode. Match it.
  conn.function("lower", { deterministic: true }, (v: unknown) =>
    typeof v === "string" ? v.toLowerCase() : v,
  );
  // Kysely prepares every statement anew; keep the prepared ones by SQL text instead.
  const prepared = new LRUCache<string, SQLite.Statement>({ max: 500 });
  const cached = {
    prepare: (text: string) => {
      let stmt = prepared.get(text);
      if (!stmt) {
        stmt = conn.prepare(text);
        prepared.set(text, stmt);
      }
      return stmt;
    },
    close: () => conn.close(),
  };
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: cached }) });
  return {
    db,
    dialect: "sqlite",
    raw: { sqlite: conn },
    ping: () => ping(db),
    close: () => db.destroy(),
  };
}

function openPostgres(url: string): Database {
  // int8 (bigint, count(*)) as a JS number: every such value here stays below 2^53.
  pg.types.setTypeParser(20, (v) => Number(v));
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // Fail fast when the database is away: requests get a 503 in about 2 s, never a hang.
    connectionTimeoutMillis: 2_000,
    statement_timeout: 10_000,
    idleTimeoutMillis: 30_000,
  });
  // A lost connection surfaces as a failed query (a 503); the socket's own error event
  // must not reach the process as an uncaught exception.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));

  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: "postgres",
    raw: { pg: pool },
    ping: () => ping(db),
    close: () => db.destroy(),
  };
}
