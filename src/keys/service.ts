import type { KeyObject } from "node:crypto";
import type { Audit } from "../audit.js";
import { actorId, describe, type Principal, type Role } from "../auth/principal.js";
import { requireAdmin, type UserRecord, usable } from "../auth/service.js";
import { requireTwoFactorFor, type TwoFactorPolicy } from "../auth/twofactor.js";
import { AppError, conflict, type ErrorCode, forbidden, invalid, notFound } from "../errors.js";
import { parseExpiry } from "./expiry.js";
import {
  type Credential,
  type Environment,
  isEnvironment,
  isSigningMode,
  type MintedKey,
  mintKey,
  mintSigningSecret,
  type SigningMode,
} from "./format.js";
import { type AllowList, parseAllowList } from "./ip.js";
import {
  beyondRole,
  normalize,
  parsePermissions,
  SCOPE_PERMISSIONS,
  scopeOf,
} from "./permissions.js";
import {
  type KeyQuota,
  parseQuota,
  quotaPlan,
  type QuotaUsage,
  type QuotaView,
  quotaView,
} from "./quota.js";
import { isScope, type Scope } from "./scopes.js";
import type { KeyRecord, OwnerStanding } from "./verify.js";
import type { NewEvent } from "../events/catalogue.js";

/** Whether a key's owner can act: a key acts for its owner, so it works only for an active one. */
export type OwnerState = "active" | "disabled" | "deleted";

/**
 * What a key is, first match wins: revoked (for good), its owner deleted (for good), its
 * owner disabled (until re-enabled), expired (until its expiry is moved), else active.
 */
export type KeyStatus = "active" | "revoked" | "expired" | "owner_disabled" | "owner_deleted";

export const KEY_STATUSES: readonly KeyStatus[] = [
  "active",
  "revoked",
  "expired",
  "owner_disabled",
  "owner_deleted",
];

/** A key as stored: everything but the plaintext, which is never kept. */
export type StoredKey = {
  id: number;
  name: string;
  description: string | null;
  keyHash: string;
  keyPrefix: string;
  /** The preset the permissions are exactly, or `custom`: kept for clients of the old field. */
  scopes: Scope | "custom";
  /** Normalised `resource:action` permissions (see `permissions.ts`). */
  permissions: string[];
  environment: Environment;
  ownerId: number;
  allowedIps: string[] | null;
  rateLimit: number | null;
  /** Admitted calls per day or month; null: none. */
  quota: KeyQuota | null;
  expiresAt: string | null;
  createdAt: string;
  createdBy: number | null;
  updatedAt: string;
  revokedAt: string | null;
  revokedBy: number | null;
  /** The last call the key checks accepted, whatever the route then answered. */
  lastUsedAt: string | null;
  lastUsedIp: string | null;
  /** The last call the key checks refused, and the refusal's error code. */
  lastRefusedAt: string | null;
  lastRefusedIp: string | null;
  lastRefusedCode: string | null;
  rolledFromId: number | null;
  replacedById: number | null;
  /**
   * The first key of the roll chain this key belongs to, whose quota count it shares (a
   * roll does not give the quota back); null when it was not rolled from another key.
   */
  quotaRootId: number | null;
  signing: SigningMode;
  /** The signing secret sealed under the master key (`credentials/secrets.ts`), or null. */
  signingSecret: string | null;
  /** Access tokens issued for the key, and when the last one was. */
  tokensIssued: number;
  lastTokenAt: string | null;
  /** The owner's standing as it was read with the key. */
  ownerState: OwnerState;
};

export type NewKey = Omit<
  StoredKey,
  | "id"
  | "revokedAt"
  | "revokedBy"
  | "lastUsedAt"
  | "lastUsedIp"
  | "lastRefusedAt"
  | "lastRefusedIp"
  | "lastRefusedCode"
  | "replacedById"
  | "ownerState"
  | "tokensIssued"
  | "lastTokenAt"
  | "quota"
  | "quotaRootId"
> & { quota?: KeyQuota | null; quotaRootId?: number | null };

export type KeyPatch = Partial<
  Pick<
    StoredKey,
    | "name"
    | "description"
    | "scopes"
    | "permissions"
    | "allowedIps"
    | "rateLimit"
    | "quota"
    | "expiresAt"
    | "signing"
    | "signingSecret"
  >
>;

export type CallLogRow = {
  /** The row's id: pass the last one as `beforeId` for the next page. */
  id: number;
  timestamp: string;
  method: string;
  path: string;
  status_code: number;
  ip: string;
  latency_ms: number;
  user_agent: string | null;
  error_code: string | null;
  /** The X-Request-Id of the answer. */
  request_id: string | null;
  /** The exact error message answered; null on success. */
  message: string | null;
  environment: Environment;
  credential: Credential;
};

/**
 * `status`: "2xx" … "5xx", "refused" (401, 403 and 429) or an error code such as
 * "API_KEY_REVOKED"; `beforeId`: the last row's id, for the next page (exact); `before`: an
 * ISO timestamp, calls before it; `requestId`: the call answered with that X-Request-Id.
 */
export type LogQuery = {
  limit: number;
  status?: string;
  before?: string;
  /** An ISO timestamp: only calls at or after it. */
  from?: string;
  beforeId?: number;
  /** Only the call (or calls) answered with this X-Request-Id. */
  requestId?: string;
  /** Newest first (the default), or oldest first. */
  order?: "asc" | "desc";
  /** Oldest first: the last row's id, for the next page (exact). */
  afterId?: number;
};

/** Keys by status (they add up to `total`), and the calls of the last 24 hours. */
export type KeyStats = {
  total: number;
  active: number;
  revoked: number;
  expired: number;
  owner_disabled: number;
  owner_deleted: number;
  calls_24h: number;
};

export type Activity = {
  hourly: { hour: string; calls: number; errors: number }[];
  busiest: {
    api_key_id: number;
    name: string;
    key_prefix: string;
    calls: number;
    errors: number;
  }[];
  recent_refusals: (CallLogRow & { api_key_id: number | null; key_prefix: string | null })[];
};

/** The event a write produces, given the key as written: emitted in the write's transaction. */
export type KeyEvent = (k: StoredKey) => NewEvent | readonly NewEvent[] | null;

export interface KeyRepo {
  insert(k: NewKey, event?: KeyEvent): Promise<StoredKey>;
  findById(id: number): Promise<StoredKey | null>;
  /** Every key, or only those of one owner; of one environment, or of both (null). */
  list(ownerId: number | null, environment?: Environment | null): Promise<StoredKey[]>;
  update(id: number, patch: KeyPatch, now: string, event?: KeyEvent): Promise<void>;
  /** Revokes when not yet revoked; false when it already was. `by` is null for the operator. */
  revoke(id: number, by: number | null, now: string, event?: KeyEvent): Promise<boolean>;
  /** Emits the event of key `id` without changing it (a leak left working, say). */
  announce(id: number, now: string, event: KeyEvent): Promise<void>;
  /** Inserts the replacement and shortens (or ends) the old key in one transaction. */
  roll(
    oldId: number,
    replacement: NewKey,
    old: { expiresAt: string | null; revoke: boolean; by: number | null },
    now: string,
    event?: KeyEvent,
  ): Promise<StoredKey>;
  /** Key counts and calls; of one environment, or of both (null). */
  stats(now: string, since: string, environment?: Environment | null): Promise<KeyStats>;
  logs(keyId: number, q: LogQuery): Promise<CallLogRow[]>;
  /** Calls since `since` by hour, the busiest keys and the latest refusals; `ownerId` fences to one owner's keys. */
  activity(since: string, ownerId: number | null, environment?: Environment): Promise<Activity>;
}

export interface OwnerRepo {
  findById(id: number): Promise<UserRecord | null>;
}

/** The key as every response shows it: never the hash, never the plaintext. */
export type KeyView = {
  id: number;
  name: string;
  description: string | null;
  key_prefix: string;
  scopes: Scope | "custom";
  permissions: string[];
  environment: Environment;
  owner_id: number;
  allowed_ips: string[] | null;
  rate_limit_per_minute: number | null;
  quota: QuotaView | null;
  /** Single-key reads only: what the quota stands at (null without a quota). */
  quota_usage?: QuotaUsage | null;
  signing: SigningMode;
  tokens_issued: number;
  last_token_at: string | null;
  last_used_at: string | null;
  last_used_ip: string | null;
  last_refused_at: string | null;
  last_refused_ip: string | null;
  last_refused_code: string | null;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  revoked_at: string | null;
  is_active: boolean;
  status: KeyStatus;
  rolled_from_id: number | null;
  replaced_by_id: number | null;
};

export type KeyInput = {
  name?: string;
  description?: string | null;
  scopes?: string;
  permissions?: string[];
  environment?: string;
  expires_at?: string | null;
  allowed_ips?: string[] | null;
  rate_limit_per_minute?: number | null;
  quota?: unknown;
  owner_id?: number;
  signing?: string;
};

export type KeyServiceOptions = {
  keys: KeyRepo;
  owners: OwnerRepo;
  audit: Audit;
  /** Drops a key from every verification cache (this process, and others through a bus). */
  evict: (hash: string) => void | Promise<void>;
  /** Writes pending call logs and last-use times, so reads see every call made so far. */
  flushUsage: () => Promise<void>;
  selfService: boolean;
  /** KEYGATE_REQUIRE_2FA: who must have two-factor sign-in on to manage keys (default off). */
  requireTwoFactor?: TwoFactorPolicy;
  now?: () => Date;
  mint?: (environment: Environment) => MintedKey;
  /**
   * Seals a signing secret under the master key, bound to the key it belongs to (its hash);
   * null when no master key is configured, and then no key can be given a secret.
   */
  sealSecret?: ((secret: string, keyHash: string) => string) | null;
  /** What a key's quota stands at in the period under way (the limiter's count). */
  quotaUsage?: (k: StoredKey) => Promise<QuotaUsage | null>;
};

/** What minting a signed key without a master key answers. */
export const NO_MASTER_KEY =
  "needs a master key to keep signing secrets encrypted: set KEYGATE_MASTER_KEY (32 bytes as 64 hex characters or base64, e.g. from `openssl rand -hex 32`) or KEYGATE_MASTER_KEY_FILE (a file holding it), restart Keygate, and ask again";

export const MAX_GRACE_HOURS = 168;

/** What each role may reach, in words, for the message refusing a key beyond it. */
export const ROLE_LIMITS: Record<Role, string> = {
  admin: "admins may do everything",
  reseller:
    "resellers reach their own subscribers, transactions and usage, read the service catalogue and statistics, and no NAS devices",
};

/** Minting, listing, editing, revoking and rolling keys, with who-may-do-what decided here. */
export class KeyService {
  private readonly now: () => Date;
  private readonly mint: (environment: Environment) => MintedKey;

  constructor(private readonly o: KeyServiceOptions) {
    this.now = o.now ?? (() => new Date());
    this.mint = o.mint ?? ((environment) => mintKey(undefined, environment));
  }

  view(k: StoredKey): KeyView {
    const revoked = k.revokedAt !== null;
    return {
      id: k.id,
      name: k.name,
      description: k.description,
      key_prefix: k.keyPrefix,
      scopes: k.scopes,
      permissions: k.permissions,
      environment: k.environment,
      owner_id: k.ownerId,
      allowed_ips: k.allowedIps,
      rate_limit_per_minute: k.rateLimit,
      quota: quotaView(k.quota),
      signing: k.signing,
      tokens_issued: k.tokensIssued,
      last_token_at: k.lastTokenAt,
      last_used_at: k.lastUsedAt,
      last_used_ip: k.lastUsedIp,
      last_refused_at: k.lastRefusedAt,
      last_refused_ip: k.lastRefusedIp,
      last_refused_code: k.lastRefusedCode,
      expires_at: k.expiresAt,
      created_at: k.createdAt,
      updated_at: k.updatedAt,
      revoked_at: k.revokedAt,
      is_active: !revoked,
      status: keyStatus(k, this.now().toISOString()),
      rolled_from_id: k.rolledFromId,
      replaced_by_id: k.replacedById,
    };
  }

  async create(p: Principal, input: KeyInput): Promise<Minted> {
    this.requireMayManage(p, "mint keys");
    const ownerId = await this.resolveOwner(p, input.owner_id);
    const now = this.now();
    const fields = this.validate(input, now, await this.ownerRole(p, ownerId));
    const environment = input.environment ?? "live";
    if (!isEnvironment(environment)) throw invalid("environment", 'must be "live" or "test"');
    const minted = this.mint(environment);
    const permissions = fields.permissions ?? SCOPE_PERMISSIONS.read;
    const signing = fields.signing ?? "off";
    const secret = signing === "off" ? null : mintSigningSecret(environment);
    const stored = await this.o.keys.insert(
      {
        name: fields.name ?? "API Key",
        description: fields.description ?? null,
        keyHash: minted.hash,
        keyPrefix: minted.prefix,
        scopes: fields.scopes ?? "read",
        permissions,
        environment,
        ownerId,
        allowedIps: fields.allowedIps ?? null,
        rateLimit: fields.rateLimit ?? null,
        quota: fields.quota ?? null,
        expiresAt: fields.expiresAt ?? null,
        createdAt: now.toISOString(),
        createdBy: actorId(p),
        updatedAt: now.toISOString(),
        rolledFromId: null,
        signing,
        signingSecret: secret === null ? null : this.seal(secret, minted.hash),
      },
      this.event("key.created"),
    );
    await this.o.evict(minted.hash);
    await this.o.audit.record(
      p,
      "key.create",
      { type: "api_key", id: stored.id },
      {
        name: stored.name,
        prefix: stored.keyPrefix,
        scopes: stored.scopes,
        permissions: stored.permissions,
        environment: stored.environment,
        owner_id: stored.ownerId,
        signing: stored.signing,
      },
    );
    return withSecret({ key: minted.key, data: this.view(stored) }, secret);
  }

  /** The principal's keys, of one environment or (`null`) of both. */
  async list(p: Principal, environment: Environment | null = null): Promise<KeyView[]> {
    await this.o.flushUsage();
    const rows = await this.o.keys.list(p.role === "admin" ? null : p.userId, environment);
    return rows.map((k) => this.view(k));
  }

  /** One key, with what its quota stands at. */
  async get(p: Principal, id: number): Promise<KeyView> {
    await this.o.flushUsage();
    const k = await this.visible(p, id);
    const view = this.view(k);
    view.quota_usage = k.quota === null ? null : ((await this.usageOf(k)) ?? null);
    return view;
  }

  /** The quota's standing; null when it cannot be read now (the key's page shows its limit alone). */
  private async usageOf(k: StoredKey): Promise<QuotaUsage | null> {
    try {
      return (await this.o.quotaUsage?.(k)) ?? null;
    } catch {
      return null;
    }
  }

  /** Changes a key; turning signing on mints its secret, answered here once. */
  async update(
    p: Principal,
    id: number,
    input: KeyInput,
  ): Promise<{ data: KeyView; signingSecret?: string }> {
    this.requireMayManage(p, "change keys");
    const key = await this.visible(p, id);
    if (input.owner_id !== undefined) {
      throw invalid(
        "owner_id",
        "cannot be changed; mint a key for the new owner and revoke this one",
      );
    }
    if (input.environment !== undefined && input.environment !== key.environment) {
      throw invalid(
        "environment",
        `cannot be changed: key ${id} is a ${key.environment} key; mint a ${input.environment === "test" ? "test" : "live"} key and revoke this one`,
      );
    }
    if (key.revokedAt !== null)
      throw conflict(`key ${id} is revoked; revoked keys cannot be changed`);
    if (key.ownerState === "deleted")
      throw conflict(
        `the owner of key ${id} is deleted, so the key can never work again; revoke it, and mint a key for another user`,
      );
    const fields = this.validate(input, this.now(), await this.ownerRole(p, key.ownerId));
    const patch: KeyPatch = {};
    if (input.name !== undefined) patch.name = fields.name as string;
    if (input.description !== undefined) patch.description = fields.description ?? null;
    if (fields.permissions !== undefined) {
      patch.permissions = fields.permissions;
      patch.scopes = fields.scopes as Scope | "custom";
    }
    if (input.allowed_ips !== undefined) patch.allowedIps = fields.allowedIps ?? null;
    if (input.rate_limit_per_minute !== undefined) patch.rateLimit = fields.rateLimit ?? null;
    if (input.quota !== undefined) {
      patch.quota = fields.quota ?? null;
      if (p.role !== "admin") requireMayTighten(p, key, patch.quota);
    }
    if (input.expires_at !== undefined) patch.expiresAt = fields.expiresAt ?? null;
    let secret: string | null = null;
    if (fields.signing !== undefined && fields.signing !== key.signing) {
      patch.signing = fields.signing;
      if (fields.signing === "off") patch.signingSecret = null;
      else if (key.signing === "off") {
        secret = mintSigningSecret(key.environment);
        patch.signingSecret = this.seal(secret, key.keyHash);
      }
    }
    await this.o.keys.update(
      id,
      patch,
      this.now().toISOString(),
      this.event("key.updated", { changed: Object.keys(input) }),
    );
    await this.o.evict(key.keyHash);
    await this.o.audit.record(
      p,
      "key.update",
      { type: "api_key", id },
      { changed: Object.keys(input), ...(patch.signing ? { signing: patch.signing } : {}) },
    );
    return withSecret({ data: await this.get(p, id) }, secret);
  }

  async revoke(p: Principal, id: number): Promise<KeyView> {
    this.requireMayManage(p, "revoke keys");
    await this.revokeVisible(p, await this.visible(p, id));
    return this.get(p, id);
  }

  /**
   * Revokes several keys, each as `revoke` does (its own transaction and key.revoked event,
   * the cache eviction, the audit entry), in the order given. A key out of sight, or already
   * revoked, is answered with its error and the others go on.
   */
  async revokeMany(p: Principal, ids: readonly number[], reason?: string): Promise<BulkRevoked[]> {
    this.requireMayManage(p, "revoke keys");
    const out: BulkRevoked[] = [];
    for (const id of ids) {
      try {
        const key = await this.visible(p, id);
        if (key.revokedAt !== null || !(await this.revokeVisible(p, key, reason)))
          throw conflict(`key ${id} is already revoked`);
        out.push({ id, revoked: true });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        out.push({ id, error: { code: err.code, message: err.message } });
      }
    }
    return out;
  }

  /** Revokes a key the principal may see; false when it already was revoked. */
  private async revokeVisible(p: Principal, key: StoredKey, reason?: string): Promise<boolean> {
    const why = reason === undefined ? {} : { reason };
    const changed = await this.o.keys.revoke(
      key.id,
      actorId(p),
      this.now().toISOString(),
      this.event("key.revoked", why),
    );
    await this.o.evict(key.keyHash);
    if (changed)
      await this.o.audit.record(
        p,
        "key.revoke",
        { type: "api_key", id: key.id },
        { prefix: key.keyPrefix, ...why },
      );
    return changed;
  }

  /**
   * Revokes a key found exposed (a leak report, or whoever holds it presenting it): no
   * principal, holding the key is the proof; the caller audits why. Evicted from every
   * instance's cache like any revocation. False when it already was revoked, or is no key.
   */
  async revokeExposed(id: number, leak: Record<string, unknown>): Promise<boolean> {
    const key = await this.o.keys.findById(id);
    if (!key) return false;
    // Both events in the revocation's transaction: the key.leaked that caused it, then key.revoked.
    const changed = await this.o.keys.revoke(id, null, this.now().toISOString(), (k) => [
      this.event("key.leaked", leak)(k) as NewEvent,
      this.event("key.revoked", { reason: "exposed" })(k) as NewEvent,
    ]);
    await this.o.evict(key.keyHash);
    return changed;
  }

  /** A key found exposed but left working: key.leaked, in a transaction of its own. */
  async flagExposed(id: number, leak: Record<string, unknown>): Promise<void> {
    await this.o.keys.announce(id, this.now().toISOString(), this.event("key.leaked", leak));
  }

  /** Replaces a key by a new one (a signed key gets a new secret too); the old one lasts `graceHours`. */
  async roll(p: Principal, id: number, graceHours = 24): Promise<Minted> {
    this.requireMayManage(p, "roll keys");
    if (!Number.isInteger(graceHours) || graceHours < 0 || graceHours > MAX_GRACE_HOURS) {
      throw invalid("grace_period_hours", `must be a whole number from 0 to ${MAX_GRACE_HOURS}`);
    }
    const old = await this.visible(p, id);
    const now = this.now();
    if (old.revokedAt !== null)
      throw conflict(`key ${id} is revoked; mint a new key instead of rolling it`);
    if (old.replacedById !== null)
      throw conflict(`key ${id} was already rolled into key ${old.replacedById}; roll that one`);
    if (old.expiresAt !== null && old.expiresAt <= now.toISOString()) {
      throw conflict(`key ${id} has expired; mint a new key instead of rolling it`);
    }
    const owner = await this.o.owners.findById(old.ownerId);
    if (!usable(owner))
      throw conflict(`the owner of key ${id} is disabled or deleted; the key cannot be rolled`);
    const graceEnd = new Date(now.getTime() + graceHours * 3_600_000).toISOString();
    const oldExpiry = old.expiresAt !== null && old.expiresAt < graceEnd ? old.expiresAt : graceEnd;
    const minted = this.mint(old.environment);
    const secret = old.signing === "off" ? null : mintSigningSecret(old.environment);
    const replacement = await this.o.keys.roll(
      id,
      {
        name: old.name,
        description: old.description,
        keyHash: minted.hash,
        keyPrefix: minted.prefix,
        scopes: old.scopes,
        permissions: old.permissions,
        environment: old.environment,
        ownerId: old.ownerId,
        allowedIps: old.allowedIps,
        rateLimit: old.rateLimit,
        quota: old.quota,
        expiresAt: old.expiresAt,
        createdAt: now.toISOString(),
        createdBy: actorId(p),
        updatedAt: now.toISOString(),
        rolledFromId: id,
        // The replacement spends the period's count of the key it replaces: one quota per chain.
        quotaRootId: old.quotaRootId ?? old.id,
        signing: old.signing,
        signingSecret: secret === null ? null : this.seal(secret, minted.hash),
      },
      {
        expiresAt: graceHours === 0 ? old.expiresAt : oldExpiry,
        revoke: graceHours === 0,
        by: actorId(p),
      },
      now.toISOString(),
      (k) => ({
        type: "key.rolled",
        environment: k.environment,
        ownerId: k.ownerId,
        data: {
          ...this.eventData(old),
          expires_at: graceHours === 0 ? old.expiresAt : oldExpiry,
          replaced_by: this.eventData(k),
          grace_period_hours: graceHours,
        },
      }),
    );
    await this.o.evict(old.keyHash);
    await this.o.evict(minted.hash);
    await this.o.audit.record(
      p,
      "key.roll",
      { type: "api_key", id },
      {
        replaced_by: replacement.id,
        prefix: replacement.keyPrefix,
        grace_period_hours: graceHours,
      },
    );
    return withSecret({ key: minted.key, data: this.view(replacement) }, secret);
  }

  /** The event of a change to a key, built from the key as written. */
  private event(
    type: "key.created" | "key.updated" | "key.revoked" | "key.leaked",
    extra: Record<string, unknown> = {},
  ): KeyEvent {
    return (k) => ({
      type,
      environment: k.environment,
      ownerId: k.ownerId,
      data: { ...this.eventData(k), ...extra },
    });
  }

  /** A key as events describe it: what identifies it, never its hash or secret. */
  private eventData(k: StoredKey): Record<string, unknown> {
    return {
      id: k.id,
      name: k.name,
      key_prefix: k.keyPrefix,
      environment: k.environment,
      owner_id: k.ownerId,
      permissions: k.permissions,
      expires_at: k.expiresAt,
      revoked_at: k.revokedAt,
      status: keyStatus(k, this.now().toISOString()),
    };
  }

  /** Seals a new secret; minting one is refused at validation when there is no master key. */
  private seal(secret: string, keyHash: string): string {
    const seal = this.o.sealSecret;
    if (!seal) throw invalid("signing", NO_MASTER_KEY);
    return seal(secret, keyHash);
  }

  /** Key counts and the last day's calls: of one environment, or of both (null). */
  async stats(p: Principal, environment: Environment | null = null): Promise<KeyStats> {
    requireAdmin(p, "read key statistics");
    await this.o.flushUsage();
    const now = this.now().toISOString();
    const since = new Date(Date.parse(now) - 86_400_000).toISOString();
    return this.o.keys.stats(now, since, environment);
  }

  /** The dashboard's view of the last `hours`: admins see every call, others their keys' calls. */
  async activity(p: Principal, hours: number): Promise<Activity & { from: string; to: string }> {
    await this.o.flushUsage();
    const to = this.now();
    const from = new Date(to.getTime() - hours * 3_600_000);
    const data = await this.o.keys.activity(
      from.toISOString(),
      p.role === "admin" ? null : p.userId,
      p.environment ?? "live",
    );
    return { from: from.toISOString(), to: to.toISOString(), ...data };
  }

  async logs(p: Principal, id: number, q: LogQuery): Promise<CallLogRow[]> {
    await this.visible(p, id);
    await this.o.flushUsage();
    return this.o.keys.logs(id, q);
  }

  /** A key this principal may see, or 404 — never a hint that another owner's key exists. */
  private async visible(p: Principal, id: number): Promise<StoredKey> {
    const key = await this.o.keys.findById(id);
    if (!key || (p.role !== "admin" && key.ownerId !== p.userId)) throw notFound(`API key ${id}`);
    return key;
  }

  /** Whether this principal may mint, change, roll and revoke (its own) keys. */
  mayManage(p: Principal): boolean {
    return p.via !== "key" && (p.role === "admin" || this.o.selfService);
  }

  private requireMayManage(p: Principal, what: string): void {
    if (p.via === "key")
      throw forbidden(`keys cannot ${what}; sign in to the console or the /api surface`);
    if (!this.mayManage(p))
      throw forbidden(
        `only an admin can ${what}; ${describe(p)} — ask an admin, or have the operator set KEYGATE_SELF_SERVICE_KEYS=true`,
      );
    requireTwoFactorFor(this.o.requireTwoFactor ?? "off", p, what);
  }

  private async resolveOwner(p: Principal, ownerId: number | undefined): Promise<number> {
    // The operator is no user: a key minted at the command line names its owner.
    if (ownerId === undefined && p.via === "cli") throw invalid("owner_id", "is required");
    if (ownerId === undefined || ownerId === p.userId) return p.userId;
    if (p.role !== "admin")
      throw invalid(
        "owner_id",
        "can only be set by an admin; leave it out to own the key yourself",
      );
    const owner = await this.o.owners.findById(ownerId);
    if (!usable(owner)) throw invalid("owner_id", `no active user ${ownerId}`);
    return ownerId;
  }

  /** The role a key's owner has: what its permissions may not exceed. */
  private async ownerRole(p: Principal, ownerId: number): Promise<Role> {
    if (ownerId === p.userId && p.via !== "cli") return p.role;
    return (await this.o.owners.findById(ownerId))?.role ?? "reseller";
  }

  private validate(input: KeyInput, now: Date, ownerRole: Role) {
    const problems: { field: string; message: string }[] = [];
    const out: KeyPatch = {};
    if (input.name !== undefined) {
      const name = input.name.trim();
      if (name.length < 1 || name.length > 100)
        problems.push({ field: "name", message: "must be 1-100 characters" });
      out.name = name;
    }
    if (input.description !== undefined && input.description !== null) {
      if (input.description.length > 500)
        problems.push({ field: "description", message: "must be at most 500 characters" });
      out.description = input.description;
    }
    if (input.scopes !== undefined && input.permissions !== undefined) {
      problems.push({
        field: "scopes",
        message:
          "give permissions or scopes, not both: scopes are presets of permissions (read = *:read, write = *:write, delete = *:delete)",
      });
    } else if (input.scopes !== undefined) {
      if (isScope(input.scopes)) {
        out.scopes = input.scopes;
        out.permissions = SCOPE_PERMISSIONS[input.scopes];
      } else
        problems.push({
          field: "scopes",
          message: 'must be "read" (GET), "write" (GET, POST, PUT) or "delete" (all verbs)',
        });
    } else if (input.permissions !== undefined) {
      const parsed = parsePermissions(input.permissions);
      if (!parsed.ok) {
        for (const pr of parsed.problems)
          problems.push({ field: `permissions[${pr.index}]`, message: pr.message });
      } else if (parsed.mask === 0) {
        problems.push({
          field: "permissions",
          message:
            'must name at least one permission, e.g. ["subscribers:read"]; GET /api/api-keys/presets lists ready-made sets',
        });
      } else {
        const beyond = beyondRole(input.permissions, ownerRole);
        if (beyond.length > 0) {
          problems.push({
            field: "permissions",
            message: `${beyond.join(", ")} ${beyond.length === 1 ? "is" : "are"} beyond what the key's owner, a ${ownerRole}, may do: a key never exceeds its owner's role (${ROLE_LIMITS[ownerRole]}). Leave ${beyond.length === 1 ? "it" : "them"} out, or mint the key for an admin`,
          });
        }
        out.permissions = normalize(parsed.mask);
        out.scopes = scopeOf(parsed.mask);
      }
    }
    if (input.allowed_ips !== undefined && input.allowed_ips !== null) {
      const parsed = parseAllowList(input.allowed_ips);
      if (parsed.ok)
        out.allowedIps = parsed.list.entries.length > 0 ? [...parsed.list.entries] : null;
      else
        for (const pr of parsed.problems)
          problems.push({ field: `allowed_ips[${pr.index}]`, message: pr.message });
    }
    if (input.rate_limit_per_minute !== undefined && input.rate_limit_per_minute !== null) {
      const r = input.rate_limit_per_minute;
      if (!Number.isInteger(r) || r < 1 || r > 1_000_000) {
        problems.push({
          field: "rate_limit_per_minute",
          message: "must be a whole number from 1 to 1000000",
        });
      }
      out.rateLimit = r;
    }
    if (input.quota !== undefined) {
      const parsed = parseQuota(input.quota);
      if (parsed.ok) out.quota = parsed.quota;
      else problems.push(...parsed.problems);
    }
    if (input.signing !== undefined) {
      if (!isSigningMode(input.signing))
        problems.push({ field: "signing", message: 'must be "off", "optional" or "required"' });
      else if (input.signing !== "off" && !this.o.sealSecret)
        problems.push({ field: "signing", message: NO_MASTER_KEY });
      else out.signing = input.signing;
    }
    if (input.expires_at !== undefined && input.expires_at !== null) {
      const e = parseExpiry(input.expires_at, now);
      if (e.ok) out.expiresAt = e.at.toISOString();
      else problems.push({ field: "expires_at", message: e.message });
    }
    if (problems.length > 0) {
      throw new AppError(
        "VALIDATION_ERROR",
        problems.map((x) => `${x.field} ${x.message}`).join("; "),
        problems,
      );
    }
    return out;
  }
}

/** A quota in words: "100 calls a day", "5000 calls a month (refilling on day 15)". */
function quotaWords(q: KeyQuota): string {
  const per = q.period === "day" ? "a day" : "a month";
  const day =
    q.period === "month" && q.refillDay !== null ? ` (refilling on day ${q.refillDay})` : "";
  return `${q.limit} calls ${per}${day}`;
}

/**
 * A quota restricts a key's owner, so only an admin may remove one or loosen it (raise the
 * limit, or change the period or refill day, which starts a new count). Anyone who may
 * change the key may add a quota to a key without one, or lower the limit keeping the period.
 */
function requireMayTighten(p: Principal, key: StoredKey, next: KeyQuota | null): void {
  const was = key.quota;
  if (was === null) return;
  const instead = `; ${describe(p)} — ask an admin, or lower the limit (at most ${was.limit}) keeping the period`;
  if (next === null)
    throw forbidden(
      `only an admin can remove key ${key.id}'s quota (${quotaWords(was)})${instead}`,
    );
  if (next.period !== was.period || next.refillDay !== was.refillDay)
    throw forbidden(
      `only an admin can change key ${key.id}'s quota period, from ${quotaWords(was)} to ${quotaWords(next)}${instead}`,
    );
  if (next.limit > was.limit)
    throw forbidden(
      `only an admin can raise key ${key.id}'s quota, from ${quotaWords(was)} to ${quotaWords(next)}${instead}`,
    );
}

/** A minted (or rolled) key: its plaintext, its view, and its signing secret when it signs. */
export type Minted = { key: string; data: KeyView; signingSecret?: string };

/** One key of a bulk revocation: revoked now, or why not. */
export type BulkRevoked =
  { id: number; revoked: true } | { id: number; error: { code: ErrorCode; message: string } };

function withSecret<T extends object>(
  out: T,
  secret: string | null,
): T & { signingSecret?: string } {
  return secret === null ? out : { ...out, signingSecret: secret };
}

/** A key's status at `now` (ISO), in the order of `KeyStatus`: revoked first, active last. */
export function keyStatus(
  k: Pick<StoredKey, "revokedAt" | "expiresAt" | "ownerState">,
  now: string,
): KeyStatus {
  if (k.revokedAt !== null) return "revoked";
  if (k.ownerState === "deleted") return "owner_deleted";
  if (k.ownerState === "disabled") return "owner_disabled";
  if (k.expiresAt !== null && k.expiresAt <= now) return "expired";
  return "active";
}

/** Builds what verification needs from a stored key and its owner (the cache's loader). */
export function toKeyRecord(
  k: StoredKey,
  owner: { username: string; role: Role; usable: boolean; standing?: OwnerStanding },
  replacedByPrefix: string | null,
  /** The signing secret's bytes, opened by the store; null without one. */
  signingKey: KeyObject | null = null,
  /** Ids of the key's access tokens revoked before they expire. */
  revokedTokens: ReadonlySet<string> | null = null,
): KeyRecord {
  let allowed: AllowList | null = null;
  if (k.allowedIps && k.allowedIps.length > 0) {
    const parsed = parseAllowList(k.allowedIps);
    // Stored lists were validated on the way in; an unreadable one fails closed.
    allowed = parsed.ok ? parsed.list : { entries: [], ranges: [] };
  }
  return {
    id: k.id,
    name: k.name,
    prefix: k.keyPrefix,
    scopes: k.scopes,
    grants: safeMask(k.permissions),
    permissions: k.permissions,
    environment: k.environment,
    ownerId: k.ownerId,
    ownerUsername: owner.username,
    ownerRole: owner.role,
    ownerUsable: owner.usable,
    ownerStanding: owner.standing ?? (owner.usable ? "active" : "disabled"),
    revokedAt: k.revokedAt === null ? null : Date.parse(k.revokedAt),
    expiresAt: k.expiresAt === null ? null : Date.parse(k.expiresAt),
    allowedIps: allowed,
    rateLimit: k.rateLimit,
    quota: quotaPlan(k.quota, k.quotaRootId),
    replacedByPrefix,
    signing: k.signing,
    signingKey,
    revokedTokens,
  };
}

/** A stored list as a mask; one that no longer reads (it was validated on the way in) grants nothing. */
function safeMask(list: readonly string[]): number {
  const parsed = parsePermissions(list);
  return parsed.ok ? parsed.mask : 0;
}
