import type { KeyRecord } from "../keys/verify.js";
import type { QuotaWindow } from "../keys/quota.js";
import type { QuotaDecision } from "../ratelimit/limiter.js";
import type { Database } from "../store/database.js";
import { keyEventEmitter, type KeyRow, type ScheduledEvent } from "./scheduler.js";

/** The shares of a quota that send `key.quota_low`: 80 % (rounded up to a call) and all of it. */
export const QUOTA_THRESHOLDS = [80, 100] as const;
type Threshold = (typeof QUOTA_THRESHOLDS)[number];

/** Marks this process already handed on; past this many the memory starts over (marks dedupe). */
const MAX_DONE = 100_000;

type Pending = { key: KeyRecord; window: QuotaWindow; used: number; threshold: Threshold };

export type QuotaEventsOptions = {
  database: Pick<Database, "db">;
  now: () => Date;
  warn: (msg: string) => void;
  /** Told of the events written, after their commit. */
  onEvents?: (events: ScheduledEvent[]) => void;
};

/**
 * `key.quota_low`, once a key's quota for a period reaches 80 % and again at 100 %. The
 * verifier tells it after deciding a call (`observe` only queues); the events are written
 * on the next turn of the event loop, each with its mark in `event_marks` (the roll chain's
 * first key, threshold, period start) in one transaction, so that of several instances — or of a process asked
 * again after a restart — exactly one sends each.
 */
export class QuotaEvents {
  private pending = new Map<string, Pending>();
  private readonly done = new Set<string>();
  private scheduled = false;
  private running: Promise<void> | null = null;

  constructor(private readonly o: QuotaEventsOptions) {}

  /** The verifier's hook (`quotaLow`): the quota stands at or past 80 %. Never blocks. */
  observe(key: KeyRecord, window: QuotaWindow, quota: QuotaDecision): void {
    const reached: Threshold = quota.used >= window.limit ? 100 : 80;
    if (window.warned >= reached) return;
    window.warned = reached;
    for (const threshold of QUOTA_THRESHOLDS) {
      if (threshold > reached) break;
      const id = `${window.rootId}|${window.startMs}|${threshold}`;
      if (this.done.has(id)) continue;
      if (this.done.size >= MAX_DONE) this.done.clear();
      this.done.add(id);
      this.pending.set(id, { key, window, used: quota.used, threshold });
    }
    if (this.pending.size > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.flush();
      });
    }
  }

  /** Writes what is pending; waits for a write under way first. */
  async flush(): Promise<void> {
    while (this.running !== null) await this.running;
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    this.running = this.write(batch).finally(() => {
      this.running = null;
    });
    await this.running;
  }

  private async write(batch: Map<string, Pending>): Promise<void> {
    const emitted: ScheduledEvent[] = [];
    const at = this.o.now().toISOString();
    try {
      await this.o.database.db.transaction().execute(async (trx) => {
        const emit = keyEventEmitter(trx, at, emitted);
        for (const p of batch.values()) {
          const start = new Date(p.window.startMs).toISOString();
          const fresh = await trx
            .insertInto("event_marks")
            .values({
              // The roll chain's first key: old and new key of a roll share one quota.
              api_key_id: p.window.rootId,
              kind: `quota_${p.threshold}`,
              mark: start,
              created_at: at,
            })
            .onConflict((oc) => oc.doNothing())
            .executeTakeFirst();
          if (Number(fresh.numInsertedOrUpdatedRows ?? 0) === 0) continue;
          await emit("key.quota_low", keyRow(p.key), {
            threshold_percent: p.threshold,
            quota: {
              limit: p.window.limit,
              period: p.window.period,
              refill_day: p.key.quota?.refillDay ?? null,
            },
            used: Math.min(p.used, p.window.limit),
            remaining: Math.max(0, p.window.limit - p.used),
            period_start: start,
            resets_at: new Date(p.window.endMs).toISOString(),
          });
        }
      });
    } catch (err) {
      // Nothing was written: the next call past the threshold asks again.
      for (const [id, p] of batch) {
        this.done.delete(id);
        p.window.warned = 0;
      }
      this.o.warn(`key.quota_low events not written: ${(err as Error).message}`);
      return;
    }
    if (emitted.length > 0) this.o.onEvents?.(emitted);
  }

  async stop(): Promise<void> {
    await this.flush();
  }
}

function keyRow(k: KeyRecord): KeyRow {
  return {
    id: k.id,
    name: k.name,
    key_prefix: k.prefix,
    environment: k.environment,
    owner_id: k.ownerId,
    expires_at: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
  };
}
