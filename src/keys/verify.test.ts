import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MemoryLimiter } from "../ratelimit/memory.js";
import { hashKey } from "./format.js";
import { scopeMask } from "./permissions.js";
import { type AllowList, parseAllowList } from "./ip.js";
import {
  checkKey,
  type KeyLookup,
  type KeyRecord,
  KeyVerifier,
  type Verdict,
  type VerifierOptions,
} from "./verify.js";

const KEY_A = `pk_live_${"a".repeat(32)}`;
const KEY_B = `pk_live_${"b".repeat(32)}`;
const UNKNOWN = `pk_live_${"c".repeat(32)}`;
const IP = "203.0.113.7";
const OTHER_IP = "198.51.100.9";
/** Inside the first one-minute window (0..59_999). */
const T0 = 1_000;

function allow(...values: string[]): AllowList {
  const result = parseAllowList(values);
  if (!result.ok) throw new Error("bad allow-list in test");
  return result.list;
}

function record(overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: 1,
    name: "test key",
    prefix: "pk_live_aaaa",
    scopes: "delete",
    ownerId: 7,
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
    grants: overrides.grants ?? scopeMask(overrides.scopes ?? "delete"),
  };
}

/** A Map-backed lookup that records every hash it is asked for. */
class StubLookup implements KeyLookup {
  readonly byHash = new Map<string, KeyRecord>();
  readonly calls: string[] = [];
  add(key: string, rec: KeyRecord): this {
    this.byHash.set(hashKey(key), rec);
    return this;
  }
  find(hash: string): KeyRecord | null {
    this.calls.push(hash);
    return this.byHash.get(hash) ?? null;
  }
}

function codeOf(v: Verdict): string {
  return v.ok ? "OK" : v.code;
}

let limiter: MemoryLimiter;
beforeEach(() => {
  limiter = new MemoryLimiter();
});
afterEach(() => {
  limiter.close();
});

function verifier(lookup: KeyLookup, opts: Partial<VerifierOptions> = {}): KeyVerifier {
  return new KeyVerifier({
    lookup,
    limiter,
    defaultRateLimit: 100,
    failedAttemptLimit: 0,
    ...opts,
  });
}

describe("checkKey", () => {
  it("passes a clean record", () => {
    expect(checkKey(record(), IP, T0)).toBeNull();
  });

  it("applies revoked, expired, owner, IP in that order", () => {
    const all = record({
      revokedAt: 0,
      expiresAt: T0,
      ownerUsable: false,
      allowedIps: allow("10.0.0.0/8"),
    });
    expect(checkKey(all, IP, T0)).toBe("API_KEY_REVOKED");
    expect(checkKey({ ...all, revokedAt: null }, IP, T0)).toBe("API_KEY_EXPIRED");
    expect(checkKey({ ...all, revokedAt: null, expiresAt: null }, IP, T0)).toBe("INVALID_USER");
    expect(checkKey({ ...all, revokedAt: null, expiresAt: null, ownerUsable: true }, IP, T0)).toBe(
      "IP_NOT_ALLOWED",
    );
  });

  it("treats now === expiresAt as expired and one millisecond before as valid", () => {
    const rec = record({ expiresAt: 50_000 });
    expect(checkKey(rec, IP, 49_999)).toBeNull();
    expect(checkKey(rec, IP, 50_000)).toBe("API_KEY_EXPIRED");
    expect(checkKey(rec, IP, 50_001)).toBe("API_KEY_EXPIRED");
  });

  it("allows a client inside the allow-list", () => {
    expect(checkKey(record({ allowedIps: allow("203.0.113.0/24") }), IP, T0)).toBeNull();
    expect(checkKey(record({ allowedIps: allow("203.0.113.0/24") }), OTHER_IP, T0)).toBe(
      "IP_NOT_ALLOWED",
    );
  });

  it("refuses every client with an empty (non-null) allow-list", () => {
    expect(checkKey(record({ allowedIps: allow() }), IP, T0)).toBe("IP_NOT_ALLOWED");
  });
});

describe("KeyVerifier: verdict order", () => {
  it("MISSING_API_KEY for an absent or empty header, without a lookup", async () => {
    const lookup = new StubLookup();
    const v = verifier(lookup);
    for (const header of [undefined, ""]) {
      expect(await v.verify({ header, ip: IP, method: "GET", now: T0 })).toEqual({
        ok: false,
        code: "MISSING_API_KEY",
      });
    }
    expect(lookup.calls).toEqual([]);
  });

  it("INVALID_API_KEY for a malformed key, never calling the lookup", async () => {
    const lookup = new StubLookup().add(KEY_A, record());
    const v = verifier(lookup);
    for (const header of [
      "nope",
      KEY_A.toUpperCase(),
      ` ${KEY_A}`,
      `${KEY_A} `,
      `Bearer ${KEY_A}`,
      KEY_A.slice(0, -1),
    ]) {
      const verdict = await v.verify({ header, ip: IP, method: "GET", now: T0 });
      expect(verdict).toEqual({ ok: false, code: "INVALID_API_KEY" });
    }
    expect(lookup.calls).toEqual([]);
  });

  it("INVALID_API_KEY for a well-formed but unknown key, looked up by its hash", async () => {
    const lookup = new StubLookup().add(KEY_A, record());
    const verdict = await verifier(lookup).verify({
      header: UNKNOWN,
      ip: IP,
      method: "GET",
      now: T0,
    });
    expect(verdict).toEqual({ ok: false, code: "INVALID_API_KEY", unknown: true });
    expect(lookup.calls).toEqual([hashKey(UNKNOWN)]);
  });

  it("the first failing check wins when a record fails several", async () => {
    const failingAll = {
      revokedAt: 0,
      expiresAt: T0,
      ownerUsable: false,
      allowedIps: allow("10.0.0.0/8"),
      scopes: "read" as const,
      rateLimit: 0,
    };
    // Each step fixes the check that won the step before it.
    const steps: [Partial<KeyRecord>, string][] = [
      [{}, "API_KEY_REVOKED"],
      [{ revokedAt: null }, "API_KEY_EXPIRED"],
      [{ expiresAt: T0 + 1 }, "INVALID_USER"],
      [{ ownerUsable: true }, "IP_NOT_ALLOWED"],
      [{ allowedIps: allow(IP) }, "RATE_LIMIT_EXCEEDED"],
      [{ rateLimit: 10 }, "SCOPE_REQUIRED"],
      [{ scopes: "delete", grants: scopeMask("delete") }, "OK"],
    ];
    let rec = record(failingAll);
    let id = 100;
    for (const [fix, expected] of steps) {
      // A fresh id per step keeps the rate budget of one step out of the next.
      rec = { ...rec, ...fix, id: id++ };
      const lookup = new StubLookup().add(KEY_A, rec);
      const verdict = await verifier(lookup).verify({
        header: KEY_A,
        ip: IP,
        method: "DELETE",
        now: T0,
      });
      expect(codeOf(verdict)).toBe(expected);
    }
  });

  it("returns the key record with record-level refusals", async () => {
    const rec = record({ revokedAt: 5 });
    const verdict = await verifier(new StubLookup().add(KEY_A, rec)).verify({
      header: KEY_A,
      ip: IP,
      method: "GET",
      now: T0,
    });
    expect(verdict).toEqual({ ok: false, code: "API_KEY_REVOKED", key: rec });
  });

  it("MISSING_API_KEY beats a throttled IP", async () => {
    const v = verifier(new StubLookup(), { failedAttemptLimit: 1 });
    await v.verify({ header: "bad", ip: IP, method: "GET", now: T0 });
    const verdict = await v.verify({ header: undefined, ip: IP, method: "GET", now: T0 });
    expect(codeOf(verdict)).toBe("MISSING_API_KEY");
  });

  it("SCOPE_REQUIRED carries the scope the method needs and the rate decision", async () => {
    const lookup = new StubLookup().add(KEY_A, record({ scopes: "read", rateLimit: 5 }));
    const v = verifier(lookup);
    const post = await v.verify({ header: KEY_A, ip: IP, method: "POST", now: T0 });
    expect(post).toMatchObject({ ok: false, code: "SCOPE_REQUIRED", scopeNeeded: "write" });
    expect(post.ok ? null : post.rate).toEqual({
      allowed: true,
      limit: 5,
      remaining: 4,
      resetMs: 59_000,
    });
    const del = await v.verify({ header: KEY_A, ip: IP, method: "DELETE", now: T0 });
    expect(del).toMatchObject({ ok: false, code: "SCOPE_REQUIRED", scopeNeeded: "delete" });
    const get = await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 });
    expect(get.ok).toBe(true);
  });

  it("accepts a valid key with its record and rate decision", async () => {
    const rec = record({ scopes: "write" });
    const verdict = await verifier(new StubLookup().add(KEY_A, rec)).verify({
      header: KEY_A,
      ip: IP,
      method: "PATCH",
      now: T0,
    });
    expect(verdict).toEqual({
      ok: true,
      key: rec,
      rate: { allowed: true, limit: 100, remaining: 99, resetMs: 59_000 },
    });
  });

  it("works with an async lookup", async () => {
    const rec = record();
    const lookup: KeyLookup = { find: async (h) => (h === hashKey(KEY_A) ? rec : null) };
    const v = verifier(lookup);
    expect(codeOf(await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 }))).toBe("OK");
    expect(codeOf(await v.verify({ header: UNKNOWN, ip: IP, method: "GET", now: T0 }))).toBe(
      "INVALID_API_KEY",
    );
  });
});

describe("KeyVerifier: expiry boundary", () => {
  it("refuses at now === expiresAt, accepts one millisecond before", async () => {
    const v = verifier(new StubLookup().add(KEY_A, record({ expiresAt: 30_000 })));
    const before = await v.verify({ header: KEY_A, ip: IP, method: "GET", now: 29_999 });
    expect(codeOf(before)).toBe("OK");
    const atExpiry = await v.verify({ header: KEY_A, ip: IP, method: "GET", now: 30_000 });
    expect(codeOf(atExpiry)).toBe("API_KEY_EXPIRED");
  });
});

describe("KeyVerifier: per-key rate limits", () => {
  it("refuses past the key's own per-minute limit, then allows in the next window", async () => {
    const v = verifier(new StubLookup().add(KEY_A, record({ rateLimit: 2 })));
    const req = { header: KEY_A, ip: IP, method: "GET" };
    expect(codeOf(await v.verify({ ...req, now: T0 }))).toBe("OK");
    expect(codeOf(await v.verify({ ...req, now: T0 + 1 }))).toBe("OK");
    const third = await v.verify({ ...req, now: T0 + 2 });
    expect(third).toMatchObject({
      ok: false,
      code: "RATE_LIMIT_EXCEEDED",
      rate: { allowed: false, limit: 2, remaining: 0, resetMs: 60_000 - (T0 + 2) },
    });
    expect(third.ok ? undefined : third.throttled).toBeUndefined();
    expect(codeOf(await v.verify({ ...req, now: 60_000 }))).toBe("OK");
  });

  it("keeps the budgets of two keys independent", async () => {
    const lookup = new StubLookup()
      .add(KEY_A, record({ id: 1, rateLimit: 1 }))
      .add(KEY_B, record({ id: 2, rateLimit: 1 }));
    const v = verifier(lookup);
    const req = { ip: IP, method: "GET", now: T0 };
    expect(codeOf(await v.verify({ ...req, header: KEY_A }))).toBe("OK");
    expect(codeOf(await v.verify({ ...req, header: KEY_A }))).toBe("RATE_LIMIT_EXCEEDED");
    expect(codeOf(await v.verify({ ...req, header: KEY_B }))).toBe("OK");
    expect(codeOf(await v.verify({ ...req, header: KEY_B }))).toBe("RATE_LIMIT_EXCEEDED");
  });

  it("shares one budget across client IPs for the same key", async () => {
    const v = verifier(new StubLookup().add(KEY_A, record({ rateLimit: 1 })));
    expect(codeOf(await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 }))).toBe("OK");
    const other = await v.verify({ header: KEY_A, ip: OTHER_IP, method: "GET", now: T0 });
    expect(codeOf(other)).toBe("RATE_LIMIT_EXCEEDED");
  });

  it("uses the default limit when the record has none", async () => {
    const v = verifier(new StubLookup().add(KEY_A, record({ rateLimit: null })), {
      defaultRateLimit: 3,
    });
    const req = { header: KEY_A, ip: IP, method: "GET", now: T0 };
    const first = await v.verify(req);
    expect(first.ok ? first.rate : null).toEqual({
      allowed: true,
      limit: 3,
      remaining: 2,
      resetMs: 59_000,
    });
    await v.verify(req);
    await v.verify(req);
    expect(codeOf(await v.verify(req))).toBe("RATE_LIMIT_EXCEEDED");
  });

  it("prefers the record's own limit over the default", async () => {
    const v = verifier(new StubLookup().add(KEY_A, record({ rateLimit: 5 })), {
      defaultRateLimit: 1,
    });
    const req = { header: KEY_A, ip: IP, method: "GET", now: T0 };
    for (let i = 0; i < 5; i++) expect(codeOf(await v.verify(req))).toBe("OK");
    expect(codeOf(await v.verify(req))).toBe("RATE_LIMIT_EXCEEDED");
  });

  it("does not spend the key's budget on record-level refusals", async () => {
    const rec = record({ rateLimit: 1, allowedIps: allow(IP) });
    const v = verifier(new StubLookup().add(KEY_A, rec));
    for (let i = 0; i < 3; i++) {
      const refused = await v.verify({ header: KEY_A, ip: OTHER_IP, method: "GET", now: T0 });
      expect(codeOf(refused)).toBe("IP_NOT_ALLOWED");
    }
    expect(codeOf(await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 }))).toBe("OK");
  });
});

describe("KeyVerifier: failed-attempt throttling", () => {
  const LIMIT = 3;

  function setup(failedAttemptLimit = LIMIT) {
    const lookup = new StubLookup().add(KEY_A, record({ rateLimit: 100 }));
    return { lookup, v: verifier(lookup, { failedAttemptLimit }) };
  }

  it("throttles an IP after the limit of invalid attempts, even with a valid key", async () => {
    const { lookup, v } = setup();
    const bad = ["garbage", UNKNOWN, "pk_live_short"];
    for (const header of bad) {
      const verdict = await v.verify({ header, ip: IP, method: "GET", now: T0 });
      expect(codeOf(verdict)).toBe("INVALID_API_KEY");
    }
    const callsBefore = lookup.calls.length;
    const verdict = await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 + 10 });
    expect(verdict).toMatchObject({
      ok: false,
      code: "RATE_LIMIT_EXCEEDED",
      throttled: true,
      rate: { allowed: false, limit: LIMIT, remaining: 0, resetMs: 60_000 - (T0 + 10) },
    });
    expect(verdict.ok ? "ok" : verdict.key).toBeUndefined();
    // Throttled before the lookup: a throttled IP cannot probe keys.
    expect(lookup.calls.length).toBe(callsBefore);
  });

  it("allows exactly `failedAttemptLimit` invalid attempts before throttling", async () => {
    const { v } = setup();
    for (let i = 0; i < LIMIT - 1; i++) {
      await v.verify({ header: UNKNOWN, ip: IP, method: "GET", now: T0 });
    }
    // LIMIT - 1 failures so far: a valid key still passes.
    expect(codeOf(await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 }))).toBe("OK");
    expect(codeOf(await v.verify({ header: UNKNOWN, ip: IP, method: "GET", now: T0 }))).toBe(
      "INVALID_API_KEY",
    );
    const next = await v.verify({ header: UNKNOWN, ip: IP, method: "GET", now: T0 });
    expect(next).toMatchObject({ code: "RATE_LIMIT_EXCEEDED", throttled: true });
  });

  it("leaves other IPs unaffected", async () => {
    const { v } = setup();
    for (let i = 0; i < LIMIT; i++) await v.verify({ header: "x", ip: IP, method: "GET", now: T0 });
    const other = await v.verify({ header: KEY_A, ip: OTHER_IP, method: "GET", now: T0 });
    expect(codeOf(other)).toBe("OK");
    const bad = await v.verify({ header: "x", ip: OTHER_IP, method: "GET", now: T0 });
    expect(codeOf(bad)).toBe("INVALID_API_KEY");
  });

  it("clears in the next minute window", async () => {
    const { v } = setup();
    for (let i = 0; i < LIMIT; i++) await v.verify({ header: "x", ip: IP, method: "GET", now: T0 });
    const last = await v.verify({ header: KEY_A, ip: IP, method: "GET", now: 59_999 });
    expect(codeOf(last)).toBe("RATE_LIMIT_EXCEEDED");
    expect(codeOf(await v.verify({ header: KEY_A, ip: IP, method: "GET", now: 60_000 }))).toBe(
      "OK",
    );
  });

  it("does not count refusals of a known key (revoked) as failed attempts", async () => {
    const lookup = new StubLookup()
      .add(KEY_A, record({ id: 1 }))
      .add(KEY_B, record({ id: 2, revokedAt: 0 }));
    const v = verifier(lookup, { failedAttemptLimit: 1 });
    for (let i = 0; i < 3; i++) {
      const verdict = await v.verify({ header: KEY_B, ip: IP, method: "GET", now: T0 });
      expect(codeOf(verdict)).toBe("API_KEY_REVOKED");
    }
    expect(codeOf(await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 }))).toBe("OK");
  });

  it("is disabled by failedAttemptLimit 0", async () => {
    const { v } = setup(0);
    for (let i = 0; i < 50; i++) {
      const verdict = await v.verify({ header: UNKNOWN, ip: IP, method: "GET", now: T0 });
      expect(codeOf(verdict)).toBe("INVALID_API_KEY");
    }
    expect(limiter.size).toBe(0);
    expect(codeOf(await v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 }))).toBe("OK");
  });
});

describe("KeyVerifier: answers without a promise when nothing needs waiting for", () => {
  it("returns a value for a key the lookup has at hand, with the memory limiter", () => {
    const v = verifier(new StubLookup().add(KEY_A, record()), { failedAttemptLimit: 5 });
    const verdict = v.verify({ header: KEY_A, ip: IP, method: "GET", now: T0 });
    expect(verdict).not.toBeInstanceOf(Promise);
    expect(codeOf(verdict as Verdict)).toBe("OK");
    const bad = v.verify({ header: "nope", ip: IP, method: "GET", now: T0 });
    expect(bad).not.toBeInstanceOf(Promise);
    expect(codeOf(bad as Verdict)).toBe("INVALID_API_KEY");
  });

  it("returns a promise, and the same verdicts, when the lookup reads the store", async () => {
    const stub = new StubLookup().add(KEY_A, record({ scopes: "read" }));
    const slow: KeyLookup = { find: (hash) => Promise.resolve(stub.find(hash)) };
    const v = verifier(slow);
    const pending = v.verify({ header: KEY_A, ip: IP, method: "POST", now: T0 });
    expect(pending).toBeInstanceOf(Promise);
    expect(codeOf(await pending)).toBe("SCOPE_REQUIRED");
    expect(codeOf(await v.verify({ header: UNKNOWN, ip: IP, method: "GET", now: T0 }))).toBe(
      "INVALID_API_KEY",
    );
  });
});
