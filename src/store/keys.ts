import { createSecretKey, type KeyObject } from "node:crypto";
import { type Kysely, type Selectable, sql } from "kysely";
import type { Role } from "../auth/principal.js";
import type { CallLogEntry, CallLogSink, LastRefusal, LastUse, Settle } from "../calllog/writer.js";
import type { Environment } from "../keys/format.js";
import type { KeyQuota } from "../keys/quota.js";
import type { Scope } from "../keys/scopes.js";
import type {
  Activity,
  LogQuery,
  CallLogRow,
  KeyPatch,
  KeyRepo,
  KeyStats,
  NewKey,
  OwnerState,
  StoredKey,
} from "../keys/service.js";
import { toKeyRecord } from "../keys/service.js";
import type { KeyRecord } from "../keys/verify.js";
import type { NewEvent } from "../events/catalogue.js";
import { type EventOf, emitEvent } from "../events/outbox.js";
import type { Database } from "./database.js";
import { dropLogPartitionsBefore } from "./partitions.js";
import type { DB } from "./schema.js";
import {
  aggregateUsage,
  mergeUsagePg,
  type RollupGroup,
  SqliteUsageRollups,
  UsageBuffer,
  withGroups,
} from "./usage.js";

const NO_GROUPS: RollupGroup[] = [];

type SQLiteConnection = NonNullable<Database["raw"]["sqlite"]>;
type SQLiteStatement = ReturnType<SQLiteConnection["prepare"]>;

type Row = Selectable<DB["api_keys"]>;
/** The owner's columns read with a key, for its status. */
type OwnerColumns = { owner_disabled_at: string | null; owner_deleted_at: string | null };

/** Where a page of a key's call log ends: the last row's id and second (null if pruned). */
type Cursor = { id: number; second: number | null };

/**
 * The epoch second of an ISO timestamp, for the call log's (second, …) index; a lower bound
 * that never excludes a row the exact `timestamp` comparison keeps (0 if unparseable).
 */
function secondOf(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

function ownerState(r: OwnerColumns): OwnerState {
  return r.owner_deleted_at !== null
    ? "deleted"
    : r.owner_disabled_at !== null
      ? "disabled"
      : "active";
}

function toKey(r: Row & OwnerColumns): StoredKey {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    keyHash: r.key_hash,
    keyPrefix: r.key_prefix,
    scopes: r.scopes as Scope | "custom",
    permissions: JSON.parse(r.permissions) as string[],
    environment: r.environment as Environment,
    ownerId: r.owner_id,
    allowedIps: r.allowed_ips === null ? null : (JSON.parse(r.allowed_ips) as string[]),
    rateLimit: r.rate_limit_per_minute,
    quota: quotaOf(r),
    expiresAt: r.expires_at,
    createdAt: r.created_at,
    createdBy: r.created_by,
    updatedAt: r.updated_at,
    revokedAt: r.revoked_at,
    revokedBy: r.revoked_by,
    lastUsedAt: r.last_used_at,
    lastUsedIp: r.last_used_ip,
    lastRefusedAt: r.last_refused_at,
    lastRefusedIp: r.last_refused_ip,
    lastRefusedCode: r.last_refused_code,
    rolledFromId: r.rolled_from_id,
    replacedById: r.replaced_by_id,
    quotaRootId: r.quota_root_id ?? null,
    signing: r.signing,
    signingSecret: r.signing_secret,
    tokensIssued: r.tokens_issued,
    lastTokenAt: r.last_token_at,
    ownerState: ownerState(r),
  };
}

/** Keys with their owner's standing (every key has an owner; users are only soft-deleted). */
function keysWithOwners(db: Kysely<DB>) {
  return db
    .selectFrom("api_keys as k")
    .innerJoin("users as u", "u.id", "k.owner_id")
    .selectAll("k")
    .select(["u.disabled_at as owner_disabled_at", "u.deleted_at as owner_deleted_at"]);
}

/** Writes the event a change produces (if any) in the change's own transaction. */
async function emitted<T>(
  trx: Kysely<DB>,
  event: EventOf<T> | undefined,
  row: T,
  now: string,
): Promise<void> {
  const e = event?.(row);
  if (e === null || e === undefined) return;
  for (const one of Array.isArray(e) ? e : [e]) await emitEvent(trx, one as NewEvent, now);
}

/** A key's quota from its columns (0011); an unreadable one is no quota. */
function quotaOf(
  r: Pick<Row, "quota_limit" | "quota_period" | "quota_refill_day">,
): KeyQuota | null {
  if (r.quota_limit === null || (r.quota_period !== "day" && r.quota_period !== "month"))
    return null;
  return {
    limit: Number(r.quota_limit),
    period: r.quota_period,
    refillDay:
      r.quota_period === "month" && r.quota_refill_day !== null ? Number(r.quota_refill_day) : null,
  };
}

function quotaColumns(q: KeyQuota | null) {
  return {
    quota_limit: q?.limit ?? null,
    quota_period: q?.period ?? null,
    quota_refill_day: q?.refillDay ?? null,
  };
}

function toRow(k: NewKey) {
  return {
    name: k.name,
    description: k.description,
    key_hash: k.keyHash,
    key_prefix: k.keyPrefix,
    scopes: k.scopes,
    permissions: JSON.stringify(k.permissions),
    environment: k.environment,
    owner_id: k.ownerId,
    allowed_ips: k.allowedIps === null ? null : JSON.stringify(k.allowedIps),
    rate_limit_per_minute: k.rateLimit,
    ...quotaColumns(k.quota ?? null),
    expires_at: k.expiresAt,
    created_at: k.createdAt,
    created_by: k.createdBy,
    updated_at: k.updatedAt,
    rolled_from_id: k.rolledFromId,
    quota_root_id: k.quotaRootId ?? null,
    signing: k.signing,
    signing_secret: k.signingSecret,
  };
}

type RecordRow = Row &
  OwnerColumns & {
    owner_username: string;
    owner_role: string;
    next_prefix: string | null;
  };

/** Values of a call-log row as stored, and rows per multi-row INSERT on SQLite. */
const ROW_VALUES = 14;
const LOG_ROWS_PER_INSERT = 10;

/** Puts a call-log row's values into `args` from `at`, in the INSERT's column order. */
function logRow(args: unknown[], at: number, e: CallLogEntry, second: number): void {
  args[at] = e.apiKeyId;
  args[at + 1] = e.timestamp;
  args[at + 2] = e.method;
  args[at + 3] = e.path;
  args[at + 4] = e.statusCode;
  args[at + 5] = e.ip;
  args[at + 6] = e.latencyMs;
  args[at + 7] = e.userAgent;
  args[at + 8] = e.errorCode;
  args[at + 9] = e.requestId;
  args[at + 10] = e.message;
  args[at + 11] = second;
  args[at + 12] = e.environment ?? "live";
  args[at + 13] = e.credential ?? "key";
}

/** A call-log row as the API shows it. */
const LOG_COLUMNS = [
  "id",
  "timestamp",
  "method",
  "path",
  "status_code",
  "ip",
  "latency_ms",
  "user_agent",
  "error_code",
  "request_id",
  "error_message as message",
  "environment",
  "credential",
] as const;

export class SqlKeyRepo implements KeyRepo, CallLogSink {
  private readonly db: Kysely<DB>;
  private readonly raw: Database["raw"];

  /** Opens a sealed signing secret bound to a key hash; null when no master key is set. */
  private readonly openSecret: ((sealed: string, keyHash: string) => string) | null;

  constructor(
    database: Pick<Database, "db" | "raw">,
    openSecret: ((sealed: string, keyHash: string) => string) | null = null,
  ) {
    this.db = database.db;
    this.raw = database.raw;
    this.openSecret = openSecret;
  }

  async insert(k: NewKey, event?: EventOf<StoredKey>): Promise<StoredKey> {
    return this.db.transaction().execute(async (trx) => {
      const { id } = await trx
        .insertInto("api_keys")
        .values(toRow(k))
        .returning("id")
        .executeTakeFirstOrThrow();
      const stored = toKey(
        await keysWithOwners(trx).where("k.id", "=", id).executeTakeFirstOrThrow(),
      );
      await emitted(trx, event, stored, k.createdAt);
      return stored;
    });
  }

  async findById(id: number): Promise<StoredKey | null> {
    const r = await keysWithOwners(this.db).where("k.id", "=", id).executeTakeFirst();
    return r ? toKey(r) : null;
  }

  async list(ownerId: number | null, environment: Environment | null = null): Promise<StoredKey[]> {
    let q = keysWithOwners(this.db).orderBy("k.id", "desc");
    if (ownerId !== null) q = q.where("k.owner_id", "=", ownerId);
    if (environment !== null) q = q.where("k.environment", "=", environment);
    return (await q.execute()).map(toKey);
  }

  async update(
    id: number,
    patch: KeyPatch,
    now: string,
    event?: EventOf<StoredKey>,
  ): Promise<void> {
    const set: Partial<Row> = { updated_at: now };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.description !== undefined) set.description = patch.description;
    if (patch.scopes !== undefined) set.scopes = patch.scopes;
    if (patch.permissions !== undefined) set.permissions = JSON.stringify(patch.permissions);
    if (patch.allowedIps !== undefined)
      set.allowed_ips = patch.allowedIps === null ? null : JSON.stringify(patch.allowedIps);
    if (patch.rateLimit !== undefined) set.rate_limit_per_minute = patch.rateLimit;
    if (patch.quota !== undefined) Object.assign(set, quotaColumns(patch.quota));
    if (patch.expiresAt !== undefined) set.expires_at = patch.expiresAt;
    if (patch.signing !== undefined) set.signing = patch.signing;
    if (patch.signingSecret !== undefined) set.signing_secret = patch.signingSecret;
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable("api_keys").set(set).where("id", "=", id).execute();
      if (event) await this.emitFor(trx, id, event, now);
    });
  }

  async revoke(
    id: number,
    by: number | null,
    now: string,
    event?: EventOf<StoredKey>,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable("api_keys")
        .set({ revoked_at: now, revoked_by: by, updated_at: now })
        .where("id", "=", id)
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      const changed = Number(r.numUpdatedRows) === 1;
      if (changed && event) await this.emitFor(trx, id, event, now);
      return changed;
    });
  }

  async announce(id: number, now: string, event: EventOf<StoredKey>): Promise<void> {
    await this.db.transaction().execute((trx) => this.emitFor(trx, id, event, now));
  }

  /** Emits the event of a change to key `id`, as the key reads inside the transaction. */
  private async emitFor(
    trx: Kysely<DB>,
    id: number,
    event: EventOf<StoredKey>,
    now: string,
  ): Promise<void> {
    const r = await keysWithOwners(trx).where("k.id", "=", id).executeTakeFirst();
    if (r) await emitted(trx, event, toKey(r), now);
  }

  async roll(
    oldId: number,
    replacement: NewKey,
    old: { expiresAt: string | null; revoke: boolean; by: number | null },
    now: string,
    event?: EventOf<StoredKey>,
  ): Promise<StoredKey> {
    return this.db.transaction().execute(async (trx) => {
      const created = await trx
        .insertInto("api_keys")
        .values(toRow(replacement))
        .returning("id")
        .executeTakeFirstOrThrow();
      await trx
        .updateTable("api_keys")
        .set({
          replaced_by_id: created.id,
          expires_at: old.expiresAt,
          updated_at: now,
          ...(old.revoke ? { revoked_at: now, revoked_by: old.by } : {}),
        })
        .where("id", "=", oldId)
        .execute();
      const stored = toKey(
        await keysWithOwners(trx).where("k.id", "=", created.id).executeTakeFirstOrThrow(),
      );
      await emitted(trx, event, stored, now);
      return stored;
    });
  }

  async stats(
    now: string,
    since: string,
    environment: Environment | null = null,
  ): Promise<KeyStats> {
    // Each key counted once, under its status (see keyStatus): revoked, owner deleted,
    // owner disabled, expired, else active.
    const live = sql`k.revoked_at is null`;
    const ownerLive = sql`${live} and u.deleted_at is null`;
    const usable = sql`${ownerLive} and u.disabled_at is null`;
    const count = (when: ReturnType<typeof sql>) =>
      sql<number>`sum(case when ${when} then 1 else 0 end)`;
    let keyRows = this.db.selectFrom("api_keys as k").innerJoin("users as u", "u.id", "k.owner_id");
    if (environment !== null) keyRows = keyRows.where("k.environment", "=", environment);
    const keys = await keyRows
      .select((eb) => [
        eb.fn.countAll<number>().as("total"),
        eb.fn.count<number>("k.revoked_at").as("revoked"),
        count(sql`${live} and u.deleted_at is not null`).as("owner_deleted"),
        count(sql`${ownerLive} and u.disabled_at is not null`).as("owner_disabled"),
        count(sql`${usable} and k.expires_at <= ${now}`).as("expired"),
      ])
      .executeTakeFirstOrThrow();
    let callRows = this.db
      .selectFrom("api_key_logs")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("second", ">=", secondOf(since))
      .where("timestamp", ">=", since);
    if (environment !== null) callRows = callRows.where("environment", "=", environment);
    const calls = await callRows.executeTakeFirstOrThrow();
    const total = Number(keys.total);
    const revoked = Number(keys.revoked);
    const expired = Number(keys.expired ?? 0);
    const ownerDisabled = Number(keys.owner_disabled ?? 0);
    const ownerDeleted = Number(keys.owner_deleted ?? 0);
    return {
      total,
      active: total - revoked - expired - ownerDisabled - ownerDeleted,
      revoked,
      expired,
      owner_disabled: ownerDisabled,
      owner_deleted: ownerDeleted,
      calls_24h: Number(calls.n),
    };
  }

  /**
   * A key's calls, newest first. The minutes it was called in come from api_key_log_minutes;
   * each chunk of minutes is read through the (second, api_key_id, id) index, newest second
   * first, so a busy key stops within its last minute and a quiet one skips empty time.
   */
  async logs(keyId: number, q: LogQuery): Promise<CallLogRow[]> {
    if (q.requestId !== undefined) {
      // One request id names one call (or a few, when a client reuses its ids).
      return this.db
        .selectFrom("api_key_logs")
        .select(LOG_COLUMNS)
        .where("request_id", "=", q.requestId)
        .where("api_key_id", "=", keyId)
        .orderBy("id", q.order === "asc" ? "asc" : "desc")
        .limit(q.limit)
        .execute();
    }
    return this.walk(keyId, q, q.order === "asc" ? "asc" : "desc");
  }

  /** A paging cursor: the row's id and its second (null when the row has since been pruned). */
  private async cursorAt(keyId: number, id: number): Promise<Cursor> {
    const at = await this.db
      .selectFrom("api_key_logs")
      .select("second")
      .where("id", "=", id)
      .where("api_key_id", "=", keyId)
      .executeTakeFirst();
    const second = at?.second ?? null;
    return { id, second: second === null ? null : Number(second) };
  }

  /**
   * The walk behind `logs`, newest first (`desc`, from `before` / `beforeId` down) or oldest
   * first (`asc`, from `from` / `afterId` up): the key's minutes a chunk at a time (1, 2, 4 …
   * up to 64 minutes, 3,840 seconds a read), each chunk's seconds read through the
   * (second, api_key_id, id) index, so a busy key stops within its first minute and a quiet
   * one reaches its 200 calls in a few rounds.
   */
  private async walk(keyId: number, q: LogQuery, dir: "asc" | "desc"): Promise<CallLogRow[]> {
    const asc = dir === "asc";
    const beforeMs = q.before === undefined ? Number.NaN : Date.parse(q.before);
    let upTo = Number.isNaN(beforeMs) ? null : Math.floor(beforeMs / 60_000);
    const fromMs = q.from === undefined ? Number.NaN : Date.parse(q.from);
    let fromMinute = Number.isNaN(fromMs) ? null : Math.floor(fromMs / 60_000);
    // The cursor row's place in the (second, id) order; a row since pruned still bounds by id.
    let cursor: Cursor | null = null;
    const cursorId = asc ? q.afterId : q.beforeId;
    if (cursorId !== undefined) {
      cursor = await this.cursorAt(keyId, cursorId);
      if (cursor.second !== null) {
        const minute = Math.floor(cursor.second / 60);
        if (asc) fromMinute = fromMinute === null ? minute : Math.max(fromMinute, minute);
        else upTo = upTo === null ? minute : Math.min(upTo, minute);
      }
    }
    const rows: CallLogRow[] = [];
    let chunk = 1;
    while (rows.length < q.limit) {
      let minutes = this.db
        .selectFrom("api_key_log_minutes")
        .select("minute")
        .where("api_key_id", "=", keyId)
        .orderBy("minute", dir)
        .limit(chunk);
      if (upTo !== null) minutes = minutes.where("minute", "<=", upTo);
      if (fromMinute !== null) minutes = minutes.where("minute", ">=", fromMinute);
      const found = (await minutes.execute()).map((r) => Number(r.minute));
      if (found.length === 0) break;
      const seconds: number[] = [];
      for (const m of found) {
        if (asc) for (let s = 0; s < 60; s++) seconds.push(m * 60 + s);
        else for (let s = 59; s >= 0; s--) seconds.push(m * 60 + s);
      }
      rows.push(...(await this.logsIn(keyId, seconds, q, cursor, q.limit - rows.length, dir)));
      const edge = found[found.length - 1] as number;
      if (asc) fromMinute = edge + 1;
      else upTo = edge - 1;
      chunk = Math.min(chunk * 2, 64);
    }
    return rows;
  }

  private logsIn(
    keyId: number,
    seconds: number[],
    q: LogQuery,
    cursor: Cursor | null,
    limit: number,
    order: "asc" | "desc" = "desc",
  ) {
    let query = this.db
      .selectFrom("api_key_logs")
      .select(LOG_COLUMNS)
      .where("second", "in", seconds)
      .where("api_key_id", "=", keyId);
    if (q.before !== undefined) query = query.where("timestamp", "<", q.before);
    if (q.from !== undefined) query = query.where("timestamp", ">=", q.from);
    if (cursor !== null) {
      const { id, second } = cursor;
      // Past the cursor row in the order read: before it newest first, after it oldest first.
      const past = order === "desc" ? "<" : ">";
      query =
        second === null
          ? query.where("id", past, id)
          : query.where((eb) =>
              eb.or([
                eb("second", past, second),
                eb.and([eb("second", "=", second), eb("id", past, id)]),
              ]),
            );
    }
    const s = q.status;
    if (s === "2xx" || s === "3xx" || s === "4xx" || s === "5xx") {
      const low = Number(s[0]) * 100;
      query = query.where("status_code", ">=", low).where("status_code", "<", low + 100);
    } else if (s === "refused") {
      query = query.where("status_code", "in", [401, 403, 429]);
    } else if (s !== undefined) {
      query = query.where("error_code", "=", s);
    }
    return query.orderBy("second", order).orderBy("id", order).limit(limit).execute();
  }

  async activity(
    since: string,
    ownerId: number | null,
    environment: Environment = "live",
  ): Promise<Activity> {
    const hour = sql<string>`substr(l.timestamp, 1, 13)`;
    const errors = sql<number>`sum(case when l.status_code >= 400 then 1 else 0 end)`;
    let logs = this.db
      .selectFrom("api_key_logs as l")
      .where("l.second", ">=", secondOf(since))
      .where("l.timestamp", ">=", since)
      .where("l.environment", "=", environment);
    if (ownerId !== null) {
      logs = logs.where(
        "l.api_key_id",
        "in",
        this.db.selectFrom("api_keys").select("id").where("owner_id", "=", ownerId),
      );
    }
    const [hourly, busiest, refusals] = await Promise.all([
      logs
        .select([hour.as("hour"), sql<number>`count(*)`.as("calls"), errors.as("errors")])
        .groupBy(hour)
        .orderBy(hour)
        .execute(),
      logs
        .innerJoin("api_keys as k", "k.id", "l.api_key_id")
        .select([
          "k.id as api_key_id",
          "k.name",
          "k.key_prefix",
          sql<number>`count(*)`.as("calls"),
          errors.as("errors"),
        ])
        .groupBy(["k.id", "k.name", "k.key_prefix"])
        .orderBy("calls", "desc")
        .limit(5)
        .execute(),
      logs
        .leftJoin("api_keys as k", "k.id", "l.api_key_id")
        .select([
          "l.id",
          "l.timestamp",
          "l.method",
          "l.path",
          "l.status_code",
          "l.ip",
          "l.latency_ms",
          "l.user_agent",
          "l.error_code",
          "l.request_id",
          "l.error_message as message",
          "l.environment",
          "l.credential",
        ])
        .select(["l.api_key_id", "k.key_prefix"])
        .where("l.status_code", "in", [401, 403, 429])
        .orderBy("l.id", "desc")
        .limit(20)
        .execute(),
    ]);
    return {
      hourly: hourly.map((r) => ({
        hour: `${r.hour}:00:00Z`,
        calls: Number(r.calls),
        errors: Number(r.errors),
      })),
      busiest: busiest.map((r) => ({ ...r, calls: Number(r.calls), errors: Number(r.errors) })),
      recent_refusals: refusals,
    };
  }

  /** The verification view of a key: the key, its owner's standing and its successor's prefix. */
  /** The hash of the key with this id, or null: how an access token finds its key. */
  async hashById(id: number): Promise<string | null> {
    const r = await this.db
      .selectFrom("api_keys")
      .select("key_hash")
      .where("id", "=", id)
      .executeTakeFirst();
    return r?.key_hash ?? null;
  }

  /** Ids of a key's access tokens revoked and not yet expired; read only for keys that had tokens. */
  private async revokedTokens(r: Row): Promise<ReadonlySet<string> | null> {
    if (r.tokens_issued === 0) return null;
    const rows = await this.db
      .selectFrom("oauth_revoked_tokens")
      .select("jti")
      .where("api_key_id", "=", r.id)
      .where("expires_at", ">", Date.now())
      .execute();
    return rows.length === 0 ? null : new Set(rows.map((x) => x.jti));
  }

  async loadRecord(hash: string): Promise<KeyRecord | null> {
    const r = await this.recordRow(hash);
    if (!r) return null;
    const revoked = await this.revokedTokens(r);
    return toKeyRecord(
      toKey(r),
      {
        username: r.owner_username,
        role: r.owner_role as Role,
        usable: r.owner_disabled_at === null && r.owner_deleted_at === null,
        standing:
          r.owner_deleted_at !== null
            ? "deleted"
            : r.owner_disabled_at !== null
              ? "disabled"
              : "active",
      },
      r.next_prefix,
      this.signingKey(r),
      revoked,
    );
  }

  /**
   * Opens a key's sealed signing secret for the verifier. One this server cannot open (no
   * master key, or another one) leaves the key without: its signed calls are refused, saying why.
   */
  private signingKey(r: Row): KeyObject | null {
    if (r.signing_secret === null || this.openSecret === null) return null;
    try {
      return createSecretKey(Buffer.from(this.openSecret(r.signing_secret, r.key_hash), "utf8"));
    } catch {
      return null;
    }
  }

  /** The query is built once; each engine then runs it as a prepared statement. */
  private buildRecordQuery() {
    return this.db
      .selectFrom("api_keys as k")
      .innerJoin("users as u", "u.id", "k.owner_id")
      .leftJoin("api_keys as n", "n.id", "k.replaced_by_id")
      .selectAll("k")
      .select([
        "u.username as owner_username",
        "u.role as owner_role",
        "u.disabled_at as owner_disabled_at",
      ])
      .select(["u.deleted_at as owner_deleted_at", "n.key_prefix as next_prefix"])
      .where("k.key_hash", "=", "")
      .compile();
  }

  private recordSql: string | null = null;
  private recordStatement: SQLiteStatement | null = null;

  private async recordRow(hash: string): Promise<RecordRow | undefined> {
    if (this.raw.sqlite) {
      this.recordSql ??= this.buildRecordQuery().sql;
      this.recordStatement ??= this.raw.sqlite.prepare(this.recordSql);
      return this.recordStatement.get(hash) as RecordRow | undefined;
    }
    const res = await this.raw.pg.query<RecordRow>({
      name: "keygate_load_key",
      text: (this.recordSql ??= this.buildRecordQuery().sql),
      values: [hash],
    });
    return res.rows[0];
  }

  /** Key id → the minute last recorded in api_key_log_minutes (written by committed batches). */
  private minutesRecorded = new Map<number, number>();
  private secondOf = { text: "", second: 0 };

  /** Whole epoch seconds of an ISO timestamp; rows of one batch mostly share a few. */
  private second(timestamp: string): number {
    const c = this.secondOf;
    if (timestamp !== c.text) {
      c.text = timestamp;
      c.second = Math.floor(Date.parse(timestamp) / 1000);
    }
    return c.second;
  }

  /** The (key, minute) pairs of a batch not yet recorded (rows come in time order, so once each). */
  private newMinutes(entries: CallLogEntry[], seconds: number[]): [number, number][] {
    const fresh: [number, number][] = [];
    const last = new Map<number, number>();
    for (let i = 0; i < entries.length; i++) {
      const id = entries[i]?.apiKeyId;
      if (id === null || id === undefined) continue;
      const minute = Math.floor((seconds[i] as number) / 60);
      const seen = last.get(id) ?? this.minutesRecorded.get(id);
      if (seen === minute) continue;
      fresh.push([id, minute]);
      last.set(id, minute);
    }
    return fresh;
  }

  /** Remembers what a committed batch recorded; bounded, since forgetting costs only a no-op insert. */
  private recorded(fresh: [number, number][]): void {
    if (this.minutesRecorded.size > 100_000) this.minutesRecorded.clear();
    for (const [id, minute] of fresh) {
      const had = this.minutesRecorded.get(id);
      if (had === undefined || minute > had) this.minutesRecorded.set(id, minute);
    }
  }

  /**
   * One transaction per batch, on the hot path's budget: SQLite runs prepared statements in
   * a loop; PostgreSQL inserts and updates from arrays (unnest), a statement per table
   * whatever the batch size. Last use and last refusal only ever move forward.
   */
  async writeBatch(
    entries: CallLogEntry[],
    lastUsed: Map<number, LastUse>,
    lastRefused: Map<number, LastRefusal> = new Map(),
    settle: Settle = true,
  ): Promise<void> {
    const uses = [...lastUsed];
    const refusals = [...lastRefused];
    const seconds = entries.map((e) => this.second(e.timestamp));
    const fresh = this.newMinutes(entries, seconds);
    // Usage rollups (store/usage.ts) wait in memory: a settling cycle merges a bounded part
    // with each batch, a flush merges everything with the batch's own calls; other batches'
    // calls join the buffer once they are stored.
    const taken =
      settle === true
        ? this.usage.take(true)
        : settle === "some" || this.usage.backlog
          ? this.usage.take()
          : NO_GROUPS;
    const usage = settle === true ? withGroups(aggregateUsage(entries, seconds), taken) : taken;
    if (this.raw.sqlite) {
      this.sqliteBatch ??= this.prepareSqliteBatch(this.raw.sqlite);
      try {
        this.sqliteBatch(entries, seconds, fresh, uses, refusals, usage);
      } catch (err) {
        this.usage.putBack(taken);
        throw err;
      }
      this.stored(entries, seconds, fresh, settle);
      return;
    }
    try {
      await this.pgBatch(entries, seconds, fresh, uses, refusals, usage);
    } catch (err) {
      this.usage.putBack(taken);
      throw err;
    }
    this.stored(entries, seconds, fresh, settle);
  }

  /** Rollups of stored batches waiting to be merged (see UsageBuffer). */
  private readonly usage = new UsageBuffer();

  /** After a batch's commit: its minutes are recorded; unless it settled, its calls wait. */
  private stored(
    entries: CallLogEntry[],
    seconds: number[],
    fresh: [number, number][],
    settle: Settle,
  ): void {
    this.recorded(fresh);
    if (settle !== true) this.usage.add(entries, seconds);
  }

  /** Rollups wait to be merged. */
  hasDeferred(): boolean {
    return this.usage.size > 0;
  }

  /** A settling cycle of the rollups is under way: the writer settles every tick. */
  hasBacklog(): boolean {
    return this.usage.backlog;
  }

  private async pgBatch(
    entries: CallLogEntry[],
    seconds: number[],
    fresh: [number, number][],
    uses: [number, LastUse][],
    refusals: [number, LastRefusal][],
    usage: RollupGroup[],
  ): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      if (entries.length > 0) {
        const col = <T>(f: (e: CallLogEntry) => T) => entries.map(f);
        await sql`insert into api_key_logs
            (api_key_id, timestamp, method, path, status_code, ip, latency_ms, user_agent, error_code,
             request_id, error_message, second, environment, credential)
          select * from unnest(
            ${col((e) => e.apiKeyId)}::int[], ${col((e) => e.timestamp)}::text[],
            ${col((e) => e.method)}::text[], ${col((e) => e.path)}::text[],
            ${col((e) => e.statusCode)}::int[], ${col((e) => e.ip)}::text[],
            ${col((e) => e.latencyMs)}::float8[], ${col((e) => e.userAgent)}::text[],
            ${col((e) => e.errorCode)}::text[], ${col((e) => e.requestId)}::text[],
            ${col((e) => e.message)}::text[], ${seconds}::bigint[],
            ${col((e) => e.environment ?? "live")}::text[],
            ${col((e) => e.credential ?? "key")}::text[])`.execute(trx);
      }
      if (fresh.length > 0) {
        await sql`insert into api_key_log_minutes (api_key_id, minute)
          select * from unnest(${fresh.map(([id]) => id)}::int[], ${fresh.map(([, m]) => m)}::bigint[])
          on conflict do nothing`.execute(trx);
      }
      if (uses.length > 0) {
        await sql`update api_keys as k set last_used_at = u.at, last_used_ip = u.ip
          from unnest(${uses.map(([id]) => id)}::int[], ${uses.map(([, u]) => u.at)}::text[],
                      ${uses.map(([, u]) => u.ip)}::text[]) as u(id, at, ip)
          where k.id = u.id and (k.last_used_at is null or k.last_used_at < u.at)`.execute(trx);
      }
      if (refusals.length > 0) {
        await sql`update api_keys as k
          set last_refused_at = r.at, last_refused_ip = r.ip, last_refused_code = r.code
          from unnest(${refusals.map(([id]) => id)}::int[], ${refusals.map(([, r]) => r.at)}::text[],
                      ${refusals.map(([, r]) => r.ip)}::text[],
                      ${refusals.map(([, r]) => r.code)}::text[]) as r(id, at, ip, code)
          where k.id = r.id and (k.last_refused_at is null or k.last_refused_at < r.at)`.execute(
          trx,
        );
      }
      await mergeUsagePg(trx, usage);
    });
  }

  private sqliteBatch:
    | ((
        entries: CallLogEntry[],
        seconds: number[],
        minutes: [number, number][],
        uses: [number, LastUse][],
        refusals: [number, LastRefusal][],
        usage: RollupGroup[],
      ) => void)
    | null = null;

  private prepareSqliteBatch(conn: SQLiteConnection) {
    // Rows go in LOG_ROWS_PER_INSERT at a time, the rest of a batch one by one: one statement
    // run per ten rows costs about a quarter less per row than one per row
    // (bench/log-insert-micro.ts).
    const columns = `insert into api_key_logs
         (api_key_id, timestamp, method, path, status_code, ip, latency_ms, user_agent, error_code,
          request_id, error_message, second, environment, credential)
       values `;
    const tuple = `(${Array(ROW_VALUES).fill("?").join(", ")})`;
    const insert = conn.prepare(columns + tuple);
    const insertMany = conn.prepare(columns + Array(LOG_ROWS_PER_INSERT).fill(tuple).join(", "));
    const args: unknown[] = new Array(ROW_VALUES * LOG_ROWS_PER_INSERT);
    const one: unknown[] = new Array(ROW_VALUES);
    const minute = conn.prepare(
      `insert or ignore into api_key_log_minutes (api_key_id, minute) values (?, ?)`,
    );
    const touch = conn.prepare(
      `update api_keys set last_used_at = ?, last_used_ip = ?
       where id = ? and (last_used_at is null or last_used_at < ?)`,
    );
    const refuse = conn.prepare(
      `update api_keys set last_refused_at = ?, last_refused_ip = ?, last_refused_code = ?
       where id = ? and (last_refused_at is null or last_refused_at < ?)`,
    );
    const rollups = new SqliteUsageRollups(conn);
    return conn.transaction(
      (
        entries: CallLogEntry[],
        seconds: number[],
        minutes: [number, number][],
        uses: [number, LastUse][],
        refusals: [number, LastRefusal][],
        usage: RollupGroup[],
      ) => {
        const whole = entries.length - (entries.length % LOG_ROWS_PER_INSERT);
        for (let i = 0; i < whole; i += LOG_ROWS_PER_INSERT) {
          for (let j = 0; j < LOG_ROWS_PER_INSERT; j++)
            logRow(args, j * ROW_VALUES, entries[i + j] as CallLogEntry, seconds[i + j] as number);
          insertMany.run(...args);
        }
        for (let i = whole; i < entries.length; i++) {
          logRow(one, 0, entries[i] as CallLogEntry, seconds[i] as number);
          insert.run(...one);
        }
        for (const [id, m] of minutes) minute.run(id, m);
        for (const [id, use] of uses) touch.run(use.at, use.ip, id, use.at);
        for (const [id, r] of refusals) refuse.run(r.at, r.ip, r.code, id, r.at);
        rollups.merge(usage);
      },
    );
  }

  async countLogs(): Promise<number> {
    const r = await this.db
      .selectFrom("api_key_logs")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async pruneLogs(before: string): Promise<number> {
    const cutoff = Date.parse(before);
    if (!Number.isNaN(cutoff)) {
      // Minutes wholly before the cutoff; the cutoff's own minute may still hold calls.
      await this.db
        .deleteFrom("api_key_log_minutes")
        .where("minute", "<", Math.floor(cutoff / 60_000))
        .execute();
    }
    // PostgreSQL drops the days wholly before the cutoff with their partitions; the DELETE
    // then reads only the cutoff's own day and the default partition (partition pruning).
    const dropped =
      this.raw.pg && !Number.isNaN(cutoff)
        ? await dropLogPartitionsBefore(this.db, Math.floor(cutoff / 1000))
        : 0;
    let rows = this.db.deleteFrom("api_key_logs").where("timestamp", "<", before);
    if (!Number.isNaN(cutoff)) rows = rows.where("second", "<=", Math.floor(cutoff / 1000));
    const r = await rows.executeTakeFirst();
    return dropped + Number(r.numDeletedRows);
  }
}
