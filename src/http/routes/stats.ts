import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { systemStats } from "../../panel/stats.js";
import { component, Ok } from "../schemas.js";
import type { App } from "../types.js";
import { type Surface, surfaceOf, who } from "./common.js";

const Stats = component(
  "SystemStats",
  Type.Object(
    {
      subscribers: Type.Object({
        total: Type.Integer(),
        active: Type.Integer(),
        suspended: Type.Integer(),
        expired: Type.Integer(),
      }),
      services: Type.Integer(),
      nas: Type.Optional(Type.Integer({ description: "admins only" })),
      transactions_30d: Type.Array(
        Type.Object({ currency: Type.String(), count: Type.Integer(), amount: Type.Number() }),
      ),
    },
    { description: "Totals of what the caller may see" },
  ),
);

/** `GET /system/stats`: the totals of what the caller may see. */
export function statsRoutes(kg: Keygate, surface: Surface): FastifyPluginAsync {
  const { security, errors } = surfaceOf(surface);

  return async (instance) => {
    const app = instance as unknown as App;

    app.get(
      "/system/stats",
      {
        schema: {
          tags: ["system"],
          security,
          summary: "Subscriber, service, NAS and money totals visible to the caller",
          response: { 200: Ok(Stats), ...errors() },
        },
      },
      async (req) => ({
        success: true as const,
        data: await systemStats(kg.stats, who(req), kg.now()),
      }),
    );
  };
}
