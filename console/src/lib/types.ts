/**
 * The records the `/api` surface answers with, by the names the console uses. Each is the
 * type generated from the server's own OpenAPI document (`api-types.ts`, written by
 * `npm run openapi`), so a field the server adds, drops or narrows shows up here as a type
 * error rather than as a surprise in the browser.
 */
import type { components } from "./api-types";
import type { Environment } from "./environment";

type Schemas = components["schemas"];

export type { Environment };

/**
 * Fields written here by hand until `api-types.ts` is generated from a server that has them
 * (permissions and environments): `With<T, F>` replaces `T`'s own fields named in `F`, so it
 * still fits once they are generated.
 */
type With<T, F> = Omit<T, keyof F> & F;

/** `scopes` is the narrowest preset that covers `permissions`, or `custom`. */
export type KeyScope = "read" | "write" | "delete" | "custom";

export type ApiKey = With<
  Schemas["ApiKey"],
  {
    scopes: KeyScope;
    /** Normalised `resource:action` strings (see lib/permissions.ts). */
    permissions: string[];
    /** Chosen at minting, for good: `pk_test_…` keys see only test data. */
    environment: Environment;
  }
>;

/** The first that applies: revoked, owner_deleted, owner_disabled, expired, active. */
export type KeyStatus = ApiKey["status"];

/**
 * Whether calls with a key must be signed (RFC 9421, with the key's signing secret): `off`
 * (the default), `optional` (a signed call must verify; unsigned ones are still accepted)
 * or `required` (an unsigned call is refused with SIGNATURE_REQUIRED).
 */
export type KeySigning = ApiKey["signing"];

/** Keys by status and calls in the last 24 hours: of one environment (`?environment=`), or both. */
export type KeyStats = Schemas["ApiKeyStats"];
export type EnvironmentStats = KeyStats;

/** One call of a key's log; `id` is the cursor for the next (older) page. */
export type CallLog = With<Schemas["CallLogEntry"], { environment: Environment }>;

/** How a call authenticated: the bare key, the key and a signature, or an access token. */
export type Credential = CallLog["credential"];

/** `GET /api/api-keys/presets`: named sets of permissions offered when minting. */
export type PermissionPreset = {
  name: string;
  label: string;
  description: string;
  permissions: string[];
};

export type KeyPresets = {
  resources: string[];
  actions: string[];
  presets: PermissionPreset[];
  /** The most a key of an owner with each role may do, when the server says. */
  role_limits?: Record<string, string[]>;
};

/** `POST /api/test-data/reset`: how many test records were deleted. */
export type TestDataReset = { subscribers: number; transactions: number; usage: number };

export type Activity = Schemas["ApiKeyActivity"];

/** `GET /api/auth/me`: the signed-in user, what it may do, and the server's defaults. */
export type Me = Schemas["Me"];

export type UserRow = Schemas["User"];

/** A subscriber; `password` is there once, when the server generated it. */
export type Subscriber = With<Schemas["SubscriberWithPassword"], { environment: Environment }>;

export type Service = Schemas["Service"];

export type Nas = Schemas["Nas"];

export type Transaction = With<Schemas["Transaction"], { environment: Environment }>;

export type UsageDay = Schemas["UsageDay"];

export type UsageReport = Schemas["UsageReport"];

export type SystemStats = Schemas["SystemStats"];

export type AuditEntry = Schemas["AuditEntry"];

/** `GET /api/auth/2fa`: the signed-in user's two-factor sign-in. */
export type TwoFactorStatus = Schemas["TwoFactorStatus"];

/** `POST /api/auth/2fa/enrol`: the new secret, shown this once. */
export type TwoFactorEnrolment = Schemas["TwoFactorEnrolment"];
