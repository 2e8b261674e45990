import cookie from "@fastify/cookie";
import type { FastifyPluginAsync } from "fastify";
import { AppError } from "../errors.js";
import type { Keygate } from "../keygate.js";
import { auditRoutes } from "./routes/audit.js";
import { authRoutes } from "./routes/auth.js";
import { keyRoutes } from "./routes/keys.js";
import { panelRoutes } from "./routes/panel.js";
import { twoFactorRoutes } from "./routes/twofactor.js";
import { userRoutes } from "./routes/users.js";
import type { App } from "./types.js";

/** `/api`: people, signed in with a Bearer access token. */
export function jwtSurface(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    // Only the session routes read cookies: the external surface never parses them.
    await app.register(cookie);
    app.addHook("onRequest", async (request) => {
      if (request.routeOptions.config?.public) return;
      const header = request.headers.authorization;
      const token = header?.startsWith("Bearer ") ? header.slice(7).trim() : "";
      if (!token) {
        const hint = request.headers["x-api-key"]
          ? "API keys work on /api/v1/external; the /api surface needs a signed-in user's access token"
          : "send Authorization: Bearer <access_token>; get one from POST /api/auth/login";
        throw new AppError("UNAUTHORIZED", hint);
      }
      request.principal = await kg.auth.principalFromAccessToken(token, request.clientIp);
    });
    await app.register(authRoutes(kg));
    await app.register(twoFactorRoutes(kg));
    await app.register(userRoutes(kg));
    await app.register(keyRoutes(kg));
    await app.register(auditRoutes(kg));
    await app.register(panelRoutes(kg, "jwt"));
  };
}
