import { type Kysely, sql, type Transaction } from "kysely";
import type { Environment } from "../keys/format.js";
import type { Database } from "../store/database.js";
import type { DB } from "../store/schema.js";
import type { EventType } from "./catalogue.js";
import { emitEvent } from "./outbox.js";

/**
 * The events of time passing: expiry reminders. One tick a minute, run by one instance of
 * the cluster at a time (a PostgreSQL advisory lock held by the tick's transaction; SQLite
 * has one process). Everything a tick decides — the events and the marks that say they were
 * sent — commits together, so a crash mid-tick repeats the tick rather than losing or
 * doubling an event.
 *
 * - `key.expiring`: 7 days and again 1 day before `expires_at` (only the nearer one when a
 *   key is first seen inside both); `key.expired` once it has passed. Per key and expiry:
 *   a key given a new `expires_at` is reminded anew.
 *
 * The call log's events (`key.new_ip`, `key.refusals_spike`) are read off the log as its
 * writer stores it, by `CallSignals` (signals.ts), with the thresholds below.
 */
/** `key.refusals_spike`: this many refused calls (401, 403, 429) of a key in one window… */
export const SPIKE_REFUSALS = 50;
/** …of this many seconds, aligned to the clock (UTC); at most one spike per key and hour. */
export const SPIKE_WINDOW_S = 300;
/** `key.new_ip`: a successful call from an address the key has not used in this many days. */
export const NEW_IP_AFTER_DAYS = 30;
const DAY_MS = 86_400_000;
/** Any constant of our own: the advisory lock that makes one instance the scheduler. */
const LOCK_ID = 0x6b67_7363; // "kgsc"

export type TickReport = { expiring: number; expired: number };

export type SchedulerOptions = {
  database: Database;
  now: () => Date;
  intervalMs?: number;
  warn: (msg: string) => void;
  /** Told of what a tick found (alerts and metrics hook in here), after it committed. */
  onEvents?: (events: ScheduledEvent[]) => void;
};

/** One event a tick emitted, as the outbox has it. */
export type ScheduledEvent = {
  type: EventType;
  environment: Environment;
  ownerId: number;
  data: Record<string, unknown>;
};

export type KeyRow = {
  id: number;
  name: string;
  key_prefix: string;
  environment: Environment;
  owner_id: number;
  expires_at: string | null;
};

export class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly o: SchedulerOptions) {}

  /** Ticks every interval (the first soon after start), until `stop`. */
  start(): void {
    if (this.timer) return;
    const every = this.o.intervalMs ?? 60_000;
    const run = () => {
      this.running ??= this.tick()
        .catch((err: unknown) => this.o.warn(`scheduler tick failed: ${(err as Error).message}`))
        .finally(() => {
          this.running = null;
        });
    };
    this.timer = setInterval(run, every);
    this.timer.unref();
    setTimeout(run, Math.min(every, 5_000)).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One tick; null when another instance holds the scheduler's lock. */
  async tick(): Promise<TickReport | null> {
    const { db, dialect } = this.o.database;
    const emitted: ScheduledEvent[] = [];
    const report = await db.transaction().execute(async (trx) => {
      if (dialect === "postgres") {
        const got = await sql<{
          ok: boolean;
        }>`select pg_try_advisory_xact_lock(${LOCK_ID}) as ok`.execute(trx);
        if (got.rows[0]?.ok !== true) return null;
      }
      const now = this.o.now();
      const r: TickReport = { expiring: 0, expired: 0 };
      const emit = keyEventEmitter(trx, now.toISOString(), emitted);
      await this.expiries(trx, now, r, emit);
      return r;
    });
    if (report !== null && emitted.length > 0) this.o.onEvents?.(emitted);
    return report;
  }

  private async expiries(
    trx: Transaction<DB>,
    now: Date,
    r: TickReport,
    emit: (type: EventType, key: KeyRow, extra: Record<string, unknown>) => Promise<void>,
  ): Promise<void> {
    const horizon = new Date(now.getTime() + 7 * DAY_MS + 60_000).toISOString();
    const keys = await trx
      .selectFrom("api_keys as k")
      .select(["k.id", "k.name", "k.key_prefix", "k.environment", "k.owner_id", "k.expires_at"])
      .where("k.revoked_at", "is", null)
      .where("k.expires_at", "is not", null)
      // A rolled key's end is the roll's grace period, already announced by key.rolled.
      .where("k.replaced_by_id", "is", null)
      .where("k.expires_at", "<=", horizon)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom("event_marks as m")
              .select("m.api_key_id")
              .whereRef("m.api_key_id", "=", "k.id")
              .where("m.kind", "=", "expired")
              .whereRef("m.mark", "=", "k.expires_at"),
          ),
        ),
      )
      .orderBy("k.id")
      .limit(1_000)
      .execute();
    if (keys.length === 0) return;
    const marks = await trx
      .selectFrom("event_marks")
      .select(["api_key_id", "kind", "mark"])
      .where(
        "api_key_id",
        "in",
        keys.map((k) => k.id),
      )
      .where("kind", "in", ["expiring_7d", "expiring_1d"])
      .execute();
    const marked = new Set(marks.map((m) => `${m.api_key_id}|${m.kind}|${m.mark}`));
    const at = now.toISOString();
    for (const key of keys) {
      const expiresAt = key.expires_at as string;
      const left = Date.parse(expiresAt) - now.getTime();
      const has = (kind: string) => marked.has(`${key.id}|${kind}|${expiresAt}`);
      // The nearest reminder due; the farther ones are marked with it, never sent late.
      const due: string[] =
        left <= 0
          ? ["expired", "expiring_1d", "expiring_7d"]
          : left <= DAY_MS
            ? ["expiring_1d", "expiring_7d"]
            : ["expiring_7d"];
      const [first] = due;
      if (first !== "expired" && has(first as string)) continue;
      const days = first === "expiring_1d" ? 1 : 7;
      if (first === "expired") {
        await emit("key.expired", key, { expired_at: expiresAt });
        r.expired++;
      } else {
        await emit("key.expiring", key, {
          days_left: days,
          seconds_left: Math.floor(left / 1000),
        });
        r.expiring++;
      }
      const rows = due
        .filter((kind) => kind === first || !has(kind))
        .map((kind) => ({ api_key_id: key.id, kind, mark: expiresAt, created_at: at }));
      await trx
        .insertInto("event_marks")
        .values(rows)
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  }
}

/** A key as the scheduler's events describe it: the same identifying fields as key.* events. */
export function keyData(k: KeyRow): Record<string, unknown> {
  return {
    id: k.id,
    name: k.name,
    key_prefix: k.key_prefix,
    environment: k.environment,
    owner_id: k.owner_id,
    expires_at: k.expires_at,
  };
}

/**
 * Writes a key's event to the outbox in `trx` (its data: the key's identifying fields and
 * `extra`), and keeps it in `emitted` for whoever is told after the commit.
 */
export function keyEventEmitter(trx: Kysely<DB>, at: string, emitted: ScheduledEvent[]) {
  return async (type: EventType, key: KeyRow, extra: Record<string, unknown>): Promise<void> => {
    const e: ScheduledEvent = {
      type,
      environment: key.environment,
      ownerId: key.owner_id,
      data: { ...keyData(key), ...extra },
    };
    await emitEvent(trx, e, at);
    emitted.push(e);
  };
}
