import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { component, DateOnly, IdParams, Ok } from "../schemas.js";
import type { App } from "../types.js";
import { strict, type Surface, surfaceOf, who } from "./common.js";

const Counters = {
  bytes_in: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  bytes_out: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  session_seconds: Type.Integer({ minimum: 0, maximum: 10_000_000_000 }),
};
const UsageDay = component(
  "UsageDay",
  Type.Object(
    { date: Type.String(), ...Counters },
    { description: "A subscriber's usage on a day" },
  ),
);
const UsageReport = component(
  "UsageReport",
  Type.Object(
    {
      subscriber_id: Type.Integer(),
      from: Type.String(),
      to: Type.String(),
      days: Type.Array(UsageDay),
      totals: Type.Object(Counters),
    },
    { description: "Daily usage of a subscriber between two dates, and its totals" },
  ),
);

/** A subscriber's daily usage: read on both surfaces, recorded on `/api` only. */
export function usageRoutes(kg: Keygate, surface: Surface): FastifyPluginAsync {
  const { external, security, errors } = surfaceOf(surface);

  return async (instance) => {
    const app = instance as unknown as App;

    app.get(
      "/subscribers/:id/usage",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary: "Daily usage and totals (default: the last 30 days)",
          params: IdParams,
          querystring: Type.Object(
            { from: Type.Optional(DateOnly), to: Type.Optional(DateOnly) },
            strict,
          ),
          response: { 200: Ok(UsageReport), ...errors(400, 404) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.usage.report(who(req), req.params.id, req.query),
      }),
    );
    if (!external) {
      app.post(
        "/subscribers/:id/usage",
        {
          schema: {
            tags: ["subscribers"],
            security,
            summary:
              "Record accounting: adds the counters to the subscriber's totals for that day (default today, UTC)",
            params: IdParams,
            body: Type.Object(
              {
                date: Type.Optional(DateOnly),
                bytes_in: Type.Optional(Counters.bytes_in),
                bytes_out: Type.Optional(Counters.bytes_out),
                session_seconds: Type.Optional(Counters.session_seconds),
              },
              strict,
            ),
            response: { 201: Ok(UsageDay), ...errors(400, 404) },
          },
        },
        async (req, reply) => {
          reply.code(201);
          return {
            success: true as const,
            data: await kg.usage.record(who(req), req.params.id, req.body),
          };
        },
      );
    }
  };
}
