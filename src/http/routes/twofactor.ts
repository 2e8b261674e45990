import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import { PASSWORD_MAX_LENGTH } from "../../auth/passwords.js";
import type { Principal } from "../../auth/principal.js";
import type { Keygate } from "../../keygate.js";
import { component, errorResponses, Nullable, Ok, OkEmpty } from "../schemas.js";
import type { App } from "../types.js";

const tags = ["auth"];
const security = [{ bearer: [] }];

const Code = Type.String({
  minLength: 1,
  maxLength: 16,
  description: "the 6-digit code the authenticator app shows now",
});
const Password = Type.String({
  minLength: 1,
  maxLength: PASSWORD_MAX_LENGTH,
  description: "your current password",
});

const Status = component(
  "TwoFactorStatus",
  Type.Object({
    enabled: Type.Boolean({ description: "two-factor sign-in is on: sign-in asks for a code" }),
    enabled_at: Nullable(Type.String()),
    pending: Type.Boolean({
      description:
        "an enrolment was started and awaits its first code (POST /api/auth/2fa/confirm)",
    }),
    recovery_codes_left: Type.Integer({ description: "unused recovery codes" }),
    required: Type.Boolean({
      description: "KEYGATE_REQUIRE_2FA asks this user to have it before managing keys",
    }),
  }),
);

const Enrolment = component(
  "TwoFactorEnrolment",
  Type.Object({
    secret: Type.String({
      description: "base32 TOTP secret, to type into the app by hand; shown this once",
    }),
    otpauth_url: Type.String({ description: "the otpauth://totp/… URI the QR code holds" }),
    qr_svg: Type.String({ description: "the QR code of otpauth_url, as an SVG document" }),
    issuer: Type.String(),
    account: Type.String(),
    algorithm: Type.String(),
    digits: Type.Integer(),
    period: Type.Integer({ description: "seconds each code lasts" }),
  }),
);

const RecoveryCodes = Type.Array(Type.String(), {
  description: "one-use codes for when the authenticator is lost; shown this once",
});

/** Needs the password or a current code: exactly one. */
const Confirmation = Type.Object(
  { password: Type.Optional(Password), code: Type.Optional(Code) },
  { additionalProperties: false },
);

/** `/api/auth/2fa`: the signed-in user's own two-factor sign-in (TOTP). */
export function twoFactorRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.get(
      "/auth/2fa",
      {
        schema: {
          tags,
          security,
          summary: "Whether two-factor sign-in is on for you, and whether it is required",
          response: { 200: Ok(Status), ...errorResponses(false, [401]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.twoFactor.status(req.principal as Principal),
      }),
    );
    app.post(
      "/auth/2fa/enrol",
      {
        schema: {
          tags,
          security,
          summary: "Start turning on two-factor sign-in: a new TOTP secret and its QR code",
          description:
            "Answers the secret once; it takes effect only when `POST /api/auth/2fa/confirm` gets a first valid code. Starting again replaces a pending secret. Needs your password.",
          body: Type.Object({ password: Password }, { additionalProperties: false }),
          response: { 200: Ok(Enrolment), ...errorResponses(false, [400, 401, 403, 409, 429]) },
        },
      },
      async (req, reply) => {
        reply.header("Cache-Control", "no-store");
        return {
          success: true as const,
          data: await kg.twoFactor.enrol(req.principal as Principal, req.body.password),
        };
      },
    );
    app.post(
      "/auth/2fa/confirm",
      {
        schema: {
          tags,
          security,
          summary: "Turn two-factor sign-in on with the first code; answers the recovery codes",
          body: Type.Object({ code: Code }, { additionalProperties: false }),
          response: {
            200: Ok(Type.Object({ enabled_at: Type.String(), recovery_codes: RecoveryCodes })),
            ...errorResponses(false, [400, 401, 403, 409]),
          },
        },
      },
      async (req, reply) => {
        reply.header("Cache-Control", "no-store");
        return {
          success: true as const,
          data: await kg.twoFactor.confirm(req.principal as Principal, req.body.code),
        };
      },
    );
    app.post(
      "/auth/2fa/disable",
      {
        schema: {
          tags,
          security,
          summary: "Turn two-factor sign-in off (needs your password or a current code)",
          body: Confirmation,
          response: { 200: OkEmpty, ...errorResponses(false, [400, 401, 403, 409, 429]) },
        },
      },
      async (req) => {
        await kg.twoFactor.disable(req.principal as Principal, req.body);
        return { success: true as const, message: "two-factor sign-in is off" };
      },
    );
    app.post(
      "/auth/2fa/recovery-codes",
      {
        schema: {
          tags,
          security,
          summary: "Replace the recovery codes (needs your password or a current code)",
          body: Confirmation,
          response: {
            200: Ok(Type.Object({ recovery_codes: RecoveryCodes })),
            ...errorResponses(false, [400, 401, 403, 409, 429]),
          },
        },
      },
      async (req, reply) => {
        reply.header("Cache-Control", "no-store");
        return {
          success: true as const,
          data: await kg.twoFactor.regenerateRecoveryCodes(req.principal as Principal, req.body),
        };
      },
    );
  };
}
