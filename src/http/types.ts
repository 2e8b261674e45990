import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { Principal } from "../auth/principal.js";
import type { KeyRecord } from "../keys/verify.js";
import type { RateDecision } from "../ratelimit/limiter.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
    errorCode: string | null;
    /** The message of the error answered, for the call log. */
    errorMessage: string | null;
    clientIp: string;
    /** The verified key behind an external request. */
    keyRecord: KeyRecord | null;
    /** This request's per-IP budget, when the IP limit is on. */
    ipRate: RateDecision | null;
  }
  interface FastifyContextConfig {
    /** Reachable without credentials. */
    public?: boolean;
    /** External routes: the permission they need, as `X-Accepted-Permissions` names it. */
    acceptedPermissions?: string;
  }
}

export type App = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
