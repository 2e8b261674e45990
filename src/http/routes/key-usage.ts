import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Principal } from "../../auth/principal.js";
import type { Keygate } from "../../keygate.js";
import { ENVIRONMENTS } from "../../keys/format.js";
import {
  HOURLY_UP_TO_DAYS,
  KeyUsage,
  MAX_DAY_RANGE_DAYS,
  MAX_HOUR_RANGE_DAYS,
} from "../../keys/usage.js";
import {
  LATENCY_RELATIVE_ERROR,
  MAX_ERRORS,
  MAX_IPS,
  MAX_ROUTES,
  OTHER,
  TOP,
} from "../../store/usage.js";
import { component, errorResponses, Id, IdParams, Nullable, Ok, StringEnum } from "../schemas.js";
import type { App } from "../types.js";

const Count = Type.Integer({ minimum: 0 });
const ByStatus = Type.Object(
  { "2xx": Count, "3xx": Count, "4xx": Count, "5xx": Count },
  { description: "calls by status class (1xx and others outside 200–599 are in no class)" },
);
const ByError = Type.Record(Type.String(), Count, {
  description: `calls by the error code answered (an hour names at most ${MAX_ERRORS} codes; the rest are counted as "${OTHER}")`,
});
const Latency = Nullable(
  Type.Object(
    { p50: Type.Number(), p95: Type.Number(), p99: Type.Number() },
    {
      description: `latency percentiles in ms, from a log-spaced histogram: within ${(LATENCY_RELATIVE_ERROR * 100).toFixed(1)} % between 0.1 ms and 60 s; null without calls`,
    },
  ),
);
const Counts = {
  calls: Count,
  admitted: Type.Integer({
    minimum: 0,
    description:
      "calls that passed every key check (what a quota spends), whatever the route then answered",
  }),
  by_status: ByStatus,
  by_error: ByError,
  latency_ms: Latency,
};

const UsageReport = component(
  "KeyUsageReport",
  Type.Object(
    {
      from: Type.String({ format: "date-time", description: "the first bucket's start" }),
      to: Type.String({ format: "date-time", description: "the end of the last bucket" }),
      bucket: StringEnum(["hour", "day"], "the buckets' size (days are UTC days)"),
      environment: Nullable(StringEnum(ENVIRONMENTS, "the environment asked for; null: both")),
      api_key_id: Type.Optional(Type.Integer({ description: "the key (its own usage only)" })),
      totals: Type.Object(Counts),
      buckets: Type.Array(Type.Object({ start: Type.String({ format: "date-time" }), ...Counts }), {
        description: "every bucket of the range, oldest first; those without calls are zero",
      }),
      top_routes: Type.Array(Type.Object({ route: Type.String(), calls: Count }), {
        description: `the busiest route patterns (method and pattern), at most ${TOP}, busiest first; each hour keeps its ${MAX_ROUTES} busiest, so a route's count can be low by the calls it had in hours it was not among them`,
      }),
      top_ips: Type.Array(Type.Object({ ip: Type.String(), calls: Count }), {
        description: `the busiest client addresses, at most ${TOP}, busiest first; each hour keeps its ${MAX_IPS} busiest`,
      }),
    },
    {
      description:
        "Calls per bucket with their status classes, error codes and latency, the totals, and the busiest routes and client addresses — from hourly rollups, never the call log",
    },
  ),
);

const TIME = {
  maxLength: 40,
  pattern: "^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2}))?$",
};
const RangeQuery = {
  from: Type.Optional(
    Type.String({
      ...TIME,
      description:
        "an ISO-8601 date-time (or a date: its UTC midnight), rounded down to its bucket; default 24 hours before to",
    }),
  ),
  to: Type.Optional(
    Type.String({
      ...TIME,
      description:
        "an ISO-8601 date-time (or a date: that day included), rounded up to its bucket; default now",
    }),
  ),
  bucket: Type.Optional(
    StringEnum(
      ["hour", "day"],
      `hour (ranges up to ${MAX_HOUR_RANGE_DAYS} days) or day (UTC days, up to ${MAX_DAY_RANGE_DAYS} days); default hour up to ${HOURLY_UP_TO_DAYS} days, else day`,
    ),
  ),
  environment: Type.Optional(
    StringEnum(ENVIRONMENTS, "only calls of this environment; default both"),
  ),
};

const tags = ["api keys"];
const security = [{ bearer: [] }];

/** `GET /api-keys/:id/usage` and `GET /usage`: usage analytics of the keys the caller may see. */
export function keyUsageRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    const usage = new KeyUsage({
      db: kg.database.db,
      keys: kg.keys,
      flush: () => kg.callLog.flush(),
      now: () => kg.now(),
    });
    app.get(
      "/api-keys/:id/usage",
      {
        schema: {
          tags,
          security,
          summary:
            "A key's usage: calls per hour or day by status class and error code, latency p50/p95/p99, the busiest routes and client addresses (default the last 24 hours)",
          params: IdParams,
          querystring: Type.Object(RangeQuery, { additionalProperties: false }),
          response: { 200: Ok(UsageReport), ...errorResponses(false, [400, 401, 404]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await usage.forKey(req.principal as Principal, req.params.id, req.query),
      }),
    );
    app.get(
      "/usage",
      {
        schema: {
          tags,
          security,
          summary:
            "Usage of every key the caller may see (all for admins, own for others), summed: the same report as a key's",
          querystring: Type.Object(
            {
              ...RangeQuery,
              api_key_id: Type.Optional(Id("only this key (one the caller may see)")),
            },
            { additionalProperties: false },
          ),
          response: { 200: Ok(UsageReport), ...errorResponses(false, [400, 401, 404]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await usage.all(req.principal as Principal, req.query),
      }),
    );
  };
}
