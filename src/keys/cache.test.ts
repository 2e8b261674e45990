import { describe, expect, it } from "vitest";
import { CachedKeyLookup, type KeyCacheOptions } from "./cache.js";
import { scopeMask } from "./permissions.js";
import type { KeyRecord } from "./verify.js";

function record(id: number, overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id,
    name: `key ${id}`,
    prefix: "pk_live_0000",
    scopes: "read",
    ownerId: 1,
    ownerUsername: "alice",
    ownerRole: "reseller",
    ownerUsable: true,
    revokedAt: null,
    expiresAt: null,
    allowedIps: null,
    rateLimit: null,
    replacedByPrefix: null,
    signing: "off",
    signingKey: null,
    revokedTokens: null,
    environment: "live",
    permissions: [],
    ...overrides,
    grants: overrides.grants ?? scopeMask(overrides.scopes ?? "read"),
  };
}

type Deferred<T> = {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
};

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A loader backed by a Map, counting calls per hash. */
function mapLoader(store: Map<string, KeyRecord>) {
  const calls: string[] = [];
  const load = async (hash: string) => {
    calls.push(hash);
    return store.get(hash) ?? null;
  };
  return { load, calls, count: (hash: string) => calls.filter((h) => h === hash).length };
}

/** A loader whose every call waits for the test to settle it. */
function gatedLoader() {
  const pending: Deferred<KeyRecord | null>[] = [];
  const load = (_hash: string) => {
    const d = deferred<KeyRecord | null>();
    pending.push(d);
    return d.promise;
  };
  return { load, pending };
}

function cache(load: KeyCacheOptions["load"], opts: Omit<KeyCacheOptions, "load"> = {}) {
  return new CachedKeyLookup({ load, ...opts });
}

describe("CachedKeyLookup", () => {
  it("serves a hit from memory, synchronously, without calling the loader again", async () => {
    const rec = record(1);
    const loader = mapLoader(new Map([["h1", rec]]));
    const c = cache(loader.load);
    expect(await c.find("h1")).toBe(rec);
    const again = c.find("h1");
    expect(again).toBe(rec);
    expect(loader.count("h1")).toBe(1);
    expect(c.size).toEqual({ found: 1, unknown: 0 });
  });

  it("shares a single load between concurrent misses for one hash", async () => {
    const rec = record(1);
    const gate = gatedLoader();
    const c = cache(gate.load);
    const a = c.find("h1");
    const b = c.find("h1");
    const other = c.find("h2");
    expect(gate.pending).toHaveLength(2);
    gate.pending[0]?.resolve(rec);
    gate.pending[1]?.resolve(null);
    expect(await a).toBe(rec);
    expect(await b).toBe(rec);
    expect(await other).toBeNull();
  });

  it("caches unknown hashes negatively", async () => {
    const loader = mapLoader(new Map());
    const c = cache(loader.load);
    expect(await c.find("nope")).toBeNull();
    expect(c.find("nope")).toBeNull();
    expect(c.find("nope")).toBeNull();
    expect(loader.count("nope")).toBe(1);
    expect(c.size).toEqual({ found: 0, unknown: 1 });
  });

  it("keeps unknown hashes apart so a flood of them cannot push found keys out", async () => {
    const rec = record(1);
    const loader = mapLoader(new Map([["good", rec]]));
    const c = cache(loader.load, { max: 2, negativeMax: 3 });
    await c.find("good");
    for (let i = 0; i < 20; i++) await c.find(`bad-${i}`);
    expect(c.size).toEqual({ found: 1, unknown: 3 });
    expect(c.find("good")).toBe(rec);
    expect(loader.count("good")).toBe(1);
  });

  it("evict() forces a reload of that hash only", async () => {
    const store = new Map([
      ["h1", record(1)],
      ["h2", record(2)],
    ]);
    const loader = mapLoader(store);
    const c = cache(loader.load);
    await c.find("h1");
    await c.find("h2");
    const revoked = record(1, { revokedAt: 123 });
    store.set("h1", revoked);
    c.evict("h1");
    expect(await c.find("h1")).toBe(revoked);
    expect(loader.count("h1")).toBe(2);
    await c.find("h2");
    expect(loader.count("h2")).toBe(1);
  });

  it("evict() also drops a negative entry", async () => {
    const store = new Map<string, KeyRecord>();
    const loader = mapLoader(store);
    const c = cache(loader.load);
    expect(await c.find("new")).toBeNull();
    const minted = record(9);
    store.set("new", minted);
    c.evict("new");
    expect(await c.find("new")).toBe(minted);
    expect(loader.count("new")).toBe(2);
  });

  it("clear() forces a reload of everything, found and unknown", async () => {
    const loader = mapLoader(new Map([["h1", record(1)]]));
    const c = cache(loader.load);
    await c.find("h1");
    await c.find("nope");
    c.clear();
    expect(c.size).toEqual({ found: 0, unknown: 0 });
    await c.find("h1");
    await c.find("nope");
    expect(loader.count("h1")).toBe(2);
    expect(loader.count("nope")).toBe(2);
  });

  it("does not cache a result whose load raced an evict()", async () => {
    const gate = gatedLoader();
    const c = cache(gate.load);
    const first = c.find("h1");
    c.evict("h1");
    const stale = record(1);
    gate.pending[0]?.resolve(stale);
    // The caller that started the read still gets its answer...
    expect(await first).toBe(stale);
    // ...but it is not cached: the next find reads again.
    expect(c.size).toEqual({ found: 0, unknown: 0 });
    const next = c.find("h1");
    expect(gate.pending).toHaveLength(2);
    const fresh = record(1, { revokedAt: 5 });
    gate.pending[1]?.resolve(fresh);
    expect(await next).toBe(fresh);
    expect(c.find("h1")).toBe(fresh);
  });

  it("does not cache a negative result whose load raced a clear()", async () => {
    const gate = gatedLoader();
    const c = cache(gate.load);
    const first = c.find("h1");
    c.clear();
    gate.pending[0]?.resolve(null);
    expect(await first).toBeNull();
    expect(c.size).toEqual({ found: 0, unknown: 0 });
  });

  // A find() after evict() must not join a read that began before the eviction.
  it("a find() after evict() does not join a read started before the eviction", async () => {
    const gate = gatedLoader();
    const c = cache(gate.load);
    const before = c.find("h1");
    c.evict("h1"); // e.g. the key was revoked while the first read was in flight
    const after = c.find("h1");
    gate.pending[0]?.resolve(record(1));
    gate.pending[1]?.resolve(record(1, { revokedAt: 5 }));
    await before;
    expect(gate.pending).toHaveLength(2);
    expect((await after)?.revokedAt).toBe(5);
  });

  it("never holds more than `max` found keys, dropping the least recently used", async () => {
    const store = new Map<string, KeyRecord>();
    for (let i = 0; i < 10; i++) store.set(`h${i}`, record(i));
    const loader = mapLoader(store);
    const c = cache(loader.load, { max: 3 });
    for (let i = 0; i < 10; i++) {
      await c.find(`h${i}`);
      expect(c.size.found).toBeLessThanOrEqual(3);
    }
    expect(c.size.found).toBe(3);
    // The three most recent are hits; the oldest was dropped and must be read again.
    for (const h of ["h7", "h8", "h9"]) expect(c.find(h)).toBe(store.get(h));
    expect(loader.count("h0")).toBe(1);
    await c.find("h0");
    expect(loader.count("h0")).toBe(2);
  });

  it("propagates loader errors and does not cache them", async () => {
    let fail = true;
    const rec = record(1);
    let calls = 0;
    const c = cache(async () => {
      calls++;
      if (fail) throw new Error("db down");
      return rec;
    });
    await expect(c.find("h1")).rejects.toThrow("db down");
    expect(c.size).toEqual({ found: 0, unknown: 0 });
    fail = false;
    expect(await c.find("h1")).toBe(rec);
    expect(calls).toBe(2);
  });

  it("rejects every concurrent waiter of a failed load, then retries", async () => {
    const gate = gatedLoader();
    const c = cache(gate.load);
    const a = c.find("h1");
    const b = c.find("h1");
    gate.pending[0]?.reject(new Error("timeout"));
    await expect(a).rejects.toThrow("timeout");
    await expect(b).rejects.toThrow("timeout");
    const retry = c.find("h1");
    expect(gate.pending).toHaveLength(2);
    gate.pending[1]?.resolve(null);
    expect(await retry).toBeNull();
  });
});
