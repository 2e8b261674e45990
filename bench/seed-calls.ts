/**
 * Seeds a Keygate database with a big call log: `node --import tsx bench/seed-calls.ts URL
 * [ROWS]`, URL `sqlite:PATH` or `postgres://…` (a fresh schema through `?options=-c
 * search_path=…`). The schema is migrated first; rows go straight into the tables.
 *
 * - ROWS call-log rows (default 10,000,000; SEED_DAYS days up to now, default 45, evenly in
 *   time and written in time order, as the call-log writer would have written them);
 * - SEED_KEYS keys (default 1,000) owned by the first admin (or a `seed-owner` admin made
 *   for them), the key of each row drawn with a skew: the key of rank r (1 … K) is picked
 *   with probability about ln((r+1)/r) / ln(K+1), so rank 1 takes ≈ 10% of the calls and the
 *   last rank ≈ 0.015% (1,400 calls of 10 million);
 * - the matching api_key_log_minutes rows (each key's minutes with calls) and usage_rollups
 *   rows (per key, environment and hour, made by src/store/usage.ts's own aggregation, so
 *   the JSON columns have its format);
 * - on PostgreSQL, the day partitions of the days seeded (src/store/partitions.ts).
 *
 * Deterministic for a given SEED (default 1). Prints a JSON summary: the keys by rank.
 */
import { hash } from "node:crypto";
import { fileURLToPath } from "node:url";
import SQLite from "better-sqlite3";
import pg from "pg";
import type { CallLogEntry } from "../src/calllog/writer.js";
import { openDatabase } from "../src/store/database.js";
import { ensureLogPartitions, epochDay } from "../src/store/partitions.js";
import { aggregateUsage, backfillUsageTotals, mergedMaps } from "../src/store/usage.js";

export type SeedOptions = {
  rows?: number;
  days?: number;
  keys?: number;
  /** The instant the log ends at (epoch ms; default now). */
  endMs?: number;
  seed?: number;
  onProgress?: (rows: number) => void;
};

export type SeedResult = {
  rows: number;
  days: number;
  startMs: number;
  endMs: number;
  /** Key ids by rank: [0] is the busiest. */
  keyIds: number[];
  /** Calls each key got, by rank. */
  calls: number[];
  minutes: number;
  rollups: number;
  seconds: number;
};

/** A small fast PRNG (mulberry32): the same data for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ROUTES: [method: string, route: string, path: (n: number) => string][] = [
  ["GET", "/api/v1/external/whoami", () => "/api/v1/external/whoami"],
  ["GET", "/api/v1/external/subscribers", () => "/api/v1/external/subscribers"],
  ["GET", "/api/v1/external/subscribers/:id", (n) => `/api/v1/external/subscribers/${n}`],
  ["POST", "/api/v1/external/transactions", () => "/api/v1/external/transactions"],
];
/** Status, error code, message, weight (per 1,000 calls). */
const OUTCOMES: [number, string | null, string | null, number][] = [
  [200, null, null, 900],
  [404, "NOT_FOUND", "subscriber not found", 45],
  [429, "RATE_LIMIT_EXCEEDED", "rate limit exceeded", 30],
  [403, "IP_NOT_ALLOWED", "this key may not be used from this address", 10],
  [401, "API_KEY_REVOKED", "the API key has been revoked", 5],
  [400, "VALIDATION_ERROR", "amount: must be a number", 5],
  [500, "INTERNAL_ERROR", "internal error", 5],
];
const OUTCOME_TABLE: number[] = OUTCOMES.flatMap(([, , , w], i) => Array<number>(w).fill(i));

/** Rows of the call log in time order, in chunks of one UTC hour (the rollups' unit). */
function* generate(
  o: Required<Pick<SeedOptions, "rows" | "days" | "keys" | "endMs" | "seed">>,
  keyIds: number[],
  calls: number[],
): Generator<{ entries: CallLogEntry[]; seconds: number[] }> {
  const rand = prng(o.seed);
  const spanMs = o.days * 86_400_000;
  const startMs = o.endMs - spanMs;
  const logBase = Math.log(o.keys + 1);
  let entries: CallLogEntry[] = [];
  let seconds: number[] = [];
  let hour = -1;
  for (let i = 0; i < o.rows; i++) {
    const ms = startMs + Math.floor(((i + rand()) * spanMs) / o.rows);
    const second = Math.floor(ms / 1000);
    const h = Math.floor(second / 3600);
    if (h !== hour && entries.length > 0) {
      yield { entries, seconds };
      entries = [];
      seconds = [];
    }
    hour = h;
    const rank = Math.min(o.keys, Math.floor(Math.exp(rand() * logBase))) - 1;
    calls[rank] = (calls[rank] ?? 0) + 1;
    const [method, route, path] = ROUTES[Math.floor(rand() * ROUTES.length)] as (typeof ROUTES)[0];
    const [status, code, message] = OUTCOMES[
      OUTCOME_TABLE[Math.floor(rand() * OUTCOME_TABLE.length)] as number
    ] as (typeof OUTCOMES)[0];
    entries.push({
      apiKeyId: keyIds[rank] as number,
      timestamp: new Date(ms).toISOString(),
      method,
      path: path(Math.floor(rand() * 5000)),
      route,
      statusCode: status,
      ip: `10.${rank & 255}.${rank >> 8}.${1 + Math.floor(rand() * 4)}`,
      latencyMs: Math.round((1 + 20 * rand() ** 3) * 100) / 100,
      userAgent: "billing-sync/2.1",
      errorCode: code,
      requestId: `req_${i.toString(16).padStart(12, "0")}`,
      message,
      environment: "live",
      credential: "key",
    });
    seconds.push(second);
  }
  if (entries.length > 0) yield { entries, seconds };
}

/** The (key, minute) pairs of a chunk not seen before (rows are in time order). */
function newMinutes(
  entries: CallLogEntry[],
  seconds: number[],
  last: Map<number, number>,
): [number, number][] {
  const fresh: [number, number][] = [];
  for (let i = 0; i < entries.length; i++) {
    const id = entries[i]?.apiKeyId as number;
    const minute = Math.floor((seconds[i] as number) / 60);
    if (last.get(id) === minute) continue;
    last.set(id, minute);
    fresh.push([id, minute]);
  }
  return fresh;
}

function rollupRows(entries: CallLogEntry[], seconds: number[]) {
  return aggregateUsage(entries, seconds).map((g) => ({
    api_key_id: g.keyId,
    environment: g.environment,
    hour: g.hour,
    calls: g.calls,
    admitted: g.admitted,
    s2xx: g.s2xx,
    s3xx: g.s3xx,
    s4xx: g.s4xx,
    s5xx: g.s5xx,
    ...mergedMaps(g),
  }));
}

/** Seeds `url` (migrated first); see the file's header. */
export async function seedCalls(url: string, opts: SeedOptions = {}): Promise<SeedResult> {
  const o = {
    rows: opts.rows ?? 10_000_000,
    days: opts.days ?? 45,
    keys: opts.keys ?? 1000,
    endMs: opts.endMs ?? Date.now(),
    seed: opts.seed ?? 1,
  };
  const t0 = performance.now();
  const startMs = o.endMs - o.days * 86_400_000;
  const database = await openDatabase(url);
  const { db } = database;
  let keyIds: number[];
  try {
    // The keys, owned by an admin (made if there is none yet).
    let owner = await db
      .selectFrom("users")
      .select("id")
      .where("role", "=", "admin")
      .where("deleted_at", "is", null)
      .orderBy("id")
      .executeTakeFirst();
    const now = new Date().toISOString();
    if (!owner) {
      owner = await db
        .insertInto("users")
        .values({
          username: "seed-owner",
          password_hash: "!",
          role: "admin",
          created_at: now,
          updated_at: now,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
    }
    const ownerId = owner.id;
    keyIds = [];
    for (let from = 0; from < o.keys; from += 500) {
      const batch = Array.from({ length: Math.min(500, o.keys - from) }, (_, j) => {
        const key = `pk_live_seedcalls${o.seed}_${(from + j).toString(16).padStart(8, "0")}`;
        return {
          name: `seed-calls-${from + j + 1}`,
          key_hash: hash("sha256", key, "hex"),
          key_prefix: key.slice(0, 12),
          scopes: "read",
          permissions: '["*:read"]',
          owner_id: ownerId,
          created_at: new Date(startMs).toISOString(),
          created_by: ownerId,
          updated_at: now,
        };
      });
      const ids = await db.insertInto("api_keys").values(batch).returning("id").execute();
      keyIds.push(...ids.map((r) => r.id));
    }
    if (database.dialect === "postgres")
      await ensureLogPartitions(db, epochDay(startMs), epochDay(o.endMs));
  } finally {
    await database.close();
  }

  const calls: number[] = new Array<number>(o.keys).fill(0);
  const chunks = generate(o, keyIds, calls);
  const counted = { rows: 0, minutes: 0, rollups: 0 };
  const progress = (n: number) => {
    const before = counted.rows;
    counted.rows += n;
    if (Math.floor(counted.rows / 1_000_000) > Math.floor(before / 1_000_000))
      opts.onProgress?.(counted.rows);
  };
  if (url.startsWith("sqlite:")) seedSqlite(url.slice("sqlite:".length), chunks, counted, progress);
  else await seedPostgres(url, chunks, counted, progress);
  // The owners' and every key's usage, as the merge keeps them beside the keys' rollups.
  const totals = await openDatabase(url, { migrate: false });
  try {
    await totals.db.deleteFrom("usage_totals").execute();
    await backfillUsageTotals(totals.db);
  } finally {
    await totals.close();
  }
  return {
    rows: counted.rows,
    days: o.days,
    startMs,
    endMs: o.endMs,
    keyIds,
    calls,
    minutes: counted.minutes,
    rollups: counted.rollups,
    seconds: (performance.now() - t0) / 1000,
  };
}

type Chunks = Generator<{ entries: CallLogEntry[]; seconds: number[] }>;
type Counted = { rows: number; minutes: number; rollups: number };

/** SQLite: prepared statements, a transaction per ~100,000 rows, no journal while filling. */
function seedSqlite(
  path: string,
  chunks: Chunks,
  counted: Counted,
  progress: (n: number) => void,
): void {
  const conn = new SQLite(path);
  try {
    // A fresh file being filled: no journal while seeding (each page written once), WAL after.
    conn.pragma("journal_mode = OFF");
    conn.pragma("synchronous = OFF");
    conn.pragma("cache_size = -262144");
    const insert = conn.prepare(
      `insert into api_key_logs
         (api_key_id, timestamp, method, path, status_code, ip, latency_ms, user_agent, error_code,
          request_id, error_message, second, environment, credential)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const minute = conn.prepare(
      "insert or ignore into api_key_log_minutes (api_key_id, minute) values (?, ?)",
    );
    const rollup = conn.prepare(
      `insert into usage_rollups (api_key_id, environment, hour, calls, admitted, s2xx, s3xx, s4xx,
         s5xx, errors, latency, routes, ips)
       values (@api_key_id, @environment, @hour, @calls, @admitted, @s2xx, @s3xx, @s4xx, @s5xx,
         @errors, @latency, @routes, @ips)`,
    );
    const last = new Map<number, number>();
    const write = conn.transaction((list: { entries: CallLogEntry[]; seconds: number[] }[]) => {
      for (const { entries, seconds } of list) {
        for (let i = 0; i < entries.length; i++) {
          const e = entries[i] as CallLogEntry;
          insert.run(
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
            seconds[i],
            e.environment,
            e.credential,
          );
        }
        for (const [id, m] of newMinutes(entries, seconds, last)) {
          minute.run(id, m);
          counted.minutes++;
        }
        for (const r of rollupRows(entries, seconds)) {
          rollup.run(r);
          counted.rollups++;
        }
      }
    });
    let pending: { entries: CallLogEntry[]; seconds: number[] }[] = [];
    let size = 0;
    const flush = () => {
      write(pending);
      progress(size);
      pending = [];
      size = 0;
    };
    for (const chunk of chunks) {
      pending.push(chunk);
      size += chunk.entries.length;
      if (size >= 100_000) flush();
    }
    if (size > 0) flush();
    conn.pragma("journal_mode = WAL");
  } finally {
    conn.close();
  }
}

/** PostgreSQL: arrays unnested into multi-row inserts of ~20,000 rows, then VACUUM ANALYZE. */
async function seedPostgres(
  url: string,
  chunks: Chunks,
  counted: Counted,
  progress: (n: number) => void,
): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("set synchronous_commit = off");
    await client.query("set statement_timeout = 0");
    const last = new Map<number, number>();
    let rows: CallLogEntry[] = [];
    let secs: number[] = [];
    let minutes: [number, number][] = [];
    let rollups: ReturnType<typeof rollupRows> = [];
    const flush = async () => {
      const col = <T>(f: (e: CallLogEntry) => T) => rows.map(f);
      await client.query("begin");
      await client.query(
        `insert into api_key_logs
           (api_key_id, timestamp, method, path, status_code, ip, latency_ms, user_agent,
            error_code, request_id, error_message, second, environment, credential)
         select * from unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::int[],
           $6::text[], $7::float8[], $8::text[], $9::text[], $10::text[], $11::text[],
           $12::bigint[], $13::text[], $14::text[])`,
        [
          col((e) => e.apiKeyId),
          col((e) => e.timestamp),
          col((e) => e.method),
          col((e) => e.path),
          col((e) => e.statusCode),
          col((e) => e.ip),
          col((e) => e.latencyMs),
          col((e) => e.userAgent),
          col((e) => e.errorCode),
          col((e) => e.requestId),
          col((e) => e.message),
          secs,
          col((e) => e.environment ?? "live"),
          col((e) => e.credential ?? "key"),
        ],
      );
      if (minutes.length > 0)
        await client.query(
          `insert into api_key_log_minutes (api_key_id, minute)
           select * from unnest($1::int[], $2::bigint[]) on conflict do nothing`,
          [minutes.map(([id]) => id), minutes.map(([, m]) => m)],
        );
      if (rollups.length > 0) {
        const c = <K extends keyof (typeof rollups)[0]>(k: K) => rollups.map((r) => r[k]);
        await client.query(
          `insert into usage_rollups (api_key_id, environment, hour, calls, admitted, s2xx, s3xx,
             s4xx, s5xx, errors, latency, routes, ips)
           select * from unnest($1::int[], $2::text[], $3::bigint[], $4::int[], $5::int[],
             $6::int[], $7::int[], $8::int[], $9::int[], $10::text[], $11::text[], $12::text[],
             $13::text[])`,
          [
            c("api_key_id"),
            c("environment"),
            c("hour"),
            c("calls"),
            c("admitted"),
            c("s2xx"),
            c("s3xx"),
            c("s4xx"),
            c("s5xx"),
            c("errors"),
            c("latency"),
            c("routes"),
            c("ips"),
          ],
        );
      }
      await client.query("commit");
      counted.minutes += minutes.length;
      counted.rollups += rollups.length;
      progress(rows.length);
      rows = [];
      secs = [];
      minutes = [];
      rollups = [];
    };
    for (const { entries, seconds } of chunks) {
      // An hour's chunk is whole in one flush, so its rollup rows are complete.
      for (const e of entries) rows.push(e);
      for (const s of seconds) secs.push(s);
      for (const m of newMinutes(entries, seconds, last)) minutes.push(m);
      for (const r of rollupRows(entries, seconds)) rollups.push(r);
      if (rows.length >= 20_000) await flush();
    }
    if (rows.length > 0) await flush();
    // What autovacuum would have done by now on a live database: statistics, visibility map.
    await client.query("vacuum analyze api_key_logs");
    await client.query("vacuum analyze api_key_log_minutes");
    await client.query("vacuum analyze usage_rollups");
  } finally {
    await client.end();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [url, rows] = process.argv.slice(2);
  if (!url) {
    process.stderr.write("usage: node --import tsx bench/seed-calls.ts URL [ROWS]\n");
    process.exit(2);
  }
  const result = await seedCalls(url, {
    rows: rows === undefined ? undefined : Number(rows),
    days: process.env.SEED_DAYS === undefined ? undefined : Number(process.env.SEED_DAYS),
    keys: process.env.SEED_KEYS === undefined ? undefined : Number(process.env.SEED_KEYS),
    seed: process.env.SEED === undefined ? undefined : Number(process.env.SEED),
    onProgress: (n) => process.stderr.write(`seeded ${n.toLocaleString("en-US")} rows\n`),
  });
  const { calls, keyIds, ...rest } = result;
  process.stdout.write(
    `${JSON.stringify({ ...rest, keys: keyIds.map((id, i) => ({ rank: i + 1, id, calls: calls[i] })) }, null, 2)}\n`,
  );
}
