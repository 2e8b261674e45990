import { LRUCache } from "lru-cache";
import type { KeyLookup, KeyRecord } from "./verify.js";

export type KeyCacheOptions = {
  /** Reads one key (with its owner) by hash from the store. */
  load: (hash: string) => Promise<KeyRecord | null>;
  /** Reads the hash of the key with an id (what access tokens name); a hash never changes. */
  loadHash?: (id: number) => Promise<string | null>;
  /** Most keys held; each entry is a few hundred bytes. */
  max?: number;
  /** How long a found key is trusted before it is read again (bounds staleness). */
  ttlMs?: number;
  /** Unknown hashes are remembered apart, so a flood of bad keys cannot push good ones out. */
  negativeMax?: number;
  negativeTtlMs?: number;
};

const MISSING = Symbol("missing");

/**
 * An LRU in front of the store, keyed by key hash. Concurrent misses for one hash share
 * a single read. Revocation, rolls, edits and owner changes call `evict`/`clear`.
 */
export class CachedKeyLookup implements KeyLookup {
  private readonly found: LRUCache<string, KeyRecord>;
  private readonly unknown: LRUCache<string, typeof MISSING>;
  private readonly inflight = new Map<string, Promise<KeyRecord | null>>();
  /** Key id → hash: fixed for a key's life, so never evicted for a change. */
  private readonly hashes = new LRUCache<number, string>({ max: 50_000 });
  private generation = 0;
  /**
   * Look-ups answered with a cached key, with a hash remembered as unknown, and not at all
   * (a store read, or joining one under way): plain numbers the metrics read when scraped.
   */
  readonly counts = { hits: 0, unknownHits: 0, misses: 0 };

  constructor(private readonly opts: KeyCacheOptions) {
    this.found = new LRUCache({ max: opts.max ?? 50_000, ttl: opts.ttlMs ?? 30_000 });
    this.unknown = new LRUCache({
      max: opts.negativeMax ?? 10_000,
      ttl: opts.negativeTtlMs ?? 5_000,
    });
  }

  find(hash: string): KeyRecord | null | Promise<KeyRecord | null> {
    const hit = this.found.get(hash);
    if (hit !== undefined) {
      this.counts.hits++;
      return hit;
    }
    if (this.unknown.has(hash)) {
      this.counts.unknownHits++;
      return null;
    }
    this.counts.misses++;
    const pending = this.inflight.get(hash);
    if (pending) return pending;
    const generation = this.generation;
    const read: Promise<KeyRecord | null> = this.opts.load(hash).then(
      (record) => {
        if (this.inflight.get(hash) === read) this.inflight.delete(hash);
        // An eviction that raced this read wins: do not cache what may already be stale.
        if (record) this.hashes.set(record.id, hash);
        if (generation === this.generation) {
          if (record) this.found.set(hash, record);
          else this.unknown.set(hash, MISSING);
        }
        return record;
      },
      (err: unknown) => {
        if (this.inflight.get(hash) === read) this.inflight.delete(hash);
        throw err;
      },
    );
    this.inflight.set(hash, read);
    return read;
  }

  hashOf(id: number): string | null | Promise<string | null> {
    const known = this.hashes.get(id);
    if (known !== undefined) return known;
    const load = this.opts.loadHash;
    if (load === undefined) return null;
    return load(id).then((hash) => {
      if (hash !== null) this.hashes.set(id, hash);
      return hash;
    });
  }

  /** Evictions and clears so far: a record read before the count changed may be stale. */
  version(): number {
    return this.generation;
  }

  /** Forgets the key; a look-up after this reads the store anew, even if a read is under way. */
  evict(hash: string): void {
    this.generation++;
    this.inflight.delete(hash);
    this.found.delete(hash);
    this.unknown.delete(hash);
  }

  clear(): void {
    this.generation++;
    this.inflight.clear();
    this.found.clear();
    this.unknown.clear();
  }

  get size(): { found: number; unknown: number } {
    return { found: this.found.size, unknown: this.unknown.size };
  }
}
