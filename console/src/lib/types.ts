/** The records the `/api` surface answers with (see /openapi.json). */

export type ApiKey = {
  id: number;
  name: string;
  description: string | null;
  key_prefix: string;
  scopes: "read" | "write" | "delete";
  owner_id: number;
  allowed_ips: string[] | null;
  rate_limit_per_minute: number | null;
  /** The last call the key checks accepted (whatever the route then answered). */
  last_used_at: string | null;
  last_used_ip: string | null;
  /** The last call the key checks refused: an attempt, not a use. */
  last_refused_at: string | null;
  last_refused_ip: string | null;
  last_refused_code: string | null;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
  revoked_at: string | null;
  is_active: boolean;
  /** The first that applies: revoked, owner_deleted, owner_disabled, expired, active. */
  status: KeyStatus;
  rolled_from_id: number | null;
  replaced_by_id: number | null;
};

export type KeyStatus = "active" | "revoked" | "expired" | "owner_disabled" | "owner_deleted";

export type KeyStats = {
  total: number;
  active: number;
  revoked: number;
  expired: number;
  owner_disabled: number;
  owner_deleted: number;
  calls_24h: number;
};

export type CallLog = {
  /** The row's id: the cursor for the next (older) page. */
  id: number;
  timestamp: string;
  method: string;
  path: string;
  status_code: number;
  ip: string;
  latency_ms: number;
  user_agent: string | null;
  error_code: string | null;
  /** The X-Request-Id the answer carried; null on rows logged before it was kept. */
  request_id: string | null;
  /** The exact error message answered; null on success. */
  message: string | null;
};

export type Activity = {
  from: string;
  to: string;
  hourly: { hour: string; calls: number; errors: number }[];
  busiest: {
    api_key_id: number;
    name: string;
    key_prefix: string;
    calls: number;
    errors: number;
  }[];
  recent_refusals: (CallLog & { api_key_id: number | null; key_prefix: string | null })[];
};

/** `GET /api/auth/me`: the signed-in user, what it may do, and the server's defaults. */
export type Me = UserRow & {
  permissions: {
    /** May mint, change, roll and revoke keys: admins always; resellers with self-service. */
    manage_keys: boolean;
  };
  defaults: { key_rate_limit_per_minute: number };
  /** KEYGATE_REQUIRE_2FA asks this user to turn on two-factor sign-in before managing keys. */
  two_factor_required?: boolean;
};

export type UserRow = {
  id: number;
  username: string;
  role: "admin" | "reseller";
  disabled: boolean;
  /** Two-factor sign-in is on. */
  two_factor_enabled?: boolean;
  created_at: string;
  updated_at: string;
};

export type Subscriber = {
  id: number;
  username: string;
  full_name: string | null;
  phone: string | null;
  email: string | null;
  service_id: number;
  status: "active" | "suspended" | "expired";
  expiry_date: string | null;
  owner_id: number;
  created_at: string;
  updated_at: string;
  password?: string;
};

export type Service = {
  id: number;
  name: string;
  download_kbps: number;
  upload_kbps: number;
  price: number;
  currency: string;
  duration_days: number;
  is_active: boolean;
  created_at: string;
  updated_at: string;
};

export type Nas = {
  id: number;
  name: string;
  ip_address: string;
  type: string;
  description: string | null;
  created_at: string;
  updated_at: string;
};

export type Transaction = {
  id: number;
  subscriber_id: number;
  amount: number;
  currency: string;
  type: "payment" | "refund" | "adjustment";
  reference: string | null;
  description: string | null;
  created_at: string;
  api_key_id: number | null;
};

export type UsageDay = {
  date: string;
  bytes_in: number;
  bytes_out: number;
  session_seconds: number;
};

export type UsageReport = {
  subscriber_id: number;
  from: string;
  to: string;
  days: UsageDay[];
  totals: { bytes_in: number; bytes_out: number; session_seconds: number };
};

export type SystemStats = {
  subscribers: { total: number; active: number; suspended: number; expired: number };
  services: number;
  nas?: number;
  transactions_30d: { currency: string; count: number; amount: number }[];
};

export type AuditEntry = {
  id: number;
  actor_id: number | null;
  actor_username: string | null;
  via: string;
  action: string;
  target_type: string;
  target_id: string | null;
  details: Record<string, unknown> | null;
  ip: string | null;
  created_at: string;
};

/** `GET /api/auth/2fa`: the signed-in user's two-factor sign-in. */
export type TwoFactorStatus = {
  enabled: boolean;
  enabled_at: string | null;
  pending: boolean;
  recovery_codes_left: number;
  required: boolean;
};

/** `POST /api/auth/2fa/enrol`: the new secret, shown this once. */
export type TwoFactorEnrolment = {
  secret: string;
  otpauth_url: string;
  qr_svg: string;
  issuer: string;
  account: string;
  algorithm: string;
  digits: number;
  period: number;
};
