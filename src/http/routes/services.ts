import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { component, Currency, IdParams, Money, Ok, OkEmpty } from "../schemas.js";
import type { App } from "../types.js";
import { strict, type Surface, surfaceOf, who } from "./common.js";

const Service = component(
  "Service",
  Type.Object(
    {
      id: Type.Integer(),
      name: Type.String(),
      download_kbps: Type.Integer(),
      upload_kbps: Type.Integer(),
      price: Type.Number(),
      currency: Type.String(),
      duration_days: Type.Integer(),
      is_active: Type.Boolean(),
      created_at: Type.String(),
      updated_at: Type.String(),
    },
    { description: "A service plan of the catalogue" },
  ),
);

const Kbps = Type.Integer({ minimum: 0, maximum: 100_000_000 });
const serviceFields = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  download_kbps: Type.Optional(Kbps),
  upload_kbps: Type.Optional(Kbps),
  price: Type.Optional(Money),
  currency: Type.Optional(Currency),
  duration_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  is_active: Type.Optional(Type.Boolean()),
};

/** The service catalogue: read on both surfaces, changed on `/api` only. */
export function serviceRoutes(kg: Keygate, surface: Surface): FastifyPluginAsync {
  const { external, security, errors } = surfaceOf(surface);

  return async (instance) => {
    const app = instance as unknown as App;

    app.get(
      "/services",
      {
        schema: {
          tags: ["services"],
          security,
          summary: "The service catalogue",
          response: { 200: Ok(Type.Array(Service)), ...errors() },
        },
      },
      async (req) => ({ success: true as const, data: await kg.services.list(who(req)) }),
    );
    app.get(
      "/services/:id",
      {
        schema: {
          tags: ["services"],
          security,
          summary: "One service",
          params: IdParams,
          response: { 200: Ok(Service), ...errors(400, 404) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.services.get(who(req), req.params.id),
      }),
    );
    if (!external) {
      app.post(
        "/services",
        {
          schema: {
            tags: ["services"],
            security,
            summary: "Create a service (admin)",
            body: Type.Object(
              { ...serviceFields, name: Type.String({ minLength: 1, maxLength: 128 }) },
              strict,
            ),
            response: { 201: Ok(Service), ...errors(400, 403) },
          },
        },
        async (req, reply) => {
          reply.code(201);
          return { success: true as const, data: await kg.services.create(who(req), req.body) };
        },
      );
      app.put(
        "/services/:id",
        {
          schema: {
            tags: ["services"],
            security,
            summary: "Change a service (admin)",
            params: IdParams,
            body: Type.Object(serviceFields, strict),
            response: { 200: Ok(Service), ...errors(400, 403, 404) },
          },
        },
        async (req) => ({
          success: true as const,
          data: await kg.services.update(who(req), req.params.id, req.body),
        }),
      );
      app.delete(
        "/services/:id",
        {
          schema: {
            tags: ["services"],
            security,
            summary: "Delete an unused service (admin)",
            params: IdParams,
            response: { 200: OkEmpty, ...errors(400, 403, 404, 409) },
          },
        },
        async (req) => {
          await kg.services.remove(who(req), req.params.id);
          return { success: true as const, message: `service ${req.params.id} deleted` };
        },
      );
    }
  };
}
