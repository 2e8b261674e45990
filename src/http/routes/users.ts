import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from "../../auth/passwords.js";
import type { Principal } from "../../auth/principal.js";
import type { Keygate } from "../../keygate.js";
import { errorResponses, IdParams, Ok, OkEmpty, Username } from "../schemas.js";
import type { App } from "../types.js";
import { UserView } from "./auth.js";

const Role = Type.Union([Type.Literal("admin"), Type.Literal("reseller")], {
  description: '"admin" or "reseller"',
});
const Password = Type.String({ minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH });
const tags = ["users"];
const security = [{ bearer: [] }];

export function userRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.get(
      "/users",
      {
        schema: {
          tags,
          security,
          summary: "List users (admin)",
          response: { 200: Ok(Type.Array(UserView)), ...errorResponses(false, [401, 403]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.auth.listUsers(req.principal as Principal),
      }),
    );
    app.post(
      "/users",
      {
        schema: {
          tags,
          security,
          summary: "Create a user (admin)",
          body: Type.Object(
            { username: Username, password: Password, role: Role },
            { additionalProperties: false },
          ),
          response: { 201: Ok(UserView), ...errorResponses(false, [400, 401, 403, 409]) },
        },
      },
      async (req, reply) => {
        reply.code(201);
        return {
          success: true as const,
          data: await kg.auth.createUser(req.principal as Principal, req.body),
        };
      },
    );
    app.put(
      "/users/:id",
      {
        schema: {
          tags,
          security,
          summary: "Change a user's role, password or disabled state (admin)",
          params: IdParams,
          body: Type.Object(
            {
              role: Type.Optional(Role),
              password: Type.Optional(Password),
              disabled: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false },
          ),
          response: { 200: Ok(UserView), ...errorResponses(false, [400, 401, 403, 404, 409]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.auth.updateUser(req.principal as Principal, req.params.id, req.body),
      }),
    );
    app.delete(
      "/users/:id",
      {
        schema: {
          tags,
          security,
          summary: "Delete a user (soft; admin). Their keys stop working.",
          params: IdParams,
          response: { 200: OkEmpty, ...errorResponses(false, [401, 403, 404, 409]) },
        },
      },
      async (req) => {
        await kg.auth.deleteUser(req.principal as Principal, req.params.id);
        return { success: true as const, message: `user ${req.params.id} deleted` };
      },
    );
  };
}
