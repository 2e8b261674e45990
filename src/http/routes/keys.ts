import { pipeline, Readable } from "node:stream";
import { stringify } from "csv-stringify";
import type { FastifyPluginAsync } from "fastify";
import { invalid } from "../../errors.js";
import { Type } from "typebox";
import type { Principal } from "../../auth/principal.js";
import type { Keygate } from "../../keygate.js";
import { CREDENTIALS, ENVIRONMENTS, SIGNING_MODES } from "../../keys/format.js";
import {
  ACTIONS,
  maskOf,
  PRESETS,
  RESOURCES,
  ROLE_MASKS,
  normalize,
  summarize,
} from "../../keys/permissions.js";
import { MAX_QUOTA, QUOTA_PERIODS } from "../../keys/quota.js";
import { SCOPES } from "../../keys/scopes.js";
import {
  type CallLogRow,
  KEY_STATUSES,
  type KeyView as View,
  MAX_GRACE_HOURS,
} from "../../keys/service.js";
import {
  component,
  ErrorCodeSchema,
  errorResponses,
  Id,
  IdParams,
  Nullable,
  Ok,
  StringEnum,
} from "../schemas.js";
import type { App } from "../types.js";

/** The call log's filters, shared by the JSON log and its CSV export. */
const LOG_FILTERS = {
  status: Type.Optional(
    Type.String({
      maxLength: 40,
      pattern: "^([2-5]xx|refused|[A-Z_]{3,40})$",
      description:
        '2xx, 3xx, 4xx, 5xx, "refused" (401/403/429) or an error code such as API_KEY_REVOKED',
    }),
  ),
  from: Type.Optional(
    Type.String({
      maxLength: 40,
      pattern: "^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$",
      format: "date-time",
      description: "an ISO-8601 UTC timestamp: only calls at or after it",
    }),
  ),
  before: Type.Optional(
    Type.String({
      maxLength: 40,
      pattern: "^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$",
      format: "date-time",
      description:
        "an ISO-8601 UTC timestamp: only calls before it. For paging use before_id: calls in the same millisecond as the last row would be skipped",
    }),
  ),
  request_id: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 128,
      pattern: "^[\\w.:@/+=-]{1,128}$",
      description:
        "the X-Request-Id of one answer (from its headers or an integrator's report): that call only",
    }),
  ),
};

/** The order the call log is read in: newest first unless asked otherwise. */
const LOG_ORDER = Type.Optional(
  StringEnum(
    ["desc", "asc"] as const,
    "desc (the default): newest first, paged with before_id; asc: oldest first, paged with after_id",
  ),
);

/** The filters as the key service takes them, times written as the call log stores them. */
function logFilters(q: {
  status?: string;
  from?: string;
  before?: string;
  request_id?: string;
  order?: "asc" | "desc";
}) {
  const from = q.from === undefined ? undefined : storedTime("from", q.from);
  const before = q.before === undefined ? undefined : storedTime("before", q.before);
  if (from !== undefined && before !== undefined && from >= before)
    throw invalid("before", `must be later than from (${from}); the range [from, before) is empty`);
  return { status: q.status, from, before, requestId: q.request_id, order: q.order };
}

/** The page cursor of the order asked for: before_id newest first, after_id oldest first. */
function logCursor(q: { order?: "asc" | "desc"; before_id?: number; after_id?: number }) {
  if (q.order === "asc") {
    if (q.before_id !== undefined)
      throw invalid("before_id", "pages newest first; with order=asc pass after_id instead");
    return { afterId: q.after_id };
  }
  if (q.after_id !== undefined)
    throw invalid("after_id", "pages oldest first: pass order=asc with it, or use before_id");
  return { beforeId: q.before_id };
}

/** An ISO time as the call log writes it (with milliseconds), so text comparison is exact. */
function storedTime(field: string, value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw invalid(field, `must be a real ISO-8601 UTC time such as 2026-12-01T09:30:00Z`);
  return new Date(ms).toISOString();
}

const CSV_DEFAULT_ROWS = 10_000;
const CSV_MAX_ROWS = 1_000_000;
const CSV_PAGE = 1_000;
const CSV_COLUMNS = [
  "id",
  "timestamp",
  "method",
  "path",
  "status_code",
  "error_code",
  "message",
  "ip",
  "latency_ms",
  "user_agent",
  "request_id",
  "credential",
  "environment",
] as const;

/** The call log page by page (by the last row's id, exact), as rows for the CSV, up to `max`. */
async function* csvPages(
  first: CallLogRow[],
  next: (lastId: number, limit: number) => Promise<CallLogRow[]>,
  max: number,
): AsyncGenerator<CallLogRow> {
  let page = first;
  let sent = 0;
  while (page.length > 0) {
    for (const row of page) {
      yield row;
      if (++sent >= max) return;
    }
    const last = page[page.length - 1] as CallLogRow;
    page = await next(last.id, Math.min(CSV_PAGE, max - sent));
  }
}

/** A cell a spreadsheet would run as a formula gets an apostrophe first (OWASP's advice). */
function spreadsheetSafe(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

const Scope = Type.Union([Type.Literal("read"), Type.Literal("write"), Type.Literal("delete")], {
  description: '"read" (GET), "write" (GET, POST, PUT) or "delete" (GET, POST, PUT, DELETE)',
});

const QuotaRecord = Type.Object(
  {
    limit: Type.Integer({
      minimum: 1,
      maximum: MAX_QUOTA,
      description: "admitted calls per period: calls that pass every key check",
    }),
    period: StringEnum(
      QUOTA_PERIODS,
      "day (refills at 00:00 UTC) or month (refills on refill_day, 00:00 UTC)",
    ),
    refill_day: Type.Optional(
      Nullable(
        Type.Integer({
          minimum: 1,
          maximum: 31,
          description:
            "monthly quotas only: the day of the month it refills (default 1); past a month's end, its last day (31 → 28/29 in February)",
        }),
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      "a hard cap of admitted calls per period, atomic across instances; past it calls are refused 429 QUOTA_EXCEEDED until the refill. Refusals (rate limit, permissions, …) spend none",
  },
);

const KeyRecord = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Nullable(Type.String()),
  key_prefix: Type.String({
    description: "first 12 characters, for recognising the key (pk_live_… or pk_test_…)",
  }),
  scopes: StringEnum(
    [...SCOPES, "custom"],
    "the preset the permissions are exactly (read = *:read, write = *:write, delete = *:delete), else custom",
  ),
  permissions: Type.Array(Type.String(), {
    description:
      "resource:action permissions, normalised: * for every resource, each action implying the ones before it (read < write < delete)",
  }),
  environment: StringEnum(
    ENVIRONMENTS,
    "live keys see and change live data, test keys test data only; fixed at minting",
  ),
  owner_id: Type.Integer(),
  allowed_ips: Nullable(Type.Array(Type.String())),
  rate_limit_per_minute: Nullable(Type.Integer()),
  quota: Nullable(QuotaRecord),
  quota_usage: Type.Optional(
    Nullable(
      Type.Object(
        {
          used: Type.Integer({ description: "admitted calls counted this period" }),
          remaining: Type.Integer(),
          period_start: Type.String({ description: "when the period under way began (UTC)" }),
          resets_at: Type.String({ description: "when it ends and the quota is whole again" }),
        },
        {
          description:
            "single-key reads only (not lists): where the quota stands now; null without a quota, or when its count cannot be read",
        },
      ),
    ),
  ),
  signing: StringEnum(
    SIGNING_MODES,
    "off: the key alone; optional: signed calls must verify, unsigned ones pass; required: every call must carry an RFC 9421 signature made with the key's signing secret",
  ),
  tokens_issued: Type.Integer({
    description: "access tokens issued for this key at POST /api/v1/external/oauth/token",
  }),
  last_token_at: Nullable(Type.String({ description: "when the last access token was issued" })),
  last_used_at: Nullable(
    Type.String({
      description:
        "the last call the key checks accepted, whatever the route then answered (a 404 or a 400 from the route counts); refusals by the checks do not. Written in batches: at most about 10 s behind",
    }),
  ),
  last_used_ip: Nullable(Type.String({ description: "the client IP of that call" })),
  last_refused_at: Nullable(
    Type.String({
      description:
        "the last call the key checks refused (API_KEY_REVOKED, API_KEY_EXPIRED, INVALID_USER, IP_NOT_ALLOWED, RATE_LIMIT_EXCEEDED, SCOPE_REQUIRED, or FORBIDDEN for its owner's role): an attempt, not a use",
    }),
  ),
  last_refused_ip: Nullable(Type.String({ description: "the client IP of that attempt" })),
  last_refused_code: Nullable(Type.String({ description: "the error code it was refused with" })),
  expires_at: Nullable(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
  revoked_at: Nullable(Type.String()),
  is_active: Type.Boolean(),
  status: StringEnum(
    KEY_STATUSES,
    "the first that applies: revoked; owner_deleted or owner_disabled (every call is refused INVALID_USER; a disabled owner can be re-enabled); expired; else active. is_active is false only for revoked keys",
  ),
  rolled_from_id: Nullable(Type.Integer()),
  replaced_by_id: Nullable(Type.Integer()),
});
export const KeyView = component("ApiKey", KeyRecord);

/** The most keys one bulk revocation takes. */
export const BULK_REVOKE_MAX = 100;

const BulkRevokeResult = component(
  "BulkRevokeResult",
  Type.Union(
    [
      Type.Object(
        { id: Type.Integer(), revoked: Type.Literal(true) },
        { additionalProperties: false },
      ),
      Type.Object(
        {
          id: Type.Integer(),
          error: Type.Object({ code: ErrorCodeSchema, message: Type.String() }),
        },
        { additionalProperties: false },
      ),
    ],
    {
      description:
        "One key of a bulk revocation: revoked now, or why not (NOT_FOUND: no such key in sight; CONFLICT: already revoked)",
    },
  ),
);

const Expiry = Nullable(
  Type.String({
    maxLength: 64,
    description: "YYYY-MM-DD (valid through that day, UTC) or an ISO-8601 timestamp",
  }),
);
const AllowedIps = Nullable(
  Type.Array(Type.String({ maxLength: 64 }), {
    maxItems: 100,
    description: "IPv4/IPv6 addresses and CIDR ranges",
  }),
);
const RateLimit = Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000 }));

const Permissions = Type.Array(
  Type.String({
    minLength: 1,
    maxLength: 40,
    description: `resource:action; resources ${RESOURCES.join(", ")} or * for all; actions ${ACTIONS.join(", ")}`,
  }),
  {
    minItems: 1,
    maxItems: 32,
    description:
      'what the key may do, e.g. ["subscribers:read", "transactions:write"]; write implies read, delete implies write. Give this or scopes, not both',
  },
);

/** What a quota in a change may be: who may loosen it (`keys/service.ts` `requireMayTighten`). */
const QUOTA_CHANGE =
  "null removes the quota. Only an admin may remove a quota or loosen it (raise the limit, or change period or refill_day); anyone who may change the key may add one to a key without, or lower the limit keeping the period (otherwise 403 FORBIDDEN)";

const editable = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  scopes: Type.Optional(Scope),
  permissions: Type.Optional(Permissions),
  expires_at: Type.Optional(Expiry),
  allowed_ips: Type.Optional(AllowedIps),
  rate_limit_per_minute: Type.Optional(RateLimit),
  quota: Type.Optional(Nullable(QuotaRecord)),
  signing: Type.Optional(
    StringEnum(
      SIGNING_MODES,
      "off (default): the key alone; optional: signed calls must verify, unsigned ones pass; required: every call carries an RFC 9421 signature. Turning it on mints a signing_secret, answered once; needs KEYGATE_MASTER_KEY",
    ),
  ),
};

const SigningSecret = Type.String({
  description:
    "the signing secret (pks_live_/pks_test_ + 64 hex): shown this once, never again. Sign requests with HMAC-SHA256 over its UTF-8 bytes (RFC 9421); it never travels in a request",
});

const Created = Type.Object({
  success: Type.Literal(true),
  key: Type.String({ description: "the full key: shown this once, never again" }),
  signing_secret: Type.Optional(SigningSecret),
  data: KeyView,
});

const Updated = Type.Object({
  success: Type.Literal(true),
  signing_secret: Type.Optional(SigningSecret),
  data: KeyView,
});

/** A minted or rolled key's answer: the secret only when the key signs. */
function created(key: string, data: View, signingSecret: string | undefined) {
  return signingSecret === undefined
    ? { success: true as const, key, data }
    : { success: true as const, key, signing_secret: signingSecret, data };
}

const LogRow = Type.Object({
  id: Type.Integer({ description: "pass the last row's id as before_id for the next page" }),
  timestamp: Type.String(),
  method: Type.String(),
  path: Type.String(),
  status_code: Type.Integer(),
  ip: Type.String(),
  latency_ms: Type.Number(),
  user_agent: Nullable(Type.String()),
  error_code: Nullable(Type.String()),
  request_id: Nullable(
    Type.String({
      description: "the X-Request-Id the answer carried; null on rows from before it was kept",
    }),
  ),
  message: Nullable(
    Type.String({ description: "the exact error message answered; null on success" }),
  ),
  environment: StringEnum(
    ENVIRONMENTS,
    "the key's environment; for a call without a known key, the one its value names (live if none)",
  ),
  credential: StringEnum(
    CREDENTIALS,
    "how the call authenticated: key (X-API-Key alone), signature (the key and an RFC 9421 signature) or token (an access token issued for the key)",
  ),
});

const CallLogEntry = component("CallLogEntry", LogRow);

const KeyStats = component(
  "ApiKeyStats",
  Type.Object({
    total: Type.Integer(),
    active: Type.Integer(),
    revoked: Type.Integer(),
    expired: Type.Integer(),
    owner_disabled: Type.Integer(),
    owner_deleted: Type.Integer(),
    calls_24h: Type.Integer({ description: "calls to the external surface" }),
  }),
);

const Presets = component(
  "PermissionPresets",
  Type.Object({
    resources: Type.Array(Type.String()),
    actions: Type.Array(Type.String()),
    presets: Type.Array(
      Type.Object({
        name: Type.String(),
        label: Type.String(),
        description: Type.String(),
        permissions: Type.Array(Type.String()),
        summary: Type.String({ description: "what a key with these permissions can do, in words" }),
      }),
    ),
    role_limits: Type.Object(
      { admin: Type.Array(Type.String()), reseller: Type.Array(Type.String()) },
      {
        description:
          "the most a key of an owner with each role may do: a key never exceeds its owner",
      },
    ),
  }),
);

const Activity = component(
  "ApiKeyActivity",
  Type.Object({
    from: Type.String(),
    to: Type.String(),
    hourly: Type.Array(
      Type.Object({
        hour: Type.String(),
        calls: Type.Integer(),
        errors: Type.Integer(),
      }),
    ),
    busiest: Type.Array(
      Type.Object({
        api_key_id: Type.Integer(),
        name: Type.String(),
        key_prefix: Type.String(),
        calls: Type.Integer(),
        errors: Type.Integer(),
      }),
    ),
    recent_refusals: Type.Array(
      Type.Object({
        ...LogRow.properties,
        api_key_id: Nullable(Type.Integer()),
        key_prefix: Nullable(Type.String()),
      }),
    ),
  }),
);

const tags = ["api keys"];
const security = [{ bearer: [] }];

export function keyRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.post(
      "/api-keys",
      {
        schema: {
          tags,
          security,
          summary: "Mint a key. The response's `key` is the only time the full key is shown.",
          body: Type.Object(
            {
              ...editable,
              quota: Type.Optional(
                Type.Union([QuotaRecord, Type.Null()], {
                  description:
                    "none by default; anyone who may mint may set any quota, since it only restricts the key. Changing it later: see PUT /api/api-keys/{id}",
                }),
              ),
              environment: Type.Optional(
                StringEnum(
                  ENVIRONMENTS,
                  "live (pk_live_, the default) or test (pk_test_: sees and changes test data only)",
                ),
              ),
              owner_id: Type.Optional(Id("admins only")),
            },
            { additionalProperties: false },
          ),
          response: { 201: Created, ...errorResponses(false, [400, 401, 403]) },
        },
      },
      async (req, reply) => {
        const { key, data, signingSecret } = await kg.keys.create(
          req.principal as Principal,
          req.body,
        );
        reply.code(201).header("Cache-Control", "no-store");
        return created(key, data, signingSecret);
      },
    );
    app.get(
      "/api-keys",
      {
        schema: {
          tags,
          security,
          summary:
            "List keys (all for admins, own for others) of the environment in Keygate-Environment (default live), newest first; never a hash or plaintext",
          querystring: Type.Object(
            {
              environment: Type.Optional(
                StringEnum(
                  [...ENVIRONMENTS, "all"],
                  "whose keys: live, test or all; default the request's Keygate-Environment (live)",
                ),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: Ok(Type.Array(KeyView)), ...errorResponses(false, [400, 401]) },
        },
      },
      async (req) => {
        const p = req.principal as Principal;
        const env = req.query.environment ?? p.environment ?? "live";
        return {
          success: true as const,
          data: await kg.keys.list(p, env === "all" ? null : env),
        };
      },
    );
    app.get(
      "/api-keys/presets",
      {
        schema: {
          tags,
          security,
          summary:
            "Named sets of permissions to mint keys with, the resources and actions there are, and each role's limit",
          response: { 200: Ok(Presets), ...errorResponses(false, [401]) },
        },
      },
      async () => ({
        success: true as const,
        data: {
          resources: [...RESOURCES],
          actions: [...ACTIONS],
          presets: PRESETS.map((p) => ({ ...p, summary: summarize(maskOf(p.permissions)) })),
          role_limits: {
            admin: normalize(ROLE_MASKS.admin),
            reseller: normalize(ROLE_MASKS.reseller),
          },
        },
      }),
    );
    app.get(
      "/api-keys/stats",
      {
        schema: {
          tags,
          security,
          summary:
            "Keys by status (each counted once, so they add up to total) and calls in the last 24 hours (admin); of both environments, or of the one named",
          querystring: Type.Object(
            {
              environment: Type.Optional(
                StringEnum(
                  [...ENVIRONMENTS, "all"],
                  "live, test, or all (the default): the dashboard shows each apart",
                ),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: Ok(KeyStats), ...errorResponses(false, [401, 403]) },
        },
      },
      async (req) => {
        const env = req.query.environment ?? "all";
        return {
          success: true as const,
          data: await kg.keys.stats(req.principal as Principal, env === "all" ? null : env),
        };
      },
    );
    app.get(
      "/api-keys/activity",
      {
        schema: {
          tags,
          security,
          summary:
            "Calls by hour (errors are status >= 400), the busiest keys and the latest refusals (401/403/429); admins see every call, others their own keys'",
          querystring: Type.Object(
            { hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 168, default: 24 })) },
            { additionalProperties: false },
          ),
          response: { 200: Ok(Activity), ...errorResponses(false, [400, 401]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.keys.activity(req.principal as Principal, req.query.hours ?? 24),
      }),
    );
    app.get(
      "/api-keys/:id",
      {
        schema: {
          tags,
          security,
          summary: "One key",
          params: IdParams,
          response: { 200: Ok(KeyView), ...errorResponses(false, [401, 404]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.keys.get(req.principal as Principal, req.params.id),
      }),
    );
    app.put(
      "/api-keys/:id",
      {
        schema: {
          tags,
          security,
          summary:
            "Change name, description, permissions (or scopes), allowed IPs, rate limit, quota, expiry or signing; applies on the next request. Turning signing on answers the new signing_secret, once",
          params: IdParams,
          body: Type.Object(
            {
              ...editable,
              quota: Type.Optional(
                Type.Union([QuotaRecord, Type.Null()], { description: QUOTA_CHANGE }),
              ),
              owner_id: Type.Optional(Id()),
              environment: Type.Optional(
                StringEnum(ENVIRONMENTS, "cannot be changed; given, it must be the key's own"),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: Updated, ...errorResponses(false, [400, 401, 403, 404, 409]) },
        },
      },
      async (req) => {
        const { data, signingSecret } = await kg.keys.update(
          req.principal as Principal,
          req.params.id,
          req.body,
        );
        return signingSecret === undefined
          ? { success: true as const, data }
          : { success: true as const, signing_secret: signingSecret, data };
      },
    );
    app.delete(
      "/api-keys/:id",
      {
        schema: {
          tags,
          security,
          summary:
            "Revoke a key: refused from the next request on; the row and its logs stay. Revoking twice is fine.",
          params: IdParams,
          response: { 200: Ok(KeyView), ...errorResponses(false, [401, 403, 404]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.keys.revoke(req.principal as Principal, req.params.id),
      }),
    );
    app.post(
      "/api-keys/revoke",
      {
        schema: {
          tags,
          security,
          summary: `Revoke up to ${BULK_REVOKE_MAX} keys at once, each as DELETE /api-keys/{id} does; answers key by key`,
          body: Type.Object(
            {
              ids: Type.Array(Id("a key's id"), {
                minItems: 1,
                maxItems: BULK_REVOKE_MAX,
                description: "the keys to revoke, each once",
              }),
              reason: Type.Optional(
                Type.String({
                  minLength: 1,
                  maxLength: 200,
                  description: "kept in the audit trail and sent in each key.revoked event",
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Ok(Type.Array(BulkRevokeResult)),
            ...errorResponses(false, [400, 401, 403]),
          },
        },
      },
      async (req) => {
        const { ids, reason } = req.body;
        const twice = ids.find((id, i) => ids.indexOf(id) !== i);
        if (twice !== undefined)
          throw invalid("ids", `names key ${twice} twice; name each key once`);
        const trimmed = reason?.trim();
        return {
          success: true as const,
          data: await kg.keys.revokeMany(req.principal as Principal, ids, trimmed || undefined),
        };
      },
    );
    app.post(
      "/api-keys/:id/roll",
      {
        schema: {
          tags,
          security,
          summary:
            "Mint a replacement with the same settings; the old key lives on for the grace period. The replacement shares the quota's count of the key it replaces (both spend one count during the grace period): a roll never gives a quota back",
          params: IdParams,
          body: Type.Optional(
            Type.Object(
              {
                grace_period_hours: Type.Optional(
                  Type.Integer({
                    minimum: 0,
                    maximum: MAX_GRACE_HOURS,
                    description: "default 24; 0 revokes the old key now",
                  }),
                ),
              },
              { additionalProperties: false },
            ),
          ),
          response: { 201: Created, ...errorResponses(false, [400, 401, 403, 404, 409]) },
        },
      },
      async (req, reply) => {
        const { key, data, signingSecret } = await kg.keys.roll(
          req.principal as Principal,
          req.params.id,
          req.body?.grace_period_hours ?? 24,
        );
        reply.code(201).header("Cache-Control", "no-store");
        return created(key, data, signingSecret);
      },
    );
    app.get(
      "/api-keys/:id/logs",
      {
        schema: {
          tags,
          security,
          summary:
            "The key's calls, newest first (or oldest first with order=asc); filter by status, time range or request id, and page with `before_id` (`after_id` oldest first)",
          params: IdParams,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 200 })),
              ...LOG_FILTERS,
              order: LOG_ORDER,
              before_id: Type.Optional(
                Type.Integer({
                  minimum: 1,
                  description:
                    "newest first: the last row's id, for the next page, without gaps or repeats",
                }),
              ),
              after_id: Type.Optional(
                Type.Integer({
                  minimum: 1,
                  description:
                    "oldest first (order=asc): the last row's id, for the next page, without gaps or repeats",
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Ok(Type.Array(CallLogEntry)),
            ...errorResponses(false, [400, 401, 404]),
          },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.keys.logs(req.principal as Principal, req.params.id, {
          ...logFilters(req.query),
          ...logCursor(req.query),
          limit: req.query.limit ?? 200,
        }),
      }),
    );
    app.get(
      "/api-keys/:id/logs.csv",
      {
        schema: {
          tags,
          security,
          summary:
            "The key's calls as CSV (RFC 4180, a header row, newest first or oldest first with order=asc), streamed; the same filters as the call log",
          description: `At most \`limit\` rows (default ${CSV_DEFAULT_ROWS.toLocaleString("en")}, at most ${CSV_MAX_ROWS.toLocaleString("en")}). A cell that a spreadsheet would read as a formula (starting with =, +, -, @, tab or carriage return) is prefixed with an apostrophe: paths, user agents and messages come from callers.`,
          params: IdParams,
          querystring: Type.Object(
            {
              limit: Type.Optional(
                Type.Integer({ minimum: 1, maximum: CSV_MAX_ROWS, default: CSV_DEFAULT_ROWS }),
              ),
              ...LOG_FILTERS,
              order: LOG_ORDER,
            },
            { additionalProperties: false },
          ),
          response: {
            200: {
              description: "the calls, one CSV row each",
              content: { "text/csv": { schema: Type.String() } },
            },
            ...errorResponses(false, [400, 401, 404]),
          },
        },
      },
      async (req, reply) => {
        const p = req.principal as Principal;
        const id = req.params.id;
        const max = req.query.limit ?? CSV_DEFAULT_ROWS;
        const filters = logFilters(req.query);
        // The first page before any byte is sent: a key out of sight is a 404 in JSON.
        const first = await kg.keys.logs(p, id, { ...filters, limit: Math.min(CSV_PAGE, max) });
        const next = (lastId: number, limit: number) =>
          kg.keys.logs(p, id, {
            ...filters,
            limit,
            ...(filters.order === "asc" ? { afterId: lastId } : { beforeId: lastId }),
          });
        reply
          .header("Content-Type", "text/csv; charset=utf-8")
          .header("Content-Disposition", `attachment; filename="key-${id}-calls.csv"`)
          .header("Cache-Control", "no-store");
        // A page that fails to read, or a client that goes away, ends the whole stream.
        const csv = pipeline(
          Readable.from(csvPages(first, next, max)),
          stringify({ header: true, columns: CSV_COLUMNS, cast: { string: spreadsheetSafe } }),
          (err) => {
            if (err && err.code !== "ERR_STREAM_PREMATURE_CLOSE")
              kg.warn(`call-log export of key ${id} ended early: ${err.message}`);
          },
        );
        // The schema's string is the document; what is sent is the stream that writes it.
        return reply.send(csv as unknown as string);
      },
    );
  };
}
