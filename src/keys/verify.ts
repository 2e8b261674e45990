import type { Role } from "../auth/principal.js";
import type { Limiter, RateDecision } from "../ratelimit/limiter.js";
import { hashKey, isWellFormedKey } from "./format.js";
import { type AllowList, ipAllowed } from "./ip.js";
import { type Scope, scopeAllows, scopeNeededFor } from "./scopes.js";

/** What verification needs to know about a stored key (and its owner), nothing more. */
export type KeyRecord = {
  id: number;
  name: string;
  prefix: string;
  scopes: Scope;
  ownerId: number;
  ownerUsername: string;
  ownerRole: Role;
  /** False when the owner is disabled or deleted. */
  ownerUsable: boolean;
  revokedAt: number | null;
  expiresAt: number | null;
  allowedIps: AllowList | null;
  /** Requests per minute; `null` means the configured default. */
  rateLimit: number | null;
  /** Display prefix of the key that replaced this one by a roll, if any. */
  replacedByPrefix: string | null;
};

export type FailureCode =
  | "MISSING_API_KEY"
  | "INVALID_API_KEY"
  | "API_KEY_REVOKED"
  | "API_KEY_EXPIRED"
  | "INVALID_USER"
  | "IP_NOT_ALLOWED"
  | "RATE_LIMIT_EXCEEDED"
  | "SCOPE_REQUIRED";

export type Verdict =
  | { ok: true; key: KeyRecord; rate: RateDecision }
  | {
      ok: false;
      code: FailureCode;
      key?: KeyRecord;
      rate?: RateDecision;
      /** Set on SCOPE_REQUIRED: the scope the method needs. */
      scopeNeeded?: Scope;
      /** Set on RATE_LIMIT_EXCEEDED from too many failed key attempts by this IP. */
      throttled?: boolean;
    };

export interface KeyLookup {
  find(hash: string): KeyRecord | null | Promise<KeyRecord | null>;
}

export type VerifyRequest = {
  /** The raw `X-API-Key` header, if any. */
  header: string | undefined;
  ip: string;
  method: string;
  now: number;
};

/**
 * The checks that need only the record, in the contract's order:
 * revoked, expired, owner, IP. `null` means the key passes them all.
 */
export function checkKey(key: KeyRecord, ip: string, now: number): FailureCode | null {
  if (key.revokedAt !== null) return "API_KEY_REVOKED";
  if (key.expiresAt !== null && now >= key.expiresAt) return "API_KEY_EXPIRED";
  if (!key.ownerUsable) return "INVALID_USER";
  if (key.allowedIps !== null && !ipAllowed(key.allowedIps, ip)) return "IP_NOT_ALLOWED";
  return null;
}

export type VerifierOptions = {
  lookup: KeyLookup;
  limiter: Limiter;
  /** Requests per minute for keys without their own limit. */
  defaultRateLimit: number;
  /** Failed (malformed or unknown) key attempts one IP may make per minute; 0 = unlimited. */
  failedAttemptLimit: number;
  /**
   * Told the eviction epoch a shared limiter reported; answers true when it is newer than
   * the evictions applied here (the cache has then been cleared and the key must be read again).
   */
  staleAfter?: (epoch: number) => boolean;
};

const MINUTE = 60_000;

/** Turns a request's key header into a verdict. No HTTP and no SQL: both come in as ports. */
export class KeyVerifier {
  constructor(private readonly opts: VerifierOptions) {}

  async verify(req: VerifyRequest): Promise<Verdict> {
    const { header, ip, method, now } = req;
    if (header === undefined || header === "") return { ok: false, code: "MISSING_API_KEY" };
    const failBucket = `keyfail:${ip}`;
    const failLimit = this.opts.failedAttemptLimit;
    if (failLimit > 0) {
      const spent = await this.opts.limiter.peek(failBucket, failLimit, MINUTE, now);
      if (!spent.allowed)
        return { ok: false, code: "RATE_LIMIT_EXCEEDED", rate: spent, throttled: true };
    }
    const key = isWellFormedKey(header) ? await this.opts.lookup.find(hashKey(header)) : null;
    if (key === null) {
      if (failLimit > 0) await this.opts.limiter.hit(failBucket, failLimit, MINUTE, now);
      return { ok: false, code: "INVALID_API_KEY" };
    }
    const failed = checkKey(key, ip, now);
    if (failed) return { ok: false, code: failed, key };
    const limit = key.rateLimit ?? this.opts.defaultRateLimit;
    const rate = await this.opts.limiter.hit(`key:${key.id}`, limit, MINUTE, now);
    if (rate.epoch !== undefined && this.opts.staleAfter?.(rate.epoch)) {
      // Another instance changed a key after this one cached it: decide on a fresh read.
      return this.recheck(header, ip, method, now, rate);
    }
    if (!rate.allowed) return { ok: false, code: "RATE_LIMIT_EXCEEDED", key, rate };
    if (!scopeAllows(key.scopes, method)) {
      return { ok: false, code: "SCOPE_REQUIRED", key, rate, scopeNeeded: scopeNeededFor(method) };
    }
    return { ok: true, key, rate };
  }

  /** The checks again on a fresh read, with the budget already counted. */
  private async recheck(
    header: string,
    ip: string,
    method: string,
    now: number,
    rate: RateDecision,
  ): Promise<Verdict> {
    const key = await this.opts.lookup.find(hashKey(header));
    if (key === null) return { ok: false, code: "INVALID_API_KEY" };
    const failed = checkKey(key, ip, now);
    if (failed) return { ok: false, code: failed, key };
    if (!rate.allowed) return { ok: false, code: "RATE_LIMIT_EXCEEDED", key, rate };
    if (!scopeAllows(key.scopes, method)) {
      return { ok: false, code: "SCOPE_REQUIRED", key, rate, scopeNeeded: scopeNeededFor(method) };
    }
    return { ok: true, key, rate };
  }
}
