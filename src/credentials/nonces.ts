import type { Redis } from "ioredis";

/**
 * Where a signature's nonce is recorded for the time its signature could still be accepted,
 * so that each one is accepted once per key (SPEC §8). `claim` answers true the first time.
 */
export interface NonceStore {
  claim(id: string, untilMs: number, now: number): boolean | Promise<boolean>;
}

/**
 * Nonces in this process, in two generations of plain maps: a nonce lives in the current
 * one, then in the previous one, so it is known for at least one generation (600 s: the
 * longest a signature stays acceptable, `created` + 300 s with `created` up to 300 s ahead).
 * Past `max` nonces in a generation it turns over early, which could let a nonce of two
 * generations ago be replayed inside its window — only a key signing far more requests than
 * its budget allows gets there.
 */
export class MemoryNonces implements NonceStore {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private startedAt = Number.NEGATIVE_INFINITY;
  private baseS: number | undefined;

  constructor(
    private readonly max = 1_000_000,
    private readonly generationMs = 600_000,
  ) {}

  claim(id: string, untilMs: number, now: number): boolean {
    if (now - this.startedAt >= this.generationMs || this.current.size >= this.max) {
      this.previous = this.current;
      this.current = new Map();
      this.startedAt = now;
    }
    // Whole seconds from the first claim, rounded to keep a nonce the longer: small
    // integers, which a map holds in place where a millisecond timestamp would be an object.
    this.baseS ??= Math.floor(now / 1000);
    const seen = this.current.get(id) ?? this.previous.get(id);
    if (seen !== undefined && seen > Math.floor(now / 1000) - this.baseS) return false;
    this.current.set(id, Math.ceil(untilMs / 1000) - this.baseS);
    return true;
  }

  get size(): number {
    return this.current.size + this.previous.size;
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
