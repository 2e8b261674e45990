import type { Alerts } from "../alerts/service.js";
import type { CallLogEntry } from "../calllog/writer.js";
import type { Database } from "../store/database.js";
import {
  type KeyRow,
  keyEventEmitter,
  NEW_IP_AFTER_DAYS,
  type ScheduledEvent,
  SPIKE_REFUSALS,
  SPIKE_WINDOW_S,
} from "./scheduler.js";

const DAY_MS = 86_400_000;
/** How long an address a key was just seen from is taken as known, without asking the database. */
const KNOWN_FOR_MS = 3_600_000;
/** Most addresses remembered as known; past it the memory starts over (the database still knows). */
const MAX_KNOWN = 100_000;
/** Most pending addresses or refusal windows between two flushes; past it the oldest wait. */
const MAX_PENDING = 50_000;

export type SignalsReport = { newIps: number; spikes: number };

export type CallSignalsOptions = {
  database: Database;
  now: () => Date;
  warn: (msg: string) => void;
  flushEveryMs?: number;
  onEvents?: (events: ScheduledEvent[]) => void;
};

/**
 * `key.new_ip` and `key.refusals_spike`, read off the call log as its writer stores each
 * batch — never from the request, and never by reading the log again. A batch costs a map
 * look-up per row: an address a key was seen from in the last hour is known here and
 * skipped. Every few seconds what is pending goes to the database in one transaction, with
 * the events it makes; the decisions are single statements (an insert that may find the
 * address there, an update that compares the last sighting, a counter that says what it
 * was), so several instances flushing at once announce each address and spike once.
 */
export class CallSignals {
  /** Successful calls per key and address since the last flush: the first and last seen. */
  private used = new Map<string, { key: number; ip: string; first: string; last: string }>();
  /** Refused calls per key and 5-minute window since the last flush. */
  private refused = new Map<string, { key: number; bucket: number; n: number }>();
  /** Key and address pairs known to the database, until when (ms). */
  private known = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(private readonly o: CallSignalsOptions) {}

  /** The writer's hook: each stored batch of call-log rows. */
  observe(batch: readonly CallLogEntry[]): void {
    const now = Date.now();
    for (let i = 0; i < batch.length; i++) {
      const row = batch[i] as CallLogEntry;
      const key = row.apiKeyId;
      if (key === null) continue;
      const status = row.statusCode;
      if (status < 400) {
        const k = `${key}|${row.ip}`;
        const until = this.known.get(k);
        if (until !== undefined && until > now) continue;
        const seen = this.used.get(k);
        if (seen === undefined) {
          if (this.used.size < MAX_PENDING)
            this.used.set(k, { key, ip: row.ip, first: row.timestamp, last: row.timestamp });
        } else if (row.timestamp > seen.last) seen.last = row.timestamp;
      } else if (status === 401 || status === 403 || status === 429) {
        const bucket = Math.floor(Date.parse(row.timestamp) / 1000 / SPIKE_WINDOW_S);
        const k = `${key}|${bucket}`;
        const w = this.refused.get(k);
        if (w !== undefined) w.n++;
        else if (this.refused.size < MAX_PENDING) this.refused.set(k, { key, bucket, n: 1 });
      }
    }
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.running ??= this.flush()
        .catch((err: unknown) =>
          this.o.warn(`new-address and spike events not written: ${(err as Error).message}`),
        )
        .finally(() => {
          this.running = null;
        });
    }, this.o.flushEveryMs ?? 5_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    await this.flush().catch(() => {});
  }

  /** Decides what is pending, writes it with its events in one transaction. */
  async flush(): Promise<SignalsReport> {
    const report: SignalsReport = { newIps: 0, spikes: 0 };
    if (this.used.size === 0 && this.refused.size === 0) return report;
    const used = this.used;
    const refused = this.refused;
    this.used = new Map();
    this.refused = new Map();
    const emitted: ScheduledEvent[] = [];
    const now = this.o.now();
    const at = now.toISOString();
    try {
      await this.o.database.db.transaction().execute(async (trx) => {
        const ids = [...new Set([...used.values(), ...refused.values()].map((u) => u.key))];
        const keys = new Map(
          (
            await trx
              .selectFrom("api_keys")
              .select(["id", "name", "key_prefix", "environment", "owner_id", "expires_at"])
              .where("id", "in", ids)
              .execute()
          ).map((k) => [k.id, k as KeyRow]),
        );
        const emit = keyEventEmitter(trx, at, emitted);

        for (const u of used.values()) {
          const key = keys.get(u.key);
          if (key === undefined) continue;
          const inserted = await trx
            .insertInto("api_key_ips")
            .values({ api_key_id: u.key, ip: u.ip, last_seen_at: u.last })
            .onConflict((oc) => oc.doNothing())
            .executeTakeFirst();
          if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) {
            await emit("key.new_ip", key, {
              ip: u.ip,
              first_call_at: u.first,
              previously_seen_at: null,
            });
            report.newIps++;
            continue;
          }
          const prior = await trx
            .selectFrom("api_key_ips")
            .select("last_seen_at")
            .where("api_key_id", "=", u.key)
            .where("ip", "=", u.ip)
            .executeTakeFirst();
          const before = prior?.last_seen_at;
          if (before === undefined || before >= u.last) continue;
          // Compare and set: of instances flushing at once, one moves the sighting on.
          const moved = await trx
            .updateTable("api_key_ips")
            .set({ last_seen_at: u.last })
            .where("api_key_id", "=", u.key)
            .where("ip", "=", u.ip)
            .where("last_seen_at", "=", before)
            .executeTakeFirst();
          const stale = Date.parse(u.first) - Date.parse(before) > NEW_IP_AFTER_DAYS * DAY_MS;
          if (Number(moved.numUpdatedRows) === 1 && stale) {
            await emit("key.new_ip", key, {
              ip: u.ip,
              first_call_at: u.first,
              previously_seen_at: before,
            });
            report.newIps++;
          }
        }

        for (const w of refused.values()) {
          const key = keys.get(w.key);
          if (key === undefined) continue;
          // The counter says what it became; it was that minus this flush's refusals.
          const row = await trx
            .insertInto("refusal_windows")
            .values({ api_key_id: w.key, bucket: w.bucket, refusals: w.n })
            .onConflict((oc) =>
              oc
                .columns(["api_key_id", "bucket"])
                .doUpdateSet((eb) => ({ refusals: eb("refusal_windows.refusals", "+", w.n) })),
            )
            .returning("refusals")
            .executeTakeFirstOrThrow();
          const total = Number(row.refusals);
          if (total - w.n >= SPIKE_REFUSALS || total < SPIKE_REFUSALS) continue;
          // At most one spike a key and hour, however many windows cross the line in it.
          const hour = new Date(
            Math.floor((w.bucket * SPIKE_WINDOW_S) / 3600) * 3_600_000,
          ).toISOString();
          const fresh = await trx
            .insertInto("event_marks")
            .values({ api_key_id: w.key, kind: "refusals_spike", mark: hour, created_at: at })
            .onConflict((oc) => oc.doNothing())
            .executeTakeFirst();
          if (Number(fresh.numInsertedOrUpdatedRows ?? 0) === 0) continue;
          await emit("key.refusals_spike", key, {
            refusals: total,
            window_s: SPIKE_WINDOW_S,
            window_start: new Date(w.bucket * SPIKE_WINDOW_S * 1000).toISOString(),
            threshold: SPIKE_REFUSALS,
          });
          report.spikes++;
        }
        // Windows older than a day can no longer spike.
        const oldest = Math.floor(now.getTime() / 1000 / SPIKE_WINDOW_S) - 288;
        await trx.deleteFrom("refusal_windows").where("bucket", "<", oldest).execute();
      });
    } catch (err) {
      // Nothing was written: what was pending waits for the next flush.
      for (const [k, u] of used) if (!this.used.has(k)) this.used.set(k, u);
      for (const [k, w] of refused) {
        const mine = this.refused.get(k);
        if (mine) mine.n += w.n;
        else this.refused.set(k, w);
      }
      throw err;
    }
    // Known now, for an hour: their next calls cost a map look-up.
    if (this.known.size > MAX_KNOWN) this.known.clear();
    const until = Date.now() + KNOWN_FOR_MS;
    for (const k of used.keys()) this.known.set(k, until);
    if (emitted.length > 0) this.o.onEvents?.(emitted);
    return report;
  }
}

/**
 * The console's alerts of new addresses and spikes: a new address (info) and a refusal spike
 * (warning), each naming its key.
 */
export async function raiseSignalAlerts(alerts: Alerts, events: ScheduledEvent[]): Promise<void> {
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
