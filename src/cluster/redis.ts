import { Redis } from "ioredis";

export type Eviction = { kind: "key"; hash: string } | { kind: "all" };

export type ClusterOptions = {
  url: string;
  /** Names this deployment's keys and channel, so deployments sharing a Redis never mix. */
  namespace: string;
  /** Applies an eviction that another instance (or this one) published. */
  onEviction: (e: Eviction) => void;
  /** Called when the eviction channel comes back after a loss: messages may have been missed. */
  onResync: () => void;
  warn: (msg: string) => void;
  info: (msg: string) => void;
  /** Subscribe to evictions (default). A one-shot command that only publishes them does not. */
  listen?: boolean;
};

/** What this process's published evictions came to. */
export type Deliveries = {
  /** Evictions published. */
  sent: number;
  /** Evictions that could not be published (Redis unreachable or the command failed). */
  failed: number;
  /** Subscriptions that received them, summed: running instances, for a process that does not listen. */
  received: number;
};

/**
 * The Redis side of running several instances: a command connection for shared budgets
 * and a subscriber connection for key evictions. Both reconnect by themselves; while the
 * channel is down, the key cache's short TTL bounds how stale a key can be.
 */
export class Cluster {
  readonly redis: Redis;
  private readonly sub: Redis;
  private channelLost = false;
  private closed = false;
  private readonly channel: string;
  /** Prefix for this deployment's rate-limit counters. */
  readonly keyPrefix: string;
  /** Counts evictions; bumped before each is published, so a reader can tell it missed one. */
  readonly epochKey: string;
  /** The newest eviction epoch this instance has applied. */
  private applied = 0;
  readonly deliveries: Deliveries = { sent: 0, failed: 0, received: 0 };

  constructor(private readonly o: ClusterOptions) {
    this.channel = `keygate:${o.namespace}:evict`;
    this.keyPrefix = `keygate:${o.namespace}:rl:`;
    this.epochKey = `keygate:${o.namespace}:epoch`;
    const common = {
      // Fail fast when disconnected: the limiter falls back to memory instead of queueing.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 1_000,
      retryStrategy: (times: number) => Math.min(100 * times, 2_000),
      lazyConnect: false,
    };
    this.redis = new Redis(o.url, { ...common, enableAutoPipelining: true });
    this.sub = new Redis(o.url, {
      ...common,
      commandTimeout: undefined,
      lazyConnect: o.listen === false,
    });
    this.redis.on("error", () => {});
    this.sub.on("error", () => {});
    this.sub.on("message", (_channel: string, message: string) => {
      // "<epoch> all" or "<epoch> key:<hash>"
      const [epoch, what = ""] = message.split(" ");
      if (what === "all") o.onEviction({ kind: "all" });
      else if (what.startsWith("key:")) o.onEviction({ kind: "key", hash: what.slice(4) });
      this.applied = Math.max(this.applied, Number(epoch) || 0);
    });
    this.redis.on("ready", () => {
      // Evictions before this instance (or this connection) existed need no re-read.
      this.redis
        .get(this.epochKey)
        .then((v) => {
          if (!this.channelLost) this.applied = Math.max(this.applied, Number(v) || 0);
        })
        .catch(() => {});
    });
    this.sub.on("ready", () => {
      this.sub.subscribe(this.channel).catch(() => {});
      if (this.channelLost) {
        this.channelLost = false;
        o.onResync();
        o.info("key eviction channel restored; key cache cleared");
      }
    });
    this.sub.on("close", () => {
      if (this.closed || this.channelLost) return;
      this.channelLost = true;
      o.warn(
        "key eviction channel lost; cached keys may be stale for up to the cache TTL until it returns",
      );
    });
  }

  /** Whether shared budgets can be used right now. */
  get available(): boolean {
    return this.redis.status === "ready";
  }

  /** Resolves true once Redis answers, or false after `timeoutMs` without it. */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.available) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.redis.off("ready", onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on("ready", onReady);
    });
  }

  /**
   * Tells every instance to drop a key (or every key) from its cache. The epoch is bumped
   * first: any instance whose next budget check reads the new epoch before the message
   * arrives knows it missed an eviction and re-reads (see `staleAfter`).
   */
  async publish(e: Eviction): Promise<void> {
    if (!this.available) {
      this.deliveries.failed++;
      return;
    }
    try {
      const epoch = await this.redis.incr(this.epochKey);
      this.applied = Math.max(this.applied, epoch);
      const received = await this.redis.publish(
        this.channel,
        `${epoch} ${e.kind === "all" ? "all" : `key:${e.hash}`}`,
      );
      this.deliveries.sent++;
      this.deliveries.received += received;
    } catch {
      // The TTL bounds staleness; the change itself is already stored.
      this.deliveries.failed++;
    }
  }

  /**
   * True when `epoch` (read with a budget) is newer than every eviction applied here:
   * the caller's cache is cleared through onResync and it must read the key again.
   */
  staleAfter(epoch: number): boolean {
    if (epoch <= this.applied) return false;
    this.applied = epoch;
    this.o.onResync();
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.redis.disconnect();
    this.sub.disconnect();
  }
}
