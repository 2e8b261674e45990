export type CallLogEntry = {
  apiKeyId: number | null;
  timestamp: string;
  method: string;
  path: string;
  statusCode: number;
  ip: string;
  latencyMs: number;
  userAgent: string | null;
  errorCode: string | null;
  /** The X-Request-Id the answer carried. */
  requestId: string | null;
  /** The exact error message answered, for a refusal or error; null on success. */
  message: string | null;
  /** The key's environment, or the one a key-shaped value names; `live` when neither says. */
  environment?: "live" | "test";
  /** How the call authenticated; `key` when not said. */
  credential?: "key" | "signature" | "token";
  /**
   * The route pattern that answered (`/api/v1/external/subscribers/:id`), "(unmatched)" when
   * none did; usage rollups count calls by method and this, else by `path`. Not stored in the log.
   */
  route?: string;
};

export type LastUse = { at: string; ip: string };
/** A call the key checks refused: when, from where, and their error code. */
export type LastRefusal = LastUse & { code: string };

/**
 * The error codes of the checks that refuse a known key (and of the role check a route makes
 * for the key's owner). A call answered with one is an attempt, recorded as the key's last
 * refusal; any other call with a key — 2xx, 3xx, or an error the route itself answered, such
 * as a 404 or a 400 — used the key, and is its last use.
 */
export const KEY_REFUSALS: ReadonlySet<string> = new Set([
  "API_KEY_REVOKED",
  "API_KEY_EXPIRED",
  "INVALID_USER",
  "IP_NOT_ALLOWED",
  "RATE_LIMIT_EXCEEDED",
  "QUOTA_EXCEEDED",
  "SCOPE_REQUIRED",
  "FORBIDDEN",
]);

/**
 * Every code Keygate's own key checks answer before a route runs. A call with a key whose
 * code is none of these was admitted: it is what a quota spends and what usage rollups count
 * as `admitted`, whatever the route then answered.
 */
export const ADMISSION_REFUSALS: ReadonlySet<string> = new Set([
  "MISSING_API_KEY",
  "INVALID_API_KEY",
  ...KEY_REFUSALS,
  "SIGNATURE_REQUIRED",
  "SIGNATURE_INVALID",
  "SIGNATURE_EXPIRED",
  "SIGNATURE_REPLAYED",
  "INVALID_TOKEN",
  "TOKEN_EXPIRED",
]);

/** Whether a logged call passed every key check (see ADMISSION_REFUSALS). */
export function admitted(entry: Pick<CallLogEntry, "apiKeyId" | "errorCode">): boolean {
  return (
    entry.apiKeyId !== null &&
    (entry.errorCode === null || !ADMISSION_REFUSALS.has(entry.errorCode))
  );
}

/** What of a sink's deferred work a batch takes along (see CallLogSink.writeBatch). */
export type Settle = boolean | "some";

export interface CallLogSink {
  /**
   * Writes the rows, last-use and last-refusal times in one transaction. `settle` says what a
   * sink keeps aside between batches (usage rollups) is written with this one: all of it
   * (`true`: a flush, a stop), a bounded part (`"some"`: every `settleEveryMs`, and while the
   * sink reports a backlog), or none (`false`).
   */
  writeBatch(
    entries: CallLogEntry[],
    lastUsed: Map<number, LastUse>,
    lastRefused?: Map<number, LastRefusal>,
    settle?: Settle,
  ): Promise<void>;
  /** Whether the sink holds anything aside (nothing to settle otherwise). */
  hasDeferred?(): boolean;
  /** Whether a settling cycle is under way in the sink (then every tick settles a part). */
  hasBacklog?(): boolean;
}

export type CallLogOptions = {
  sink: CallLogSink;
  /** Most rows held in memory while the database is slow or away; past it, the oldest go. */
  maxQueue?: number;
  batchSize?: number;
  flushEveryMs?: number;
  /** How often last-use (and last-refusal) times are written when nothing asks for them (default 10 s). */
  lastUseEveryMs?: number;
  /** How often the sink's deferred work (usage rollups) is settled when nothing asks (default 60 s). */
  settleEveryMs?: number;
  onError?: (err: unknown) => void;
  onDrop?: (count: number) => void;
  /** Each batch once it is stored: what reads the log as it is written (new addresses, spikes). */
  onWritten?: (batch: readonly CallLogEntry[]) => void;
};

/**
 * Takes call-log rows off the request path. Rows are queued in memory and written in
 * batches, one transaction each; last-use times ride along, so a request costs no write.
 */
export class CallLogWriter {
  private queue: CallLogEntry[] = [];
  private lastUsed = new Map<number, LastUse>();
  private lastRefused = new Map<number, LastRefusal>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private scheduled = false;
  private failing = false;
  private lastUseWrittenAt = Date.now();
  private settledAt = Date.now();
  readonly counts = { written: 0, dropped: 0 };
  private readonly maxQueue: number;
  private readonly batchSize: number;
  private readonly lastUseEveryMs: number;
  private readonly settleEveryMs: number;

  constructor(private readonly o: CallLogOptions) {
    this.maxQueue = o.maxQueue ?? 100_000;
    this.batchSize = o.batchSize ?? 2000;
    this.lastUseEveryMs = o.lastUseEveryMs ?? 10_000;
    this.settleEveryMs = o.settleEveryMs ?? 60_000;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.background(), this.o.flushEveryMs ?? 250);
    this.timer.unref();
  }

  push(entry: CallLogEntry): void {
    this.queue.push(entry);
    if (entry.apiKeyId !== null) {
      const code = entry.errorCode;
      if (code !== null && KEY_REFUSALS.has(code))
        this.lastRefused.set(entry.apiKeyId, { at: entry.timestamp, ip: entry.ip, code });
      else this.lastUsed.set(entry.apiKeyId, { at: entry.timestamp, ip: entry.ip });
    }
    this.bound();
    // A full batch is written soon, but never inside the request that filled it.
    if (this.queue.length >= this.batchSize && !this.running && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.background();
      });
    }
  }

  /** Rows as they come; last-use times only every `lastUseEveryMs` (reads flush them first). */
  private background(): void {
    const now = Date.now();
    const lastUseDue = now - this.lastUseWrittenAt >= this.lastUseEveryMs;
    const settleDue =
      this.deferred() &&
      (now - this.settledAt >= this.settleEveryMs || (this.o.sink.hasBacklog?.() ?? false));
    if (this.queue.length === 0 && !(lastUseDue && this.touched) && !settleDue) return;
    this.write(lastUseDue, settleDue ? "some" : false).catch(() => {});
  }

  /** Keeps the queue within maxQueue by dropping the oldest rows, counted and reported. */
  private bound(): void {
    if (this.queue.length <= this.maxQueue) return;
    const over = this.queue.length - this.maxQueue;
    this.queue.splice(0, over);
    this.counts.dropped += over;
    this.o.onDrop?.(over);
  }

  /** Whether last-use or last-refusal times wait to be written. */
  private get touched(): boolean {
    return this.lastUsed.size > 0 || this.lastRefused.size > 0;
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Most rows held in memory (`maxQueue`). */
  get capacity(): number {
    return this.maxQueue;
  }

  /** Writes everything queued so far, last-use times too; resolves once it is stored (or rejects). */
  flush(): Promise<void> {
    return this.write(true, true);
  }

  private async write(withLastUse: boolean, settle: Settle): Promise<void> {
    while (this.running) await this.running.catch(() => {});
    if (this.queue.length === 0 && (!withLastUse || !this.touched) && !this.deferred()) return;
    this.running = this.drain(withLastUse, settle);
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }

  /** Whether the sink keeps anything aside to settle. */
  private deferred(): boolean {
    return this.o.sink.hasDeferred?.() ?? false;
  }

  private async drain(withLastUse: boolean, settle: Settle): Promise<void> {
    let unsettled = settle;
    while (
      this.queue.length > 0 ||
      (withLastUse && this.touched) ||
      (unsettled !== false && this.deferred())
    ) {
      const batch = this.queue.splice(0, this.batchSize);
      // Last-use and last-refusal times, and the sink's settling, ride with the final batch.
      const final = this.queue.length === 0;
      const last = withLastUse && final;
      const settling = final ? unsettled : false;
      const lastUsed = last ? this.lastUsed : new Map<number, LastUse>();
      const lastRefused = last ? this.lastRefused : new Map<number, LastRefusal>();
      if (last) {
        this.lastUsed = new Map();
        this.lastRefused = new Map();
      }
      try {
        await this.o.sink.writeBatch(batch, lastUsed, lastRefused, settling);
        if (settling !== false) {
          unsettled = false;
          this.settledAt = Date.now();
        }
        this.counts.written += batch.length;
        this.o.onWritten?.(batch);
        if (last) this.lastUseWrittenAt = Date.now();
        if (this.failing) this.failing = false;
      } catch (err) {
        // Put the batch back in front, keeping newer last-use times; retried next tick.
        this.queue = batch.concat(this.queue);
        this.bound();
        for (const [id, use] of lastUsed) if (!this.lastUsed.has(id)) this.lastUsed.set(id, use);
        for (const [id, r] of lastRefused)
          if (!this.lastRefused.has(id)) this.lastRefused.set(id, r);
        if (!this.failing) {
          this.failing = true;
          this.o.onError?.(err);
        }
        throw err;
      }
    }
  }

  /** Stops the timer and writes what is left. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
