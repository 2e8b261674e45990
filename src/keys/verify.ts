import type { KeyObject } from "node:crypto";
import type { Role } from "../auth/principal.js";
import type { Limiter, QuotaDecision, QuotaHit, RateDecision } from "../ratelimit/limiter.js";
import { type Environment, hashKey, isWellFormedKey, type SigningMode } from "./format.js";
import { type AllowList, ipAllowed } from "./ip.js";
import { type QuotaPlan, type QuotaWindow, quotaWindow } from "./quota.js";
import { methodNeed, parsePermissions, ROLE_MASKS } from "./permissions.js";
import { type Scope, scopeNeededFor } from "./scopes.js";
import type { SignatureCode } from "../credentials/signature.js";
import type { TokenCode, TokenVerdict } from "../credentials/tokens.js";

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
  /** Admitted calls per day or month, with the period last worked out; null: no quota. */
  quota?: QuotaPlan | null;
  /** Display prefix of the key that replaced this one by a roll, if any. */
  replacedByPrefix: string | null;
  /** Whether calls must be signed (RFC 9421): off, optional (a signed call must verify) or required. */
  signing: SigningMode;
  /**
   * The HMAC key: the signing secret's UTF-8 bytes, opened from its sealed form when the key
   * was read. Null without a secret, or when this server's master key cannot open it.
   */
  signingKey: KeyObject | null;
  /** Ids (`jti`) of this key's access tokens revoked before their expiry; null when none. */
  revokedTokens: ReadonlySet<string> | null;
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
  /** The key's quota for the period is spent (after the budget, before the permissions). */
  | "QUOTA_EXCEEDED"
  | "SCOPE_REQUIRED"
  /** The key has the permission, its owner's role does not: a key never exceeds its owner. */
  | "FORBIDDEN"
  | SignatureCode
  | TokenCode;

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
  | { ok: true; key: KeyRecord; rate: RateDecision; quota?: QuotaDecision }
  | {
      ok: false;
      code: FailureCode;
      key?: KeyRecord;
      rate?: RateDecision;
      /** The key's quota as it stands, for a key with one (its headers, and QUOTA_EXCEEDED). */
      quota?: QuotaDecision;
      /** Set on SCOPE_REQUIRED: the scope the method needs. */
      scopeNeeded?: Scope;
      /**
       * Set on SCOPE_REQUIRED when the key has the permission and its access token's scope
       * left it out: the token's scope.
       */
      tokenScope?: readonly string[];
      /** Set on SCOPE_REQUIRED and FORBIDDEN: the permission bit the route needs. */
      need?: number;
      /** Set on RATE_LIMIT_EXCEEDED from too many failed key attempts by this IP. */
      throttled?: boolean;
      /** Set on INVALID_API_KEY when the key was well-formed but no key has that value. */
      unknown?: boolean;
      /** Set on the signature refusals: what the verifier found. */
      signature?: SignatureFailure;
      /** Set on INVALID_TOKEN and TOKEN_EXPIRED: why, in words. */
      tokenReason?: string;
      /** Set on INVALID_TOKEN when the bearer value is no access token at all. */
      notAccessToken?: boolean;
    };

export interface KeyLookup {
  find(hash: string): KeyRecord | null | Promise<KeyRecord | null>;
  /** The hash of the key with this id (what an access token names), or null. */
  hashOf?(id: number): string | null | Promise<string | null>;
  /** Counts evictions: a key read before a change of it shows is stale. */
  version?(): number;
}

/** Verifies a request's signature for a key: null when it holds (a plain value unless nonces are remote). */
export interface SignatureCheck {
  check(key: KeyRecord): SignatureFailure | null | Promise<SignatureFailure | null>;
}

/** Verifies access tokens (`credentials/tokens.ts`): a plain value once a token is cached. */
export interface TokenCheck {
  verify(token: string): TokenVerdict | Promise<TokenVerdict>;
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
  signature?: SignatureCheck | undefined;
};

/** What the checks after the key's look-up read of a request. */
type Checked = Omit<VerifyRequest, "header">;

/** A request with an access token instead of a key. */
export type TokenRequest = Omit<VerifyRequest, "header" | "signature"> & {
  token: string;
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
  /** Access tokens, when the token exchange is on. */
  tokens?: TokenCheck;
  /**
   * Told of a key's quota once a call finds it at or past 80 % (`window.warnAt`) and the
   * window not yet marked as told of 100 %: what sends `key.quota_low`. Must not block.
   */
  quotaLow?: (key: KeyRecord, window: QuotaWindow, quota: QuotaDecision) => void;
};

const MINUTE = 60_000;

/** Applies `f` at once to a value, or once it arrives: keeps the cached path free of promises. */
function then<T, U>(v: T | Promise<T>, f: (t: T) => U | Promise<U>): U | Promise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

const MISSING: Verdict = { ok: false, code: "MISSING_API_KEY" };
const NO_TOKENS: Verdict = {
  ok: false,
  code: "INVALID_TOKEN",
  tokenReason: "this Keygate does not issue access tokens",
};
const GONE =
  "the key this token was issued for no longer exists on this Keygate; exchange a current key for a new token";
const REVOKED_TOKEN =
  "this access token was revoked (POST /api/v1/external/oauth/revoke); exchange the key for a new one";

/** A verified token's scope as a mask, worked out once per cached verdict. */
const scopeMasks = new WeakMap<object, number>();
function scopeMaskOf(v: Extract<TokenVerdict, { ok: true }>): number {
  let mask = scopeMasks.get(v.claims);
  if (mask === undefined) {
    const parsed = parsePermissions(v.scopes);
    mask = parsed.ok ? parsed.mask : 0;
    scopeMasks.set(v.claims, mask);
  }
  return mask;
}
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
    const seen = this.version();
    return then(this.opts.lookup.find(hash), (key) =>
      key === null ? this.failed(req, UNKNOWN) : this.decide(key, hash, req, seen),
    );
  }

  /**
   * An access token: verified (once, then from its cache), resolved to the key it was issued
   * for, and then the key's own checks from "revoked" on, with the key's permissions narrowed
   * to the token's scope. Revoking, rolling or narrowing the key therefore tells at once.
   */
  verifyToken(req: TokenRequest): Verdict | Promise<Verdict> {
    if (this.opts.tokens === undefined || this.opts.lookup.hashOf === undefined) return NO_TOKENS;
    const failLimit = this.opts.failedAttemptLimit;
    if (failLimit === 0) return this.tokenChecked(req);
    const spent = this.opts.limiter.peek(`keyfail:${req.ip}`, failLimit, MINUTE, req.now);
    if (spent instanceof Promise) return spent.then((s) => this.tokenAllowed(s, req));
    return this.tokenAllowed(spent, req);
  }

  // The token's path is a chain of methods, each taking the value or its promise: the cached
  // path makes no closure and no promise.
  private tokenAllowed(spent: RateDecision, req: TokenRequest): Verdict | Promise<Verdict> {
    if (!spent.allowed)
      return { ok: false, code: "RATE_LIMIT_EXCEEDED", rate: spent, throttled: true };
    return this.tokenChecked(req);
  }

  private tokenChecked(req: TokenRequest): Verdict | Promise<Verdict> {
    const v = (this.opts.tokens as TokenCheck).verify(req.token);
    if (v instanceof Promise) return v.then((x) => this.tokenVerified(x, req));
    return this.tokenVerified(v, req);
  }

  private tokenVerified(v: TokenVerdict, req: TokenRequest): Verdict | Promise<Verdict> {
    if (!v.ok) {
      const verdict: Verdict = { ok: false, code: v.code, tokenReason: v.reason };
      if (v.notAccessToken) verdict.notAccessToken = true;
      return this.failed(req, verdict);
    }
    const lookup = this.opts.lookup;
    const hash = (lookup.hashOf as NonNullable<KeyLookup["hashOf"]>).call(lookup, v.claims.kgk);
    if (hash instanceof Promise) return hash.then((h) => this.tokenHashed(h, v, req));
    return this.tokenHashed(hash, v, req);
  }

  private tokenHashed(
    hash: string | null,
    v: Extract<TokenVerdict, { ok: true }>,
    req: TokenRequest,
  ): Verdict | Promise<Verdict> {
    if (hash === null) return { ok: false, code: "INVALID_TOKEN", tokenReason: GONE };
    const seen = this.version();
    const key = this.opts.lookup.find(hash);
    if (key instanceof Promise) return key.then((k) => this.tokenKey(k, hash, v, req, seen));
    return this.tokenKey(key, hash, v, req, seen);
  }

  private tokenKey(
    key: KeyRecord | null,
    hash: string,
    v: Extract<TokenVerdict, { ok: true }>,
    req: TokenRequest,
    seen: number,
  ): Verdict | Promise<Verdict> {
    if (key === null) return { ok: false, code: "INVALID_TOKEN", tokenReason: GONE };
    const failed = checkKey(key, req.ip, req.now);
    if (failed) return this.withQuota({ ok: false, code: failed, key }, req.now);
    const refused = tokenRefusal(key, v);
    if (refused !== null)
      return this.withQuota(refused as Extract<Verdict, { ok: false }>, req.now);
    return this.count(key, hash, req, seen, v);
  }

  /** Counts a malformed or unknown key against the client IP's failed-attempt budget. */
  private failed(
    req: Pick<VerifyRequest, "ip" | "now">,
    verdict: Verdict,
  ): Verdict | Promise<Verdict> {
    const failLimit = this.opts.failedAttemptLimit;
    if (failLimit === 0) return verdict;
    return then(
      this.opts.limiter.hit(`keyfail:${req.ip}`, failLimit, MINUTE, req.now),
      () => verdict,
    );
  }

  private decide(
    key: KeyRecord,
    hash: string,
    req: VerifyRequest,
    seen: number,
  ): Verdict | Promise<Verdict> {
    const failed = checkKey(key, req.ip, req.now);
    if (failed) return this.withQuota({ ok: false, code: failed, key }, req.now);
    if (key.signing !== "off") {
      const check = req.signature;
      if (check !== undefined) {
        return then(check.check(key), (refused) =>
          refused === null
            ? this.count(key, hash, req, seen)
            : this.withQuota(
                { ok: false as const, code: refused.code, key, signature: refused },
                req.now,
              ),
        );
      }
      if (key.signing === "required")
        return this.withQuota({ ok: false, code: "SIGNATURE_REQUIRED", key }, req.now);
    }
    return this.count(key, hash, req, seen);
  }

  /**
   * A refusal before the budget, of a key with a quota: with the quota as it stands, so its
   * headers are sent (nothing is spent). Other keys' refusals are returned as they are.
   */
  private withQuota(v: Extract<Verdict, { ok: false }>, now: number): Verdict | Promise<Verdict> {
    const plan = v.key?.quota;
    const limiter = this.opts.limiter;
    if (plan === undefined || plan === null || limiter.peekQuota === undefined) return v;
    const w = quotaWindow(v.key?.id as number, plan, now);
    return then(limiter.peekQuota(w, now), (q) => {
      if (q !== null) v.quota = q;
      return v;
    });
  }

  /** The key cache's eviction count: a change between a key's read and its budget means a fresh read. */
  private version(): number {
    return this.opts.lookup.version?.() ?? 0;
  }

  /**
   * Counts the call against the key's budget, then decides what is left. `seen` is the key
   * cache's eviction count when the key was read; `token` the verified access token the call
   * came with, if it came with one.
   */
  private count(
    key: KeyRecord,
    hash: string,
    req: Checked,
    seen: number,
    token?: Extract<TokenVerdict, { ok: true }>,
  ): Verdict | Promise<Verdict> {
    const limit = key.rateLimit ?? this.opts.defaultRateLimit;
    const plan = key.quota;
    if (plan != null && this.opts.limiter.hitQuota !== undefined)
      return this.countQuota(key, plan, limit, hash, req, seen, token);
    return then(this.opts.limiter.hit(`key:${key.id}`, limit, MINUTE, req.now), (rate) => {
      if (
        (rate.epoch !== undefined && this.opts.staleAfter?.(rate.epoch, rate.generation)) ||
        this.version() !== seen
      ) {
        // Another instance changed a key after this one cached it, or an eviction arrived
        // while the budget was counted (after the key was read): decide on a fresh read.
        return this.recheck(hash, req, rate, token);
      }
      return admit(key, req, rate, token);
    });
  }

  /**
   * `count` for a key with a quota: the budget and the quota in one step of the limiter. The
   * permissions are decided first, here, so that only a call that will be admitted spends the
   * quota; the answer still follows the contract's order (budget, quota, permissions).
   */
  private countQuota(
    key: KeyRecord,
    plan: QuotaPlan,
    limit: number,
    hash: string,
    req: Checked,
    seen: number,
    token: Extract<TokenVerdict, { ok: true }> | undefined,
  ): Verdict | Promise<Verdict> {
    const w = quotaWindow(key.id, plan, req.now);
    const spend = permitted(key, req, token);
    const hitQuota = this.opts.limiter.hitQuota as NonNullable<Limiter["hitQuota"]>;
    const hit = hitQuota.call(this.opts.limiter, `key:${key.id}`, limit, MINUTE, req.now, w, spend);
    return then(hit, (rate: QuotaHit) => {
      const q = rate.quota;
      if (q !== null && q.used >= w.warnAt && w.warned < 100) this.opts.quotaLow?.(key, w, q);
      const spent = q !== null && spend && rate.allowed && q.allowed;
      if (
        (rate.epoch !== undefined && this.opts.staleAfter?.(rate.epoch, rate.generation)) ||
        this.version() !== seen
      ) {
        return this.recheck(hash, req, rate, token, spent ? w : null);
      }
      return admitQuota(key, req, rate, token);
    });
  }

  /**
   * Every check again on a fresh read, with the budget already counted: the record's, the
   * token's (revoked, or its key rolled), and signing turned on for an unsigned call. A
   * signature already verified is not verified again: its nonce is spent. A quota spent on
   * the stale read is given back when the fresh read refuses the call.
   */
  private async recheck(
    hash: string,
    req: Checked,
    rate: RateDecision | QuotaHit,
    token: Extract<TokenVerdict, { ok: true }> | undefined,
    spent: QuotaWindow | null = null,
  ): Promise<Verdict> {
    const v = await this.rechecked(hash, req, rate, token);
    if (spent !== null && !v.ok) {
      try {
        await this.opts.limiter.refundQuota?.(spent);
      } catch {
        // The store is away: the call stays counted, which errs on the side of the quota.
      }
    }
    return v;
  }

  private async rechecked(
    hash: string,
    req: Checked,
    rate: RateDecision | QuotaHit,
    token: Extract<TokenVerdict, { ok: true }> | undefined,
  ): Promise<Verdict> {
    const key = await this.opts.lookup.find(hash);
    if (key === null) return UNKNOWN;
    const failed = checkKey(key, req.ip, req.now);
    if (failed) return { ok: false, code: failed, key };
    if (token !== undefined) {
      const refused = tokenRefusal(key, token);
      if (refused !== null) return refused;
    } else if (key.signing === "required" && req.signature === undefined) {
      return { ok: false, code: "SIGNATURE_REQUIRED", key };
    }
    if ("quota" in rate && key.quota != null) return admitQuota(key, req, rate, token);
    return admit(key, req, rate, token);
  }
}

/** Whether the key's permissions and its owner's role allow the call: decided before the quota. */
function permitted(
  key: KeyRecord,
  req: Checked,
  token: Extract<TokenVerdict, { ok: true }> | undefined,
): boolean {
  const need = req.need ?? methodNeed(req.method);
  if (need === 0) return true;
  const grants = token === undefined ? key.grants : key.grants & scopeMaskOf(token);
  return (grants & need) !== 0 && (ROLE_MASKS[key.ownerRole] & need) !== 0;
}

/** `admit` for a key with a quota: the budget, then the quota, then the permissions. */
function admitQuota(
  key: KeyRecord,
  req: Checked,
  rate: QuotaHit,
  token: Extract<TokenVerdict, { ok: true }> | undefined,
): Verdict {
  const quota = rate.quota ?? undefined;
  if (!rate.allowed) return { ok: false, code: "RATE_LIMIT_EXCEEDED", key, rate, quota };
  if (quota !== undefined && !quota.allowed)
    return { ok: false, code: "QUOTA_EXCEEDED", key, rate, quota };
  const v = admit(key, req, rate, token);
  if (quota !== undefined) v.quota = quota;
  return v;
}

/** Why a token of a key that passed the record checks is refused, or null: revoked, or its key rolled. */
function tokenRefusal(key: KeyRecord, v: Extract<TokenVerdict, { ok: true }>): Verdict | null {
  if (key.revokedTokens?.has(v.claims.jti)) {
    return { ok: false, code: "INVALID_TOKEN", key, tokenReason: REVOKED_TOKEN };
  }
  if (key.replacedByPrefix !== null) {
    return {
      ok: false,
      code: "INVALID_TOKEN",
      key,
      tokenReason: `the key this token was issued for (${key.prefix}…) was rolled: exchange its replacement, ${key.replacedByPrefix}…, for a new token`,
    };
  }
  return null;
}

/**
 * The last checks, on a key that passed the record checks and was counted: its budget, its
 * permissions, and its owner's role (a key never exceeds its owner).
 */
function admit(
  key: KeyRecord,
  req: Checked,
  rate: RateDecision,
  token?: Extract<TokenVerdict, { ok: true }>,
): Verdict {
  if (!rate.allowed) return { ok: false, code: "RATE_LIMIT_EXCEEDED", key, rate };
  // 0: the route needs no permission (whoami); any valid key may call it.
  const need = req.need ?? methodNeed(req.method);
  if (need === 0) return { ok: true, key, rate };
  // An access token narrows the key to its scope.
  const grants = token === undefined ? key.grants : key.grants & scopeMaskOf(token);
  if ((grants & need) === 0) {
    const scopeNeeded = scopeNeededFor(req.method);
    const v: Verdict = { ok: false, code: "SCOPE_REQUIRED", key, rate, scopeNeeded, need };
    if (token !== undefined && (key.grants & need) !== 0) v.tokenScope = token.scopes;
    return v;
  }
  if ((ROLE_MASKS[key.ownerRole] & need) === 0) {
    return { ok: false, code: "FORBIDDEN", key, rate, need };
  }
  return { ok: true, key, rate };
}
