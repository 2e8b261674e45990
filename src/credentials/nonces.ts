import { randomInt } from "node:crypto";
import type { Redis } from "ioredis";

/**
 * Where a signature's nonce is recorded for the time its signature could still be accepted,
 * so that each one is accepted once per key (SPEC §8). `claim` answers true the first time.
 */
export interface NonceStore {
  claim(id: string, untilMs: number, now: number): boolean | Promise<boolean>;
}

/**
 * Nonces in this process, in two generations: a nonce lives in the current one, then in the
 * previous one, so it is known for at least one generation (600 s: the longest a signature
 * stays acceptable, `created` + 300 s with `created` up to 300 s ahead). Past `max` nonces in
 * a generation it turns over early, which could let a nonce of two generations ago be
 * replayed inside its window — only a key signing far more requests than its budget allows
 * gets there.
 *
 * A generation is a `NonceTable`: typed arrays, not a map of strings, so a busy signer's
 * hundreds of thousands of nonces are a few megabytes the garbage collector never walks.
 */
export class MemoryNonces implements NonceStore {
  private current = new NonceTable();
  private previous = new NonceTable();
  private startedAt = Number.NEGATIVE_INFINITY;
  private baseS: number | undefined;

  constructor(
    private readonly max = 1_000_000,
    private readonly generationMs = 600_000,
  ) {}

  claim(id: string, untilMs: number, now: number): boolean {
    if (now - this.startedAt >= this.generationMs || this.current.size >= this.max) {
      this.previous = this.current;
      this.current = new NonceTable();
      this.startedAt = now;
    }
    // Whole seconds from the first claim, rounded to keep a nonce the longer (and at least 1,
    // which the table reads as a used slot).
    this.baseS ??= Math.floor(now / 1000) - 1;
    const nowS = Math.floor(now / 1000) - this.baseS;
    fingerprint(id);
    const h1 = fp1;
    const h2 = fp2;
    const seen = Math.max(this.current.get(h1, h2), this.previous.get(h1, h2));
    if (seen > nowS) return false;
    this.current.set(h1, h2, Math.max(1, Math.ceil(untilMs / 1000) - this.baseS));
    return true;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}

// Seeds of this process: a nonce's 64-bit fingerprint cannot be aimed at another's.
const SEED_1 = randomInt(2 ** 31) | 0;
const SEED_2 = randomInt(2 ** 31) | 1;

/** The two halves of the last fingerprint taken (module state: no object per call). */
let fp1 = 0;
let fp2 = 0;

/**
 * A string's 64-bit fingerprint as two 32-bit hashes (each FNV-1a over UTF-16 code units,
 * seeded differently, with a final mix), taken in one pass over the string.
 */
function fingerprint(s: string): void {
  let a = 0x811c9dc5 ^ SEED_1;
  let b = 0x811c9dc5 ^ SEED_2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
  }
  fp1 = mix(a);
  fp2 = mix(b);
}

function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}

/**
 * An open-addressing hash table of 64-bit fingerprints (two 32-bit hashes) to a small
 * integer (until when a nonce is kept, in seconds; 0 marks an empty slot), doubling past
 * half full. Two different nonces share a fingerprint with a chance of about 2⁻⁶⁴ per pair:
 * at a million nonces, one false "replayed" in some 10¹³ claims.
 */
export class NonceTable {
  private hi: Int32Array;
  private lo: Int32Array;
  private until: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    this.hi = new Int32Array(capacity);
    this.lo = new Int32Array(capacity);
    this.until = new Int32Array(capacity);
    this.mask = capacity - 1;
  }

  /** The value kept for this fingerprint, or 0. */
  get(h1: number, h2: number): number {
    const { hi, lo, until, mask } = this;
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      const u = until[i] as number;
      if (u === 0) return 0;
      if (hi[i] === h1 && lo[i] === h2) return u;
    }
  }

  /** Keeps `value` (≥ 1) for this fingerprint. */
  set(h1: number, h2: number, value: number): void {
    if ((this.size + 1) * 2 > this.until.length) this.grow();
    const { hi, lo, until, mask } = this;
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      if (until[i] === 0) {
        hi[i] = h1;
        lo[i] = h2;
        until[i] = value;
        this.size++;
        return;
      }
      if (hi[i] === h1 && lo[i] === h2) {
        until[i] = value;
        return;
      }
    }
  }

  private grow(): void {
    const { hi, lo, until } = this;
    const capacity = until.length * 2;
    this.hi = new Int32Array(capacity);
    this.lo = new Int32Array(capacity);
    this.until = new Int32Array(capacity);
    this.mask = capacity - 1;
    this.size = 0;
    for (let i = 0; i < until.length; i++)
      if (until[i] !== 0) this.set(hi[i] as number, lo[i] as number, until[i] as number);
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
