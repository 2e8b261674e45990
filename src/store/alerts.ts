import type { Kysely, Selectable } from "kysely";
import type {
  AlertRepo,
  AlertTarget,
  ExpiringKey,
  FailingWebhook,
  NewAlert,
  Severity,
  StoredAlert,
} from "../alerts/service.js";
import type { Environment } from "../keys/format.js";
import type { DB } from "./schema.js";

type Row = Selectable<DB["alerts"]>;

function toAlert(r: Row): StoredAlert {
  return {
    id: r.id,
    kind: r.kind,
    severity: r.severity as Severity,
    title: r.title,
    message: r.message,
    target:
      r.target_type === null || r.target_id === null
        ? null
        : { type: r.target_type as AlertTarget["type"], id: r.target_id },
    ownerId: r.owner_id,
    environment: r.environment,
    details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
    createdAt: r.created_at,
  };
}

export class SqlAlertRepo implements AlertRepo {
  constructor(private readonly db: Kysely<DB>) {}

  async insert(a: Required<NewAlert> & { createdAt: string }): Promise<number> {
    const { id } = await this.db
      .insertInto("alerts")
      .values({
        kind: a.kind,
        severity: a.severity,
        title: a.title,
        message: a.message,
        target_type: a.target?.type ?? null,
        target_id: a.target?.id ?? null,
        owner_id: a.ownerId,
        environment: a.environment,
        details: a.details === null ? null : JSON.stringify(a.details),
        created_at: a.createdAt,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    return id;
  }

  async list(q: {
    ownerId: number | null;
    environment: Environment;
    since: string;
    limit: number;
  }): Promise<StoredAlert[]> {
    let query = this.db
      .selectFrom("alerts")
      .selectAll()
      .where("environment", "=", q.environment)
      .where("created_at", ">=", q.since);
    if (q.ownerId !== null) query = query.where("owner_id", "=", q.ownerId);
    const rows = await query.orderBy("id", "desc").limit(q.limit).execute();
    return rows.map(toAlert);
  }

  async findById(id: number): Promise<StoredAlert | null> {
    const r = await this.db
      .selectFrom("alerts")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return r ? toAlert(r) : null;
  }

  async expiringKeys(q: {
    ownerId: number | null;
    environment: Environment;
    from: string;
    to: string;
  }): Promise<ExpiringKey[]> {
    let query = this.db
      .selectFrom("api_keys as k")
      .innerJoin("users as u", "u.id", "k.owner_id")
      .select(["k.id", "k.name", "k.key_prefix", "k.owner_id", "k.expires_at"])
      .where("k.environment", "=", q.environment)
      .where("k.revoked_at", "is", null)
      .where("k.replaced_by_id", "is", null)
      .where("u.deleted_at", "is", null)
      .where("u.disabled_at", "is", null)
      .where("k.expires_at", ">", q.from)
      .where("k.expires_at", "<=", q.to);
    if (q.ownerId !== null) query = query.where("k.owner_id", "=", q.ownerId);
    const rows = await query.orderBy("k.expires_at").limit(200).execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      prefix: r.key_prefix,
      ownerId: r.owner_id,
      expiresAt: r.expires_at as string,
    }));
  }

  async failingWebhooks(q: {
    ownerId: number | null;
    environment: Environment;
    failingBefore: string;
  }): Promise<FailingWebhook[]> {
    let query = this.db
      .selectFrom("webhook_endpoints")
      .select([
        "id",
        "url",
        "owner_id",
        "enabled",
        "failing_since",
        "disabled_at",
        "disabled_reason",
      ])
      .where("environment", "=", q.environment)
      .where((eb) =>
        eb.or([
          eb.and([eb("enabled", "=", 1), eb("failing_since", "<=", q.failingBefore)]),
          eb.and([eb("enabled", "=", 0), eb("disabled_reason", "is not", null)]),
        ]),
      );
    if (q.ownerId !== null) query = query.where("owner_id", "=", q.ownerId);
    const rows = await query.orderBy("id").limit(200).execute();
    return rows.map((r) => ({
      id: r.id,
      url: r.url,
      ownerId: r.owner_id,
      failingSince: r.failing_since,
      disabledAt: r.enabled === 0 ? r.disabled_at : null,
      disabledReason: r.enabled === 0 ? r.disabled_reason : null,
    }));
  }

  async dismissed(userId: number): Promise<Set<string>> {
    const rows = await this.db
      .selectFrom("alert_dismissals")
      .select("alert_ref")
      .where("user_id", "=", userId)
      .execute();
    return new Set(rows.map((r) => r.alert_ref));
  }

  async dismiss(userId: number, ref: string, at: string): Promise<void> {
    await this.db
      .insertInto("alert_dismissals")
      .values({ user_id: userId, alert_ref: ref, dismissed_at: at })
      .onConflict((c) => c.columns(["user_id", "alert_ref"]).doNothing())
      .execute();
  }
}
