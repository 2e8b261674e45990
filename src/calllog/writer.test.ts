import { afterEach, describe, expect, it, vi } from "vitest";
import {
  type CallLogEntry,
  type CallLogSink,
  CallLogWriter,
  type LastRefusal,
  type LastUse,
  type Settle,
} from "./writer.js";

function entry(n: number, apiKeyId: number | null = 1, ip = "203.0.113.7"): CallLogEntry {
  return {
    apiKeyId,
    timestamp: new Date(Date.UTC(2026, 2, 10, 12, 0, n)).toISOString(),
    method: "GET",
    path: `/things/${n}`,
    statusCode: 200,
    ip,
    latencyMs: 1.5,
    userAgent: null,
    errorCode: null,
    requestId: null,
    message: null,
  };
}

type Batch = {
  entries: CallLogEntry[];
  lastUsed: Map<number, LastUse>;
  lastRefused: Map<number, LastRefusal>;
};

/**
 * An in-memory sink. `fail` makes writes reject; `hold()` parks the next writes until
 * `release()`; every attempt is recorded, every successful write is stored.
 */
class FakeSink implements CallLogSink {
  readonly stored: Batch[] = [];
  attempts = 0;
  fail = false;
  /** 1-based attempt numbers that fail. */
  readonly failOn = new Set<number>();
  active = 0;
  maxActive = 0;
  private gate: Promise<void> | null = null;
  private open: (() => void) | null = null;

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.open?.();
    this.gate = null;
    this.open = null;
  }

  async writeBatch(
    entries: CallLogEntry[],
    lastUsed: Map<number, LastUse>,
    lastRefused: Map<number, LastRefusal> = new Map(),
  ): Promise<void> {
    const attempt = ++this.attempts;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.gate) await this.gate;
      if (this.fail || this.failOn.has(attempt)) throw new Error("database away");
      this.stored.push({
        entries: [...entries],
        lastUsed: new Map(lastUsed),
        lastRefused: new Map(lastRefused),
      });
    } finally {
      this.active--;
    }
  }

  get rows(): string[] {
    return this.stored.flatMap((b) => b.entries.map((e) => e.path));
  }

  /** Last-use times as the database would end up with them (later batches win). */
  get lastUsed(): Map<number, LastUse> {
    const merged = new Map<number, LastUse>();
    for (const b of this.stored) for (const [id, use] of b.lastUsed) merged.set(id, use);
    return merged;
  }

  /** Last refusals as the database would end up with them (later batches win). */
  get lastRefused(): Map<number, LastRefusal> {
    const merged = new Map<number, LastRefusal>();
    for (const b of this.stored) for (const [id, r] of b.lastRefused) merged.set(id, r);
    return merged;
  }
}

/** A call answered with an error code: a key-check refusal, or an error from the route. */
function answered(
  n: number,
  apiKeyId: number,
  ip: string,
  statusCode: number,
  errorCode: string,
): CallLogEntry {
  return { ...entry(n, apiKeyId, ip), statusCode, errorCode };
}

const paths = (...ns: number[]) => ns.map((n) => `/things/${n}`);

afterEach(() => {
  vi.useRealTimers();
});

describe("CallLogWriter: flushing", () => {
  it("writes everything pushed, in order, in batches of at most batchSize", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 3 });
    for (let i = 0; i < 8; i++) writer.push(entry(i));
    await writer.flush();
    expect(sink.rows).toEqual(paths(0, 1, 2, 3, 4, 5, 6, 7));
    expect(sink.stored.map((b) => b.entries.length)).toEqual([3, 3, 2]);
    expect(writer.counts.written).toBe(8);
    expect(writer.pending).toBe(0);
  });

  it("writes a short queue as one batch, only when flushed", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100 });
    writer.push(entry(0));
    writer.push(entry(1));
    expect(sink.attempts).toBe(0);
    expect(writer.pending).toBe(2);
    await writer.flush();
    expect(sink.stored.map((b) => b.entries.length)).toEqual([2]);
  });

  it("starts a write by itself once batchSize rows are queued, after the request that filled it", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 2 });
    writer.push(entry(0));
    writer.push(entry(1));
    expect(sink.attempts).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(sink.attempts).toBe(1);
    await writer.flush();
    expect(sink.rows).toEqual(paths(0, 1));
  });

  it("does nothing when flushed with an empty queue", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink });
    await writer.flush();
    expect(sink.attempts).toBe(0);
  });

  it("carries the newest last-use time and IP per key, and none for key-less rows", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100 });
    writer.push(entry(1, 10, "10.0.0.1"));
    writer.push(entry(2, 20, "10.0.0.2"));
    writer.push(entry(3, 10, "10.0.0.3"));
    writer.push(entry(4, null, "10.0.0.4"));
    await writer.flush();
    expect(sink.stored).toHaveLength(1);
    expect(sink.stored[0]?.lastUsed).toEqual(
      new Map([
        [10, { at: entry(3).timestamp, ip: "10.0.0.3" }],
        [20, { at: entry(2).timestamp, ip: "10.0.0.2" }],
      ]),
    );
  });

  it("a flush during a running flush waits and then everything is written, one write at a time", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100 });
    sink.hold();
    writer.push(entry(0));
    writer.push(entry(1));
    const first = writer.flush();
    writer.push(entry(2, 5));
    const second = writer.flush();
    let secondDone = false;
    void second.then(() => {
      secondDone = true;
    });
    await Promise.resolve();
    expect(secondDone).toBe(false);
    sink.release();
    await Promise.all([first, second]);
    expect(sink.rows).toEqual(paths(0, 1, 2));
    expect(sink.maxActive).toBe(1);
    expect(writer.pending).toBe(0);
    expect(sink.lastUsed.get(5)?.at).toBe(entry(2).timestamp);
  });
});

describe("CallLogWriter: failures", () => {
  it("keeps rows queued when the sink fails and writes them on a later flush", async () => {
    const sink = new FakeSink();
    const errors: unknown[] = [];
    const writer = new CallLogWriter({ sink, batchSize: 100, onError: (e) => errors.push(e) });
    sink.fail = true;
    writer.push(entry(0, 1));
    writer.push(entry(1, 2));
    writer.push(entry(2, 1));
    await expect(writer.flush()).rejects.toThrow("database away");
    expect(writer.pending).toBe(3);
    expect(writer.counts.written).toBe(0);
    expect(sink.stored).toEqual([]);

    sink.fail = false;
    await writer.flush();
    expect(sink.rows).toEqual(paths(0, 1, 2));
    expect(writer.counts.written).toBe(3);
    expect(writer.pending).toBe(0);
    expect(sink.lastUsed.get(1)?.at).toBe(entry(2).timestamp);
    expect(sink.lastUsed.get(2)?.at).toBe(entry(1).timestamp);
    expect(errors).toHaveLength(1);
  });

  it("calls onError once per failure streak", async () => {
    const sink = new FakeSink();
    const onError = vi.fn();
    const writer = new CallLogWriter({ sink, batchSize: 100, onError });
    sink.fail = true;
    writer.push(entry(0));
    await expect(writer.flush()).rejects.toThrow();
    await expect(writer.flush()).rejects.toThrow();
    await expect(writer.flush()).rejects.toThrow();
    expect(sink.attempts).toBe(3);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[0]).toHaveProperty("message", "database away");

    sink.fail = false;
    await writer.flush();
    sink.fail = true;
    writer.push(entry(1));
    await expect(writer.flush()).rejects.toThrow();
    expect(onError).toHaveBeenCalledTimes(2);
  });

  it("puts a failed batch back ahead of rows pushed meanwhile, keeping newer last-use times", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100 });
    writer.push(entry(0, 1, "10.0.0.1"));
    writer.push(entry(1, 2, "10.0.0.2"));
    sink.hold();
    sink.fail = true;
    const failing = writer.flush();
    writer.push(entry(2, 1, "10.0.0.9"));
    sink.release();
    await expect(failing).rejects.toThrow();
    expect(writer.pending).toBe(3);

    sink.fail = false;
    await writer.flush();
    expect(sink.rows).toEqual(paths(0, 1, 2));
    expect(sink.lastUsed.get(1)).toEqual({ at: entry(2).timestamp, ip: "10.0.0.9" });
    expect(sink.lastUsed.get(2)).toEqual({ at: entry(1).timestamp, ip: "10.0.0.2" });
  });

  it("loses nothing when a failure hits the second of several batches", async () => {
    const sink = new FakeSink();
    sink.failOn.add(2);
    const onError = vi.fn();
    const writer = new CallLogWriter({ sink, batchSize: 2, onError });
    for (let i = 0; i < 5; i++) writer.push(entry(i));
    // The background write takes [0,1], fails on [2,3]; this flush then retries the rest.
    await vi.waitFor(() => expect(onError).toHaveBeenCalledTimes(1));
    await writer.flush();
    expect(sink.attempts).toBe(4);
    expect(sink.stored.map((b) => b.entries.length)).toEqual([2, 2, 1]);
    expect(sink.rows).toEqual(paths(0, 1, 2, 3, 4));
    expect(writer.counts.written).toBe(5);
    expect(onError).toHaveBeenCalledTimes(1);
  });
});

describe("CallLogWriter: bounds and lifecycle", () => {
  it("drops the oldest rows past maxQueue, counting them and calling onDrop", async () => {
    const sink = new FakeSink();
    const drops: number[] = [];
    const writer = new CallLogWriter({
      sink,
      maxQueue: 3,
      batchSize: 100,
      onDrop: (n) => drops.push(n),
    });
    for (let i = 0; i < 5; i++) writer.push(entry(i));
    expect(writer.pending).toBe(3);
    expect(writer.counts.dropped).toBe(2);
    expect(drops).toEqual([1, 1]);
    await writer.flush();
    expect(sink.rows).toEqual(paths(2, 3, 4));
  });

  it("keeps dropping the oldest while the sink is away", async () => {
    const sink = new FakeSink();
    const onDrop = vi.fn();
    const writer = new CallLogWriter({ sink, maxQueue: 2, batchSize: 100, onDrop });
    sink.fail = true;
    writer.push(entry(0));
    writer.push(entry(1));
    await expect(writer.flush()).rejects.toThrow();
    writer.push(entry(2));
    expect(writer.pending).toBe(2);
    expect(writer.counts.dropped).toBe(1);
    expect(onDrop).toHaveBeenCalledWith(1);
    sink.fail = false;
    await writer.flush();
    expect(sink.rows).toEqual(paths(1, 2));
  });

  it("stop() writes the remainder", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100, flushEveryMs: 60_000 });
    writer.start();
    writer.push(entry(0));
    writer.push(entry(1));
    await writer.stop();
    expect(sink.rows).toEqual(paths(0, 1));
    expect(writer.pending).toBe(0);
  });

  it("start() flushes on its timer and stop() ends the timer", async () => {
    vi.useFakeTimers();
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100, flushEveryMs: 20 });
    writer.start();
    writer.push(entry(0));
    await vi.advanceTimersByTimeAsync(19);
    expect(sink.attempts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.rows).toEqual(paths(0));
    await writer.stop();
    writer.push(entry(1));
    await vi.advanceTimersByTimeAsync(200);
    expect(sink.rows).toEqual(paths(0));
    expect(writer.pending).toBe(1);
  });

  it("the timer retries after a failure", async () => {
    vi.useFakeTimers();
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100, flushEveryMs: 10 });
    writer.start();
    sink.fail = true;
    writer.push(entry(0));
    await vi.advanceTimersByTimeAsync(10);
    expect(sink.attempts).toBe(1);
    expect(writer.pending).toBe(1);
    sink.fail = false;
    await vi.advanceTimersByTimeAsync(10);
    expect(sink.rows).toEqual(paths(0));
    await writer.stop();
  });
});

describe("CallLogWriter: last-use cadence", () => {
  it("writes rows in the background but last-use times only when due or when flushed", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 2, lastUseEveryMs: 60_000 });
    writer.push(entry(1, 7, "10.0.0.1"));
    writer.push(entry(2, 7, "10.0.0.2"));
    await vi.waitFor(() => expect(sink.attempts).toBe(1));
    expect(sink.stored[0]?.lastUsed.size).toBe(0);
    await writer.flush();
    const last = sink.stored.at(-1);
    expect(last?.entries).toHaveLength(0);
    expect([...(last?.lastUsed ?? new Map())]).toEqual([
      [7, { at: entry(2).timestamp, ip: "10.0.0.2" }],
    ]);
  });
});

describe("CallLogWriter: last use and refused attempts", () => {
  it("counts calls the key checks let through as use, and keeps refusals apart with their code", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 100 });
    writer.push(entry(1, 10, "127.0.0.1"));
    // Answered by the route after the key was accepted: the key worked.
    writer.push(answered(2, 10, "127.0.0.2", 404, "NOT_FOUND"));
    writer.push(answered(3, 10, "127.0.0.1", 400, "VALIDATION_ERROR"));
    // Refused by the key checks: attempts, not use.
    writer.push(answered(4, 10, "127.0.0.3", 403, "IP_NOT_ALLOWED"));
    writer.push(answered(5, 20, "10.0.0.5", 401, "API_KEY_REVOKED"));
    writer.push(answered(6, 20, "10.0.0.6", 401, "API_KEY_EXPIRED"));
    writer.push(answered(7, 30, "10.0.0.7", 401, "INVALID_USER"));
    writer.push(answered(8, 40, "10.0.0.8", 429, "RATE_LIMIT_EXCEEDED"));
    writer.push(answered(9, 50, "10.0.0.9", 403, "SCOPE_REQUIRED"));
    writer.push(answered(10, 60, "10.0.0.10", 403, "FORBIDDEN"));
    await writer.flush();
    expect(sink.lastUsed).toEqual(new Map([[10, { at: entry(3).timestamp, ip: "127.0.0.1" }]]));
    expect(sink.lastRefused).toEqual(
      new Map([
        [10, { at: entry(4).timestamp, ip: "127.0.0.3", code: "IP_NOT_ALLOWED" }],
        [20, { at: entry(6).timestamp, ip: "10.0.0.6", code: "API_KEY_EXPIRED" }],
        [30, { at: entry(7).timestamp, ip: "10.0.0.7", code: "INVALID_USER" }],
        [40, { at: entry(8).timestamp, ip: "10.0.0.8", code: "RATE_LIMIT_EXCEEDED" }],
        [50, { at: entry(9).timestamp, ip: "10.0.0.9", code: "SCOPE_REQUIRED" }],
        [60, { at: entry(10).timestamp, ip: "10.0.0.10", code: "FORBIDDEN" }],
      ]),
    );
    // Every call is still a row of the call log.
    expect(sink.rows).toHaveLength(10);
  });

  it("writes refusals with last-use times only when due or flushed, and keeps them across a failed write", async () => {
    const sink = new FakeSink();
    const writer = new CallLogWriter({ sink, batchSize: 1, lastUseEveryMs: 60_000 });
    writer.push(answered(1, 7, "127.0.0.3", 403, "IP_NOT_ALLOWED"));
    await vi.waitFor(() => expect(sink.attempts).toBe(1));
    expect(sink.stored[0]?.lastRefused.size).toBe(0);

    sink.fail = true;
    await expect(writer.flush()).rejects.toThrow("database away");
    writer.push(answered(2, 8, "127.0.0.4", 401, "API_KEY_REVOKED"));
    sink.fail = false;
    await writer.flush();
    expect(sink.lastRefused).toEqual(
      new Map([
        [7, { at: entry(1).timestamp, ip: "127.0.0.3", code: "IP_NOT_ALLOWED" }],
        [8, { at: entry(2).timestamp, ip: "127.0.0.4", code: "API_KEY_REVOKED" }],
      ]),
    );
    expect(sink.lastUsed.size).toBe(0);
    // Nothing is left to write.
    const attempts = sink.attempts;
    await writer.flush();
    expect(sink.attempts).toBe(attempts);
  });
});

describe("CallLogWriter settling a sink's deferred work", () => {
  /** A sink that keeps rows aside like the rollups do: `false` keeps, "some" takes 2, true all. */
  class DeferringSink implements CallLogSink {
    aside = 0;
    readonly settles: Settle[] = [];
    async writeBatch(
      entries: CallLogEntry[],
      _used: Map<number, LastUse>,
      _refused?: Map<number, LastRefusal>,
      settle: Settle = true,
    ): Promise<void> {
      this.settles.push(settle);
      if (settle === true) this.aside = 0;
      else if (settle === "some") this.aside = Math.max(0, this.aside - 2);
      else this.aside += entries.length;
    }
    hasDeferred(): boolean {
      return this.aside > 0;
    }
    hasBacklog(): boolean {
      return this.aside > 2;
    }
  }

  afterEach(() => {
    vi.useRealTimers();
  });

  it("settles a bounded part every settleEveryMs, every tick while a backlog lasts, and all on flush", async () => {
    vi.useFakeTimers();
    const sink = new DeferringSink();
    const writer = new CallLogWriter({
      sink,
      batchSize: 100,
      flushEveryMs: 100,
      lastUseEveryMs: 1_000_000,
      settleEveryMs: 10_000,
    });
    writer.start();
    for (let i = 0; i < 5; i++) writer.push(entry(i));
    await vi.advanceTimersByTimeAsync(150);
    // Stored, kept aside: nothing is settled before the cadence (5 aside is a backlog: settled
    // in parts of 2 on the ticks after).
    expect(sink.settles[0]).toBe(false);
    await vi.advanceTimersByTimeAsync(300);
    expect(sink.settles.filter((s) => s === "some").length).toBeGreaterThanOrEqual(2);
    expect(sink.aside).toBe(1);
    // One row aside is no backlog: it waits for the cadence, not for every tick.
    const before = sink.settles.length;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.settles.length).toBe(before);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sink.aside).toBe(0);
    // A flush settles everything, the flushed rows with it.
    writer.push(entry(9));
    await writer.flush();
    expect(sink.settles.at(-1)).toBe(true);
    expect(sink.aside).toBe(0);
    // Nothing aside and nothing queued: a flush writes nothing.
    const n = sink.settles.length;
    await writer.flush();
    expect(sink.settles.length).toBe(n);
    await writer.stop();
  });
});
