import { type Kysely, sql } from "kysely";
import type { DB } from "./schema.js";

/**
 * PostgreSQL keeps the call log (`api_key_logs`) partitioned by range of its epoch `second`,
 * one partition per UTC day (`api_key_logs_pYYYYMMDD`), plus a default partition for rows
 * outside every day made (rows without a second, clock skew, days no instance prepared).
 * Migration 0013 made the layout; this keeps it: days made ahead of time, old days dropped
 * whole by retention. SQLite has one plain table and never calls these.
 * (docs/decisions/0008-call-log-storage.md)
 */

export const DAY_SECONDS = 86_400;
/** Days made ahead of today: an instance whose hourly maintenance stalls has this long. */
export const LOG_PARTITION_DAYS_AHEAD = 3;
export const LOG_DEFAULT_PARTITION = "api_key_logs_default";

/** The UTC day (days since the epoch) that an epoch-ms instant falls in. */
export function epochDay(ms: number): number {
  return Math.floor(ms / 86_400_000);
}

/** `api_key_logs_p20261201` for the UTC day `day` (days since the epoch). */
export function logPartitionName(day: number): string {
  const date = new Date(day * 86_400_000).toISOString().slice(0, 10).replaceAll("-", "");
  return `api_key_logs_p${date}`;
}

export type LogPartition = {
  name: string;
  /** The range of `second` it holds, [from, to); both null for the default partition. */
  from: number | null;
  to: number | null;
};

/** The partitions of api_key_logs in this connection's schema, oldest first, the default last. */
export async function logPartitions(db: Kysely<DB>): Promise<LogPartition[]> {
  const { rows } = await sql<{ name: string; bound: string }>`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'api_key_logs'::regclass`.execute(db);
  const parts = rows.map((r): LogPartition => {
    const m = /FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)/.exec(r.bound);
    return m
      ? { name: r.name, from: Number(m[1]), to: Number(m[2]) }
      : { name: r.name, from: null, to: null };
  });
  return parts.sort((a, b) => (a.from ?? Infinity) - (b.from ?? Infinity));
}

/** PostgreSQL error codes a lost race to create the same table answers with. */
const DUPLICATE = new Set(["42P07", "23505"]);

/**
 * Runs `fn` in a transaction holding this schema's partition lock, so instances that maintain
 * partitions at once take turns; a lock on the table that cannot be had within 5 s fails the
 * attempt (retried by the next maintenance) instead of queueing every call-log write behind it.
 */
async function underPartitionLock<T>(
  db: Kysely<DB>,
  fn: (trx: Kysely<DB>) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`set local lock_timeout = '5s'`.execute(trx);
    await sql`select pg_advisory_xact_lock(hashtext(current_schema() || '.api_key_logs:partitions'))`.execute(
      trx,
    );
    return fn(trx);
  });
}

/**
 * Makes the day partitions for UTC days `fromDay`…`toDay` (and the default partition) that do
 * not exist yet; answers the names it made. Idempotent and safe when several instances run
 * it at once. A day whose rows already landed in the default partition (no partition for it
 * then) gets them moved into its new partition.
 */
export async function ensureLogPartitions(
  db: Kysely<DB>,
  fromDay: number,
  toDay: number,
): Promise<string[]> {
  const wanted = (existing: LogPartition[]) => {
    const have = new Set(existing.map((p) => p.name));
    const days: number[] = [];
    for (let d = fromDay; d <= toDay; d++) if (!have.has(logPartitionName(d))) days.push(d);
    return { days, needDefault: !have.has(LOG_DEFAULT_PARTITION) };
  };
  // Nothing to make, the usual case: no lock taken at all.
  const first = wanted(await logPartitions(db));
  if (first.days.length === 0 && !first.needDefault) return [];
  try {
    return await makePartitions(db, wanted);
  } catch (err) {
    // Another process made the same table between our look and our create (one not taking
    // this lock: an older Keygate, a person): it is there now, so look again once.
    if (!DUPLICATE.has((err as { code?: string }).code ?? "")) throw err;
    return makePartitions(db, wanted);
  }
}

/** Under the lock: looks again, then makes what is still missing. */
function makePartitions(
  db: Kysely<DB>,
  wanted: (existing: LogPartition[]) => { days: number[]; needDefault: boolean },
): Promise<string[]> {
  return underPartitionLock(db, async (trx) => {
    const { days, needDefault } = wanted(await logPartitions(trx));
    const made: string[] = [];
    if (needDefault) {
      await sql`create table if not exists ${sql.table(LOG_DEFAULT_PARTITION)}
        partition of api_key_logs default`.execute(trx);
      made.push(LOG_DEFAULT_PARTITION);
    }
    for (const day of days) {
      const name = logPartitionName(day);
      const from = day * DAY_SECONDS;
      const to = from + DAY_SECONDS;
      const stray = await sql<{
        one: number;
      }>`select 1 as one from ${sql.table(LOG_DEFAULT_PARTITION)}
        where second >= ${from} and second < ${to} limit 1`.execute(trx);
      if (stray.rows.length === 0) {
        await sql`create table if not exists ${sql.table(name)} partition of api_key_logs
          for values from (${sql.lit(from)}) to (${sql.lit(to)})`.execute(trx);
      } else {
        // A new range may not overlap rows the default partition holds: take them out first.
        await sql`create table ${sql.table(name)}
          (like api_key_logs including defaults including constraints)`.execute(trx);
        await sql`with moved as (
            delete from ${sql.table(LOG_DEFAULT_PARTITION)}
            where second >= ${from} and second < ${to} returning *)
          insert into ${sql.table(name)} select * from moved`.execute(trx);
        await sql`alter table api_key_logs attach partition ${sql.table(name)}
          for values from (${sql.lit(from)}) to (${sql.lit(to)})`.execute(trx);
      }
      made.push(name);
    }
    return made;
  });
}

/** Today's partition and those of the next few days, as of epoch-ms `nowMs`. */
export function ensureLogPartitionsAhead(db: Kysely<DB>, nowMs: number): Promise<string[]> {
  const today = epochDay(nowMs);
  return ensureLogPartitions(db, today, today + LOG_PARTITION_DAYS_AHEAD);
}

/**
 * Retention by the day: drops every day partition wholly before `cutoffSecond` (its rows all
 * have an earlier second) and answers how many rows went with them. What is left before the
 * cutoff — in the cutoff's own day and in the default partition — is the caller's DELETE.
 */
export async function dropLogPartitionsBefore(
  db: Kysely<DB>,
  cutoffSecond: number,
): Promise<number> {
  const old = (parts: LogPartition[]) =>
    parts.filter((p) => p.to !== null && p.to <= cutoffSecond && p.name !== LOG_DEFAULT_PARTITION);
  if (old(await logPartitions(db)).length === 0) return 0;
  return underPartitionLock(db, async (trx) => {
    let rows = 0;
    for (const p of old(await logPartitions(trx))) {
      const n = await sql<{ n: number }>`select count(*) as n from ${sql.table(p.name)}`.execute(
        trx,
      );
      rows += Number(n.rows[0]?.n ?? 0);
      await sql`drop table ${sql.table(p.name)}`.execute(trx);
    }
    return rows;
  });
}
