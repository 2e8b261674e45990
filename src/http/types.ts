import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import type { Principal } from "../auth/principal.js";
import type { Credential } from "../keys/format.js";
import type { KeyRecord } from "../keys/verify.js";
import type { RateDecision } from "../ratelimit/limiter.js";
import type { RouteGuard } from "./permissions.js";

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
    /**
     * Set by the key check on a request carrying a signature: its key is checked once the
     * body is in (the digest covers it), with the route's guard.
     */
    signaturePending: { guard: RouteGuard | null } | null;
    /** The body's bytes as received, kept for a signed request only. */
    rawBody: Buffer | null;
    /** How the request authenticated, for the call log. */
    credential: Credential;
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
