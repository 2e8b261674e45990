import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Principal } from "../../auth/principal.js";
import type { Keygate } from "../../keygate.js";
import type { App } from "../app.js";
import { errorResponses, Ok, OkEmpty } from "../schemas.js";

export const UserSummary = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  role: Type.String(),
});

const TokenPair = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.String(),
  token_type: Type.Literal("Bearer"),
  expires_in: Type.Integer({ description: "seconds until the access token expires" }),
  user: UserSummary,
});

export const UserView = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  role: Type.String(),
  disabled: Type.Boolean(),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const tags = ["auth"];

export function authRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.post(
      "/auth/login",
      {
        config: { public: true },
        schema: {
          tags,
          summary: "Sign in; returns an access token and a one-use refresh token",
          body: Type.Object(
            {
              username: Type.String({ minLength: 1, maxLength: 128 }),
              password: Type.String({ minLength: 1, maxLength: 1024 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: Ok(TokenPair), ...errorResponses(false, [400, 401, 429]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.auth.login(req.body.username, req.body.password, req.clientIp),
      }),
    );
    app.post(
      "/auth/refresh",
      {
        config: { public: true },
        schema: {
          tags,
          summary: "Trade a refresh token (once) for a new pair",
          body: Type.Object(
            { refresh_token: Type.String({ minLength: 1, maxLength: 256 }) },
            { additionalProperties: false },
          ),
          response: { 200: Ok(TokenPair), ...errorResponses(false, [400, 401]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.auth.refresh(req.body.refresh_token),
      }),
    );
    app.post(
      "/auth/logout",
      {
        schema: {
          tags,
          summary:
            "End the session of a refresh token (or every session of this user when none is sent)",
          security: [{ bearer: [] }],
          body: Type.Optional(
            Type.Object(
              { refresh_token: Type.Optional(Type.String({ maxLength: 256 })) },
              { additionalProperties: false },
            ),
          ),
          response: { 200: OkEmpty, ...errorResponses(false, [400, 401]) },
        },
      },
      async (req) => {
        await kg.auth.logout(req.principal as Principal, req.body?.refresh_token);
        return { success: true as const, message: "signed out" };
      },
    );
    app.get(
      "/auth/me",
      {
        schema: {
          tags,
          summary: "The signed-in user",
          security: [{ bearer: [] }],
          response: { 200: Ok(UserView), ...errorResponses(false, [401]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.auth.me(req.principal as Principal),
      }),
    );
  };
}
