import { type Kysely, type Selectable, sql } from "kysely";
import type { Dialect } from "./dialect.js";
import type { DB } from "./schema.js";
import { messageId } from "../events/outbox.js";

export type EndpointRow = Selectable<DB["webhook_endpoints"]>;
export type DeliveryRow = Selectable<DB["webhook_deliveries"]>;
export type AttemptRow = Selectable<DB["webhook_attempts"]>;

/** A delivery as its log shows it, with the event it carries. */
export type DeliveryEntry = DeliveryRow & { message_id: string; event_type: string };

/** What a claimed delivery needs to be sent. */
export type Claimed = {
  id: number;
  attempts: number;
  manual: number;
  endpoint: EndpointRow;
  messageId: string;
  payload: string;
};

export type NewEndpoint = Omit<EndpointRow, "id" | "secret"> & { secret: string };

/** Webhook endpoints, their deliveries and the outbox's fan-out: SQL only. */
export class SqlWebhookRepo {
  constructor(
    private readonly db: Kysely<DB>,
    private readonly dialect: Dialect,
  ) {}

  /** Inserts an endpoint; `seal` gives the stored secret once the id is known, in the same transaction. */
  async insert(
    row: Omit<NewEndpoint, "secret">,
    seal: (id: number) => string,
  ): Promise<EndpointRow> {
    return this.db.transaction().execute(async (trx) => {
      const { id } = await trx
        .insertInto("webhook_endpoints")
        .values({ ...row, secret: "" })
        .returning("id")
        .executeTakeFirstOrThrow();
      return trx
        .updateTable("webhook_endpoints")
        .set({ secret: seal(id) })
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirstOrThrow();
    });
  }

  /** How many endpoints a user has registered, in both environments. */
  async countOwned(ownerId: number): Promise<number> {
    const r = await this.db
      .selectFrom("webhook_endpoints")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("owner_id", "=", ownerId)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async findById(id: number): Promise<EndpointRow | null> {
    return (
      (await this.db
        .selectFrom("webhook_endpoints")
        .selectAll()
        .where("id", "=", id)
        .executeTakeFirst()) ?? null
    );
  }

  /** Every endpoint, or one owner's, of one environment; newest first. */
  async list(ownerId: number | null, environment: string): Promise<EndpointRow[]> {
    let q = this.db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("environment", "=", environment)
      .orderBy("id", "desc");
    if (ownerId !== null) q = q.where("owner_id", "=", ownerId);
    return q.execute();
  }

  async update(
    id: number,
    patch: Partial<Omit<EndpointRow, "id" | "owner_id" | "environment" | "created_at">>,
  ): Promise<EndpointRow> {
    return this.db
      .updateTable("webhook_endpoints")
      .set(patch)
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }

  async delete(id: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .deleteFrom("webhook_attempts")
        .where("delivery_id", "in", (eb) =>
          eb.selectFrom("webhook_deliveries").select("id").where("endpoint_id", "=", id),
        )
        .execute();
      await trx.deleteFrom("webhook_deliveries").where("endpoint_id", "=", id).execute();
      await trx.deleteFrom("webhook_endpoints").where("id", "=", id).execute();
    });
  }

  /** An endpoint's deliveries, newest first; `beforeId` pages on. */
  async deliveries(
    endpointId: number,
    q: { limit: number; beforeId?: number; status?: string },
  ): Promise<DeliveryEntry[]> {
    let query = this.db
      .selectFrom("webhook_deliveries as d")
      .innerJoin("events as e", "e.id", "d.event_id")
      .selectAll("d")
      .select(["e.message_id", "e.type as event_type"])
      .where("d.endpoint_id", "=", endpointId)
      .orderBy("d.id", "desc")
      .limit(q.limit);
    if (q.beforeId !== undefined) query = query.where("d.id", "<", q.beforeId);
    if (q.status !== undefined) query = query.where("d.status", "=", q.status);
    return query.execute();
  }

  async delivery(endpointId: number, id: number): Promise<DeliveryEntry | null> {
    return (
      (await this.db
        .selectFrom("webhook_deliveries as d")
        .innerJoin("events as e", "e.id", "d.event_id")
        .selectAll("d")
        .select(["e.message_id", "e.type as event_type"])
        .where("d.endpoint_id", "=", endpointId)
        .where("d.id", "=", id)
        .executeTakeFirst()) ?? null
    );
  }

  /** A delivery's attempts in the order they were made; `after` (an attempt number) pages on. */
  async attempts(deliveryId: number, q: { limit: number; after?: number }): Promise<AttemptRow[]> {
    let query = this.db
      .selectFrom("webhook_attempts")
      .selectAll()
      .where("delivery_id", "=", deliveryId)
      .orderBy("attempt")
      .limit(q.limit);
    if (q.after !== undefined) query = query.where("attempt", ">", q.after);
    return query.execute();
  }

  /**
   * Asks for a delivery again, now: a pending one keeps its schedule; a finished one gets one
   * more attempt (`manual`), with the same message id.
   */
  async redeliver(id: number, now: string): Promise<void> {
    await this.db
      .updateTable("webhook_deliveries")
      .set((eb) => ({
        manual: eb.case().when("status", "=", "pending").then(eb.ref("manual")).else(1).end(),
        status: "pending",
        next_attempt_at: now,
        updated_at: now,
      }))
      .where("id", "=", id)
      .execute();
  }

  /** A test message to one endpoint: an event fanned out already, to that endpoint alone. */
  async testMessage(
    endpointId: number,
    type: string,
    payload: string,
    environment: string,
    now: string,
  ): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const { id } = await trx
        .insertInto("events")
        .values({
          message_id: messageId(),
          type,
          environment,
          owner_id: null,
          payload,
          created_at: now,
          dispatched_at: now,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      const d = await trx
        .insertInto("webhook_deliveries")
        .values({
          endpoint_id: endpointId,
          event_id: id,
          status: "pending",
          manual: 1,
          next_attempt_at: now,
          created_at: now,
          updated_at: now,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      return d.id;
    });
  }

  /** `FOR UPDATE SKIP LOCKED` on PostgreSQL: rows another instance holds are left to it. */
  private get skipLocked() {
    return sql.raw(this.dialect === "postgres" ? "for update skip locked" : "");
  }

  /**
   * Fans undispatched events out into deliveries, one per matching endpoint, and marks them
   * dispatched, in one transaction; several instances each take other events. `matches`
   * decides which endpoints take which event. Answers the number of events fanned out.
   */
  async fanOut(
    now: string,
    limit: number,
    matches: (
      event: { type: string; environment: string; owner_id: number | null; created_at: string },
      endpoint: EndpointRow & { owner_role: string },
    ) => boolean,
  ): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const events = (
        await sql<{
          id: number;
          type: string;
          environment: string;
          owner_id: number | null;
          created_at: string;
        }>`select id, type, environment, owner_id, created_at from events where dispatched_at is null order by id limit ${limit} ${this.skipLocked}`.execute(
          trx,
        )
      ).rows;
      if (events.length === 0) return 0;
      const endpoints = await trx
        .selectFrom("webhook_endpoints as w")
        .innerJoin("users as u", "u.id", "w.owner_id")
        .selectAll("w")
        .select("u.role as owner_role")
        .where("w.enabled", "=", 1)
        .where("u.deleted_at", "is", null)
        .where("u.disabled_at", "is", null)
        .execute();
      const rows = events.flatMap((e) =>
        endpoints
          .filter((w) => matches(e, w))
          .map((w) => ({
            endpoint_id: w.id,
            event_id: Number(e.id),
            status: "pending",
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
          })),
      );
      for (let i = 0; i < rows.length; i += 200) {
        await trx
          .insertInto("webhook_deliveries")
          .values(rows.slice(i, i + 200))
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      await trx
        .updateTable("events")
        .set({ dispatched_at: now })
        .where(
          "id",
          "in",
          events.map((e) => Number(e.id)),
        )
        .execute();
      return events.length;
    });
  }

  /**
   * Claims up to `limit` due deliveries of enabled endpoints for `owner` until `leaseUntil`.
   * A claim another instance holds (its lease not over) is never taken; on PostgreSQL two
   * instances claiming at once skip each other's rows.
   */
  async claim(owner: string, now: string, leaseUntil: string, limit: number): Promise<Claimed[]> {
    const lock = sql.raw(this.dialect === "postgres" ? "for update of d skip locked" : "");
    const claimed = (
      await sql<{
        id: number;
        endpoint_id: number;
        event_id: number;
        attempts: number;
        manual: number;
      }>`
        update webhook_deliveries set locked_until = ${leaseUntil}, locked_by = ${owner}
        where id in (
          select d.id from webhook_deliveries d
          inner join webhook_endpoints w on w.id = d.endpoint_id
          where d.status = 'pending' and d.next_attempt_at <= ${now}
            and (d.locked_until is null or d.locked_until <= ${now}) and w.enabled = 1
          order by d.next_attempt_at, d.id limit ${limit} ${lock})
        returning id, endpoint_id, event_id, attempts, manual`.execute(this.db)
    ).rows;
    if (claimed.length === 0) return [];
    const events = await this.db
      .selectFrom("events")
      .select(["id", "message_id", "payload"])
      .where("id", "in", [...new Set(claimed.map((c) => Number(c.event_id)))])
      .execute();
    const endpoints = await this.db
      .selectFrom("webhook_endpoints")
      .selectAll()
      .where("id", "in", [...new Set(claimed.map((c) => Number(c.endpoint_id)))])
      .execute();
    const eventById = new Map(events.map((e) => [Number(e.id), e]));
    const endpointById = new Map(endpoints.map((w) => [Number(w.id), w]));
    return claimed.flatMap((c) => {
      const event = eventById.get(Number(c.event_id));
      const endpoint = endpointById.get(Number(c.endpoint_id));
      if (!event || !endpoint) return [];
      return [
        {
          id: Number(c.id),
          attempts: Number(c.attempts),
          manual: Number(c.manual),
          endpoint,
          messageId: event.message_id,
          payload: event.payload,
        },
      ];
    });
  }

  /**
   * Records an attempt of a delivery this owner still holds: the delivery's state and last
   * attempt, and the attempt's own row in its history, in one transaction. False when the
   * claim was lost (another instance holds the delivery now): then nothing is written.
   */
  async recordAttempt(
    id: number,
    owner: string,
    result: {
      status: "pending" | "succeeded" | "failed";
      attempts: number;
      nextAttemptAt: string | null;
      /** When the attempt was sent (its webhook-timestamp). */
      sentAt: string;
      /** When its answer (or failure) came: the delivery's last attempt time. */
      at: string;
      /** An attempt asked by hand (a redelivery of a finished delivery, a test message). */
      manual: boolean;
      ok: boolean;
      responseStatus: number | null;
      latencyMs: number;
      responseBody: string | null;
      error: string | null;
    },
  ): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable("webhook_deliveries")
        .set({
          status: result.status,
          attempts: result.attempts,
          manual: 0,
          next_attempt_at: result.nextAttemptAt,
          locked_until: null,
          locked_by: null,
          last_attempt_at: result.at,
          response_status: result.responseStatus,
          latency_ms: result.latencyMs,
          response_body: result.responseBody,
          error: result.error,
          updated_at: result.at,
        })
        .where("id", "=", id)
        .where("locked_by", "=", owner)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await trx
        .insertInto("webhook_attempts")
        .values({
          delivery_id: id,
          attempt: result.attempts,
          attempted_at: result.sentAt,
          outcome: result.ok ? "succeeded" : "failed",
          manual: result.manual ? 1 : 0,
          response_status: result.responseStatus,
          latency_ms: result.latencyMs,
          error: result.error,
          response_body: result.responseBody,
        })
        .execute();
      return true;
    });
  }

  /** An endpoint answered: it is no longer failing. */
  async endpointSucceeded(id: number): Promise<void> {
    await this.db
      .updateTable("webhook_endpoints")
      .set({ failing_since: null })
      .where("id", "=", id)
      .where("failing_since", "is not", null)
      .execute();
  }

  /**
   * An endpoint failed at `now`: failing since then unless it already was. Disabled, with
   * `reason`, when it has been failing since `disableBefore` or earlier; true when this call disabled it.
   */
  async endpointFailed(
    id: number,
    now: string,
    disableBefore: string,
    reason: (since: string) => string,
  ): Promise<boolean> {
    await this.db
      .updateTable("webhook_endpoints")
      .set({ failing_since: now })
      .where("id", "=", id)
      .where("failing_since", "is", null)
      .execute();
    const w = await this.findById(id);
    if (!w || w.enabled !== 1 || w.failing_since === null || w.failing_since > disableBefore)
      return false;
    const r = await this.db
      .updateTable("webhook_endpoints")
      .set({
        enabled: 0,
        disabled_at: now,
        disabled_reason: reason(w.failing_since),
        updated_at: now,
      })
      .where("id", "=", id)
      .where("enabled", "=", 1)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Releases every claim: for a single-process store at start, where any claim is stale. */
  async releaseClaims(): Promise<void> {
    await this.db
      .updateTable("webhook_deliveries")
      .set({ locked_until: null, locked_by: null })
      .where("locked_by", "is not", null)
      .execute();
  }

  /**
   * Drops finished deliveries older than `before` with their attempts, and dispatched events
   * older than `before` that no delivery carries any more.
   */
  async prune(before: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      // The attempts of exactly the deliveries dropped: one redelivered meanwhile is pending
      // again, and keeps its history.
      const gone = await trx
        .deleteFrom("webhook_deliveries")
        .where("status", "<>", "pending")
        .where("updated_at", "<", before)
        .returning("id")
        .execute();
      const ids = gone.map((d) => Number(d.id));
      for (let i = 0; i < ids.length; i += 500)
        await trx
          .deleteFrom("webhook_attempts")
          .where("delivery_id", "in", ids.slice(i, i + 500))
          .execute();
    });
    await this.db
      .deleteFrom("events")
      .where("dispatched_at", "is not", null)
      .where("created_at", "<", before)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom("webhook_deliveries as d")
              .select("d.id")
              .whereRef("d.event_id", "=", "events.id"),
          ),
        ),
      )
      .execute();
  }
}
