import { describe, expect, it } from "vitest";
import { EpochTracker } from "../cluster/epoch.js";
import type { Limiter, RateDecision } from "../ratelimit/limiter.js";
import { hashKey } from "./format.js";
import { scopeMask } from "./permissions.js";
import { type KeyRecord, KeyVerifier } from "./verify.js";

const KEY = `pk_live_${"ab".repeat(16)}`;

function record(over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: 1,
    name: "k",
    prefix: KEY.slice(0, 12),
    scopes: "read",
    ownerId: 1,
    ownerUsername: "admin",
    ownerRole: "admin",
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
    ...over,
    grants: over.grants ?? scopeMask(over.scopes ?? "read"),
  };
}

/** A shared limiter stand-in that reports the cluster's eviction epoch with every hit. */
function limiterAt(epoch: () => number, generation?: () => string): Limiter {
  const decision = (): RateDecision => ({
    allowed: true,
    limit: 10,
    remaining: 9,
    resetMs: 1,
    epoch: epoch(),
    ...(generation ? { generation: generation() } : {}),
  });
  return { hit: decision, peek: decision, reset: () => {} };
}

describe("KeyVerifier with a cluster epoch", () => {
  it("re-reads a cached key when the budget check reveals an eviction it has not applied", async () => {
    // The cache still holds the key as active; the store already has it revoked.
    let cached: KeyRecord | null = record();
    const stored = record({ revokedAt: 1 });
    let epoch = 0;
    let applied = 0;
    const verifier = new KeyVerifier({
      lookup: { find: (h) => (h === hashKey(KEY) ? (cached ?? stored) : null) },
      limiter: limiterAt(() => epoch),
      defaultRateLimit: 10,
      failedAttemptLimit: 0,
      staleAfter: (e) => {
        if (e <= applied) return false;
        applied = e;
        cached = null;
        return true;
      },
    });
    const req = { header: KEY, ip: "127.0.0.1", method: "GET", now: 10 };
    expect((await verifier.verify(req)).ok).toBe(true);
    epoch = 1; // another instance revoked it; its message has not arrived here yet
    const v = await verifier.verify(req);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.code).toBe("API_KEY_REVOKED");
    expect(applied).toBe(1);
  });

  it("does not re-read when the epoch is one it has applied", async () => {
    let reads = 0;
    const verifier = new KeyVerifier({
      lookup: {
        find: () => {
          reads++;
          return record();
        },
      },
      limiter: limiterAt(() => 5),
      defaultRateLimit: 10,
      failedAttemptLimit: 0,
      staleAfter: (e) => e > 5,
    });
    await verifier.verify({ header: KEY, ip: "127.0.0.1", method: "GET", now: 10 });
    expect(reads).toBe(1);
  });

  it("re-reads a cached key when Redis restarted empty and its epoch is low again", async () => {
    let cached: KeyRecord | null = record();
    const stored = record({ revokedAt: 1 });
    let epoch = 20;
    let generation = "before";
    const applied = new EpochTracker(() => {
      cached = null;
    });
    const verifier = new KeyVerifier({
      lookup: { find: (h) => (h === hashKey(KEY) ? (cached ?? stored) : null) },
      limiter: limiterAt(
        () => epoch,
        () => generation,
      ),
      defaultRateLimit: 10,
      failedAttemptLimit: 0,
      staleAfter: (e, g) => applied.observe(e, g),
    });
    applied.observe(20, "before");
    cached = record();
    const req = { header: KEY, ip: "127.0.0.1", method: "GET", now: 10 };
    expect((await verifier.verify(req)).ok).toBe(true);
    // Redis came back empty; one revocation counted the new epoch to 1, its message was lost.
    epoch = 1;
    generation = "after";
    const v = await verifier.verify(req);
    expect(!v.ok && v.code).toBe("API_KEY_REVOKED");
  });
});

describe("KeyVerifier when an eviction arrives while the budget is counted", () => {
  it("re-reads the key though the eviction's epoch is already applied by then", async () => {
    // The race: the key is read from the cache (still active), the budget call goes out, the
    // eviction message arrives and is applied (cache cleared, epoch marked seen), then the
    // budget answers with that epoch — which is no longer news. The key must still be re-read.
    let cached: KeyRecord | null = record();
    const stored = record({ revokedAt: 1 });
    let generation = 0;
    let epoch = 0;
    let applied = 0;
    const evict = () => {
      cached = null;
      generation++;
      applied = epoch;
    };
    let racing = false;
    const limiter: Limiter = {
      hit: async () => {
        if (racing) {
          epoch = 1;
          evict();
        }
        return { allowed: true, limit: 10, remaining: 9, resetMs: 1, epoch };
      },
      peek: () => ({ allowed: true, limit: 10, remaining: 9, resetMs: 1 }),
      reset: () => {},
    };
    const verifier = new KeyVerifier({
      lookup: {
        find: (h) => (h === hashKey(KEY) ? (cached ?? stored) : null),
        version: () => generation,
      },
      limiter,
      defaultRateLimit: 10,
      failedAttemptLimit: 0,
      staleAfter: (e) => e > applied,
    });
    const req = { header: KEY, ip: "127.0.0.1", method: "GET", now: 10 };
    expect((await verifier.verify(req)).ok).toBe(true);
    racing = true;
    const v = await verifier.verify(req);
    expect(!v.ok && v.code).toBe("API_KEY_REVOKED");
  });
});
