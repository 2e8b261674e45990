import { type Kysely, sql, type Transaction } from "kysely";
import type { Environment } from "../keys/format.js";
import type { Alerts } from "../alerts/service.js";
import type { Database } from "../store/database.js";
import type { DB } from "../store/schema.js";
import type { EventType } from "./catalogue.js";
import { emitEvent } from "./outbox.js";

/**
 * The events nobody's request makes: expiry reminders, new addresses, refusal spikes. One
 * tick a minute, run by one instance of the cluster at a time (a PostgreSQL advisory lock
 * held by the tick's transaction; SQLite has one process). Everything a tick decides —
 * the events and the marks that say they were sent — commits together, so a crash
 * mid-tick repeats the tick rather than losing or doubling an event.
 *
 * - `key.expiring`: 7 days and again 1 day before `expires_at` (only the nearer one when a
 *   key is first seen inside both); `key.expired` once it has passed. Per key and expiry:
 *   a key given a new `expires_at` is reminded anew.
 * - `key.new_ip`: a successful call from an address the key has not been used from in the
 *   previous 30 days (its very first address included), read from the call log.
 * - `key.refusals_spike`: `SPIKE_REFUSALS` refused calls (401, 403, 429) of one key within
 *   one 5-minute window (UTC-aligned), at most once per key and hour.
 */
export const SPIKE_REFUSALS = 50;
export const SPIKE_WINDOW_S = 300;
export const NEW_IP_AFTER_DAYS = 30;
const DAY_MS = 86_400_000;
/** Call-log rows a tick reads at most (grouped); a busier minute is caught up over the next ticks. */
const LOG_SPAN = 1_000_000;
/** Any constant of our own: the advisory lock that makes one instance the scheduler. */
const LOCK_ID = 0x6b67_7363; // "kgsc"
const CURSOR = "scheduler_call_log_cursor";

export type TickReport = {
  expiring: number;
  expired: number;
  newIps: number;
  spikes: number;
  /** Call-log rows read. */
  rows: number;
};

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

type KeyRow = {
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
      const r: TickReport = { expiring: 0, expired: 0, newIps: 0, spikes: 0, rows: 0 };
      const emit = async (type: EventType, key: KeyRow, extra: Record<string, unknown>) => {
        const e: ScheduledEvent = {
          type,
          environment: key.environment,
          ownerId: key.owner_id,
          data: { ...keyData(key), ...extra },
        };
        await emitEvent(trx as unknown as Kysely<DB>, e, now.toISOString());
        emitted.push(e);
      };
      await this.expiries(trx, now, r, emit);
      await this.callLog(trx, now, r, emit);
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

  /** New addresses and refusal spikes, from the call-log rows written since the last tick. */
  private async callLog(
    trx: Transaction<DB>,
    now: Date,
    r: TickReport,
    emit: (type: EventType, key: KeyRow, extra: Record<string, unknown>) => Promise<void>,
  ): Promise<void> {
    const stored = await trx
      .selectFrom("settings")
      .select("value")
      .where("name", "=", CURSOR)
      .executeTakeFirst();
    let cursor: number;
    if (stored === undefined) {
      // First tick ever: start from now, rather than announcing the whole history.
      const top = await trx
        .selectFrom("api_key_logs")
        .select((eb) => eb.fn.max("id").as("id"))
        .executeTakeFirst();
      cursor = Number(top?.id ?? 0);
      await trx
        .insertInto("settings")
        .values({ name: CURSOR, value: String(cursor) })
        .execute();
    } else cursor = Number(stored.value);

    // The rows written since the last tick (up to LOG_SPAN of them), read grouped: per key and
    // address, and per key and 5-minute window — small answers however busy the minute was.
    const top = await trx
      .selectFrom("api_key_logs")
      .select((eb) => eb.fn.max("id").as("id"))
      .executeTakeFirst();
    const last = Math.min(Number(top?.id ?? 0), cursor + LOG_SPAN);
    if (last <= cursor) return;
    const span = trx
      .selectFrom("api_key_logs")
      .where("id", ">", cursor)
      .where("id", "<=", last)
      .where("api_key_id", "is not", null);
    const used = await span
      .where("status_code", "<", 400)
      .select((eb) => [
        "api_key_id",
        "ip",
        eb.fn.min("timestamp").as("first"),
        eb.fn.max("timestamp").as("last"),
      ])
      .groupBy(["api_key_id", "ip"])
      .execute();
    const bucket = sql<number>`cast(second / ${sql.lit(SPIKE_WINDOW_S)} as integer)`;
    const refusals = await span
      .where("status_code", "in", [401, 403, 429])
      .where("second", "is not", null)
      .select((eb) => ["api_key_id", bucket.as("bucket"), eb.fn.countAll().as("n")])
      .groupBy(["api_key_id", bucket])
      .execute();
    r.rows = last - cursor;

    /** The earliest and latest successful call per key and address in the span. */
    const seen = new Map<string, { key: number; ip: string; first: string; at: string }>();
    for (const u of used) {
      const key = u.api_key_id as number;
      seen.set(`${key}|${u.ip}`, {
        key,
        ip: u.ip,
        first: String(u.first),
        at: String(u.last),
      });
    }
    const refused = new Map<string, { key: number; bucket: number; n: number }>();
    for (const w of refusals) {
      const key = w.api_key_id as number;
      refused.set(`${key}|${w.bucket}`, { key, bucket: Number(w.bucket), n: Number(w.n) });
    }
    const keyIds = [
      ...new Set([
        ...[...seen.values()].map((s) => s.key),
        ...[...refused.values()].map((s) => s.key),
      ]),
    ];
    const keys = new Map(
      (
        await trx
          .selectFrom("api_keys")
          .select(["id", "name", "key_prefix", "environment", "owner_id", "expires_at"])
          .where("id", "in", keyIds)
          .execute()
      ).map((k) => [k.id, k]),
    );

    if (seen.size > 0) {
      const known = await trx
        .selectFrom("api_key_ips")
        .select(["api_key_id", "ip", "last_seen_at"])
        .where(
          "api_key_id",
          "in",
          [...seen.values()].map((s) => s.key),
        )
        .execute();
      const lastSeen = new Map(known.map((k) => [`${k.api_key_id}|${k.ip}`, k.last_seen_at]));
      for (const [k, s] of seen) {
        const before = lastSeen.get(k);
        const stale =
          before === undefined ||
          Date.parse(s.first) - Date.parse(before) > NEW_IP_AFTER_DAYS * DAY_MS;
        const key = keys.get(s.key);
        if (stale && key !== undefined) {
          await emit("key.new_ip", key, {
            ip: s.ip,
            first_call_at: s.first,
            previously_seen_at: before ?? null,
          });
          r.newIps++;
        }
        if (before === undefined || before < s.at) {
          await trx
            .insertInto("api_key_ips")
            .values({ api_key_id: s.key, ip: s.ip, last_seen_at: s.at })
            .onConflict((oc) =>
              oc.columns(["api_key_id", "ip"]).doUpdateSet({ last_seen_at: s.at }),
            )
            .execute();
        }
      }
    }

    for (const w of refused.values()) {
      const prior = await trx
        .selectFrom("refusal_windows")
        .select("refusals")
        .where("api_key_id", "=", w.key)
        .where("bucket", "=", w.bucket)
        .executeTakeFirst();
      const before = prior?.refusals ?? 0;
      const total = before + w.n;
      await trx
        .insertInto("refusal_windows")
        .values({ api_key_id: w.key, bucket: w.bucket, refusals: total })
        .onConflict((oc) => oc.columns(["api_key_id", "bucket"]).doUpdateSet({ refusals: total }))
        .execute();
      const key = keys.get(w.key);
      if (before >= SPIKE_REFUSALS || total < SPIKE_REFUSALS || key === undefined) continue;
      // At most one spike a key and hour, however many windows cross the line in it.
      const hour = new Date(
        Math.floor((w.bucket * SPIKE_WINDOW_S) / 3600) * 3600_000,
      ).toISOString();
      const fresh = await trx
        .insertInto("event_marks")
        .values({
          api_key_id: w.key,
          kind: "refusals_spike",
          mark: hour,
          created_at: now.toISOString(),
        })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(fresh.numInsertedOrUpdatedRows ?? 0) === 0) continue;
      await emit("key.refusals_spike", key, {
        refusals: total,
        window_s: SPIKE_WINDOW_S,
        window_start: new Date(w.bucket * SPIKE_WINDOW_S * 1000).toISOString(),
        threshold: SPIKE_REFUSALS,
      });
      r.spikes++;
    }

    // Windows older than a day can no longer spike; the cursor moves past this batch.
    const oldest = Math.floor(now.getTime() / 1000 / SPIKE_WINDOW_S) - 288;
    await trx.deleteFrom("refusal_windows").where("bucket", "<", oldest).execute();
    await trx
      .updateTable("settings")
      .set({ value: String(last) })
      .where("name", "=", CURSOR)
      .execute();
  }
}

/** A key as the scheduler's events describe it: the same identifying fields as key.* events. */
function keyData(k: KeyRow): Record<string, unknown> {
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
 * The console's alerts of a tick's events: a new address (info) and a refusal spike
 * (warning), each naming its key. Expiry needs none here: the alerts list computes keys
 * expiring within 7 days itself.
 */
export async function raiseScheduledAlerts(
  alerts: Alerts,
  events: ScheduledEvent[],
): Promise<void> {
  for (const e of events) {
    const d = e.data as Record<string, unknown> & { id: number; name: string; key_prefix: string };
    const named = `Key "${d.name}" (${d.key_prefix}…)`;
    if (e.type === "key.new_ip") {
      await alerts.raise({
        kind: "key.new_ip",
        severity: "info",
        title: "Key used from a new address",
        message: `${named} was used from ${String(d.ip)}, an address it had not used in ${NEW_IP_AFTER_DAYS} days; if that is not one of yours, revoke or roll it`,
        target: { type: "api_key", id: d.id },
        ownerId: e.ownerId,
        environment: e.environment,
        details: { ip: d.ip, first_call_at: d.first_call_at },
      });
    } else if (e.type === "key.refusals_spike") {
      await alerts.raise({
        kind: "key.refusals_spike",
        severity: "warning",
        title: "Refusals spiking",
        message: `${named} was refused ${String(d.refusals)} times within ${SPIKE_WINDOW_S / 60} minutes from ${String(d.window_start)}: a misconfigured client, or someone trying it; its call log says which`,
        target: { type: "api_key", id: d.id },
        ownerId: e.ownerId,
        environment: e.environment,
        details: { refusals: d.refusals, window_start: d.window_start },
      });
    }
  }
}
