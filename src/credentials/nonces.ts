import type { Redis } from "ioredis";
import { LRUCache } from "lru-cache";

/**
 * Where a signature's nonce is recorded for the time its signature could still be accepted,
 * so that each one is accepted once per key (SPEC §8). `claim` answers true the first time.
 */
export interface NonceStore {
  claim(id: string, untilMs: number, now: number): boolean | Promise<boolean>;
}

/**
 * Nonces in this process. Bounded: past `max` the oldest are dropped, which could let a
 * dropped nonce be replayed inside its window — at the default, only a key signing more than
 * 3,000 requests a second for ten minutes reaches that, and its budget refuses it first.
 */
export class MemoryNonces implements NonceStore {
  private readonly seen: LRUCache<string, true>;

  constructor(max = 2_000_000) {
    this.seen = new LRUCache({ max });
  }

  claim(id: string, untilMs: number, now: number): boolean {
    // `has` is false for an entry past its lifetime.
    if (this.seen.has(id)) return false;
    this.seen.set(id, true, { ttl: Math.max(1, untilMs - now) });
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

/**
 * Nonces in Redis, shared by every instance: `SET … NX PX` records a nonce and tells whether
 * it was new in one round trip. While Redis is unreachable, nonces are kept per instance
 * (as budgets are), and the log says so once.
 */
export class RedisNonces implements NonceStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly local: NonceStore,
    private readonly available: () => boolean,
  ) {}

  claim(id: string, untilMs: number, now: number): boolean | Promise<boolean> {
    if (!this.available()) return this.local.claim(id, untilMs, now);
    const ttl = Math.max(1, Math.ceil(untilMs - now));
    return this.redis.set(this.prefix + id, "1", "PX", ttl, "NX").then(
      (answer) => answer === "OK",
      () => this.local.claim(id, untilMs, now),
    );
  }
}
