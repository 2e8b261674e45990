import { createHash, timingSafeEqual } from "node:crypto";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onResponseHookHandler,
} from "fastify";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Keygate } from "../keygate.js";
import type { RequestStats, RouteSlot } from "../metrics/requests.js";
import { sendError, toAppError } from "./errors.js";
import type { App } from "./types.js";

/** Whether metrics are read at all: with a token on this port, or on a listener of their own. */
export function metricsEnabled(config: Config): boolean {
  return config.metricsToken !== null || config.metricsAddress !== null;
}

/**
 * Counts every answered request into its route's slot (see `metrics/requests.ts`). Each route
 * gets a slot and an `onResponse` hook of its own when it is registered, so a request costs
 * a status and a latency added to typed arrays: no look-up, label, closure or allocation. A
 * request no route took is counted by the scope-wide hook under its surface and method.
 * Call before any route is registered; with metrics off, nothing is added.
 */
export function countRequests(app: App, kg: Keygate): void {
  if (!metricsEnabled(kg.config)) return;
  const stats = kg.metrics.requests;
  app.addHook("onRoute", (route) => {
    const methods = [route.method].flat();
    const own =
      methods.length === 1
        ? countInto(stats.route(methods[0] as string, route.url))
        : countByMethod(new Map(methods.map((m) => [m, stats.route(m, route.url)])));
    const hooks = route.onResponse;
    route.onResponse = hooks === undefined ? own : [...[hooks].flat(), own];
  });
  app.addHook("onResponse", (request, reply, done) => {
    if (request.is404) countMiss(stats, request, reply);
    done();
  });
}

/** The hook of a route served under one method: made once per route, at registration. */
function countInto(slot: RouteSlot): onResponseHookHandler {
  return function countRoute(_request, reply, done) {
    slot.record(reply.statusCode, reply.elapsedTime);
    done();
  };
}

/** The hook of a route registered for several methods at once: one slot per method. */
function countByMethod(slots: Map<string, RouteSlot>): onResponseHookHandler {
  return function countRoute(request, reply, done) {
    slots.get(request.method)?.record(reply.statusCode, reply.elapsedTime);
    done();
  };
}

function countMiss(stats: RequestStats, request: FastifyRequest, reply: FastifyReply): void {
  stats.miss(request.url, request.method).record(reply.statusCode, reply.elapsedTime);
}

const METRICS_OFF = new AppError(
  "FORBIDDEN",
  "metrics are off on this Keygate: set KEYGATE_METRICS_TOKEN to read GET /metrics here with Authorization: Bearer <token>, or KEYGATE_METRICS_ADDRESS (host:port) to serve them on a listener of their own (docs/metrics.md)",
);
const ELSEWHERE = new AppError(
  "NOT_FOUND",
  "metrics are served on the listener KEYGATE_METRICS_ADDRESS names, not on this port; set KEYGATE_METRICS_TOKEN as well to read them here with Authorization: Bearer <token>",
);
const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="keygate-metrics"' };
const NO_TOKEN = new AppError(
  "UNAUTHORIZED",
  "GET /metrics needs the metrics token: send Authorization: Bearer <the value of KEYGATE_METRICS_TOKEN>",
  undefined,
  undefined,
  CHALLENGE,
);
const WRONG_TOKEN = new AppError(
  "UNAUTHORIZED",
  "the bearer token is not this Keygate's metrics token: send Authorization: Bearer <the value of KEYGATE_METRICS_TOKEN> (a sign-in token or an API key does not read metrics)",
  undefined,
  undefined,
  CHALLENGE,
);

const digest = (value: string) => createHash("sha256").update(value).digest();

/** Whether `Authorization` carries the token, compared in constant time (digests of equal length). */
function authorized(header: string | undefined, expected: Buffer): AppError | null {
  if (header === undefined || !/^bearer\s/i.test(header)) return NO_TOKEN;
  const given = header.slice(7).trim();
  if (given === "") return NO_TOKEN;
  return timingSafeEqual(digest(given), expected) ? null : WRONG_TOKEN;
}

async function answer(kg: Keygate, reply: FastifyReply): Promise<string> {
  const text = await kg.metrics.scrape();
  reply.header("Cache-Control", "no-store").type(kg.metrics.contentType);
  return text;
}

/**
 * `GET /metrics` on Keygate's own port: with `KEYGATE_METRICS_TOKEN`, to a bearer of that
 * token; otherwise refused, saying what to set. Not in the OpenAPI documents (it is not JSON),
 * not call-logged (it is no external route), and it takes no key, so no key budget counts it.
 */
export function metricsRoute(app: App, kg: Keygate): void {
  const token = kg.config.metricsToken;
  const expected = token === null ? null : digest(token);
  const refusedWithout = kg.config.metricsAddress === null ? METRICS_OFF : ELSEWHERE;
  app.get("/metrics", { schema: { hide: true } }, async (request, reply) => {
    const refused =
      expected === null ? refusedWithout : authorized(request.headers.authorization, expected);
    if (refused !== null) return sendError(request, reply, refused, false);
    return answer(kg, reply);
  });
}

/**
 * The listener of `KEYGATE_METRICS_ADDRESS`: `GET /metrics` without a token (where it listens
 * is the protection, such as a private interface) and nothing else.
 */
export async function metricsListener(kg: Keygate): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, return503OnClosing: false });
  app.decorateRequest("errorCode", null);
  app.decorateRequest("errorMessage", null);
  app.get("/metrics", (_request, reply) => answer(kg, reply));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      request,
      reply,
      new AppError(
        "NOT_FOUND",
        `this listener (KEYGATE_METRICS_ADDRESS) serves only GET /metrics; the API is on Keygate's own port`,
      ),
      false,
    ),
  );
  app.setErrorHandler((err, request, reply) => {
    const known = toAppError(err as Error);
    if (known === null) kg.warn(`metrics listener: ${(err as Error).message}`);
    const internal = new AppError(
      "INTERNAL_ERROR",
      "the metrics could not be read; the server log has why",
    );
    return sendError(request, reply, known ?? internal, false);
  });
  await app.ready();
  return app;
}

/**
 * Starts the metrics listener on `KEYGATE_METRICS_ADDRESS` and answers its URL; an address
 * that is taken or not allowed is said in one sentence naming the setting.
 */
export async function listenForMetrics(
  listener: FastifyInstance,
  address: { host: string; port: number },
): Promise<string> {
  try {
    await listener.listen({ host: address.host, port: address.port });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === "EADDRINUSE"
        ? "is already in use"
        : code === "EACCES"
          ? "may not be used by this user (ports below 1024 need privileges)"
          : code === "EADDRNOTAVAIL" || code === "ENOTFOUND"
            ? "is no address of this machine"
            : `cannot be listened on (${(err as Error).message})`;
    throw new Error(
      `KEYGATE_METRICS_ADDRESS ${address.host}:${address.port} ${why}; set it to a free host:port of this machine`,
      { cause: err },
    );
  }
  const bound = listener.server.address();
  const port = typeof bound === "object" && bound !== null ? bound.port : address.port;
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `http://${host}:${port}/metrics`;
}
