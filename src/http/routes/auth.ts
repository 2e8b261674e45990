import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { type Principal, ROLES } from "../../auth/principal.js";
import { AppError } from "../../errors.js";
import type { Keygate } from "../../keygate.js";
import { component, errorResponses, Ok, OkEmpty, StringEnum } from "../schemas.js";
import type { App } from "../types.js";

export const Role = StringEnum(ROLES, '"admin" or "reseller"');

export const UserSummary = component(
  "UserSummary",
  Type.Object({ id: Type.Integer(), username: Type.String(), role: Role }),
);

const TokenPairRecord = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.Optional(
    Type.String({
      description: "absent in cookie mode: the refresh token is then only in the HttpOnly cookie",
    }),
  ),
  token_type: Type.Literal("Bearer"),
  expires_in: Type.Integer({ description: "seconds until the access token expires" }),
  user: UserSummary,
});
const TokenPair = component("TokenPair", TokenPairRecord);

const UserRecord = Type.Object(
  {
    id: Type.Integer(),
    username: Type.String(),
    role: Role,
    disabled: Type.Boolean(),
    two_factor_enabled: Type.Boolean({ description: "two-factor sign-in (TOTP) is on" }),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { description: "A person who signs in: an admin or a reseller" },
);
export const UserView = component("User", UserRecord);

const Me = component(
  "Me",
  Type.Object(
    {
      ...UserRecord.properties,
      permissions: Type.Object({
        manage_keys: Type.Boolean({
          description:
            "may mint, change, roll and revoke keys (admins; resellers with self-service)",
        }),
      }),
      defaults: Type.Object({ key_rate_limit_per_minute: Type.Integer() }),
      two_factor_required: Type.Boolean({
        description:
          "KEYGATE_REQUIRE_2FA asks this user to turn on two-factor sign-in before managing keys",
      }),
    },
    { description: "The signed-in user, what it may do, and the server's defaults" },
  ),
);

const tags = ["auth"];

/** The console's refresh token: HttpOnly, so a script in the page can never read it. */
export const REFRESH_COOKIE = "keygate_refresh";
const COOKIE_PATH = "/api/auth";

function setRefreshCookie(
  req: FastifyRequest,
  reply: FastifyReply,
  token: string,
  maxAgeS: number,
) {
  reply.setCookie(REFRESH_COOKIE, token, {
    httpOnly: true,
    sameSite: "strict",
    secure: req.protocol === "https",
    path: COOKIE_PATH,
    maxAge: maxAgeS,
  });
}

/** In cookie mode the pair's refresh token goes into the cookie and out of the body. */
function deliver<T extends { refresh_token: string }>(
  req: FastifyRequest,
  reply: FastifyReply,
  pair: T,
  cookie: boolean,
) {
  if (!cookie) return pair;
  setRefreshCookie(req, reply, pair.refresh_token, 30 * 86_400);
  reply.header("Cache-Control", "no-store");
  const { refresh_token: _hidden, ...rest } = pair;
  return rest;
}

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
          description:
            "An account with two-factor sign-in answers `401 TWO_FACTOR_REQUIRED` to a right password alone: send the request again with `otp` (or `recovery_code`). A wrong or reused code is `401 INVALID_TWO_FACTOR_CODE` and counts as a failed sign-in.",
          body: Type.Object(
            {
              username: Type.String({ minLength: 1, maxLength: 128 }),
              password: Type.String({ minLength: 1, maxLength: 1024 }),
              otp: Type.Optional(
                Type.String({
                  minLength: 1,
                  maxLength: 16,
                  description:
                    "the 6-digit code from the authenticator app, for an account with two-factor sign-in (login answers 401 TWO_FACTOR_REQUIRED without it)",
                }),
              ),
              recovery_code: Type.Optional(
                Type.String({
                  minLength: 1,
                  maxLength: 64,
                  description: "instead of otp: one of the recovery codes, each usable once",
                }),
              ),
              session: Type.Optional(
                Type.Union([Type.Literal("token"), Type.Literal("cookie")], {
                  description:
                    '"cookie" puts the refresh token in an HttpOnly SameSite=Strict cookie (the console\'s mode)',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: Ok(TokenPair), ...errorResponses(false, [400, 401, 429]) },
        },
      },
      async (req, reply) => {
        const pair = await kg.auth.login(req.body.username, req.body.password, req.clientIp, {
          otp: req.body.otp,
          recoveryCode: req.body.recovery_code,
        });
        return {
          success: true as const,
          data: deliver(req, reply, pair, req.body.session === "cookie"),
        };
      },
    );
    app.post(
      "/auth/refresh",
      {
        config: { public: true },
        schema: {
          tags,
          summary: "Trade a refresh token (once) for a new pair",
          body: Type.Optional(
            Type.Object(
              {
                refresh_token: Type.Optional(
                  Type.String({
                    minLength: 1,
                    maxLength: 256,
                    description: "omit to use the console's cookie",
                  }),
                ),
              },
              { additionalProperties: false },
            ),
          ),
          response: { 200: Ok(TokenPair), ...errorResponses(false, [400, 401]) },
        },
      },
      async (req, reply) => {
        const fromBody = req.body?.refresh_token;
        const token = fromBody ?? req.cookies[REFRESH_COOKIE];
        if (!token) {
          throw new AppError("UNAUTHORIZED", "send refresh_token in the body, or sign in again");
        }
        try {
          const pair = await kg.auth.refresh(token);
          return {
            success: true as const,
            data: deliver(req, reply, pair, fromBody === undefined),
          };
        } catch (err) {
          if (fromBody === undefined) reply.clearCookie(REFRESH_COOKIE, { path: COOKIE_PATH });
          throw err;
        }
      },
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
      async (req, reply) => {
        const cookie = req.cookies[REFRESH_COOKIE];
        await kg.auth.logout(req.principal as Principal, req.body?.refresh_token ?? cookie);
        if (cookie) reply.clearCookie(REFRESH_COOKIE, { path: COOKIE_PATH });
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
          response: { 200: Ok(Me), ...errorResponses(false, [401]) },
        },
      },
      async (req) => {
        const p = req.principal as Principal;
        return {
          success: true as const,
          data: {
            ...(await kg.auth.me(p)),
            permissions: { manage_keys: kg.keys.mayManage(p) },
            defaults: { key_rate_limit_per_minute: kg.config.keyRateLimit },
            two_factor_required: kg.twoFactor.requiredFor(p),
          },
        };
      },
    );
  };
}
