import {
  type CreateTableBuilder,
  type Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  sql,
} from "kysely";
import type { Dialect } from "./dialect.js";
import { backfillUsageTotals } from "./usage.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations are written against the schema as it was then
type AnyDB = Kysely<any>;

/** Migrations are code, keyed by name, applied in name order; never edit one that shipped. */
function migrations(dialect: Dialect): Record<string, Migration> {
  const id = <T extends string>(t: CreateTableBuilder<T>) =>
    dialect === "postgres"
      ? t.addColumn("id", "serial", (c) => c.primaryKey())
      : t.addColumn("id", "integer", (c) => c.primaryKey().autoIncrement());
  return {
    "0001_initial": {
      async up(db: AnyDB) {
        await db.schema
          .createTable("settings")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("value", "text", (c) => c.notNull())
          .execute();

        await id(db.schema.createTable("users"))
          .addColumn("username", "text", (c) => c.notNull())
          .addColumn("password_hash", "text", (c) => c.notNull())
          .addColumn("role", "text", (c) => c.notNull())
          .addColumn("disabled_at", "text")
          .addColumn("deleted_at", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await sql`create unique index users_username_live on users (username) where deleted_at is null`.execute(
          db,
        );

        await db.schema
          .createTable("refresh_tokens")
          .addColumn("token_hash", "text", (c) => c.primaryKey())
          .addColumn("user_id", "integer", (c) => c.notNull().references("users.id"))
          .addColumn("family", "text", (c) => c.notNull())
          .addColumn("expires_at", "text", (c) => c.notNull())
          .addColumn("used_at", "text")
          .addColumn("revoked_at", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("refresh_tokens_family")
          .on("refresh_tokens")
          .column("family")
          .execute();
        await db.schema
          .createIndex("refresh_tokens_user")
          .on("refresh_tokens")
          .column("user_id")
          .execute();

        await id(db.schema.createTable("api_keys"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("description", "text")
          .addColumn("key_hash", "text", (c) => c.notNull().unique())
          .addColumn("key_prefix", "text", (c) => c.notNull())
          .addColumn("scopes", "text", (c) => c.notNull())
          .addColumn("owner_id", "integer", (c) => c.notNull().references("users.id"))
          .addColumn("allowed_ips", "text")
          .addColumn("rate_limit_per_minute", "integer")
          .addColumn("expires_at", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("created_by", "integer")
          .addColumn("updated_at", "text", (c) => c.notNull())
          .addColumn("revoked_at", "text")
          .addColumn("revoked_by", "integer")
          .addColumn("last_used_at", "text")
          .addColumn("last_used_ip", "text")
          .addColumn("rolled_from_id", "integer")
          .addColumn("replaced_by_id", "integer")
          .execute();
        await db.schema.createIndex("api_keys_owner").on("api_keys").column("owner_id").execute();

        await id(db.schema.createTable("api_key_logs"))
          .addColumn("api_key_id", "integer")
          .addColumn("timestamp", "text", (c) => c.notNull())
          .addColumn("method", "text", (c) => c.notNull())
          .addColumn("path", "text", (c) => c.notNull())
          .addColumn("status_code", "integer", (c) => c.notNull())
          .addColumn("ip", "text", (c) => c.notNull())
          .addColumn("latency_ms", "real", (c) => c.notNull())
          .addColumn("user_agent", "text")
          .addColumn("error_code", "text")
          .execute();
        await db.schema
          .createIndex("api_key_logs_key")
          .on("api_key_logs")
          .columns(["api_key_id", "id"])
          .execute();
        await db.schema
          .createIndex("api_key_logs_time")
          .on("api_key_logs")
          .column("timestamp")
          .execute();

        await id(db.schema.createTable("audit_log"))
          .addColumn("actor_id", "integer")
          .addColumn("actor_username", "text")
          .addColumn("via", "text", (c) => c.notNull())
          .addColumn("action", "text", (c) => c.notNull())
          .addColumn("target_type", "text", (c) => c.notNull())
          .addColumn("target_id", "text")
          .addColumn("details", "text")
          .addColumn("ip", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();

        await id(db.schema.createTable("services"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("download_kbps", "integer", (c) => c.notNull())
          .addColumn("upload_kbps", "integer", (c) => c.notNull())
          .addColumn("price_minor", "bigint", (c) => c.notNull())
          .addColumn("currency", "text", (c) => c.notNull())
          .addColumn("duration_days", "integer", (c) => c.notNull())
          .addColumn("is_active", "integer", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();

        await id(db.schema.createTable("subscribers"))
          .addColumn("username", "text", (c) => c.notNull())
          .addColumn("password_hash", "text", (c) => c.notNull())
          .addColumn("full_name", "text")
          .addColumn("phone", "text")
          .addColumn("email", "text")
          .addColumn("service_id", "integer", (c) => c.notNull().references("services.id"))
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("expiry_date", "text")
          .addColumn("owner_id", "integer", (c) => c.notNull().references("users.id"))
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .addColumn("deleted_at", "text")
          .execute();
        await sql`create unique index subscribers_username_live on subscribers (username) where deleted_at is null`.execute(
          db,
        );
        await db.schema
          .createIndex("subscribers_owner")
          .on("subscribers")
          .column("owner_id")
          .execute();

        await id(db.schema.createTable("nas"))
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("ip_address", "text", (c) => c.notNull())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("description", "text")
          .addColumn("secret", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();

        await id(db.schema.createTable("transactions"))
          .addColumn("subscriber_id", "integer", (c) => c.notNull().references("subscribers.id"))
          .addColumn("amount_minor", "bigint", (c) => c.notNull())
          .addColumn("currency", "text", (c) => c.notNull())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("reference", "text")
          .addColumn("reference_scope", "integer", (c) => c.notNull())
          .addColumn("description", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("api_key_id", "integer")
          .addColumn("created_by", "integer", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("transactions_reference")
          .on("transactions")
          .columns(["reference_scope", "reference"])
          .unique()
          .execute();
        await db.schema
          .createIndex("transactions_subscriber")
          .on("transactions")
          .column("subscriber_id")
          .execute();

        await db.schema
          .createTable("usage_daily")
          .addColumn("subscriber_id", "integer", (c) => c.notNull().references("subscribers.id"))
          .addColumn("day", "text", (c) => c.notNull())
          .addColumn("bytes_in", "bigint", (c) => c.notNull())
          .addColumn("bytes_out", "bigint", (c) => c.notNull())
          .addColumn("session_seconds", "bigint", (c) => c.notNull())
          .addPrimaryKeyConstraint("usage_daily_pk", ["subscriber_id", "day"])
          .execute();
      },
    },
    // Per-key call-log look-ups without random index writes: rows are indexed by their second
    // first, so a batch touches only the newest few index pages however many keys it holds,
    // and a small table says in which minutes each key was called (see SqlKeyRepo.logs).
    "0002_call_log_by_second": {
      async up(db: AnyDB) {
        await db.schema.alterTable("api_key_logs").addColumn("second", "bigint").execute();
        await (dialect === "postgres"
          ? sql`update api_key_logs
              set second = floor(extract(epoch from timestamp::timestamptz))::bigint`.execute(db)
          : sql`update api_key_logs
              set second = cast(strftime('%s', timestamp) as integer)`.execute(db));
        await db.schema.dropIndex("api_key_logs_key").execute();
        // The same index answers time ranges (stats, activity, pruning): one index per row less.
        await db.schema.dropIndex("api_key_logs_time").execute();
        await db.schema
          .createIndex("api_key_logs_key")
          .on("api_key_logs")
          .columns(["second", "api_key_id", "id"])
          .execute();
        await db.schema
          .createTable("api_key_log_minutes")
          .addColumn("api_key_id", "integer", (c) => c.notNull())
          .addColumn("minute", "bigint", (c) => c.notNull())
          .addPrimaryKeyConstraint("api_key_log_minutes_pk", ["api_key_id", "minute"])
          .execute();
        await sql`insert into api_key_log_minutes (api_key_id, minute)
          select distinct api_key_id, second / 60 from api_key_logs
          where api_key_id is not null and second is not null`.execute(db);
      },
    },
    // Two-factor sign-in: the TOTP secret and the last time step accepted (a code is good
    // once) on the user; recovery codes as SHA-256 hashes, each spent by setting used_at.
    "0003_two_factor": {
      async up(db: AnyDB) {
        await db.schema.alterTable("users").addColumn("totp_secret", "text").execute();
        await db.schema.alterTable("users").addColumn("totp_enabled_at", "text").execute();
        await db.schema.alterTable("users").addColumn("totp_last_step", "integer").execute();
        await id(db.schema.createTable("recovery_codes"))
          .addColumn("user_id", "integer", (c) => c.notNull().references("users.id"))
          .addColumn("code_hash", "text", (c) => c.notNull())
          .addColumn("used_at", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("recovery_codes_user")
          .on("recovery_codes")
          .columns(["user_id", "code_hash"])
          .execute();
      },
    },
    // Last use means a call the key checks accepted; their refusals are kept apart as the
    // key's last refused attempt. Filled from the call log still kept: each key's newest
    // refusal, and where a refusal had been taken for the last use, the newest accepted call
    // (a key whose log holds none keeps what it had: its real last use is no longer known).
    "0004_key_attempts": {
      async up(db: AnyDB) {
        for (const column of ["last_refused_at", "last_refused_ip", "last_refused_code"])
          await db.schema.alterTable("api_keys").addColumn(column, "text").execute();
        const codes = sql.join(
          [
            "API_KEY_REVOKED",
            "API_KEY_EXPIRED",
            "INVALID_USER",
            "IP_NOT_ALLOWED",
            "RATE_LIMIT_EXCEEDED",
            "SCOPE_REQUIRED",
            "FORBIDDEN",
          ].map((c) => sql.lit(c)),
        );
        type Newest = { api_key_id: number; timestamp: string; ip: string; error_code: string };
        const newest = async (where: ReturnType<typeof sql>) =>
          (
            await sql<Newest>`select api_key_id, timestamp, ip, error_code from (
                select api_key_id, timestamp, ip, error_code, row_number() over
                  (partition by api_key_id order by timestamp desc, id desc) as n
                from api_key_logs where api_key_id is not null and ${where}) as t
              where n = 1`.execute(db)
          ).rows;
        const refused = await newest(sql`error_code in (${codes})`);
        const keys = new Map(
          (
            await db.selectFrom("api_keys").select(["id", "last_used_at", "last_used_ip"]).execute()
          ).map((k) => [
            Number(k.id),
            k as { last_used_at: string | null; last_used_ip: string | null },
          ]),
        );
        const misread: number[] = [];
        for (const r of refused) {
          const keyId = Number(r.api_key_id);
          await db
            .updateTable("api_keys")
            .set({
              last_refused_at: r.timestamp,
              last_refused_ip: r.ip,
              last_refused_code: r.error_code,
            })
            .where("id", "=", keyId)
            .execute();
          const k = keys.get(keyId);
          if (k && k.last_used_at === r.timestamp && k.last_used_ip === r.ip) misread.push(keyId);
        }
        for (let i = 0; i < misread.length; i += 500) {
          const ids = misread.slice(i, i + 500);
          const used = await newest(
            sql`api_key_id in (${sql.join(ids)}) and (error_code is null or error_code not in (${codes}))`,
          );
          for (const u of used)
            await db
              .updateTable("api_keys")
              .set({ last_used_at: u.timestamp, last_used_ip: u.ip })
              .where("id", "=", Number(u.api_key_id))
              .execute();
        }
      },
    },
    // Each call-log row carries the request id its answer carried and the exact error
    // message, so a refusal an integrator quotes can be found. Generated ids are
    // time-ordered, so the index grows at its right edge like the rows.
    "0005_call_log_request_ids": {
      async up(db: AnyDB) {
        await db.schema.alterTable("api_key_logs").addColumn("request_id", "text").execute();
        await db.schema.alterTable("api_key_logs").addColumn("error_message", "text").execute();
        await db.schema
          .createIndex("api_key_logs_request")
          .on("api_key_logs")
          .column("request_id")
          .execute();
      },
    },
    // Permissions and environments (SPEC §7). A key's permissions are a normalised JSON list
    // (old keys get what their scope stood for); every key, subscriber, transaction, usage
    // row and call-log row is live or test, and what was there before is live. Usernames and
    // transaction references are unique within an environment, not across both.
    "0006_permissions_environments": {
      async up(db: AnyDB) {
        await db.schema
          .alterTable("api_keys")
          .addColumn("permissions", "text", (c) => c.notNull().defaultTo("[]"))
          .execute();
        await sql`update api_keys set permissions = case scopes
            when 'write' then '["*:write"]' when 'delete' then '["*:delete"]'
            else '["*:read"]' end`.execute(db);
        for (const table of [
          "api_keys",
          "subscribers",
          "transactions",
          "usage_daily",
          "api_key_logs",
        ])
          await db.schema
            .alterTable(table)
            .addColumn("environment", "text", (c) => c.notNull().defaultTo("live"))
            .execute();
        await db.schema.dropIndex("subscribers_username_live").execute();
        await sql`create unique index subscribers_username_live on subscribers (environment, username) where deleted_at is null`.execute(
          db,
        );
        await db.schema.dropIndex("transactions_reference").execute();
        await db.schema
          .createIndex("transactions_reference")
          .on("transactions")
          .columns(["environment", "reference_scope", "reference"])
          .unique()
          .execute();
        await db.schema
          .createIndex("subscribers_environment_owner")
          .on("subscribers")
          .columns(["environment", "owner_id"])
          .execute();
      },
    },
    // Credentials (SPEC §8). A key's signing mode and its secret, sealed under the master key
    // (never in the clear); how often it was exchanged for access tokens; which credential
    // each call used; the token-signing keys (sealed when a master key is set); and revoked
    // access tokens, kept until they would have expired anyway.
    "0007_credentials": {
      async up(db: AnyDB) {
        await db.schema
          .alterTable("api_keys")
          .addColumn("signing", "text", (c) => c.notNull().defaultTo("off"))
          .execute();
        await db.schema.alterTable("api_keys").addColumn("signing_secret", "text").execute();
        await db.schema
          .alterTable("api_keys")
          .addColumn("tokens_issued", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.alterTable("api_keys").addColumn("last_token_at", "text").execute();
        await db.schema
          .alterTable("api_key_logs")
          .addColumn("credential", "text", (c) => c.notNull().defaultTo("key"))
          .execute();
        await db.schema
          .createTable("oauth_signing_keys")
          .addColumn("kid", "text", (c) => c.primaryKey())
          .addColumn("public_jwk", "text", (c) => c.notNull())
          .addColumn("private_jwk", "text", (c) => c.notNull())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("retired_at", "bigint")
          .execute();
        await db.schema
          .createTable("oauth_revoked_tokens")
          .addColumn("jti", "text", (c) => c.primaryKey())
          .addColumn("api_key_id", "integer", (c) => c.notNull())
          .addColumn("expires_at", "bigint", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("oauth_revoked_tokens_key")
          .on("oauth_revoked_tokens")
          .columns(["api_key_id", "expires_at"])
          .execute();
      },
    },
    // Events (SPEC §9): the outbox, written in the transaction of the change it describes;
    // webhook endpoints (their signing secret sealed under the master key when one is set);
    // and one delivery per endpoint and event, claimed by one instance at a time (a lease).
    "0008_events": {
      async up(db: AnyDB) {
        await id(db.schema.createTable("events"))
          .addColumn("message_id", "text", (c) => c.notNull().unique())
          .addColumn("type", "text", (c) => c.notNull())
          .addColumn("environment", "text", (c) => c.notNull())
          .addColumn("owner_id", "integer")
          .addColumn("payload", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("dispatched_at", "text")
          .execute();
        await sql`create index events_undispatched on events (id) where dispatched_at is null`.execute(
          db,
        );
        await db.schema.createIndex("events_created").on("events").column("created_at").execute();
        await id(db.schema.createTable("webhook_endpoints"))
          .addColumn("owner_id", "integer", (c) => c.notNull().references("users.id"))
          .addColumn("environment", "text", (c) => c.notNull())
          .addColumn("url", "text", (c) => c.notNull())
          .addColumn("description", "text")
          .addColumn("events", "text", (c) => c.notNull())
          .addColumn("enabled", "integer", (c) => c.notNull())
          .addColumn("secret", "text", (c) => c.notNull())
          .addColumn("previous_secret", "text")
          .addColumn("previous_secret_until", "text")
          .addColumn("failing_since", "text")
          .addColumn("disabled_at", "text")
          .addColumn("disabled_reason", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("webhook_endpoints_owner")
          .on("webhook_endpoints")
          .column("owner_id")
          .execute();
        await id(db.schema.createTable("webhook_deliveries"))
          .addColumn("endpoint_id", "integer", (c) => c.notNull())
          .addColumn("event_id", "integer", (c) => c.notNull())
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("manual", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("next_attempt_at", "text")
          .addColumn("locked_until", "text")
          .addColumn("locked_by", "text")
          .addColumn("last_attempt_at", "text")
          .addColumn("response_status", "integer")
          .addColumn("latency_ms", "integer")
          .addColumn("response_body", "text")
          .addColumn("error", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("webhook_deliveries_event_endpoint")
          .on("webhook_deliveries")
          .columns(["event_id", "endpoint_id"])
          .unique()
          .execute();
        await db.schema
          .createIndex("webhook_deliveries_due")
          .on("webhook_deliveries")
          .columns(["status", "next_attempt_at"])
          .execute();
        await db.schema
          .createIndex("webhook_deliveries_endpoint")
          .on("webhook_deliveries")
          .columns(["endpoint_id", "id"])
          .execute();
      },
    },
    // Console alerts (SPEC §9): those born of an event (a leaked key now; spikes, new IPs and
    // failing webhooks later), and who dismissed which alert, stored or computed (a key
    // expiring soon is a query, not a row).
    "0009_alerts": {
      async up(db: AnyDB) {
        await id(db.schema.createTable("alerts"))
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("severity", "text", (c) => c.notNull())
          .addColumn("title", "text", (c) => c.notNull())
          .addColumn("message", "text", (c) => c.notNull())
          .addColumn("target_type", "text")
          .addColumn("target_id", "integer")
          .addColumn("owner_id", "integer")
          .addColumn("environment", "text", (c) => c.notNull().defaultTo("live"))
          .addColumn("details", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex("alerts_environment_created")
          .on("alerts")
          .columns(["environment", "created_at"])
          .execute();
        await db.schema
          .createTable("alert_dismissals")
          .addColumn("user_id", "integer", (c) => c.notNull())
          .addColumn("alert_ref", "text", (c) => c.notNull())
          .addColumn("dismissed_at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("alert_dismissals_pk", ["user_id", "alert_ref"])
          .execute();
      },
    },
    "0010_scheduler": {
      async up(db: AnyDB) {
        // What the scheduler has announced already: a reminder per key and expiry, a spike
        // per key and hour (src/events/scheduler.ts).
        await db.schema
          .createTable("event_marks")
          .addColumn("api_key_id", "integer", (c) => c.notNull())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("mark", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("event_marks_pk", ["api_key_id", "kind", "mark"])
          .execute();
        // The addresses each key was used from, and when last: what makes an address new.
        await db.schema
          .createTable("api_key_ips")
          .addColumn("api_key_id", "integer", (c) => c.notNull())
          .addColumn("ip", "text", (c) => c.notNull())
          .addColumn("last_seen_at", "text", (c) => c.notNull())
          .addPrimaryKeyConstraint("api_key_ips_pk", ["api_key_id", "ip"])
          .execute();
        // Refused calls per key and 5-minute window, while a window could still make a spike.
        await db.schema
          .createTable("refusal_windows")
          .addColumn("api_key_id", "integer", (c) => c.notNull())
          .addColumn("bucket", "integer", (c) => c.notNull())
          .addColumn("refusals", "integer", (c) => c.notNull())
          .addPrimaryKeyConstraint("refusal_windows_pk", ["api_key_id", "bucket"])
          .execute();
      },
    },
    // Quotas (SPEC §10): a cap of admitted calls per UTC day or month, on top of the
    // per-minute rate; `quota_refill_day` (1–31) moves a monthly period's start.
    "0011_quotas": {
      async up(db: AnyDB) {
        await db.schema.alterTable("api_keys").addColumn("quota_limit", "integer").execute();
        await db.schema.alterTable("api_keys").addColumn("quota_period", "text").execute();
        await db.schema.alterTable("api_keys").addColumn("quota_refill_day", "integer").execute();
      },
    },
    // Usage rollups (SPEC §10), kept by the call-log writer in its own batches: one row per
    // key, environment and UTC hour (epoch hour). Counts by status class; `admitted` counts
    // the calls that passed every key check (what a quota spends). The JSON columns hold
    // bounded maps: error code → calls, route → calls, client IP → calls, and the latency
    // histogram's bucket counts.
    "0012_usage_rollups": {
      async up(db: AnyDB) {
        await db.schema
          .createTable("usage_rollups")
          .addColumn("api_key_id", "integer", (c) => c.notNull())
          .addColumn("environment", "text", (c) => c.notNull())
          .addColumn("hour", "bigint", (c) => c.notNull())
          .addColumn("calls", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("admitted", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s2xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s3xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s4xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s5xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("errors", "text", (c) => c.notNull().defaultTo("{}"))
          .addColumn("latency", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("routes", "text", (c) => c.notNull().defaultTo("{}"))
          .addColumn("ips", "text", (c) => c.notNull().defaultTo("{}"))
          .addPrimaryKeyConstraint("usage_rollups_pk", ["api_key_id", "environment", "hour"])
          .execute();
        // GET /api/usage reads every visible key's hours in a range.
        await db.schema
          .createIndex("usage_rollups_hour")
          .on("usage_rollups")
          .columns(["hour", "api_key_id"])
          .execute();
      },
    },
    // PostgreSQL: the call log partitioned by range of `second`, one partition per UTC day
    // (api_key_logs_pYYYYMMDD) and a default one, so retention drops a day's partition instead
    // of deleting its rows one by one (docs/decisions/0008-call-log-storage.md). The old table
    // is renamed, the new one made like it, the rows copied, the old one dropped, all in the
    // migration's transaction. The id sequence carries on; the primary key becomes (id, second)
    // since it must hold the partition key, so `second` is now NOT NULL: a row without one
    // (none has been written since 0002 filled them in) is kept at 0, in the default partition.
    // Days with rows in the last 92 days get partitions, as do today and the next 3; older
    // rows go to the default partition, which retention empties by DELETE as before.
    // SQLite: nothing changes.
    "0013_call_log_partitions": {
      async up(db: AnyDB) {
        if (dialect !== "postgres") return;
        const DAY = 86_400;
        const today = Math.floor(Date.now() / 1000 / DAY);
        // Copying a big log takes longer than the pool's statement timeout allows.
        await sql`set local statement_timeout = 0`.execute(db);
        await sql`alter table api_key_logs rename to api_key_logs_unpartitioned`.execute(db);
        await sql`alter table api_key_logs_unpartitioned drop constraint if exists api_key_logs_pkey`.execute(
          db,
        );
        await sql`drop index if exists api_key_logs_key`.execute(db);
        await sql`drop index if exists api_key_logs_request`.execute(db);
        await sql`update api_key_logs_unpartitioned set second = 0 where second is null`.execute(
          db,
        );
        // Same columns in the same order, same defaults (the id's nextval of the same sequence).
        await sql`create table api_key_logs
          (like api_key_logs_unpartitioned including defaults) partition by range (second)`.execute(
          db,
        );
        await sql`alter table api_key_logs alter column second set not null`.execute(db);
        const seq = (
          await sql<{
            s: string | null;
          }>`select pg_get_serial_sequence('api_key_logs_unpartitioned', 'id') as s`.execute(db)
        ).rows[0]?.s;
        if (seq) {
          // The sequence goes with the new table, not with the old one when it is dropped.
          await sql`alter sequence ${sql.raw(seq)} owned by api_key_logs.id`.execute(db);
        } else {
          await sql`create sequence api_key_logs_id_seq owned by api_key_logs.id`.execute(db);
          await sql`select setval('api_key_logs_id_seq', greatest(1, (select max(id) from api_key_logs_unpartitioned)))`.execute(
            db,
          );
          await sql`alter table api_key_logs alter column id set default nextval('api_key_logs_id_seq')`.execute(
            db,
          );
        }
        await sql`create table api_key_logs_default partition of api_key_logs default`.execute(db);
        const days = new Set<number>();
        for (let d = today - 92; d <= today + 3; d++) {
          const { rows } = await sql<{ one: number }>`select 1 as one
            from api_key_logs_unpartitioned
            where second >= ${d * DAY} and second < ${(d + 1) * DAY} limit 1`.execute(db);
          if (rows.length > 0 || d >= today) days.add(d);
        }
        for (const d of days) {
          const name = `api_key_logs_p${new Date(d * DAY * 1000).toISOString().slice(0, 10).replaceAll("-", "")}`;
          await sql`create table ${sql.table(name)} partition of api_key_logs
            for values from (${sql.lit(d * DAY)}) to (${sql.lit((d + 1) * DAY)})`.execute(db);
        }
        await sql`insert into api_key_logs select * from api_key_logs_unpartitioned`.execute(db);
        await sql`drop table api_key_logs_unpartitioned`.execute(db);
        // The indexes after the copy (built once per partition, not row by row).
        await sql`alter table api_key_logs add constraint api_key_logs_pkey primary key (id, second)`.execute(
          db,
        );
        await db.schema
          .createIndex("api_key_logs_key")
          .on("api_key_logs")
          .columns(["second", "api_key_id", "id"])
          .execute();
        await db.schema
          .createIndex("api_key_logs_request")
          .on("api_key_logs")
          .column("request_id")
          .execute();
      },
    },
    // Quotas follow a roll chain (docs/decisions/0020-quotas.md): a replacement spends the
    // quota of the key it replaced, counted under the chain's first key. `quota_root_id` is
    // that first key (null on a key that was not rolled from another: it is its own root).
    // Keys already rolled get their chain's first key, walking `rolled_from_id` back.
    "0014_quota_roots": {
      async up(db: AnyDB) {
        await db.schema.alterTable("api_keys").addColumn("quota_root_id", "integer").execute();
        await db.schema
          .createIndex("api_keys_quota_root")
          .on("api_keys")
          .column("quota_root_id")
          .execute();
        const rows = (await db
          .selectFrom("api_keys")
          .select(["id", "rolled_from_id"])
          .where("rolled_from_id", "is not", null)
          .orderBy("id")
          .execute()) as { id: number; rolled_from_id: number }[];
        // A replacement is inserted after the key it replaces, so its predecessor comes first.
        const root = new Map<number, number>();
        for (const r of rows) {
          const from = Number(r.rolled_from_id);
          const first = root.get(from) ?? from;
          root.set(Number(r.id), first);
          await db
            .updateTable("api_keys")
            .set({ quota_root_id: first })
            .where("id", "=", r.id)
            .execute();
        }
      },
    },
    // Every attempt of a webhook delivery (docs/webhooks.md), beside the last one the delivery
    // row keeps: when it was sent, what came back (or the error), how long it took, and the
    // first 1 KiB of the answer. Keyed by delivery and attempt number, which is how they are
    // read; pruned with their deliveries. And the audit trail by time: its list filters on
    // `created_at` (from, to) and counts what matched, which scanned every row before.
    "0015_webhook_attempts": {
      async up(db: AnyDB) {
        await db.schema
          .createTable("webhook_attempts")
          .addColumn("delivery_id", "integer", (c) => c.notNull())
          .addColumn("attempt", "integer", (c) => c.notNull())
          .addColumn("attempted_at", "text", (c) => c.notNull())
          .addColumn("outcome", "text", (c) => c.notNull())
          .addColumn("manual", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("response_status", "integer")
          .addColumn("latency_ms", "integer", (c) => c.notNull())
          .addColumn("error", "text")
          .addColumn("response_body", "text")
          .addPrimaryKeyConstraint("webhook_attempts_pk", ["delivery_id", "attempt"])
          .execute();
        await db.schema
          .createIndex("audit_log_created")
          .on("audit_log")
          .columns(["created_at", "id"])
          .execute();
      },
    },
    // Usage summed per owner and for every key (owner_id 0), per environment and hour, kept by
    // the same merge as usage_rollups: GET /api/usage read every visible key's rows of its
    // range before (720 rows a key for 30 days: seconds with a thousand keys), and now reads
    // one row an hour. Filled from the rollups already stored, for the keys' owners now.
    "0016_usage_totals": {
      async up(db: AnyDB) {
        await db.schema
          .createTable("usage_totals")
          .addColumn("owner_id", "integer", (c) => c.notNull())
          .addColumn("environment", "text", (c) => c.notNull())
          .addColumn("hour", "bigint", (c) => c.notNull())
          .addColumn("calls", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("admitted", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s2xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s3xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s4xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("s5xx", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("errors", "text", (c) => c.notNull().defaultTo("{}"))
          .addColumn("latency", "text", (c) => c.notNull().defaultTo("[]"))
          .addColumn("routes", "text", (c) => c.notNull().defaultTo("{}"))
          .addColumn("ips", "text", (c) => c.notNull().defaultTo("{}"))
          .addPrimaryKeyConstraint("usage_totals_pk", ["owner_id", "environment", "hour"])
          .execute();
        await backfillUsageTotals(db);
      },
    },
  };
}

class CodeMigrations implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/**
 * Brings the schema up to date (or up to the migration named `target`); safe when several
 * instances start at once (Kysely's lock). Answers the names of the migrations it applied.
 */
export async function migrateToLatest(
  db: AnyDB,
  dialect: Dialect,
  target?: string,
): Promise<string[]> {
  // On PostgreSQL, keep Kysely's bookkeeping in the schema this connection writes to, so
  // other schemas in the same database (other deployments, test runs) are never consulted.
  const schema =
    dialect === "postgres"
      ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]?.s
      : undefined;
  const migrator = new Migrator({
    db: schema ? scopedTo(db) : db,
    provider: new CodeMigrations(dialect),
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  const { error, results } =
    target === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(target);
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) {
    const reason = error instanceof Error ? error.message : String(error ?? "unknown error");
    throw new Error(`database migration ${failed?.migrationName ?? ""} failed: ${reason}`);
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/**
 * The database as Kysely's migrator sees it on PostgreSQL, its catalog look-ups limited to
 * this connection's schema. Before it migrates, the migrator looks for its own tables by
 * reading the catalog of every schema; a schema another session drops meanwhile (another
 * deployment's, a test run's) fails that read with "schema … does not exist"
 * (test/migrate-schemas.test.ts).
 */
function scopedTo(db: AnyDB): AnyDB {
  const introspection = {
    async getSchemas() {
      const r = await sql<{ name: string }>`select current_schema() as name`.execute(db);
      return r.rows;
    },
    async getTables() {
      const r = await sql<{ name: string; schema: string; kind: string }>`
        select c.relname as name, n.nspname as schema, c.relkind as kind
        from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p', 'v', 'm', 'f')`.execute(db);
      return r.rows.map((t) => ({
        name: t.name,
        schema: t.schema,
        isView: t.kind === "v" || t.kind === "m",
        columns: [],
      }));
    },
    async getMetadata() {
      return { tables: await this.getTables() };
    },
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "introspection") return introspection;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
