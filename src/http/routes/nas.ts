import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { component, IdParams, Nullable, Ok, OkEmpty } from "../schemas.js";
import type { App } from "../types.js";
import { strict, type Surface, surfaceOf, who } from "./common.js";

const Nas = component(
  "Nas",
  Type.Object(
    {
      id: Type.Integer(),
      name: Type.String(),
      ip_address: Type.String(),
      type: Type.String(),
      description: Nullable(Type.String()),
      created_at: Type.String(),
      updated_at: Type.String(),
    },
    { description: "A NAS device; its shared secret is never returned" },
  ),
);

const nasFields = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  ip_address: Type.Optional(Type.String({ maxLength: 64 })),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  secret: Type.Optional(
    Type.String({ minLength: 1, maxLength: 128, description: "shared secret; write-only" }),
  ),
};

/** NAS devices: read on both surfaces, changed on `/api` only. */
export function nasRoutes(kg: Keygate, surface: Surface): FastifyPluginAsync {
  const { external, security, errors } = surfaceOf(surface);

  return async (instance) => {
    const app = instance as unknown as App;

    app.get(
      "/nas",
      {
        schema: {
          tags: ["nas"],
          security,
          summary: "NAS devices (admin)",
          response: { 200: Ok(Type.Array(Nas)), ...errors(403) },
        },
      },
      async (req) => ({ success: true as const, data: await kg.nas.list(who(req)) }),
    );
    app.get(
      "/nas/:id",
      {
        schema: {
          tags: ["nas"],
          security,
          summary: "One NAS device (admin)",
          params: IdParams,
          response: { 200: Ok(Nas), ...errors(400, 403, 404) },
        },
      },
      async (req) => ({ success: true as const, data: await kg.nas.get(who(req), req.params.id) }),
    );
    if (!external) {
      app.post(
        "/nas",
        {
          schema: {
            tags: ["nas"],
            security,
            summary: "Add a NAS device (admin); the secret is never returned",
            body: Type.Object(
              {
                ...nasFields,
                name: Type.String({ minLength: 1, maxLength: 128 }),
                ip_address: Type.String({ maxLength: 64 }),
                secret: Type.String({ minLength: 1, maxLength: 128 }),
              },
              strict,
            ),
            response: { 201: Ok(Nas), ...errors(400, 403) },
          },
        },
        async (req, reply) => {
          reply.code(201);
          return { success: true as const, data: await kg.nas.create(who(req), req.body) };
        },
      );
      app.put(
        "/nas/:id",
        {
          schema: {
            tags: ["nas"],
            security,
            summary: "Change a NAS device (admin)",
            params: IdParams,
            body: Type.Object(nasFields, strict),
            response: { 200: Ok(Nas), ...errors(400, 403, 404) },
          },
        },
        async (req) => ({
          success: true as const,
          data: await kg.nas.update(who(req), req.params.id, req.body),
        }),
      );
      app.delete(
        "/nas/:id",
        {
          schema: {
            tags: ["nas"],
            security,
            summary: "Remove a NAS device (admin)",
            params: IdParams,
            response: { 200: OkEmpty, ...errors(400, 403, 404) },
          },
        },
        async (req) => {
          await kg.nas.remove(who(req), req.params.id);
          return { success: true as const, message: `NAS ${req.params.id} deleted` };
        },
      );
    }
  };
}
