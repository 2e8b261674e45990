/**
 * The OpenAPI document's policy, applied once to what @fastify/swagger builds from the route
 * schemas: an `operationId` and a described success for every operation, every refusal status
 * it can answer (each with its codes from the catalogue and an example body), `security: []`
 * on public routes, and the external surface on its own. Route files declare what is theirs
 * (schemas, the statuses their logic adds); what every route of a kind answers is added here.
 */
import type { FastifySchema, RouteOptions } from "fastify";
import { ERROR_STATUS, type ErrorCode } from "../errors.js";
import { covers, maskOf, ROLE_MASKS } from "../keys/permissions.js";
import { EXTERNAL_PREFIX } from "./errors.js";
import { permissionOf } from "./permissions.js";
import { webhookSection } from "./webhook-docs.js";

/** One operation: its stable id and what its success means, and the codes its logic refuses with. */
type Operation = {
  /** camelCase, unique; an external-surface operation is `external` + its capitalised id. */
  id: string;
  /** What the success answers, per 2xx status (a string for the only one). */
  ok: string | Record<number, string>;
  /** Codes the handler itself can answer, beyond those every route of its kind can. */
  refuses?: ErrorCode[];
  /** What other statuses the route declares mean (with a schema of their own). */
  also?: Record<number, string>;
};

const ADMIN: ErrorCode[] = ["FORBIDDEN"];
const MANAGE_KEYS: ErrorCode[] = ["FORBIDDEN", "TWO_FACTOR_ENROLMENT_REQUIRED"];

/**
 * Every operation, keyed by method and path relative to its surface (`/api` or
 * `/api/v1/external`; the panel's routes are on both). A route missing here fails the
 * document: add it with its id.
 */
const OPERATIONS: Record<string, Operation> = {
  // The document itself (outside both surfaces).
  "GET /openapi.json": { id: "getOpenApiDocument", ok: "This document: both surfaces" },
  "GET /openapi/external.json": {
    id: "getExternalOpenApiDocument",
    ok: "The external surface's own document",
  },

  // Sessions and two-factor sign-in
  "POST /auth/login": {
    id: "login",
    ok: "Signed in: an access token (15 minutes) and a one-use refresh token (in cookie mode the refresh token is only in the HttpOnly cookie)",
    refuses: ["INVALID_CREDENTIALS", "TWO_FACTOR_REQUIRED", "INVALID_TWO_FACTOR_CODE"],
  },
  "POST /auth/refresh": {
    id: "refreshSession",
    ok: "A new token pair; the refresh token sent is spent",
    refuses: ["UNAUTHORIZED"],
  },
  "POST /auth/logout": { id: "logout", ok: "Signed out" },
  "GET /auth/me": {
    id: "getCurrentUser",
    ok: "The signed-in user, what it may do and the server's defaults",
  },
  "GET /auth/2fa": { id: "getTwoFactorStatus", ok: "Your two-factor sign-in state" },
  "POST /auth/2fa/enrol": {
    id: "enrolTwoFactor",
    ok: "A new TOTP secret, its otpauth:// URI and QR code, shown this once",
    refuses: ["CONFLICT"],
  },
  "POST /auth/2fa/confirm": {
    id: "confirmTwoFactor",
    ok: "Two-factor sign-in is on; the recovery codes, shown this once",
    refuses: ["CONFLICT"],
  },
  "POST /auth/2fa/disable": {
    id: "disableTwoFactor",
    ok: "Two-factor sign-in is off",
    refuses: ["CONFLICT"],
  },
  "POST /auth/2fa/recovery-codes": {
    id: "regenerateRecoveryCodes",
    ok: "New recovery codes, shown this once; the old ones no longer work",
    refuses: ["CONFLICT"],
  },

  // Users
  "GET /users": { id: "listUsers", ok: "Every user", refuses: ADMIN },
  "POST /users": {
    id: "createUser",
    ok: "The user created",
    refuses: [...ADMIN, "CONFLICT"],
  },
  "PUT /users/:id": {
    id: "updateUser",
    ok: "The user as changed; a new password or disabling ends its sessions",
    refuses: [...ADMIN, "CONFLICT"],
  },
  "DELETE /users/:id": {
    id: "deleteUser",
    ok: "The user is deleted; its keys are refused from the next request",
    refuses: [...ADMIN, "CONFLICT"],
  },

  // API keys
  "POST /api-keys": {
    id: "createApiKey",
    ok: "The key minted: `key` holds the full key, shown this once",
    refuses: MANAGE_KEYS,
  },
  "GET /api-keys": { id: "listApiKeys", ok: "The keys the caller may see, newest first" },
  "GET /api-keys/presets": {
    id: "listPermissionPresets",
    ok: "The presets, the resources and actions, and each role's limit",
  },
  "POST /test-data/reset": {
    id: "resetTestData",
    ok: "The test data is gone: the counts of what was deleted",
    refuses: ADMIN,
  },
  "GET /api-keys/stats": {
    id: "getApiKeyStats",
    ok: "Keys by status and calls in the last 24 hours",
    refuses: ADMIN,
  },
  "GET /api-keys/activity": {
    id: "getApiKeyActivity",
    ok: "Calls by hour, the busiest keys and the latest refusals",
  },
  "GET /api-keys/:id": { id: "getApiKey", ok: "The key (never its hash or plaintext)" },
  "PUT /api-keys/:id": {
    id: "updateApiKey",
    ok: "The key as changed; the change applies from the next request",
    refuses: [...MANAGE_KEYS, "CONFLICT"],
  },
  "DELETE /api-keys/:id": {
    id: "revokeApiKey",
    ok: "The key, revoked (also when it already was)",
    refuses: MANAGE_KEYS,
  },
  "POST /api-keys/revoke": {
    id: "revokeApiKeys",
    ok: "Each key's outcome, in the order given: revoked, or its error (NOT_FOUND, CONFLICT)",
    refuses: MANAGE_KEYS,
  },
  "POST /api-keys/:id/roll": {
    id: "rollApiKey",
    ok: "The replacement minted: `key` holds it, shown this once; the old key lives on for the grace period",
    refuses: [...MANAGE_KEYS, "CONFLICT"],
  },
  "GET /api-keys/:id/logs": { id: "listApiKeyLogs", ok: "The key's calls, newest first" },
  "GET /api-keys/:id/logs.csv": {
    id: "exportApiKeyLogs",
    ok: "The key's calls as CSV, newest first",
  },
  "GET /api-keys/:id/usage": {
    id: "getApiKeyUsage",
    ok: "The key's calls per bucket, their totals, and its busiest routes and client addresses",
  },
  "GET /usage": {
    id: "getKeyUsage",
    ok: "The calls of the keys the caller may see per bucket, their totals, and the busiest routes and client addresses",
  },

  // Webhooks
  "POST /webhooks": {
    id: "createWebhookEndpoint",
    ok: "The endpoint registered: `secret` holds its signing secret, shown this once",
    refuses: [...ADMIN, "CONFLICT"],
  },
  "GET /webhooks": {
    id: "listWebhookEndpoints",
    ok: "The endpoints the caller may see",
    refuses: ADMIN,
  },
  "GET /webhooks/:id": {
    id: "getWebhookEndpoint",
    ok: "The endpoint (never its secret)",
    refuses: ADMIN,
  },
  "PUT /webhooks/:id": {
    id: "updateWebhookEndpoint",
    ok: "The endpoint as changed",
    refuses: ADMIN,
  },
  "DELETE /webhooks/:id": {
    id: "deleteWebhookEndpoint",
    ok: "The endpoint and its delivery log are gone",
    refuses: ADMIN,
  },
  "POST /webhooks/:id/rotate-secret": {
    id: "rotateWebhookSecret",
    ok: "A new signing secret in `secret`, shown this once; the old one signs beside it for 24 hours",
    refuses: ADMIN,
  },
  "GET /webhooks/:id/deliveries": {
    id: "listWebhookDeliveries",
    ok: "The endpoint's deliveries, newest first, each with its last attempt",
    refuses: ADMIN,
  },
  "GET /webhooks/:id/deliveries/:delivery_id/attempts": {
    id: "listWebhookAttempts",
    ok: "The delivery's attempts, oldest first: when each was sent, its status or error, latency and the first 1 KiB of the answer",
    refuses: ADMIN,
  },
  "POST /webhooks/:id/deliveries/:delivery_id/redeliver": {
    id: "redeliverWebhook",
    ok: "The delivery, due now, with its original webhook-id",
    refuses: [...ADMIN, "CONFLICT"],
  },
  "POST /webhooks/:id/test": {
    id: "testWebhookEndpoint",
    ok: "A webhook.test message is queued for this endpoint alone",
    refuses: [...ADMIN, "CONFLICT"],
  },

  // Audit
  "GET /audit": { id: "listAuditEntries", ok: "One page of the audit trail", refuses: ADMIN },

  // Subscribers
  "GET /subscribers": { id: "listSubscribers", ok: "One page of subscribers, with `meta`" },
  "POST /subscribers": {
    id: "createSubscriber",
    ok: 'The subscriber created; with password "auto-generate", `data.password` holds the generated one, this once',
    refuses: ["CONFLICT"],
  },
  "GET /subscribers/by-username/:username": {
    id: "getSubscriberByUsername",
    ok: "The subscriber",
  },
  "GET /subscribers/:id": { id: "getSubscriber", ok: "The subscriber" },
  "PUT /subscribers/:id": {
    id: "updateSubscriber",
    ok: "The subscriber as changed",
    refuses: ["CONFLICT"],
  },
  "DELETE /subscribers/:id": { id: "deleteSubscriber", ok: "The subscriber is deleted" },
  "POST /subscribers/:id/suspend": { id: "suspendSubscriber", ok: "The subscriber, suspended" },
  "POST /subscribers/:id/activate": { id: "activateSubscriber", ok: "The subscriber, active" },
  "GET /subscribers/:id/usage": {
    id: "getSubscriberUsage",
    ok: "Daily usage and totals over the period",
  },
  "POST /subscribers/:id/usage": {
    id: "recordSubscriberUsage",
    ok: "The day's counters after adding these",
  },

  // Services
  "GET /services": { id: "listServices", ok: "The service catalogue" },
  "POST /services": { id: "createService", ok: "The service created", refuses: ADMIN },
  "GET /services/:id": { id: "getService", ok: "The service" },
  "PUT /services/:id": { id: "updateService", ok: "The service as changed", refuses: ADMIN },
  "DELETE /services/:id": {
    id: "deleteService",
    ok: "The service is deleted",
    refuses: [...ADMIN, "CONFLICT"],
  },

  // NAS devices
  "GET /nas": { id: "listNas", ok: "Every NAS device", refuses: ADMIN },
  "POST /nas": { id: "createNas", ok: "The NAS device added", refuses: ADMIN },
  "GET /nas/:id": { id: "getNas", ok: "The NAS device", refuses: ADMIN },
  "PUT /nas/:id": { id: "updateNas", ok: "The NAS device as changed", refuses: ADMIN },
  "DELETE /nas/:id": { id: "deleteNas", ok: "The NAS device is removed", refuses: ADMIN },

  // Transactions
  "GET /transactions": { id: "listTransactions", ok: "One page of transactions, with `meta`" },
  "POST /transactions": {
    id: "createTransaction",
    ok: {
      201: "The transaction recorded",
      200: "A transaction with this `reference` exists with the same details: the first one, nothing recorded (`Idempotent-Replayed: true`)",
    },
    refuses: ["CONFLICT"],
  },
  "GET /transactions/:id": { id: "getTransaction", ok: "The transaction" },

  // System
  "GET /system/stats": { id: "getSystemStats", ok: "Totals of what the caller may see" },
  "GET /whoami": { id: "whoami", ok: "The calling key and the client IP as Keygate sees them" },

  // OAuth 2.0 (RFC 6749 client credentials, RFC 7662, RFC 7009, RFC 8414): RFC 6749 error bodies.
  "POST /oauth/token": {
    id: "oauthToken",
    ok: "An access token (RFC 6749 §5.1): a JWT (RFC 9068) to send as `Authorization: Bearer` instead of X-API-Key",
    also: {
      400: "An RFC 6749 §5.2 error: `invalid_request`, `invalid_scope`, `unsupported_grant_type` or `unauthorized_client` (a key that requires signed requests)",
      401: "`invalid_client`: the key is missing, wrong, revoked, expired, its owner disabled, the IP outside its allowed_ips, or client_id is not its prefix (`WWW-Authenticate: Basic`)",
      429: "`temporarily_unavailable`: the key's budget (or the IP's) is spent; retry after `Retry-After`",
      503: "`temporarily_unavailable`: the token-signing keys cannot be opened with this server's master key",
    },
  },
  "POST /oauth/introspect": {
    id: "oauthIntrospect",
    ok: "Whether the token is active (RFC 7662 §2.2); `{active: false}` for any token that is not, or is another key's",
    also: {
      400: "An RFC 6749 §5.2 error: `invalid_request`, `invalid_scope`, `unsupported_grant_type` or `unauthorized_client` (a key that requires signed requests)",
      401: "`invalid_client`: the key is missing, wrong, revoked, expired, its owner disabled, the IP outside its allowed_ips, or client_id is not its prefix (`WWW-Authenticate: Basic`)",
      429: "`temporarily_unavailable`: the key's budget (or the IP's) is spent; retry after `Retry-After`",
      503: "`temporarily_unavailable`: the token-signing keys cannot be opened with this server's master key",
    },
  },
  "POST /oauth/revoke": {
    id: "oauthRevoke",
    ok: "Revoked, or nothing to revoke (RFC 7009 §2.2: an invalid or unknown token is answered 200 too)",
    also: {
      400: "An RFC 6749 §5.2 error: `invalid_request`, `invalid_scope`, `unsupported_grant_type` or `unauthorized_client` (a key that requires signed requests)",
      401: "`invalid_client`: the key is missing, wrong, revoked, expired, its owner disabled, the IP outside its allowed_ips, or client_id is not its prefix (`WWW-Authenticate: Basic`)",
      429: "`temporarily_unavailable`: the key's budget (or the IP's) is spent; retry after `Retry-After`",
      503: "`temporarily_unavailable`: the token-signing keys cannot be opened with this server's master key",
    },
  },
  "GET /.well-known/jwks.json": {
    id: "getJwks",
    ok: "The JWK Set: every key whose tokens may still be valid",
    also: { 429: "The client IP's per-minute budget is spent; retry after `Retry-After`" },
  },
  "GET /.well-known/oauth-authorization-server": {
    id: "getAuthorizationServerMetadata",
    ok: "Where the token, introspection, revocation and JWKS endpoints are, and what they support",
    also: { 429: "The client IP's per-minute budget is spent; retry after `Retry-After`" },
  },
  // Keys found exposed (SPEC §9): no key needed, a budget per client IP.
  "POST /leaks": {
    id: "reportLeaks",
    ok: "Each reported token's label, in the order sent (GitHub's secret-scanning partner format): true_positive for a real Keygate key, false_positive otherwise",
    refuses: ["SIGNATURE_REQUIRED", "SIGNATURE_INVALID", "NOT_FOUND"],
  },
  "POST /keys/revoke-exposed": {
    id: "revokeExposedKey",
    ok: "The key is revoked (or already was); only its display prefix is named",
    refuses: ["NOT_FOUND"],
  },
  // Notifications
  "GET /alerts": { id: "listAlerts", ok: "Your notifications, newest first" },
  "POST /alerts/:id/dismiss": {
    id: "dismissAlert",
    ok: "Dismissed, for you",
    refuses: ["NOT_FOUND"],
  },

  "GET /system/health": {
    id: "getHealth",
    ok: "Up, and the database reachable (`status` is degraded when Redis is down)",
    also: {
      503: "The database is unreachable: `SERVICE_UNAVAILABLE`, with the health report in `data`",
    },
  },
};

/** Why each code is answered, as an integrator reads it. */
const WHY: Record<ErrorCode, string> = {
  MISSING_API_KEY: "no `X-API-Key` header (the message says where the key went instead)",
  INVALID_API_KEY: "the key is malformed (the message names how), or no key has this value",
  API_KEY_REVOKED: "the key was revoked",
  API_KEY_EXPIRED: "the key is past its `expires_at`",
  INVALID_USER: "the key's owner is disabled or deleted",
  IP_NOT_ALLOWED: "the client IP is outside the key's `allowed_ips`",
  RATE_LIMIT_EXCEEDED:
    "a per-minute budget is spent (the key's, the client IP's, or failed attempts from it); retry after `Retry-After` seconds",
  QUOTA_EXCEEDED:
    "the key's quota of admitted calls for its day or month is spent; it refills at the time the message names (`Retry-After`: seconds until then, `Keygate-Quota-Reset` too)",
  SCOPE_REQUIRED:
    "the key lacks the permission this operation needs (`X-Accepted-Permissions`; the message names it and the key's permissions)",
  SIGNATURE_REQUIRED:
    "the key's `signing` is required and the request has no `Signature-Input`/`Signature` (RFC 9421)",
  SIGNATURE_INVALID:
    "the signature does not verify, covers too little, or names another `keyid`; `details` give the `signature_base` the server computed, to diff against the client's",
  SIGNATURE_EXPIRED:
    "the signature's `created` is more than 300 s from the server clock; `details` give the `clock_skew_s`",
  SIGNATURE_REPLAYED: "the signature's `nonce` was already used with this key",
  INVALID_TOKEN:
    "the bearer token is not one this Keygate issued and honours: malformed, signed by another server, revoked, or its key was rolled",
  TOKEN_EXPIRED:
    "the bearer token is past its `exp`: exchange the key again at `POST /api/v1/external/oauth/token`",
  VALIDATION_ERROR:
    "a path parameter, query or body field is invalid, or the body is not JSON; `details` lists each field",
  NOT_FOUND: "no such record visible to the caller",
  CONFLICT: "the request clashes with the current state; the message says how",
  UNAUTHORIZED:
    "no valid access token: sign in with `POST /api/auth/login`, or refresh with `POST /api/auth/refresh`",
  INVALID_CREDENTIALS: "the username or the password is wrong (one message for both)",
  FORBIDDEN: "the caller's role may not do this; the message names the role needed",
  METHOD_NOT_ALLOWED: "the path is served under other methods (`Allow` lists them)",
  TWO_FACTOR_REQUIRED:
    "the password was right and the account has two-factor sign-in: send the request again with `otp` or `recovery_code`",
  INVALID_TWO_FACTOR_CODE: "the code is wrong or was already used",
  TWO_FACTOR_ENROLMENT_REQUIRED:
    "`KEYGATE_REQUIRE_2FA` asks this user to turn on two-factor sign-in first",
  PAYLOAD_TOO_LARGE: "the body is larger than 1 MiB",
  URI_TOO_LONG: "a path segment is longer than 100 characters",
  UNSUPPORTED_MEDIA_TYPE: "the body is not sent as `Content-Type: application/json`",
  HEADERS_TOO_LARGE: "the request's headers exceed 16 KiB",
  SERVICE_UNAVAILABLE:
    "this instance is shutting down (retry after `Retry-After`), or the database is down",
  INTERNAL_ERROR: "a fault in Keygate; the server log has the details under the request id",
};

/** An example message per code, in the words the server uses. */
const MESSAGE: Record<ErrorCode, string> = {
  MISSING_API_KEY:
    "send your API key in the X-API-Key header; an admin mints keys under API keys (POST /api/api-keys)",
  INVALID_API_KEY:
    "no key with this value exists on this Keygate: it may have been revoked and since purged, minted on another Keygate or in another environment, or mistyped",
  API_KEY_REVOKED: "this key (pk_live_ab12…) was revoked. Ask an admin for a new key.",
  API_KEY_EXPIRED:
    "this key (pk_live_ab12…) expired at 2026-05-01T23:59:59.999Z. Ask an admin to extend it or mint a new one.",
  INVALID_USER:
    'the owner of this key (pk_live_ab12…), user "billing-bot", is disabled; keys act for their owner, so this key is refused',
  IP_NOT_ALLOWED:
    "requests from 203.0.113.9 are not allowed for this key (pk_live_ab12…). Its owner or an admin can change its allowed_ips under API keys",
  RATE_LIMIT_EXCEEDED:
    "this key (pk_live_ab12…) allows 600 requests per minute and has used them; retry in 12 s",
  QUOTA_EXCEEDED:
    'this key (pk_live_ab12…) has used its quota of 10000 calls this day; it refills at 2026-05-13T00:00:00.000Z (in 46649 s). Wait until then, or ask its owner or an admin to raise the quota under API keys (PUT /api/api-keys/7 with "quota")',
  SCOPE_REQUIRED:
    'this key (pk_live_ab12…) has permissions subscribers:read, usage:read; POST /subscribers needs subscribers:write — add subscribers:write to this key\'s permissions under API keys (PUT /api/api-keys/7 with "permissions"), or mint a key with it',
  SIGNATURE_REQUIRED:
    'this key (pk_live_ab12…) requires signed requests, and this one has no Signature-Input and Signature headers. Sign each request with RFC 9421 hmac-sha256 using the key\'s signing secret: keyid "pk_live_ab12", created and a fresh nonce, covering "@method" "@target-uri" (and "content-digest" when there is a body)',
  SIGNATURE_INVALID:
    'signature "sig1" does not match: compare your signature base with the one this server computed (in details), and check the secret',
  SIGNATURE_EXPIRED:
    "signature \"sig1\" was created 412 s before this server's clock; it must be within 300 s — sign each request when it is sent, and check the client's clock",
  SIGNATURE_REPLAYED:
    'nonce "b3k2…" was already used with this key: a signed request is accepted once; send a fresh nonce with each request',
  INVALID_TOKEN:
    "the bearer token's signature does not match any key this Keygate publishes at /.well-known/jwks.json",
  TOKEN_EXPIRED:
    "the access token expired at 2026-05-01T12:00:00.000Z; exchange the key for a new one at POST /api/v1/external/oauth/token",
  VALIDATION_ERROR: "invalid body: subscriber_id is required",
  NOT_FOUND: "subscriber 42 not found",
  CONFLICT: 'subscriber username "alice" is already taken',
  UNAUTHORIZED: "send Authorization: Bearer <access_token>; get one from POST /api/auth/login",
  INVALID_CREDENTIALS: "username or password is incorrect",
  FORBIDDEN: "only an admin can see NAS devices; you are reseller alice",
  METHOD_NOT_ALLOWED: "PATCH is not served at /api/subscribers/42; it takes GET, PUT, DELETE",
  TWO_FACTOR_REQUIRED: "this account has two-factor sign-in: send the code from your app as otp",
  INVALID_TWO_FACTOR_CODE: "the two-factor code is wrong or was already used",
  TWO_FACTOR_ENROLMENT_REQUIRED:
    "turn on two-factor sign-in before you mint keys: this Keygate requires it for admins (KEYGATE_REQUIRE_2FA=admins)",
  PAYLOAD_TOO_LARGE: "request body is larger than 1 MiB",
  URI_TOO_LONG: "a path segment is longer than 100 characters; no id or name here is that long",
  UNSUPPORTED_MEDIA_TYPE: "send the body as JSON with Content-Type: application/json",
  HEADERS_TOO_LARGE: "the request's headers are larger than 16 KiB",
  SERVICE_UNAVAILABLE: "this Keygate instance is shutting down; retry in a moment",
  INTERNAL_ERROR:
    "internal error; the server log has the details (request 0f8fad5b-d9cb-469f-a165-70867728950e)",
};

const STATUS_TEXT: Record<number, string> = {
  400: "Bad request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not found",
  409: "Conflict",
  413: "Payload too large",
  415: "Unsupported media type",
  429: "Too many requests",
};

/** The codes of a status a route declares when nothing else names one. */
const FALLBACK: Record<number, { jwt: ErrorCode; external: ErrorCode }> = {
  400: { jwt: "VALIDATION_ERROR", external: "VALIDATION_ERROR" },
  401: { jwt: "UNAUTHORIZED", external: "MISSING_API_KEY" },
  403: { jwt: "FORBIDDEN", external: "FORBIDDEN" },
  404: { jwt: "NOT_FOUND", external: "NOT_FOUND" },
  409: { jwt: "CONFLICT", external: "CONFLICT" },
  429: { jwt: "RATE_LIMIT_EXCEEDED", external: "RATE_LIMIT_EXCEEDED" },
};

/** The key checks, in the order they run: what every keyed route can answer. */
const KEY_CHECKS: ErrorCode[] = [
  "MISSING_API_KEY",
  "INVALID_API_KEY",
  "API_KEY_REVOKED",
  "API_KEY_EXPIRED",
  "INVALID_USER",
  "IP_NOT_ALLOWED",
  "RATE_LIMIT_EXCEEDED",
  "QUOTA_EXCEEDED",
];

/** Any other answer: what no route lists because any request can meet it. */
const OTHER: ErrorCode[] = [
  "METHOD_NOT_ALLOWED",
  "URI_TOO_LONG",
  "HEADERS_TOO_LARGE",
  "INTERNAL_ERROR",
  "SERVICE_UNAVAILABLE",
];

const METHODS_WITH_BODY = new Set(["post", "put", "delete", "patch"]);
const EXAMPLE_TIME = "2026-05-12T11:02:31Z";

type Json = Record<string, unknown>;
type OpenApiOperation = Json & {
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  security?: Record<string, string[]>[];
  responses: Record<string, Json>;
};
export type OpenApiDocument = Json & {
  info: Json;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: Json & {
    schemas: Record<string, Json>;
    examples?: Record<string, Json>;
    securitySchemes?: Record<string, Json>;
  };
  tags?: { name: string; description?: string }[];
};

function envelope(code: ErrorCode, external: boolean): Json {
  const details =
    code === "VALIDATION_ERROR"
      ? { details: [{ field: "subscriber_id", message: "is required" }] }
      : {};
  return external
    ? {
        success: false,
        error: { code, message: MESSAGE[code], ...details },
        timestamp: EXAMPLE_TIME,
      }
    : { success: false, message: MESSAGE[code], code, ...details };
}

/**
 * The error response of `status`: its codes in its description, one example per code (each
 * an example component, `FlatError.NOT_FOUND` or `StructuredError.NOT_FOUND`, added to
 * `examples` as it is first used).
 */
function refusal(
  status: string,
  codes: ErrorCode[],
  external: boolean,
  examples: Record<string, Json>,
): Json {
  const name = external ? "StructuredError" : "FlatError";
  const text = STATUS_TEXT[Number(status)];
  const list = codes.map((c) => `\`${c}\`: ${WHY[c]}`).join("; ");
  return {
    description: text ? `${text} — ${list}` : list,
    content: {
      "application/json": {
        schema: { $ref: `#/components/schemas/${name}` },
        examples: Object.fromEntries(
          codes.map((c) => {
            examples[`${name}.${c}`] ??= { summary: WHY[c], value: envelope(c, external) };
            return [c, { $ref: `#/components/examples/${name}.${c}` }];
          }),
        ),
      },
    },
  };
}

const capitalised = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Where a path belongs, and its key in OPERATIONS. */
function surfaceOf(path: string): { external: boolean; relative: string } {
  const fastifyPath = path.replace(/\{([a-z_]+)\}/g, ":$1");
  if (fastifyPath === EXTERNAL_PREFIX || fastifyPath.startsWith(`${EXTERNAL_PREFIX}/`))
    return { external: true, relative: fastifyPath.slice(EXTERNAL_PREFIX.length) };
  if (fastifyPath.startsWith("/api/")) return { external: false, relative: fastifyPath.slice(4) };
  return { external: false, relative: fastifyPath };
}

/** @fastify/swagger's per-route transform: public routes need no credential. */
export function routeTransform({
  schema,
  url,
  route,
}: {
  schema: FastifySchema;
  url: string;
  route: RouteOptions;
}): { schema: FastifySchema; url: string } {
  const open = (route.config as { public?: boolean } | undefined)?.public === true;
  return { schema: open && schema ? { ...schema, security: [] } : schema, url };
}

/**
 * @fastify/swagger's `transformObject`: every operation gets its id, described successes,
 * every refusal status it can answer with codes and examples, and a `default` for the rest.
 */
export function documentTransform({ openapiObject }: { openapiObject: Partial<OpenApiDocument> }) {
  const doc = openapiObject as OpenApiDocument;
  const examples: Record<string, Json> = {};
  const ids = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const { external, relative } = surfaceOf(path);
      const entry = OPERATIONS[`${method.toUpperCase()} ${relative}`];
      if (!entry) {
        throw new Error(
          `${method.toUpperCase()} ${path} has no entry in OPERATIONS (src/http/openapi.ts): add its operationId there`,
        );
      }
      if (op.security === undefined) {
        throw new Error(
          `${method.toUpperCase()} ${path} declares no security: name its scheme, or mark the route config.public`,
        );
      }
      const id = external ? `external${capitalised(entry.id)}` : entry.id;
      if (ids.has(id)) throw new Error(`operationId ${id} is used twice`);
      ids.add(id);
      op.operationId = id;

      const schemes = op.security.flatMap((s) => Object.keys(s));
      if ((op.tags as string[] | undefined)?.includes("oauth")) {
        // OAuth answers its own errors (RFC 6749 §5.2), not in the envelope.
        op.responses = Object.fromEntries(
          Object.entries(op.responses).map(([status, response]) => {
            const said = status.startsWith("2")
              ? typeof entry.ok === "string"
                ? entry.ok
                : entry.ok[Number(status)]
              : entry.also?.[Number(status)];
            if (said === undefined)
              throw new Error(`${method} ${path}: no description of ${status}`);
            return [status, { ...response, description: said }];
          }),
        );
        continue;
      }
      const codes = new Set<ErrorCode>(entry.refuses ?? []);
      if (schemes.includes("apiKey")) {
        for (const c of KEY_CHECKS) codes.add(c);
        // The permission each operation needs, from the one table the key checks read.
        const permission = permissionOf(method, relative);
        if (permission === undefined)
          throw new Error(
            `${method.toUpperCase()} ${path} has no entry in ROUTE_PERMISSIONS (src/http/permissions.ts)`,
          );
        op["x-keygate-permission"] = permission ?? "none";
        const needs =
          permission === null
            ? "Needs no permission: any valid key may call it."
            : `Needs permission \`${permission}\` (granted too by \`${permission.split(":")[0]}\` actions above it and by \`*:${permission.split(":")[1]}\`); \`X-Accepted-Permissions\` names it on every answer.`;
        op.description = op.description ? `${String(op.description)}\n\n${needs}` : needs;
        if (permission !== null) {
          codes.add("SCOPE_REQUIRED");
          // A key never exceeds its owner: a permission resellers lack is refused for their keys.
          if (!covers(ROLE_MASKS.reseller, maskOf([permission]))) codes.add("FORBIDDEN");
        }
      }
      if (schemes.includes("bearer")) codes.add("UNAUTHORIZED");
      // The per-IP budget runs first on every surface.
      codes.add("RATE_LIMIT_EXCEEDED");
      const takesBody = METHODS_WITH_BODY.has(method);
      if ((op.parameters?.length ?? 0) > 0 || op.requestBody !== undefined || takesBody)
        codes.add("VALIDATION_ERROR");
      if (op.parameters?.some((p) => p.in === "path")) codes.add("NOT_FOUND");
      if (takesBody) {
        codes.add("PAYLOAD_TOO_LARGE");
        codes.add("UNSUPPORTED_MEDIA_TYPE");
      }

      const byStatus = new Map<string, ErrorCode[]>();
      for (const code of codes) {
        const status = String(ERROR_STATUS[code]);
        byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
      }
      const responses: Record<string, Json> = {};
      for (const [status, response] of Object.entries(op.responses)) {
        if (status.startsWith("2")) {
          const ok = typeof entry.ok === "string" ? entry.ok : entry.ok[Number(status)];
          if (ok === undefined) throw new Error(`${method} ${path}: no description of ${status}`);
          responses[status] = { ...response, description: ok };
        } else if (!byStatus.has(status)) {
          const fallback = FALLBACK[Number(status)];
          const also = entry.also?.[Number(status)];
          if (also !== undefined) responses[status] = { ...response, description: also };
          else if (fallback !== undefined)
            byStatus.set(status, [external ? fallback.external : fallback.jwt]);
          else throw new Error(`${method} ${path}: no description of ${status}`);
        }
      }
      for (const status of [...byStatus.keys()].sort()) {
        responses[status] = refusal(
          status,
          byStatus.get(status) as ErrorCode[],
          external,
          examples,
        );
      }
      const other = refusal("default", OTHER, external, examples);
      responses.default = {
        ...other,
        description: `Any other refusal, in the same envelope — ${other.description as string}`,
      };
      if (schemes.includes("apiKey")) {
        // Every answer of the external surface names the route's permission and the environment.
        for (const r of Object.values(responses))
          r.headers = { ...(r.headers as Json | undefined), ...EXTERNAL_HEADERS };
      }
      if (schemes.includes("bearer")) {
        op.parameters = [
          ...(op.parameters ?? []),
          { $ref: "#/components/parameters/KeygateEnvironment" } as unknown as {
            in: string;
            name: string;
          },
        ];
      }
      op.responses = responses;
    }
  }
  doc.webhooks = webhookSection();
  doc.components.examples = Object.fromEntries(
    Object.entries(examples).sort(([a], [b]) => a.localeCompare(b)),
  );
  doc.components.parameters = {
    KeygateEnvironment: {
      name: "Keygate-Environment",
      in: "header",
      required: false,
      description:
        "Which data the signed-in user works on: live (the default) or test. Answers carry it back; anything else is a 400",
      schema: { type: "string", enum: ["live", "test"], default: "live" },
    },
  };
  doc.components.headers = {
    XAcceptedPermissions: {
      description:
        "The permission this operation needs (resource:action), or none; on every answer, refusal or not",
      schema: { type: "string" },
    },
    KeygateEnvironment: {
      description:
        "The environment that answered: the key's (live or test); for a call whose key is not known, the one its value names, else none",
      schema: { type: "string", enum: ["live", "test", "none"] },
    },
    KeygateQuotaLimit: {
      description:
        "For a key with a quota: the admitted calls its day or month allows. Absent for keys without one",
      schema: { type: "integer" },
    },
    KeygateQuotaRemaining: {
      description:
        "For a key with a quota: the admitted calls left in the period, after this one (refusals spend none). Sent on every answer once the key is known, refusals included",
      schema: { type: "integer" },
    },
    KeygateQuotaReset: {
      description:
        "For a key with a quota: seconds until the period ends and the quota is whole again (days at 00:00 UTC; months on the key's refill_day, UTC)",
      schema: { type: "integer" },
    },
  };
  return doc;
}

const EXTERNAL_HEADERS = {
  "X-Accepted-Permissions": { $ref: "#/components/headers/XAcceptedPermissions" },
  "Keygate-Environment": { $ref: "#/components/headers/KeygateEnvironment" },
  "Keygate-Quota-Limit": { $ref: "#/components/headers/KeygateQuotaLimit" },
  "Keygate-Quota-Remaining": { $ref: "#/components/headers/KeygateQuotaRemaining" },
  "Keygate-Quota-Reset": { $ref: "#/components/headers/KeygateQuotaReset" },
};

/** Every `#/components/…` reference in `node`, as `schemas/Subscriber`. */
function refsIn(node: unknown, into: Set<string>): void {
  if (node === null || typeof node !== "object") return;
  if (Array.isArray(node)) {
    for (const n of node) refsIn(n, into);
    return;
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/"))
      into.add(v.slice("#/components/".length));
    else refsIn(v, into);
  }
}

/**
 * The external surface alone, for integrators: its paths and the schemas, tags and security
 * scheme they use. A new object: the full document is not touched.
 */
export function externalDocument(full: OpenApiDocument): OpenApiDocument {
  const paths = Object.fromEntries(
    Object.entries(full.paths).filter(([p]) => surfaceOf(p).external),
  );
  const used = new Set<string>();
  refsIn(paths, used);
  for (let grew = true; grew;) {
    const before = used.size;
    for (const name of [...used]) {
      if (name.startsWith("schemas/"))
        refsIn(full.components.schemas[name.slice("schemas/".length)], used);
    }
    grew = used.size > before;
  }
  const usedOf = (kind: string, of: Record<string, Json> | undefined) =>
    Object.fromEntries(Object.entries(of ?? {}).filter(([name]) => used.has(`${kind}/${name}`)));
  const tags = new Set(
    Object.values(paths).flatMap((item) =>
      Object.values(item).flatMap((op) => (op.tags as string[] | undefined) ?? []),
    ),
  );
  return {
    ...full,
    info: {
      ...full.info,
      title: "Keygate external API",
      description:
        "The machine surface, `/api/v1/external`: every request but `/system/health`, `/leaks` and `/keys/revoke-exposed` carries " +
        "`X-API-Key: pk_live_…` (or `pk_test_…` for the test environment). Errors are `{ success: false, error: { code, message, details? }, timestamp }`; " +
        "`error.code` is one of `ErrorCode` and the message says what to do. Every response carries " +
        "`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, `X-Request-Id`, " +
        "`X-Accepted-Permissions` (the permission the operation needs) and `Keygate-Environment` " +
        "(the environment that answered). " +
        "The people surface (`/api`) is in [/openapi.json](/openapi.json), shown at [/docs](/docs).",
    },
    paths,
    components: {
      ...full.components,
      schemas: usedOf("schemas", full.components.schemas),
      examples: usedOf("examples", full.components.examples),
      parameters: usedOf("parameters", full.components.parameters as Record<string, Json>),
      headers: usedOf("headers", full.components.headers as Record<string, Json>),
      securitySchemes: {
        apiKey: full.components.securitySchemes?.apiKey as Json,
        accessToken: full.components.securitySchemes?.accessToken as Json,
        oauthClient: full.components.securitySchemes?.oauthClient as Json,
      },
    },
    tags: full.tags?.filter((t) => tags.has(t.name)),
  };
}

/** The document's tags, in the order the reference shows them. */
export const TAGS = [
  { name: "auth", description: "Sign in and out, the signed-in user, two-factor sign-in" },
  { name: "users", description: "People who sign in: admins and resellers (admin)" },
  {
    name: "api keys",
    description:
      "Mint, change, roll and revoke keys, and read their call logs (keys cannot manage keys)",
  },
  { name: "audit", description: "Who did what, when and from where (admin)" },
  {
    name: "webhooks",
    description:
      "Endpoints that receive Keygate's events, signed as Standard Webhooks specifies, and their delivery logs (the payloads are under `webhooks`)",
  },
  {
    name: "alerts",
    description: "Notifications: leaked keys, keys expiring within 7 days; dismissed per person",
  },
  {
    name: "test data",
    description: "The test environment's subscribers, transactions and usage (admin)",
  },
  { name: "subscribers", description: "The panel's subscribers, their status and usage" },
  { name: "services", description: "The service catalogue" },
  { name: "nas", description: "NAS devices (admin)" },
  { name: "transactions", description: "Payments, refunds and adjustments; immutable" },
  { name: "system", description: "Totals, the calling key, health" },
  {
    name: "leaks",
    description:
      "Keys found exposed: signed leak reports from secret scanners, and revocation by whoever holds a key",
  },
  {
    name: "oauth",
    description:
      "Exchange a key for a short-lived access token (OAuth 2.0 client credentials), introspect and revoke tokens, and the keys that verify them",
  },
  { name: "reference", description: "This reference as OpenAPI documents" },
];
