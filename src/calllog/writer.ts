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
};

export type LastUse = { at: string; ip: string };

export interface CallLogSink {
  /** Writes the rows and last-use times in one transaction. */
  writeBatch(entries: CallLogEntry[], lastUsed: Map<number, LastUse>): Promise<void>;
}

export type CallLogOptions = {
  sink: CallLogSink;
  /** Most rows held in memory while the database is slow or away; past it, the oldest go. */
  maxQueue?: number;
  batchSize?: number;
  flushEveryMs?: number;
  onError?: (err: unknown) => void;
  onDrop?: (count: number) => void;
};

/**
 * Takes call-log rows off the request path. Rows are queued in memory and written in
 * batches, one transaction each; last-use times ride along, so a request costs no write.
 */
export class CallLogWriter {
  private queue: CallLogEntry[] = [];
  private lastUsed = new Map<number, LastUse>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failing = false;
  readonly counts = { written: 0, dropped: 0 };
  private readonly maxQueue: number;
  private readonly batchSize: number;

  constructor(private readonly o: CallLogOptions) {
    this.maxQueue = o.maxQueue ?? 100_000;
    this.batchSize = o.batchSize ?? 1_000;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.queue.length > 0) this.flush().catch(() => {});
    }, this.o.flushEveryMs ?? 250);
    this.timer.unref();
  }

  push(entry: CallLogEntry): void {
    this.queue.push(entry);
    if (entry.apiKeyId !== null)
      this.lastUsed.set(entry.apiKeyId, { at: entry.timestamp, ip: entry.ip });
    if (this.queue.length > this.maxQueue) {
      const over = this.queue.length - this.maxQueue;
      this.queue.splice(0, over);
      this.counts.dropped += over;
      this.o.onDrop?.(over);
    }
    if (this.queue.length >= this.batchSize && !this.running) this.flush().catch(() => {});
  }

  /** Keeps the queue within maxQueue by dropping the oldest rows, counted and reported. */
  private bound(): void {
    if (this.queue.length <= this.maxQueue) return;
    const over = this.queue.length - this.maxQueue;
    this.queue.splice(0, over);
    this.counts.dropped += over;
    this.o.onDrop?.(over);
  }

  get pending(): number {
    return this.queue.length;
  }

  /** Writes everything queued so far; resolves once it is stored (or rejects if it cannot be). */
  async flush(): Promise<void> {
    while (this.running) await this.running.catch(() => {});
    if (this.queue.length === 0 && this.lastUsed.size === 0) return;
    this.running = this.drain();
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.lastUsed.size > 0) {
      const batch = this.queue.splice(0, this.batchSize);
      const lastUsed = this.lastUsed;
      this.lastUsed = new Map();
      try {
        await this.o.sink.writeBatch(batch, lastUsed);
        this.counts.written += batch.length;
        if (this.failing) this.failing = false;
      } catch (err) {
        // Put the batch back in front, keeping newer last-use times; retried next tick.
        this.queue = batch.concat(this.queue);
        this.bound();
        for (const [id, use] of lastUsed) if (!this.lastUsed.has(id)) this.lastUsed.set(id, use);
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
