import cookie from "@fastify/cookie";
import type { FastifyPluginAsync } from "fastify";
import { AppError } from "../errors.js";
import type { Keygate } from "../keygate.js";
import { isEnvironment } from "../keys/format.js";
import { decimalIds } from "./input.js";
import { alertRoutes } from "./routes/alerts.js";
import { auditRoutes } from "./routes/audit.js";
import { authRoutes } from "./routes/auth.js";
import { keyRoutes } from "./routes/keys.js";
import { keyUsageRoutes } from "./routes/key-usage.js";
import { panelRoutes } from "./routes/panel.js";
import { testDataRoutes } from "./routes/testdata.js";
import { twoFactorRoutes } from "./routes/twofactor.js";
import { userRoutes } from "./routes/users.js";
import { webhookRoutes } from "./routes/webhooks.js";
import type { App } from "./types.js";

/** `/api`: people, signed in with a Bearer access token. */
/** Whether a JWT says it is an access token of the token exchange (`typ: at+jwt`, RFC 9068). */
function isExchangedToken(token: string): boolean {
  try {
    const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8"));
    const typ = typeof header?.typ === "string" ? header.typ.toLowerCase() : "";
    return typ === "at+jwt" || typ === "application/at+jwt";
  } catch {
    return false;
  }
}

export function jwtSurface(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    // Only the session routes read cookies: the external surface never parses them.
    await app.register(cookie);
    app.addHook("onRequest", async (request, reply) => {
      if (request.routeOptions.config?.public) return;
      const header = request.headers.authorization;
      const token = header?.startsWith("Bearer ") ? header.slice(7).trim() : "";
      if (!token) {
        const hint = request.headers["x-api-key"]
          ? "API keys work on /api/v1/external; the /api surface needs a signed-in user's access token"
          : "send Authorization: Bearer <access_token>; get one from POST /api/auth/login";
        throw new AppError("UNAUTHORIZED", hint);
      }
      if (/^pk_(?:live|test)_/.test(token)) {
        throw new AppError(
          "UNAUTHORIZED",
          "this is an API key: keys work on /api/v1/external, in the X-API-Key header; the /api surface needs a signed-in user's access token (POST /api/auth/login)",
        );
      }
      const principal = await kg.auth
        .principalFromAccessToken(token, request.clientIp)
        .catch((err: unknown) => {
          throw isExchangedToken(token)
            ? new AppError(
                "UNAUTHORIZED",
                "this is an access token of the token exchange (POST /api/v1/external/oauth/token): it works on /api/v1/external only; the /api surface needs a signed-in user's access token (POST /api/auth/login)",
              )
            : err;
        });
      // Which data the person works on: live unless the request names test (the console's
      // Test data switch). Answers say which it was.
      const named = request.headers["keygate-environment"];
      const environment = (Array.isArray(named) ? named[0] : named)?.trim().toLowerCase() || "live";
      if (!isEnvironment(environment)) {
        const message = 'must be "live" or "test" (or left out, for live)';
        throw new AppError("VALIDATION_ERROR", `header Keygate-Environment ${message}`, [
          { field: "headers.keygate-environment", message },
        ]);
      }
      request.principal = { ...principal, environment };
      reply.header("Keygate-Environment", environment);
    });
    app.addHook("preValidation", decimalIds);
    await app.register(authRoutes(kg));
    await app.register(twoFactorRoutes(kg));
    await app.register(userRoutes(kg));
    await app.register(keyRoutes(kg));
    await app.register(keyUsageRoutes(kg));
    await app.register(auditRoutes(kg));
    await app.register(webhookRoutes(kg));
    await app.register(alertRoutes(kg));
    await app.register(testDataRoutes(kg));
    await app.register(panelRoutes(kg, "jwt"));
  };
}
