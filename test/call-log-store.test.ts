import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import type { CallLogEntry, LastUse } from "../src/calllog/writer.js";
import { type Database, openDatabase } from "../src/store/database.js";
import { SqlKeyRepo } from "../src/store/keys.js";
import { migrateToLatest } from "../src/store/migrations.js";
import { freshDatabase } from "./helpers.js";

// The call log's own storage, on each engine: rows are indexed by second first and found
// per key through the minutes each key was called in.

const T0 = Date.parse("2026-05-12T10:00:00.000Z");
const MINUTE = 60_000;

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

const none = new Map<number, LastUse>();
let opened: { database: Database; drop: () => Promise<void> } | null = null;

async function open(migrateTo?: string) {
  const fresh = await freshDatabase();
  const database = await openDatabase(fresh.url, { migrateTo });
  opened = { database, drop: fresh.drop };
  return database;
}

afterEach(async () => {
  await opened?.database.close();
  await opened?.drop();
  opened = null;
});

describe("call-log storage", () => {
  it("finds a key's calls newest first across hours of quiet, and pages with `before`", async () => {
    const repo = new SqlKeyRepo(await open());
    // Key 1: one call every 7 minutes for 5 hours, key 2 busy in between; keyless refusals too.
    const mine: CallLogEntry[] = [];
    const batch: CallLogEntry[] = [];
    for (let i = 0; i < 43; i++) {
      const e = entry(1, T0 + i * 7 * MINUTE + 1234, { statusCode: i % 5 === 0 ? 429 : 200 });
      mine.push(e);
      batch.push(e);
      for (let j = 0; j < 3; j++) batch.push(entry(2, T0 + i * 7 * MINUTE + j * 1000));
      batch.push(entry(null, T0 + i * 7 * MINUTE + 500, { statusCode: 401 }));
    }
    // Written in several batches, as the writer would.
    for (let i = 0; i < batch.length; i += 40) await repo.writeBatch(batch.slice(i, i + 40), none);

    const newest = [...mine].reverse().map((e) => e.timestamp);
    const first = await repo.logs(1, { limit: 25 });
    expect(first.map((r) => r.timestamp)).toEqual(newest.slice(0, 25));
    const next = await repo.logs(1, { limit: 25, before: first[24]?.timestamp });
    expect(next.map((r) => r.timestamp)).toEqual(newest.slice(25));

    const refused = await repo.logs(1, { limit: 100, status: "4xx" });
    expect(refused.map((r) => r.timestamp)).toEqual(newest.filter((_, i) => (42 - i) % 5 === 0));
    expect(await repo.logs(2, { limit: 1000 })).toHaveLength(43 * 3);
    expect(await repo.logs(3, { limit: 10 })).toEqual([]);
  });

  it("pages by row id without gaps or repeats when many calls share a millisecond", async () => {
    const repo = new SqlKeyRepo(await open());
    // 30 calls in three milliseconds of one second, then 10 a minute later.
    const rows = [
      ...Array.from({ length: 30 }, (_, i) => entry(6, T0 + Math.floor(i / 10), { ip: `ip${i}` })),
      ...Array.from({ length: 10 }, (_, i) => entry(6, T0 + MINUTE + i, { ip: `ip${30 + i}` })),
    ];
    await repo.writeBatch(rows, none);
    const seen: string[] = [];
    let beforeId: number | undefined;
    for (let page = 0; page < 10; page++) {
      const got = await repo.logs(6, { limit: 7, beforeId });
      if (got.length === 0) break;
      seen.push(...got.map((r) => r.ip));
      beforeId = got[got.length - 1]?.id;
    }
    expect(seen).toEqual(rows.map((r) => r.ip).reverse());
    // A cursor that names no row of this key bounds by id alone.
    const other = await repo.logs(6, { limit: 100, beforeId: 1_000_000 });
    expect(other).toHaveLength(40);
  });

  it("stops within a busy key's last minute", async () => {
    const repo = new SqlKeyRepo(await open());
    const rows = Array.from({ length: 900 }, (_, i) => entry(7, T0 + i * 100));
    await repo.writeBatch(rows, none);
    const got = await repo.logs(7, { limit: 10 });
    expect(got.map((r) => r.timestamp)).toEqual(
      rows
        .slice(-10)
        .reverse()
        .map((r) => r.timestamp),
    );
  });

  it("keeps a key findable when the batch that first named its minute failed", async () => {
    const database = await open();
    const repo = new SqlKeyRepo(database);
    const broken = entry(4, T0, { method: null as unknown as string });
    await expect(repo.writeBatch([entry(4, T0 + 10), broken], none)).rejects.toThrow();
    // Nothing of the failed batch is stored; the retry (same minute) must still be found.
    await repo.writeBatch([entry(4, T0 + 20)], none);
    const got = await repo.logs(4, { limit: 10 });
    expect(got.map((r) => r.timestamp)).toEqual([new Date(T0 + 20).toISOString()]);
  });

  it("prunes old minutes with old rows", async () => {
    const database = await open();
    const repo = new SqlKeyRepo(database);
    await repo.writeBatch([entry(5, T0), entry(5, T0 + 90 * MINUTE)], none);
    expect(await repo.pruneLogs(new Date(T0 + 60 * MINUTE).toISOString())).toBe(1);
    const minutes = await database.db
      .selectFrom("api_key_log_minutes")
      .select("minute")
      .where("api_key_id", "=", 5)
      .execute();
    expect(minutes.map((m) => Number(m.minute))).toEqual([Math.floor(T0 / MINUTE) + 90]);
    expect((await repo.logs(5, { limit: 10 })).map((r) => r.timestamp)).toEqual([
      new Date(T0 + 90 * MINUTE).toISOString(),
    ]);
  });

  it("stores every value of every row, in order, whatever a batch's size", async () => {
    const repo = new SqlKeyRepo(await open());
    // Rows go in several at a time: sizes around that grouping, each row's values its own.
    const written: CallLogEntry[] = [];
    for (const size of [1, 9, 10, 11, 23, 40]) {
      const batch = Array.from({ length: size }, (_, i) => {
        const n = written.length + i;
        return entry(n % 3 === 0 ? null : (n % 4) + 1, T0 + n * 1000 + (n % 7), {
          method: ["GET", "POST", "DELETE"][n % 3] as string,
          path: `/api/v1/external/p/${n}`,
          statusCode: 200 + n,
          ip: `10.0.0.${n}`,
          latencyMs: n + 0.25,
          userAgent: n % 2 === 0 ? null : `agent ${n}`,
          errorCode: n % 5 === 0 ? `CODE_${n}` : null,
          requestId: `req-${n}`,
          message: n % 5 === 0 ? `message ${n}` : null,
          environment: n % 2 === 0 ? "live" : "test",
          credential: (["key", "signature", "token"] as const)[n % 3],
        });
      });
      await repo.writeBatch(batch, none);
      written.push(...batch);
    }
    const { rows } = await sql<
      Record<string, unknown>
    >`select * from api_key_logs order by id`.execute(
      (opened as { database: Database }).database.db,
    );
    expect(
      rows.map((r) => [
        r.api_key_id === null ? null : Number(r.api_key_id),
        r.timestamp,
        r.method,
        r.path,
        Number(r.status_code),
        r.ip,
        Number(r.latency_ms),
        r.user_agent,
        r.error_code,
        r.request_id,
        r.error_message,
        Number(r.second),
        r.environment,
        r.credential,
      ]),
    ).toEqual(
      written.map((e) => [
        e.apiKeyId,
        e.timestamp,
        e.method,
        e.path,
        e.statusCode,
        e.ip,
        e.latencyMs,
        e.userAgent,
        e.errorCode,
        e.requestId,
        e.message,
        Math.floor(Date.parse(e.timestamp) / 1000),
        e.environment,
        e.credential,
      ]),
    );
  });

  it("migrates rows written before the per-second index", async () => {
    const database = await open("0001_initial");
    const old = [entry(9, T0 + 5), entry(9, T0 + 3 * MINUTE + 7), entry(null, T0 + 9)];
    for (const e of old) {
      await sql`insert into api_key_logs
          (api_key_id, timestamp, method, path, status_code, ip, latency_ms, user_agent, error_code)
        values (${e.apiKeyId}, ${e.timestamp}, ${e.method}, ${e.path}, ${e.statusCode}, ${e.ip},
                ${e.latencyMs}, ${e.userAgent}, ${e.errorCode})`.execute(database.db);
    }
    await migrateToLatest(database.db, database.dialect);
    const repo = new SqlKeyRepo(database);
    await repo.writeBatch([entry(9, T0 + 3 * MINUTE + 30_000)], none);
    const got = await repo.logs(9, { limit: 10 });
    expect(got.map((r) => r.timestamp)).toEqual([
      new Date(T0 + 3 * MINUTE + 30_000).toISOString(),
      new Date(T0 + 3 * MINUTE + 7).toISOString(),
      new Date(T0 + 5).toISOString(),
    ]);
  });
});

describe("usage rollups beside the call log", () => {
  /** The rollup rows' calls per key, as stored. */
  async function rolledUp(database: Database): Promise<Record<number, number>> {
    const rows = await database.db
      .selectFrom("usage_rollups")
      .select(["api_key_id", "calls"])
      .execute();
    const out: Record<number, number> = {};
    for (const r of rows) out[r.api_key_id] = (out[r.api_key_id] ?? 0) + Number(r.calls);
    return out;
  }

  it("keeps a batch's calls aside until a settling batch, then merges them all with it", async () => {
    const database = await open();
    const repo = new SqlKeyRepo(database);
    await repo.writeBatch([entry(1, T0), entry(2, T0 + 1)], none, new Map(), false);
    await repo.writeBatch([entry(1, T0 + 2)], none, new Map(), false);
    // The rows are stored at once; their rollups wait for the writer's cadence.
    expect(await repo.countLogs()).toBe(3);
    expect(await rolledUp(database)).toEqual({});
    await repo.writeBatch([entry(3, T0 + 3)], none, new Map(), true);
    expect(await rolledUp(database)).toEqual({ 1: 2, 2: 1, 3: 1 });
  });

  it("counts a call once when the batch that would have merged it failed and was retried", async () => {
    const database = await open();
    const repo = new SqlKeyRepo(database);
    await repo.writeBatch([entry(6, T0), entry(6, T0 + 1)], none, new Map(), false);
    const broken = entry(6, T0 + 2, { method: null as unknown as string });
    await expect(
      repo.writeBatch([entry(6, T0 + 3), broken], none, new Map(), true),
    ).rejects.toThrow();
    expect(await rolledUp(database)).toEqual({});
    // The writer retries the failed batch (here without the row that broke it).
    await repo.writeBatch([entry(6, T0 + 3)], none, new Map(), true);
    expect(await rolledUp(database)).toEqual({ 6: 3 });
    expect(await repo.countLogs()).toBe(3);
  });
});
