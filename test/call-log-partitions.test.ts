import { parse } from "csv-parse/sync";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import type { CallLogEntry, LastUse } from "../src/calllog/writer.js";
import { type Database, openDatabase } from "../src/store/database.js";
import { SqlKeyRepo } from "../src/store/keys.js";
import { migrateToLatest } from "../src/store/migrations.js";
import {
  ensureLogPartitions,
  ensureLogPartitionsAhead,
  epochDay,
  LOG_DEFAULT_PARTITION,
  LOG_PARTITION_DAYS_AHEAD,
  logPartitionName,
  logPartitions,
} from "../src/store/partitions.js";
import { freshDatabase, harness } from "./helpers.js";

// PostgreSQL only (vitest.config.ts postgresOnly): the call log partitioned by UTC day
// (migration 0013, src/store/partitions.ts). SQLite keeps one table and DELETE retention,
// which test/call-log-store.test.ts covers on both engines.

const DAY = 86_400_000;
const NOW = Date.now();
const TODAY = epochDay(NOW);
const none = new Map<number, LastUse>();

function entry(apiKeyId: number | null, ms: number, extra: Partial<CallLogEntry> = {}) {
  return {
    apiKeyId,
    timestamp: new Date(ms).toISOString(),
    method: "GET",
    path: "/api/v1/external/whoami",
    statusCode: 200,
    ip: "127.0.0.1",
    latencyMs: 1.5,
    userAgent: "test",
    errorCode: null,
    requestId: null,
    message: null,
    ...extra,
  } satisfies CallLogEntry;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fresh(migrateTo?: string): Promise<{ url: string; database: Database }> {
  const f = await freshDatabase();
  const database = await openDatabase(f.url, { migrateTo });
  cleanups.push(f.drop, () => database.close());
  return { url: f.url, database };
}

/** Which partition holds each row, by id. */
async function placement(database: Database): Promise<Map<number, string>> {
  const { rows } = await sql<{ id: number; part: string }>`
    select id, tableoid::regclass::text as part from api_key_logs`.execute(database.db);
  return new Map(rows.map((r) => [Number(r.id), r.part]));
}

const names = async (database: Database) => (await logPartitions(database.db)).map((p) => p.name);

describe("call-log partitions (PostgreSQL)", () => {
  it("has today's partition, the next days' and a default one after migrating", async () => {
    const { database } = await fresh();
    const parts = await logPartitions(database.db);
    const got = parts.map((p) => p.name);
    for (let d = TODAY; d <= TODAY + LOG_PARTITION_DAYS_AHEAD; d++)
      expect(got).toContain(logPartitionName(d));
    expect(got).toContain(LOG_DEFAULT_PARTITION);
    const today = parts.find((p) => p.name === logPartitionName(TODAY));
    expect(today).toEqual({
      name: logPartitionName(TODAY),
      from: (TODAY * DAY) / 1000,
      to: ((TODAY + 1) * DAY) / 1000,
    });
    // Partitioned by range of `second`, keyed by (id, second).
    const { rows } = await sql<{ def: string }>`
      select pg_get_partkeydef('api_key_logs'::regclass) as def`.execute(database.db);
    expect(rows[0]?.def).toBe("RANGE (second)");
  });

  it("puts each row in its day's partition, and a row of a day without one in the default", async () => {
    const { database } = await fresh();
    const repo = new SqlKeyRepo(database);
    await repo.writeBatch(
      [entry(1, NOW), entry(1, NOW + DAY), entry(2, NOW + 30 * DAY), entry(null, NOW - 400 * DAY)],
      none,
    );
    const rows = (
      await database.db.selectFrom("api_key_logs").select(["id", "timestamp"]).execute()
    ).sort((a, b) => a.id - b.id);
    const where = await placement(database);
    expect(rows.map((r) => where.get(r.id))).toEqual([
      logPartitionName(TODAY),
      logPartitionName(TODAY + 1),
      LOG_DEFAULT_PARTITION,
      LOG_DEFAULT_PARTITION,
    ]);
  });

  it("keeps the rows of a database from before 0013, their ids carrying on", async () => {
    const { database } = await fresh("0012_usage_rollups");
    const repo = new SqlKeyRepo(database);
    const old = [
      entry(7, NOW - 200 * DAY), // older than the days the migration partitions: the default
      entry(7, NOW - 3 * DAY, { requestId: "req-old" }),
      entry(7, NOW - DAY, { statusCode: 404, errorCode: "NOT_FOUND" }),
      entry(null, NOW - DAY + 5),
      entry(7, NOW - 5000),
    ];
    // The rows as this schema stores them; their rollups are left waiting (this code merges
    // them into usage_totals too, which 0016 makes).
    await repo.writeBatch(old, none, new Map(), false);
    // A row of before 0002, without a second.
    await sql`insert into api_key_logs (api_key_id, timestamp, method, path, status_code, ip, latency_ms)
      values (8, ${new Date(NOW - 2 * DAY).toISOString()}, 'GET', '/legacy', 200, '127.0.0.1', 1)`.execute(
      database.db,
    );
    const before = await database.db.selectFrom("api_key_logs").selectAll().orderBy("id").execute();
    // 0013 first, then whatever came after it.
    const applied = await migrateToLatest(database.db, database.dialect);
    expect(applied.slice(0, 2)).toEqual(["0013_call_log_partitions", "0014_quota_roots"]);
    const after = await database.db.selectFrom("api_key_logs").selectAll().orderBy("id").execute();
    expect(after.map((r) => ({ ...r, second: r.second ?? 0 }))).toEqual(
      before.map((r) => ({ ...r, second: r.second ?? 0 })),
    );
    const where = await placement(database);
    const ids = before.map((r) => r.id);
    expect(ids.map((id) => where.get(id))).toEqual([
      LOG_DEFAULT_PARTITION,
      logPartitionName(epochDay(NOW - 3 * DAY)),
      logPartitionName(epochDay(NOW - DAY)),
      logPartitionName(epochDay(NOW - DAY + 5)),
      logPartitionName(epochDay(NOW - 5000)),
      LOG_DEFAULT_PARTITION,
    ]);
    // Read back as the API reads them, newest first, across partitions.
    const reread = new SqlKeyRepo(database);
    expect((await reread.logs(7, { limit: 10 })).map((r) => r.timestamp)).toEqual(
      [old[4], old[2], old[1], old[0]].map((e) => e?.timestamp),
    );
    expect((await reread.logs(7, { limit: 10, requestId: "req-old" })).length).toBe(1);
    // New rows take ids after the old ones.
    await reread.writeBatch([entry(7, NOW)], none);
    const newest = await reread.logs(7, { limit: 1 });
    expect(newest[0]?.id).toBeGreaterThan(Math.max(...ids));
    expect(await reread.countLogs()).toBe(7);
  });

  it("drops the days before the retention cutoff, deletes within the cutoff's own day, keeps the rest", async () => {
    const { database } = await fresh();
    await ensureLogPartitions(database.db, TODAY - 45, TODAY);
    const repo = new SqlKeyRepo(database);
    const cutoff = (TODAY - 30) * DAY + 12 * 3_600_000; // noon, 30 days ago
    const rows = [
      entry(1, (TODAY - 45) * DAY + 1000),
      entry(1, (TODAY - 40) * DAY),
      entry(1, (TODAY - 31) * DAY + DAY - 1),
      entry(1, cutoff - 1000), // the cutoff's day, before it
      entry(1, cutoff + 1000), // the cutoff's day, after it
      entry(1, (TODAY - 29) * DAY),
      entry(1, NOW),
      entry(null, NOW - 400 * DAY), // the default partition
    ];
    await repo.writeBatch(rows, none);
    expect(await repo.pruneLogs(new Date(cutoff).toISOString())).toBe(5);
    const parts = await names(database);
    for (const d of [TODAY - 45, TODAY - 40, TODAY - 31])
      expect(parts).not.toContain(logPartitionName(d));
    for (const d of [TODAY - 30, TODAY - 29, TODAY]) expect(parts).toContain(logPartitionName(d));
    expect(parts).toContain(LOG_DEFAULT_PARTITION);
    expect((await repo.logs(1, { limit: 10 })).map((r) => r.timestamp)).toEqual(
      [rows[6], rows[5], rows[4]].map((e) => e?.timestamp),
    );
    expect(await repo.countLogs()).toBe(3);
    // Nothing left to drop: the next run deletes nothing.
    expect(await repo.pruneLogs(new Date(cutoff).toISOString())).toBe(0);
  });

  it("moves rows that landed in the default partition into their day's partition once it is made", async () => {
    const { database } = await fresh();
    const repo = new SqlKeyRepo(database);
    const later = NOW + 10 * DAY;
    await repo.writeBatch([entry(3, later), entry(3, later + 1000)], none);
    expect(new Set((await placement(database)).values())).toEqual(new Set([LOG_DEFAULT_PARTITION]));
    const made = await ensureLogPartitionsAhead(database.db, later);
    expect(made).toContain(logPartitionName(epochDay(later)));
    expect(new Set((await placement(database)).values())).toEqual(
      new Set([logPartitionName(epochDay(later))]),
    );
    expect((await repo.logs(3, { limit: 5 })).length).toBe(2);
    // Made once: the next call has nothing to do.
    expect(await ensureLogPartitionsAhead(database.db, later)).toEqual([]);
  });

  it("lets several instances make the same partitions at once", async () => {
    const { url, database } = await fresh();
    const others = await Promise.all([1, 2, 3].map(() => openDatabase(url)));
    cleanups.push(async () => {
      for (const o of others) await o.close();
    });
    const all = [database, ...others];
    const made = await Promise.all(
      all.map((d) => ensureLogPartitions(d.db, TODAY + 10, TODAY + 20)),
    );
    // Each day made exactly once, by whichever instance got there first.
    expect(made.flat().sort()).toEqual(
      Array.from({ length: 11 }, (_, i) => logPartitionName(TODAY + 10 + i)).sort(),
    );
    // And whole Keygates starting together on one fresh database (migration, then maintenance).
    const f = await freshDatabase();
    cleanups.push(f.drop);
    const env = { KEYGATE_DATABASE_URL: f.url };
    const pair = await Promise.all([harness(env), harness(env)]);
    for (const h of pair) cleanups.push(() => h.close());
    const parts = (await logPartitions(pair[0]!.kg.database.db)).map((p) => p.name);
    expect(parts).toContain(logPartitionName(TODAY + LOG_PARTITION_DAYS_AHEAD));
  });

  it("answers the call log and its CSV export across partitions", async () => {
    const h = await harness();
    cleanups.push(() => h.close());
    const { id } = await h.mint(h.adminToken, { name: "partitions" });
    await ensureLogPartitions(h.kg.database.db, TODAY - 3, TODAY);
    // Calls on four days (one a day older than any partition), newest last.
    const times = [NOW - 20 * DAY, NOW - 3 * DAY, NOW - 2 * DAY, NOW - DAY, NOW - 1000];
    await h.kg.keyRepo.writeBatch(
      times.map((t, i) => entry(id, t, { requestId: `req-${i}` })),
      none,
    );
    const res = await h.api("GET", `/api/api-keys/${id}/logs?limit=200`, h.adminToken);
    expect(res.statusCode).toBe(200);
    const got = (res.json().data as { timestamp: string }[]).map((r) => r.timestamp);
    expect(got).toEqual(times.map((t) => new Date(t).toISOString()).reverse());
    // Paged two at a time with before_id, the pages join without gaps.
    const paged: string[] = [];
    let beforeId: number | undefined;
    for (;;) {
      const q = beforeId === undefined ? "" : `&before_id=${beforeId}`;
      const page = (await h.api("GET", `/api/api-keys/${id}/logs?limit=2${q}`, h.adminToken)).json()
        .data as { id: number; timestamp: string }[];
      if (page.length === 0) break;
      paged.push(...page.map((r) => r.timestamp));
      beforeId = page[page.length - 1]?.id;
    }
    expect(paged).toEqual(got);
    const csv = await h.api("GET", `/api/api-keys/${id}/logs.csv`, h.adminToken);
    expect(csv.statusCode).toBe(200);
    const rows = parse(csv.body, { columns: true }) as { timestamp: string; request_id: string }[];
    expect(rows.map((r) => r.timestamp)).toEqual(got);
    expect(rows.map((r) => r.request_id)).toEqual(["req-4", "req-3", "req-2", "req-1", "req-0"]);
  });
});
