import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Principal } from "../../auth/principal.js";
import { requireAdmin } from "../../auth/service.js";
import type { Keygate } from "../../keygate.js";
import { component, errorResponses, Nullable, Ok, PageQuery } from "../schemas.js";
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
            "Who did what to which key, user or record, when and from where (admin), newest first",
          querystring: Type.Object(
            {
              ...PageQuery,
              action: Type.Optional(Type.String({ maxLength: 64 })),
              target_type: Type.Optional(Type.String({ maxLength: 64 })),
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
        const { rows, total } = await kg.audit.list({
          limit: perPage,
          offset: (page - 1) * perPage,
          action: req.query.action,
          targetType: req.query.target_type,
        });
        return { success: true as const, data: rows, meta: { page, per_page: perPage, total } };
      },
    );
  };
}
