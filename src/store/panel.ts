import { CompiledQuery, type Kysely, type Selectable, sql } from "kysely";
import type { AuditEntry, AuditQuery, AuditRepo } from "../audit.js";
import type { Fence } from "../auth/principal.js";
import type { Environment } from "../keys/format.js";
import type { Window } from "../panel/common.js";
import type { NasRepo, NasView } from "../panel/nas.js";
import type { ServiceRepo, ServiceRow } from "../panel/services.js";
import type { StatsCounts, StatsRepo } from "../panel/stats.js";
import type {
  SubscriberEvent,
  SubscriberFilter,
  SubscriberRepo,
  SubscriberStatus,
  SubscriberView,
} from "../panel/subscribers.js";
import type {
  NewTransaction,
  TransactionFilter,
  TransactionRepo,
  TransactionRow,
  TransactionType,
} from "../panel/transactions.js";
import type { TestDataCounts, TestDataRepo } from "../panel/testdata.js";
import type { UsageDay, UsageRepo } from "../panel/usage.js";
import type { DB } from "./schema.js";
import type { NewEvent } from "../events/catalogue.js";
import { emitEvent } from "../events/outbox.js";

const count = sql<number>`count(*)`;

/** `%`, `_` and `\` in user text match themselves, not as wildcards. */
function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function toService(r: Selectable<DB["services"]>): ServiceRow {
  return { ...r, price_minor: Number(r.price_minor), is_active: Boolean(r.is_active) };
}

export class SqlServiceRepo implements ServiceRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async list(): Promise<ServiceRow[]> {
    return (await this.db.selectFrom("services").selectAll().orderBy("id").execute()).map(
      toService,
    );
  }

  async findById(id: number): Promise<ServiceRow | null> {
    const r = await this.db
      .selectFrom("services")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return r ? toService(r) : null;
  }

  async insert(
    row: Omit<ServiceRow, "id" | "created_at" | "updated_at">,
    now: string,
  ): Promise<ServiceRow> {
    const r = await this.db
      .insertInto("services")
      .values({ ...row, is_active: row.is_active ? 1 : 0, created_at: now, updated_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toService(r);
  }

  async update(
    id: number,
    patch: Partial<Omit<ServiceRow, "id" | "created_at" | "updated_at">>,
    now: string,
  ) {
    const { is_active, ...rest } = patch;
    await this.db
      .updateTable("services")
      .set({
        ...rest,
        ...(is_active === undefined ? {} : { is_active: is_active ? 1 : 0 }),
        updated_at: now,
      })
      .where("id", "=", id)
      .execute();
  }

  async deleteIfUnused(id: number): Promise<{ deleted: boolean; inUse: number }> {
    return this.db.transaction().execute(async (trx) => {
      const used = await trx
        .selectFrom("subscribers")
        .select(count.as("n"))
        .where("service_id", "=", id)
        .executeTakeFirstOrThrow();
      if (Number(used.n) > 0) return { deleted: false, inUse: Number(used.n) };
      await trx.deleteFrom("services").where("id", "=", id).execute();
      return { deleted: true, inUse: 0 };
    });
  }
}

const SUBSCRIBER_COLUMNS = [
  "id",
  "username",
  "full_name",
  "phone",
  "email",
  "service_id",
  "status",
  "expiry_date",
  "owner_id",
  "environment",
  "created_at",
  "updated_at",
] as const;

type SubscriberFields = Omit<SubscriberView, "id" | "created_at" | "updated_at"> & {
  password_hash: string;
};

function toSubscriber(
  r: Pick<Selectable<DB["subscribers"]>, (typeof SUBSCRIBER_COLUMNS)[number]>,
): SubscriberView {
  return { ...r, status: r.status as SubscriberStatus, environment: r.environment as Environment };
}

export class SqlSubscriberRepo implements SubscriberRepo {
  constructor(private readonly db: Kysely<DB>) {}

  /** Subscribers not deleted, inside the fence: the environment always, the owner unless null. */
  private live(fence: Fence) {
    let q = this.db
      .selectFrom("subscribers")
      .where("environment", "=", fence.environment)
      .where("deleted_at", "is", null);
    if (fence.ownerId !== null) q = q.where("owner_id", "=", fence.ownerId);
    return q;
  }

  async list(f: SubscriberFilter, w: Window): Promise<{ rows: SubscriberView[]; total: number }> {
    let q = this.live(f.fence);
    if (f.status) q = q.where("status", "=", f.status);
    if (f.serviceId !== undefined) q = q.where("service_id", "=", f.serviceId);
    if (f.search) {
      const pattern = likePattern(f.search);
      q = q.where((eb) =>
        eb.or(
          (["username", "full_name", "email", "phone"] as const).map(
            (c) => sql<boolean>`lower(${eb.ref(c)}) like ${pattern} escape '\\'`,
          ),
        ),
      );
    }
    const [rows, total] = await Promise.all([
      q.select(SUBSCRIBER_COLUMNS).orderBy("id").limit(w.limit).offset(w.offset).execute(),
      q.select(count.as("n")).executeTakeFirstOrThrow(),
    ]);
    return { rows: rows.map(toSubscriber), total: Number(total.n) };
  }

  /** The read behind every `GET /subscribers/:id`, built and compiled once per shape. */
  private byId: { any: CompiledQuery; owned: CompiledQuery } | null = null;

  async findById(id: number, fence: Fence): Promise<SubscriberView | null> {
    // Parameters in the order the builder wrote them: environment, owner_id (when scoped), id.
    const byId = (this.byId ??= {
      any: this.live({ ownerId: null, environment: "live" })
        .select(SUBSCRIBER_COLUMNS)
        .where("id", "=", 0)
        .compile(),
      owned: this.live({ ownerId: 0, environment: "live" })
        .select(SUBSCRIBER_COLUMNS)
        .where("id", "=", 0)
        .compile(),
    });
    const query =
      fence.ownerId === null
        ? CompiledQuery.raw(byId.any.sql, [fence.environment, id])
        : CompiledQuery.raw(byId.owned.sql, [fence.environment, fence.ownerId, id]);
    const r = (await this.db.executeQuery<Parameters<typeof toSubscriber>[0]>(query)).rows[0];
    return r ? toSubscriber(r) : null;
  }

  async findByUsername(username: string, fence: Fence): Promise<SubscriberView | null> {
    const r = await this.live(fence)
      .select(SUBSCRIBER_COLUMNS)
      .where("username", "=", username)
      .executeTakeFirst();
    return r ? toSubscriber(r) : null;
  }

  async insert(
    row: SubscriberFields,
    now: string,
    event?: SubscriberEvent,
  ): Promise<SubscriberView | null> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .insertInto("subscribers")
        .values({ ...row, created_at: now, updated_at: now })
        .onConflict((oc) => oc.doNothing())
        .returning(SUBSCRIBER_COLUMNS)
        .executeTakeFirst();
      if (!r) return null;
      const s = toSubscriber(r);
      await emitted(trx, event?.(s), now);
      return s;
    });
  }

  /** The subscriber as it reads inside `trx`, deleted or not. */
  private async reread(trx: Kysely<DB>, id: number): Promise<SubscriberView | null> {
    const r = await trx
      .selectFrom("subscribers")
      .select(SUBSCRIBER_COLUMNS)
      .where("id", "=", id)
      .executeTakeFirst();
    return r ? toSubscriber(r) : null;
  }

  async update(
    id: number,
    patch: Partial<SubscriberFields>,
    now: string,
    event?: SubscriberEvent,
  ): Promise<boolean> {
    if (patch.username !== undefined) {
      const taken = await this.db
        .selectFrom("subscribers")
        .select("id")
        .where("username", "=", patch.username)
        .where("deleted_at", "is", null)
        .where("id", "<>", id)
        .where(
          "environment",
          "=",
          this.db.selectFrom("subscribers as me").select("me.environment").where("me.id", "=", id),
        )
        .executeTakeFirst();
      if (taken) return false;
    }
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .updateTable("subscribers")
          .set({ ...patch, updated_at: now })
          .where("id", "=", id)
          .execute();
        const s = event ? await this.reread(trx, id) : null;
        if (s) await emitted(trx, event?.(s), now);
      });
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async softDelete(id: number, now: string, event?: SubscriberEvent): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("subscribers")
        .set({ deleted_at: now, updated_at: now })
        .where("id", "=", id)
        .execute();
      const s = event ? await this.reread(trx, id) : null;
      if (s) await emitted(trx, event?.(s), now);
    });
  }
}

/** Writes an event (if any) in the transaction of the change it describes. */
async function emitted(trx: Kysely<DB>, event: NewEvent | null | undefined, now: string) {
  if (event) await emitEvent(trx, event, now);
}

/** SQLite's and PostgreSQL's words for "that unique value is taken". */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === "SQLITE_CONSTRAINT_UNIQUE" || e?.code === "23505";
}

const NAS_COLUMNS = [
  "id",
  "name",
  "ip_address",
  "type",
  "description",
  "created_at",
  "updated_at",
] as const;

export class SqlNasRepo implements NasRepo {
  constructor(private readonly db: Kysely<DB>) {}

  list(): Promise<NasView[]> {
    return this.db.selectFrom("nas").select(NAS_COLUMNS).orderBy("id").execute();
  }

  async findById(id: number): Promise<NasView | null> {
    return (
      (await this.db
        .selectFrom("nas")
        .select(NAS_COLUMNS)
        .where("id", "=", id)
        .executeTakeFirst()) ?? null
    );
  }

  insert(
    row: Omit<NasView, "id" | "created_at" | "updated_at"> & { secret: string },
    now: string,
  ): Promise<NasView> {
    return this.db
      .insertInto("nas")
      .values({ ...row, created_at: now, updated_at: now })
      .returning(NAS_COLUMNS)
      .executeTakeFirstOrThrow();
  }

  async update(
    id: number,
    patch: Partial<Omit<NasView, "id"> & { secret: string }>,
    now: string,
  ): Promise<void> {
    await this.db
      .updateTable("nas")
      .set({ ...patch, updated_at: now })
      .where("id", "=", id)
      .execute();
  }

  async delete(id: number): Promise<void> {
    await this.db.deleteFrom("nas").where("id", "=", id).execute();
  }
}

const TX_COLUMNS = [
  "t.id",
  "t.subscriber_id",
  "t.amount_minor",
  "t.currency",
  "t.type",
  "t.reference",
  "t.description",
  "t.created_at",
  "t.api_key_id",
  "t.environment",
] as const;

function toTx(
  r: Omit<TransactionRow, "type" | "environment"> & { type: string; environment: string },
): TransactionRow {
  return {
    ...r,
    amount_minor: Number(r.amount_minor),
    type: r.type as TransactionType,
    environment: r.environment as Environment,
  };
}

export class SqlTransactionRepo implements TransactionRepo {
  constructor(private readonly db: Kysely<DB>) {}

  /** Transactions inside the fence: of its environment, on subscribers of its owner unless null. */
  private visible(fence: Fence) {
    let q = this.db
      .selectFrom("transactions as t")
      .innerJoin("subscribers as s", "s.id", "t.subscriber_id")
      .where("t.environment", "=", fence.environment);
    if (fence.ownerId !== null) q = q.where("s.owner_id", "=", fence.ownerId);
    return q;
  }

  async list(f: TransactionFilter, w: Window): Promise<{ rows: TransactionRow[]; total: number }> {
    let q = this.visible(f.fence);
    if (f.subscriberId !== undefined) q = q.where("t.subscriber_id", "=", f.subscriberId);
    if (f.from !== undefined) q = q.where("t.created_at", ">=", f.from);
    if (f.to !== undefined) q = q.where("t.created_at", "<", f.to);
    const [rows, total] = await Promise.all([
      q.select(TX_COLUMNS).orderBy("t.id", "desc").limit(w.limit).offset(w.offset).execute(),
      q.select(count.as("n")).executeTakeFirstOrThrow(),
    ]);
    return { rows: rows.map(toTx), total: Number(total.n) };
  }

  async findById(id: number, fence: Fence): Promise<TransactionRow | null> {
    const r = await this.visible(fence)
      .select(TX_COLUMNS)
      .where("t.id", "=", id)
      .executeTakeFirst();
    return r ? toTx(r) : null;
  }

  async insertOnce(
    row: NewTransaction,
    now: string,
    event?: (t: TransactionRow) => NewEvent | null,
  ): Promise<{ row: TransactionRow; created: boolean }> {
    const created = await this.db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto("transactions")
        .values({ ...row, created_at: now })
        .onConflict((oc) => oc.doNothing())
        .returning(["id"])
        .executeTakeFirst();
      if (!inserted) return null;
      const t = toTx(
        await trx
          .selectFrom("transactions as t")
          .select(TX_COLUMNS)
          .where("t.id", "=", inserted.id)
          .executeTakeFirstOrThrow(),
      );
      await emitted(trx, event?.(t), now);
      return t;
    });
    if (created) return { row: created, created: true };
    const first = await this.db
      .selectFrom("transactions as t")
      .select(TX_COLUMNS)
      .where("t.environment", "=", row.environment)
      .where("t.reference_scope", "=", row.reference_scope)
      .where("t.reference", "=", row.reference)
      .executeTakeFirstOrThrow();
    return { row: toTx(first), created: false };
  }
}

export class SqlUsageRepo implements UsageRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async add(subscriberId: number, d: UsageDay, environment: Environment): Promise<void> {
    await this.db
      .insertInto("usage_daily")
      .values({
        environment,
        subscriber_id: subscriberId,
        day: d.date,
        bytes_in: d.bytes_in,
        bytes_out: d.bytes_out,
        session_seconds: d.session_seconds,
      })
      .onConflict((oc) =>
        oc.columns(["subscriber_id", "day"]).doUpdateSet((eb) => ({
          bytes_in: eb("usage_daily.bytes_in", "+", eb.ref("excluded.bytes_in")),
          bytes_out: eb("usage_daily.bytes_out", "+", eb.ref("excluded.bytes_out")),
          session_seconds: eb(
            "usage_daily.session_seconds",
            "+",
            eb.ref("excluded.session_seconds"),
          ),
        })),
      )
      .execute();
  }

  async range(subscriberId: number, from: string, to: string): Promise<UsageDay[]> {
    const rows = await this.db
      .selectFrom("usage_daily")
      .select(["day", "bytes_in", "bytes_out", "session_seconds"])
      .where("subscriber_id", "=", subscriberId)
      .where("day", ">=", from)
      .where("day", "<=", to)
      .orderBy("day")
      .execute();
    return rows.map((r) => ({
      date: r.day,
      bytes_in: Number(r.bytes_in),
      bytes_out: Number(r.bytes_out),
      session_seconds: Number(r.session_seconds),
    }));
  }
}

export class SqlStatsRepo implements StatsRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async counts(fence: Fence, since: string, withNas: boolean): Promise<StatsCounts> {
    const ownerId = fence.ownerId;
    let subs = this.db
      .selectFrom("subscribers")
      .select(["status", count.as("n")])
      .where("environment", "=", fence.environment)
      .where("deleted_at", "is", null)
      .groupBy("status");
    if (ownerId !== null) subs = subs.where("owner_id", "=", ownerId);
    let money = this.db
      .selectFrom("transactions as t")
      .innerJoin("subscribers as s", "s.id", "t.subscriber_id")
      .select([
        "t.currency",
        count.as("n"),
        sql<number>`cast(sum(t.amount_minor) as bigint)`.as("minor"),
      ])
      .where("t.created_at", ">=", since)
      .where("t.environment", "=", fence.environment)
      .groupBy("t.currency")
      .orderBy("t.currency");
    if (ownerId !== null) money = money.where("s.owner_id", "=", ownerId);
    const [statusRows, services, nas, moneyRows] = await Promise.all([
      subs.execute(),
      this.db.selectFrom("services").select(count.as("n")).executeTakeFirstOrThrow(),
      withNas ? this.db.selectFrom("nas").select(count.as("n")).executeTakeFirstOrThrow() : null,
      money.execute(),
    ]);
    const subscribers = { total: 0, active: 0, suspended: 0, expired: 0 };
    for (const r of statusRows) {
      const n = Number(r.n);
      subscribers.total += n;
      if (r.status === "active" || r.status === "suspended" || r.status === "expired")
        subscribers[r.status] += n;
    }
    return {
      subscribers,
      services: Number(services.n),
      nas: nas === null ? null : Number(nas.n),
      transactions30d: moneyRows.map((r) => ({
        currency: r.currency,
        count: Number(r.n),
        amount_minor: Number(r.minor),
      })),
    };
  }
}

export class SqlTestDataRepo implements TestDataRepo {
  constructor(private readonly db: Kysely<DB>) {}

  wipe(): Promise<TestDataCounts> {
    // Transactions and usage point at subscribers: they go first. Only rows marked test.
    return this.db.transaction().execute(async (trx) => {
      const gone = async (table: "usage_daily" | "transactions" | "subscribers") =>
        Number(
          (await trx.deleteFrom(table).where("environment", "=", "test").executeTakeFirst())
            .numDeletedRows,
        );
      const usage = await gone("usage_daily");
      const transactions = await gone("transactions");
      const subscribers = await gone("subscribers");
      return { subscribers, transactions, usage };
    });
  }
}

export class SqlAuditRepo implements AuditRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(e: Omit<AuditEntry, "id">): Promise<void> {
    await this.db
      .insertInto("audit_log")
      .values({ ...e, details: e.details === null ? null : JSON.stringify(e.details) })
      .execute();
  }

  async list(q: AuditQuery): Promise<{ rows: AuditEntry[]; total: number }> {
    let base = this.db.selectFrom("audit_log");
    if (q.action) base = base.where("action", "=", q.action);
    if (q.targetType) base = base.where("target_type", "=", q.targetType);
    if (q.from) base = base.where("created_at", ">=", q.from);
    if (q.to) base = base.where("created_at", "<", q.to);
    // Entries are written in time order, so the id orders them by time, ties included.
    let sorted = base.selectAll();
    // Entries without a username (the operator's) first, on both engines alike.
    if (q.sort === "actor") sorted = sorted.orderBy(sql`coalesce(actor_username, '')`, "asc");
    if (q.sort === "action") sorted = sorted.orderBy("action", "asc");
    sorted = sorted.orderBy("id", q.sort === "oldest" ? "asc" : "desc");
    const [rows, total] = await Promise.all([
      sorted.limit(q.limit).offset(q.offset).execute(),
      base.select(count.as("n")).executeTakeFirstOrThrow(),
    ]);
    return {
      rows: rows.map((r) => ({
        ...r,
        details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
      })),
      total: Number(total.n),
    };
  }
}
