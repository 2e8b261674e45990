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
 * it was new in one round trip. Each instance also keeps the nonces it saw, so while Redis
 * is unreachable they are still refused here (per instance, as budgets are then).
 */
export class RedisNonces implements NonceStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly local: NonceStore,
    private readonly available: () => boolean,
  ) {}

  claim(id: string, untilMs: number, now: number): boolean | Promise<boolean> {
    // Kept here too, so a nonce this instance accepted stays refused here while Redis is out.
    const local = this.local.claim(id, untilMs, now);
    if (!this.available()) return local;
    if (local instanceof Promise)
      return local.then((fresh) => fresh && this.shared(id, untilMs, now));
    return local && this.shared(id, untilMs, now);
  }

  private shared(id: string, untilMs: number, now: number): boolean | Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(untilMs - now));
    return this.redis.set(this.prefix + id, "1", "PX", ttl, "NX").then(
      (answer) => answer === "OK",
      // Unreachable mid-call: the nonce is already recorded here, and this instance saw it first.
      () => true,
    );
  }
}
