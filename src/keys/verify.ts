import type { Role } from "../auth/principal.js";
import type { Limiter, RateDecision } from "../ratelimit/limiter.js";
import { type Environment, hashKey, isWellFormedKey, type SigningMode } from "./format.js";
import { type AllowList, ipAllowed } from "./ip.js";
import { methodNeed, ROLE_MASKS } from "./permissions.js";
import { type Scope, scopeNeededFor } from "./scopes.js";
import type { SignatureCode } from "../credentials/signature.js";

/** What verification needs to know about a stored key (and its owner), nothing more. */
export type KeyRecord = {
  id: number;
  name: string;
  prefix: string;
  /** The preset the permissions are exactly, or `custom`. */
  scopes: Scope | "custom";
  /** The key's permissions as a mask (see `permissions.ts`): one `&` decides a request. */
  grants: number;
  /** The key's permissions, normalised, for messages and whoami. */
  permissions: readonly string[];
  environment: Environment;
  ownerId: number;
  ownerUsername: string;
  ownerRole: Role;
  /** False when the owner is disabled or deleted. */
  ownerUsable: boolean;
  /** Why the owner can or cannot act: named by the INVALID_USER refusal. */
  ownerStanding?: OwnerStanding;
  revokedAt: number | null;
  expiresAt: number | null;
  allowedIps: AllowList | null;
  /** Requests per minute; `null` means the configured default. */
  rateLimit: number | null;
  /** Display prefix of the key that replaced this one by a roll, if any. */
  replacedByPrefix: string | null;
  /** Whether calls must be signed (RFC 9421): off, optional (a signed call must verify) or required. */
  signing: SigningMode;
  /**
   * The HMAC key: the signing secret's UTF-8 bytes, opened from its sealed form when the key
   * was read. Null without a secret, or when this server's master key cannot open it.
   */
  signingKey: Uint8Array | null;
};

export type OwnerStanding = "active" | "disabled" | "deleted";

export type FailureCode =
  | "MISSING_API_KEY"
  | "INVALID_API_KEY"
  | "API_KEY_REVOKED"
  | "API_KEY_EXPIRED"
  | "INVALID_USER"
  | "IP_NOT_ALLOWED"
  | "RATE_LIMIT_EXCEEDED"
  | "SCOPE_REQUIRED"
  /** The key has the permission, its owner's role does not: a key never exceeds its owner. */
  | "FORBIDDEN"
  | SignatureCode;

/** How a request's signature failed: the code, and what the refusal tells the client. */
export type SignatureFailure = {
  code: SignatureCode;
  message: string;
  /** On SIGNATURE_INVALID: the signature base the server computed. */
  base?: string;
  /** On SIGNATURE_EXPIRED: seconds the signature's `created` is ahead (+) or behind (−). */
  skewS?: number;
};

export type Verdict =
  | { ok: true; key: KeyRecord; rate: RateDecision }
  | {
      ok: false;
      code: FailureCode;
      key?: KeyRecord;
      rate?: RateDecision;
      /** Set on SCOPE_REQUIRED: the scope the method needs. */
      scopeNeeded?: Scope;
      /** Set on SCOPE_REQUIRED and FORBIDDEN: the permission bit the route needs. */
      need?: number;
      /** Set on RATE_LIMIT_EXCEEDED from too many failed key attempts by this IP. */
      throttled?: boolean;
      /** Set on INVALID_API_KEY when the key was well-formed but no key has that value. */
      unknown?: boolean;
      /** Set on the signature refusals: what the verifier found. */
      signature?: SignatureFailure;
    };

export interface KeyLookup {
  find(hash: string): KeyRecord | null | Promise<KeyRecord | null>;
}

export type VerifyRequest = {
  /** The raw `X-API-Key` header, if any. */
  header: string | undefined;
  ip: string;
  method: string;
  /**
   * The permission bit the route needs (`permissions.ts`); without one, the method's action
   * on some resource (what a route Keygate does not serve needs, before its 404).
   */
  need?: number | undefined;
  now: number;
  /**
   * Verifies the request's signature for the key, when the request carries one; null when it
   * holds. Asked only of a key that signs, after the record checks and before the budget.
   */
  signature?: ((key: KeyRecord) => Promise<SignatureFailure | null>) | undefined;
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
   * Told the eviction epoch (and its generation) a shared limiter reported; answers true
   * when it is newer than the evictions applied here, or of a generation not seen here yet
   * (the cache has then been cleared and the key must be read again).
   */
  staleAfter?: (epoch: number, generation: string | undefined) => boolean;
};

const MINUTE = 60_000;

/** Applies `f` at once to a value, or once it arrives: keeps the cached path free of promises. */
function then<T, U>(v: T | Promise<T>, f: (t: T) => U | Promise<U>): U | Promise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

const MISSING: Verdict = { ok: false, code: "MISSING_API_KEY" };
const INVALID: Verdict = { ok: false, code: "INVALID_API_KEY" };
const UNKNOWN: Verdict = { ok: false, code: "INVALID_API_KEY", unknown: true };

/**
 * Turns a request's key header into a verdict. No HTTP and no SQL: both come in as ports.
 * When the key is cached and the limiter answers in memory, the verdict is returned as a
 * value, not a promise: that is the common case, and it costs no microtask.
 */
export class KeyVerifier {
  constructor(private readonly opts: VerifierOptions) {}

  verify(req: VerifyRequest): Verdict | Promise<Verdict> {
    const { header, ip, now } = req;
    if (header === undefined || header === "") return MISSING;
    const wellFormed = isWellFormedKey(header);
    // An IP past its failed-attempt budget is refused before any look-up, whatever it sends.
    const failLimit = this.opts.failedAttemptLimit;
    if (failLimit === 0) return this.lookUp(wellFormed, header, req);
    return then(this.opts.limiter.peek(`keyfail:${ip}`, failLimit, MINUTE, now), (spent) =>
      spent.allowed
        ? this.lookUp(wellFormed, header, req)
        : { ok: false, code: "RATE_LIMIT_EXCEEDED", rate: spent, throttled: true },
    );
  }

  private lookUp(
    wellFormed: boolean,
    header: string,
    req: VerifyRequest,
  ): Verdict | Promise<Verdict> {
    if (!wellFormed) return this.failed(req, INVALID);
    const hash = hashKey(header);
    return then(this.opts.lookup.find(hash), (key) =>
      key === null ? this.failed(req, UNKNOWN) : this.decide(key, hash, req),
    );
  }

  /** Counts a malformed or unknown key against the client IP's failed-attempt budget. */
  private failed(req: VerifyRequest, verdict: Verdict): Verdict | Promise<Verdict> {
    const failLimit = this.opts.failedAttemptLimit;
    if (failLimit === 0) return verdict;
    return then(
      this.opts.limiter.hit(`keyfail:${req.ip}`, failLimit, MINUTE, req.now),
      () => verdict,
    );
  }

  private decide(key: KeyRecord, hash: string, req: VerifyRequest): Verdict | Promise<Verdict> {
    const failed = checkKey(key, req.ip, req.now);
    if (failed) return { ok: false, code: failed, key };
    if (key.signing !== "off") {
      const check = req.signature;
      if (check !== undefined) {
        return check(key).then((refused) =>
          refused === null
            ? this.count(key, hash, req)
            : { ok: false, code: refused.code, key, signature: refused },
        );
      }
      if (key.signing === "required") return { ok: false, code: "SIGNATURE_REQUIRED", key };
    }
    return this.count(key, hash, req);
  }

  /** Counts the call against the key's budget, then decides what is left. */
  private count(key: KeyRecord, hash: string, req: VerifyRequest): Verdict | Promise<Verdict> {
    const limit = key.rateLimit ?? this.opts.defaultRateLimit;
    return then(this.opts.limiter.hit(`key:${key.id}`, limit, MINUTE, req.now), (rate) => {
      if (rate.epoch !== undefined && this.opts.staleAfter?.(rate.epoch, rate.generation)) {
        // Another instance changed a key after this one cached it: decide on a fresh read.
        return this.recheck(hash, req, rate);
      }
      return admit(key, req, rate);
    });
  }

  /** The checks again on a fresh read, with the budget already counted. */
  private async recheck(hash: string, req: VerifyRequest, rate: RateDecision): Promise<Verdict> {
    const key = await this.opts.lookup.find(hash);
    if (key === null) return UNKNOWN;
    const failed = checkKey(key, req.ip, req.now);
    if (failed) return { ok: false, code: failed, key };
    return admit(key, req, rate);
  }
}

/**
 * The last checks, on a key that passed the record checks and was counted: its budget, its
 * permissions, and its owner's role (a key never exceeds its owner).
 */
function admit(key: KeyRecord, req: VerifyRequest, rate: RateDecision): Verdict {
  if (!rate.allowed) return { ok: false, code: "RATE_LIMIT_EXCEEDED", key, rate };
  // 0: the route needs no permission (whoami); any valid key may call it.
  const need = req.need ?? methodNeed(req.method);
  if (need === 0) return { ok: true, key, rate };
  if ((key.grants & need) === 0) {
    const scopeNeeded = scopeNeededFor(req.method);
    return { ok: false, code: "SCOPE_REQUIRED", key, rate, scopeNeeded, need };
  }
  if ((ROLE_MASKS[key.ownerRole] & need) === 0) {
    return { ok: false, code: "FORBIDDEN", key, rate, need };
  }
  return { ok: true, key, rate };
}
