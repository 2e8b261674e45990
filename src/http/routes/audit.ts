import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import { AUDIT_SORTS } from "../../audit.js";
import type { Principal } from "../../auth/principal.js";
import { invalid } from "../../errors.js";
import { requireAdmin } from "../../auth/service.js";
import type { Keygate } from "../../keygate.js";
import { component, errorResponses, Nullable, Ok, PageQuery, StringEnum } from "../schemas.js";
import type { App } from "../types.js";

const Entry = component(
  "AuditEntry",
  Type.Object(
    {
      id: Type.Integer(),
      actor_id: Nullable(Type.Integer()),
      actor_username: Nullable(Type.String()),
      via: Type.String(),
      action: Type.String(),
      target_type: Type.String(),
      target_id: Nullable(Type.String()),
      details: Nullable(Type.Object({}, { additionalProperties: true })),
      ip: Nullable(Type.String()),
      created_at: Type.String(),
    },
    { description: "Who did what to which key, user or record, when and from where" },
  ),
);

/** An ISO-8601 UTC time, as the log filters take it. */
const Time = (description: string) =>
  Type.String({
    maxLength: 40,
    pattern: "^\\d{4}-\\d{2}-\\d{2}T[0-9:.]+Z$",
    format: "date-time",
    description: `an ISO-8601 UTC timestamp: ${description}`,
  });

/** An ISO time as the trail writes it (with milliseconds), so text comparison is exact. */
function storedTime(field: string, value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw invalid(field, "must be a real ISO-8601 UTC time such as 2026-12-01T09:30:00Z");
  return new Date(ms).toISOString();
}

export function auditRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.get(
      "/audit",
      {
        schema: {
          tags: ["audit"],
          security: [{ bearer: [] }],
          summary:
            "Who did what to which key, user or record, when and from where (admin), newest first unless sorted otherwise; filter by action, target and time range",
          querystring: Type.Object(
            {
              ...PageQuery,
              action: Type.Optional(Type.String({ maxLength: 64 })),
              target_type: Type.Optional(Type.String({ maxLength: 64 })),
              from: Type.Optional(Time("only entries at or after it")),
              to: Type.Optional(Time("only entries before it; later than from")),
              sort: Type.Optional(
                StringEnum(
                  AUDIT_SORTS,
                  "newest (the default) or oldest first; actor or action: alphabetically by who or what, newest first within each",
                ),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: Ok(Type.Array(Entry), true), ...errorResponses(false, [400, 401, 403]) },
        },
      },
      async (req) => {
        const p = req.principal as Principal;
        requireAdmin(p, "read the audit trail");
        const page = req.query.page ?? 1;
        const perPage = req.query.per_page ?? 50;
        const from = req.query.from === undefined ? undefined : storedTime("from", req.query.from);
        const to = req.query.to === undefined ? undefined : storedTime("to", req.query.to);
        if (from !== undefined && to !== undefined && from >= to)
          throw invalid("to", `must be later than from (${from}); the range [from, to) is empty`);
        const { rows, total } = await kg.audit.list({
          limit: perPage,
          offset: (page - 1) * perPage,
          action: req.query.action,
          targetType: req.query.target_type,
          from,
          to,
          sort: req.query.sort,
        });
        return { success: true as const, data: rows, meta: { page, per_page: perPage, total } };
      },
    );
  };
}
