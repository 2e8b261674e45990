import { Redis } from "ioredis";
import { candidateGeneration, EpochTracker, generationKey, readEpochLua } from "./epoch.js";

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

// Both read (or start) the epoch's generation with the epoch, atomically: an epoch means
// nothing without it once Redis may have restarted empty and counted again from 1.
const READ = `${readEpochLua("KEYS[1]", "KEYS[2]", "ARGV[1]")}
return {tonumber(e), g}`;
const BUMP = `${readEpochLua("KEYS[1]", "KEYS[2]", "ARGV[1]")}
return {redis.call('INCR', KEYS[1]), g}`;

type WithEpoch = Redis & {
  kgEpoch(epochKey: string, genKey: string, candidate: string): Promise<[number, string]>;
  kgBump(epochKey: string, genKey: string, candidate: string): Promise<[number, string]>;
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
  /** Prefix for the signature nonces this deployment has accepted. */
  readonly noncePrefix: string;
  /** Counts evictions; bumped before each is published, so a reader can tell it missed one. */
  readonly epochKey: string;
  /** Beside the epoch: changes whenever the counter starts again (see `generationKey`). */
  readonly generationKey: string;
  /** Which evictions this instance has applied, per generation of the epoch. */
  private readonly applied: EpochTracker;
  readonly deliveries: Deliveries = { sent: 0, failed: 0, received: 0 };

  constructor(private readonly o: ClusterOptions) {
    this.channel = `keygate:${o.namespace}:evict`;
    this.keyPrefix = `keygate:${o.namespace}:rl:`;
    this.noncePrefix = `keygate:${o.namespace}:nonce:`;
    this.epochKey = `keygate:${o.namespace}:epoch`;
    this.generationKey = generationKey(this.epochKey);
    this.applied = new EpochTracker((reset) => {
      o.onResync();
      if (reset) {
        o.info("Redis restarted empty or lost the eviction epoch; key cache cleared");
      }
    });
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
    this.redis.defineCommand("kgEpoch", { numberOfKeys: 2, lua: READ });
    this.redis.defineCommand("kgBump", { numberOfKeys: 2, lua: BUMP });
    this.redis.on("error", () => {});
    this.sub.on("error", () => {});
    this.sub.on("message", (_channel: string, message: string) => {
      // "<epoch> all <generation>" or "<epoch> key:<hash> <generation>" (older releases
      // send no generation)
      const [epoch, what = "", generation] = message.split(" ");
      if (what === "all") o.onEviction({ kind: "all" });
      else if (what.startsWith("key:")) o.onEviction({ kind: "key", hash: what.slice(4) });
      this.applied.applied(Number(epoch) || 0, generation);
    });
    this.redis.on("ready", () => {
      // Learn the generation and epoch now, not on the next request: a Redis that came
      // back empty clears the key cache at once.
      (this.redis as WithEpoch)
        .kgEpoch(this.epochKey, this.generationKey, candidateGeneration())
        .then(([epoch, generation]) => this.applied.observe(Number(epoch), generation))
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
      const [epoch, generation] = await (this.redis as WithEpoch).kgBump(
        this.epochKey,
        this.generationKey,
        candidateGeneration(),
      );
      this.applied.applied(Number(epoch), generation);
      const received = await this.redis.publish(
        this.channel,
        `${epoch} ${e.kind === "all" ? "all" : `key:${e.hash}`} ${generation}`,
      );
      this.deliveries.sent++;
      this.deliveries.received += received;
    } catch {
      // The TTL bounds staleness; the change itself is already stored.
      this.deliveries.failed++;
    }
  }

  /**
   * True when `epoch` (read with a budget, with its `generation`) is newer than the
   * evictions applied here, or of a generation not seen yet (Redis restarted or lost the
   * counter): the caller's cache is cleared through onResync and it must read the key again.
   */
  staleAfter(epoch: number, generation?: string): boolean {
    return this.applied.observe(epoch, generation);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.redis.disconnect();
    this.sub.disconnect();
  }
}
