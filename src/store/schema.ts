import type { Generated } from "kysely";
import type { Credential, Environment, SigningMode } from "../keys/format.js";

/**
 * Table shapes. Timestamps are ISO-8601 UTC text (`toISOString()`), which sorts and
 * compares correctly as text on both engines; flags are timestamps (`revoked_at`) or 0/1.
 */
export interface DB {
  settings: { name: string; value: string };
  users: {
    id: Generated<number>;
    username: string;
    password_hash: string;
    role: string;
    disabled_at: string | null;
    deleted_at: string | null;
    created_at: string;
    updated_at: string;
    /** Base32 TOTP secret: pending while `totp_enabled_at` is null, in force once it is set. */
    totp_secret: string | null;
    totp_enabled_at: string | null;
    /** The last TOTP time step accepted: a code at or before it is refused (used once). */
    totp_last_step: number | null;
  };
  /** Two-factor recovery codes: SHA-256 of the normalised code, spent once (`used_at`). */
  recovery_codes: {
    id: Generated<number>;
    user_id: number;
    code_hash: string;
    used_at: string | null;
    created_at: string;
  };
  refresh_tokens: {
    token_hash: string;
    user_id: number;
    family: string;
    expires_at: string;
    used_at: string | null;
    revoked_at: string | null;
    created_at: string;
  };
  api_keys: {
    id: Generated<number>;
    name: string;
    description: string | null;
    key_hash: string;
    key_prefix: string;
    scopes: string;
    /** JSON list of normalised `resource:action` permissions (added by 0006). */
    permissions: Generated<string>;
    /** `live` or `test` (added by 0006, like every `environment` column). */
    environment: Generated<Environment>;
    owner_id: number;
    allowed_ips: string | null;
    rate_limit_per_minute: number | null;
    expires_at: string | null;
    created_at: string;
    created_by: number | null;
    updated_at: string;
    revoked_at: string | null;
    revoked_by: number | null;
    /** The last call the key checks accepted (whatever the route then answered). */
    last_used_at: string | null;
    last_used_ip: string | null;
    /** The last call the key checks refused, and their error code (`KEY_REFUSALS`). */
    last_refused_at: string | null;
    last_refused_ip: string | null;
    last_refused_code: string | null;
    rolled_from_id: number | null;
    replaced_by_id: number | null;
    /** `off`, `optional` or `required` (added by 0007). */
    signing: Generated<SigningMode>;
    /** The signing secret sealed under the master key (`credentials/secrets.ts`), or null. */
    signing_secret: string | null;
    /** Access tokens issued for this key, and when the last one was. */
    tokens_issued: Generated<number>;
    last_token_at: string | null;
    /** Admitted calls per period (added by 0011); null: no quota. */
    quota_limit: number | null;
    /** `day` or `month`, with `quota_limit`. */
    quota_period: string | null;
    /** The day of the month a monthly quota refills (1–31, clamped to the month's end); null: the 1st. */
    quota_refill_day: number | null;
    /** The first key of the roll chain whose quota this key spends (added by 0014); null: itself. */
    quota_root_id: number | null;
  };
  /** Keys that sign access tokens: the private half sealed when a master key is set. */
  oauth_signing_keys: {
    kid: string;
    public_jwk: string;
    private_jwk: string;
    created_at: number;
    retired_at: number | null;
  };
  /** Access tokens revoked before they expire (RFC 7009), until `expires_at` (epoch ms). */
  oauth_revoked_tokens: {
    jti: string;
    api_key_id: number;
    expires_at: number;
  };
  api_key_logs: {
    /** `key`, `signature` or `token`: how the call authenticated (added by 0007). */
    credential: Generated<Credential>;
    environment: Generated<Environment>;
    id: Generated<number>;
    api_key_id: number | null;
    timestamp: string;
    method: string;
    path: string;
    status_code: number;
    ip: string;
    latency_ms: number;
    user_agent: string | null;
    error_code: string | null;
    /** The X-Request-Id the answer carried (added by 0005). */
    request_id: string | null;
    /** The exact error message answered (added by 0005). */
    error_message: string | null;
    /** Whole seconds since the epoch of `timestamp`: the leading column of the per-key index. */
    second: number | null;
  };
  /** The minutes in which each key was called: where `SqlKeyRepo.logs` looks. */
  api_key_log_minutes: {
    api_key_id: number;
    minute: number;
  };
  audit_log: {
    id: Generated<number>;
    actor_id: number | null;
    actor_username: string | null;
    via: string;
    action: string;
    target_type: string;
    target_id: string | null;
    details: string | null;
    ip: string | null;
    created_at: string;
  };
  /** The outbox (added by 0008): one row per event, written with the change it describes. */
  events: {
    id: Generated<number>;
    /** `webhook-id`: the same on every delivery and retry of this event. */
    message_id: string;
    type: string;
    environment: string;
    /** The user whose record the event concerns; null for none. */
    owner_id: number | null;
    /** The exact body delivered: `{ type, timestamp, data }` as JSON. */
    payload: string;
    created_at: string;
    /** When the event was fanned out into deliveries; null until then. */
    dispatched_at: string | null;
  };
  webhook_endpoints: {
    id: Generated<number>;
    owner_id: number;
    environment: string;
    url: string;
    description: string | null;
    /** JSON list of event types, or `*` for every event. */
    events: string;
    enabled: number;
    /** `whsec_…`, sealed under the master key when one is set (else as given). */
    secret: string;
    /** The secret before the last rotation, still signing beside the new one until `previous_secret_until`. */
    previous_secret: string | null;
    previous_secret_until: string | null;
    /** Since when every attempt failed; null after a success. */
    failing_since: string | null;
    disabled_at: string | null;
    disabled_reason: string | null;
    created_at: string;
    updated_at: string;
  };
  /** One delivery per endpoint and event: `pending` until `succeeded` or `failed`. */
  webhook_deliveries: {
    id: Generated<number>;
    endpoint_id: number;
    event_id: number;
    status: string;
    attempts: Generated<number>;
    /** 1 for a redelivery asked by hand of a finished delivery: one attempt, no schedule. */
    manual: Generated<number>;
    next_attempt_at: string | null;
    /** The claim of the instance delivering it (its lease), so no other takes it meanwhile. */
    locked_until: string | null;
    locked_by: string | null;
    last_attempt_at: string | null;
    response_status: number | null;
    latency_ms: number | null;
    /** The first 1 KiB of the last response's body. */
    response_body: string | null;
    error: string | null;
    created_at: string;
    updated_at: string;
  };
  /** Every attempt of a delivery (added by 0015), numbered from 1 as the delivery counts them. */
  webhook_attempts: {
    delivery_id: number;
    attempt: number;
    /** When it was sent: its `webhook-timestamp`, to the millisecond. */
    attempted_at: string;
    /** `succeeded` (a 2xx in time) or `failed`. */
    outcome: string;
    /** 1 for an attempt asked by hand (a redelivery, a test message). */
    manual: Generated<number>;
    /** The answer's HTTP status; null when none came (refused, timed out, unreachable). */
    response_status: number | null;
    latency_ms: number;
    error: string | null;
    /** The first 1 KiB of the answer's body. */
    response_body: string | null;
  };
  /** Console alerts born of an event (added by 0009); `details` is JSON, never a secret. */
  alerts: {
    id: Generated<number>;
    kind: string;
    severity: string;
    title: string;
    message: string;
    /** What the alert is about (`api_key`, `webhook_endpoint`), for its link; null for none. */
    target_type: string | null;
    target_id: number | null;
    /** The user whose key it concerns: they see it beside admins; null for admins only. */
    owner_id: number | null;
    environment: Generated<Environment>;
    details: string | null;
    created_at: string;
  };
  /** Who dismissed which alert: `alert_ref` is a stored alert's id or a computed alert's. */
  alert_dismissals: {
    user_id: number;
    alert_ref: string;
    dismissed_at: string;
  };
  services: {
    id: Generated<number>;
    name: string;
    download_kbps: number;
    upload_kbps: number;
    price_minor: number;
    currency: string;
    duration_days: number;
    is_active: number;
    created_at: string;
    updated_at: string;
  };
  subscribers: {
    environment: Generated<Environment>;
    id: Generated<number>;
    username: string;
    password_hash: string;
    full_name: string | null;
    phone: string | null;
    email: string | null;
    service_id: number;
    status: string;
    expiry_date: string | null;
    owner_id: number;
    created_at: string;
    updated_at: string;
    deleted_at: string | null;
  };
  nas: {
    id: Generated<number>;
    name: string;
    ip_address: string;
    type: string;
    description: string | null;
    secret: string;
    created_at: string;
    updated_at: string;
  };
  transactions: {
    environment: Generated<Environment>;
    id: Generated<number>;
    subscriber_id: number;
    amount_minor: number;
    currency: string;
    type: string;
    reference: string | null;
    reference_scope: number;
    description: string | null;
    created_at: string;
    api_key_id: number | null;
    created_by: number;
  };
  /** What the scheduler announced already (added by 0010). */
  event_marks: { api_key_id: number; kind: string; mark: string; created_at: string };
  /** The addresses each key was used from, and when last (added by 0010). */
  api_key_ips: { api_key_id: number; ip: string; last_seen_at: string };
  /** Refused calls per key and 5-minute bucket (added by 0010). */
  refusal_windows: { api_key_id: number; bucket: number; refusals: number };
  /** Calls per key, environment and UTC hour (added by 0012); JSON columns are bounded maps. */
  usage_rollups: {
    api_key_id: number;
    environment: string;
    /** Epoch hour: floor(epoch seconds / 3600). */
    hour: number;
    calls: number;
    admitted: number;
    s2xx: number;
    s3xx: number;
    s4xx: number;
    s5xx: number;
    errors: string;
    latency: string;
    routes: string;
    ips: string;
  };
  /**
   * usage_rollups summed per owner (`owner_id`) and for every key (owner_id 0), per
   * environment and hour (added by 0016): what `GET /api/usage` reads.
   */
  usage_totals: Omit<DB["usage_rollups"], "api_key_id"> & { owner_id: number };
  usage_daily: {
    environment: Generated<Environment>;
    subscriber_id: number;
    day: string;
    bytes_in: number;
    bytes_out: number;
    session_seconds: number;
  };
}
