/**
 * What usage rollups add to the call-log writer: a batch of 2,000 rows written by
 * `SqlKeyRepo.writeBatch` (rows, minutes and rollups in one transaction), beside the rollups'
 * own part — aggregating the batch in memory (`aggregateUsage`) and merging it into
 * usage_rollups (`SqliteUsageRollups.merge` / `mergeUsagePg`) in a transaction of its own —
 * for batches spread over 1, 20 and 500 keys. Rows fall in one hour, so after the first batch
 * every merge reads, merges and rewrites existing rows (the steady state). Then the 30-day
 * usage read of one key (720 hourly rows), by day and by hour.
 *
 *   node --import tsx bench/usage-micro.ts            # SQLite and PostgreSQL
 *   node --import tsx bench/usage-micro.ts sqlite     # one engine
 *
 * PostgreSQL: KEYGATE_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test), in a
 * fresh schema dropped at the end.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { CallLogEntry } from "../src/calllog/writer.js";
import { type Database, openDatabase } from "../src/store/database.js";
import { SqlKeyRepo } from "../src/store/keys.js";
import { aggregateUsage, mergeUsagePg, readUsage, SqliteUsageRollups } from "../src/store/usage.js";

const BATCH = 2000;
const REPS = 20;
const ROUTES = [
  "/api/v1/external/subscribers",
  "/api/v1/external/subscribers/:id",
  "/api/v1/external/subscribers/:id/usage",
  "/api/v1/external/whoami",
  "/api/v1/external/transactions",
  "/api/v1/external/services",
];

/** A seeded generator, so every run writes the same rows. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A batch of `keys` keys' calls in one hour: mostly 200s, some 404/401/500, 40 addresses a key. */
function batches(keys: number, count: number): CallLogEntry[][] {
  const rnd = random(keys);
  const t0 = Date.parse("2026-11-20T10:00:00.000Z");
  const out: CallLogEntry[][] = [];
  for (let b = 0; b < count; b++) {
    const batch: CallLogEntry[] = [];
    for (let i = 0; i < BATCH; i++) {
      const key = 1 + Math.floor(rnd() * keys);
      const r = rnd();
      const [status, code] =
        r < 0.9
          ? [200, null]
          : r < 0.95
            ? [404, "NOT_FOUND"]
            : r < 0.98
              ? [401, "API_KEY_REVOKED"]
              : [500, "INTERNAL_ERROR"];
      batch.push({
        apiKeyId: key,
        timestamp: new Date(t0 + b * 1000 + Math.floor(i / 2)).toISOString(),
        method: rnd() < 0.8 ? "GET" : "POST",
        path: `/api/v1/external/subscribers/${Math.floor(rnd() * 10_000)}`,
        route: ROUTES[Math.floor(rnd() * ROUTES.length)] as string,
        statusCode: status,
        ip: `198.51.${key % 250}.${Math.floor(rnd() * 40)}`,
        latencyMs:
          Math.round(Math.exp(Math.log(4) + (rnd() + rnd() + rnd() - 1.5) * 2) * 100) / 100,
        userAgent: "billing-sync/2.1",
        errorCode: code,
        requestId: randomBytes(8).toString("hex"),
        message: code === null ? null : "refused",
      });
    }
    out.push(batch);
  }
  return out;
}

async function time(
  label: string,
  run: (batch: CallLogEntry[]) => unknown,
  data: CallLogEntry[][],
) {
  await run(data[0] as CallLogEntry[]); // warm: prepares, creates the rows
  const t = performance.now();
  for (let i = 1; i < data.length; i++) await run(data[i] as CallLogEntry[]);
  return ((performance.now() - t) * 1000) / ((data.length - 1) * BATCH);
}

async function bench(engine: string, database: Database): Promise<void> {
  const repo = new SqlKeyRepo(database);
  const sqlite = database.raw.sqlite;
  const rollups = sqlite ? new SqliteUsageRollups(sqlite) : null;
  process.stdout.write(
    `\n${engine}: µs per row, batches of ${BATCH}\n\n` +
      "| keys | writeBatch (all) | rollups: aggregate | rollups: merge | rollups' share |\n" +
      "|---|---|---|---|---|\n",
  );
  for (const keys of [1, 20, 500]) {
    const data = batches(keys, REPS + 1);
    const all = await time("writeBatch", (b) => repo.writeBatch(b, new Map()), data);
    // As writeBatch calls it: with the epoch seconds it works out for the rows anyway.
    const seconds = new Map(
      data.map((b) => [b, b.map((e) => Math.floor(Date.parse(e.timestamp) / 1000))]),
    );
    const aggregate = await time("aggregate", (b) => aggregateUsage(b, seconds.get(b)), data);
    const groups = data.map((b) => aggregateUsage(b));
    let n = 0;
    const merge = await time(
      "merge",
      () => {
        const g = groups[n++ % groups.length] ?? [];
        return sqlite && rollups
          ? sqlite.transaction(() => rollups.merge(g))()
          : database.db.transaction().execute((trx) => mergeUsagePg(trx, g));
      },
      data,
    );
    const share = ((aggregate + merge) / all) * 100;
    process.stdout.write(
      `| ${keys} | ${all.toFixed(2)} | ${aggregate.toFixed(2)} | ${merge.toFixed(2)} | ${share.toFixed(0)} % |\n`,
    );
  }
}

/**
 * The 30-day usage read of one key: 720 hourly rows, each with 50 addresses, 12 routes and a
 * spread histogram, merged into day buckets (and, for comparison, hour buckets).
 */
async function read30Days(database: Database): Promise<void> {
  const rnd = random(30);
  const hour0 = Math.floor(Date.parse("2026-10-01T00:00:00Z") / 3_600_000);
  const keyId = 9_999;
  for (let h = 0; h < 720; h++) {
    const batch: CallLogEntry[] = [];
    for (let i = 0; i < 200; i++)
      batch.push({
        apiKeyId: keyId,
        timestamp: new Date((hour0 + h) * 3_600_000 + i * 1000).toISOString(),
        method: i % 5 === 0 ? "POST" : "GET",
        path: "/p",
        route: ROUTES[i % ROUTES.length] as string,
        statusCode: i % 17 === 0 ? 404 : 200,
        ip: `203.0.${h % 7}.${Math.floor(rnd() * 60)}`,
        latencyMs: Math.exp(Math.log(4) + (rnd() + rnd() + rnd() - 1.5) * 2),
        userAgent: null,
        errorCode: i % 17 === 0 ? "NOT_FOUND" : null,
        requestId: null,
        message: null,
      });
    await new SqlKeyRepo(database).writeBatch(batch, new Map());
  }
  for (const [bucketHours, label] of [
    [24, "day"],
    [1, "hour"],
  ] as const) {
    const q = { fromHour: hour0, toHour: hour0 + 720, bucketHours, environment: null, keyId };
    await readUsage(database.db, q); // warm
    const t = performance.now();
    for (let i = 0; i < 10; i++) await readUsage(database.db, q);
    process.stdout.write(
      `30-day usage of one key (720 rows), ${label} buckets: ${((performance.now() - t) / 10).toFixed(1)} ms\n`,
    );
  }
}

const which = process.argv[2] ?? "both";
if (which === "sqlite" || which === "both") {
  const dir = mkdtempSync(join(tmpdir(), "keygate-usage-micro-"));
  try {
    const database = await openDatabase(`sqlite:${join(dir, "keygate.db")}`);
    await bench("SQLite (file, WAL, synchronous=normal)", database);
    await read30Days(database);
    await database.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (which === "postgres" || which === "both") {
  const admin = process.env.KEYGATE_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const schema = `usage_micro_${randomBytes(4).toString("hex")}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`create schema ${schema}`);
  try {
    const url = `${admin}${admin.includes("?") ? "&" : "?"}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const database = await openDatabase(url);
    await bench("PostgreSQL", database);
    await read30Days(database);
    await database.close();
  } finally {
    await c.query(`drop schema ${schema} cascade`);
    await c.end();
  }
}
