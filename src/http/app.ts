import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Ajv } from "ajv";
import Fastify, {
  type FastifyReply,
  type FastifyRequest,
  type HookHandlerDoneFunction,
  LogController,
  type preValidationHookHandler,
} from "fastify";
import { AppError } from "../errors.js";
import type { Keygate } from "../keygate.js";
import { normalizeClientIp } from "../keys/ip.js";
import type { RateDecision } from "../ratelimit/limiter.js";
import { EXTERNAL_PREFIX, scrubText, sendError, toAppError } from "./errors.js";
import { externalSurface, healthRoute } from "./external.js";
import { addFormats } from "./formats.js";
import { countRequests, metricsRoute } from "./metrics.js";
import { exposureRoutes } from "./routes/leaks.js";
import { oauthRoutes, wellKnownRoutes } from "./routes/oauth.js";
import { boundedJsonParser, findNul, hasContent } from "./input.js";
import { looksExternal, RouteTable } from "./routing.js";
import { clientErrorHandler, coalescedWrites, frameworkErrors, requestId } from "./transport.js";
import { jwtSurface } from "./jwt.js";
import { registerReference } from "./reference.js";
import { securityPolicy } from "./security.js";
import type { App } from "./types.js";

export type { App } from "./types.js";

const MINUTE = 60_000;

const SHUTTING_DOWN = new AppError(
  "SERVICE_UNAVAILABLE",
  "this Keygate instance is shutting down; retry in a moment (another instance, or this one once it is back)",
  undefined,
  1,
);

/** An error as a log line shows it (type, message, stack, own fields), scrubbed. */
function serializeError(e: Error): LoggedError {
  const own = e instanceof Error ? Object.fromEntries(Object.entries(e)) : { value: e };
  return scrubLogged({
    ...own,
    type: e?.constructor?.name ?? typeof e,
    message: String(e?.message ?? ""),
    stack: String(e?.stack ?? ""),
  }) as LoggedError;
}
type LoggedError = { [key: string]: unknown; type: string; message: string; stack: string };

/** A serialized error with every string in it scrubbed of anything key-shaped. */
function scrubLogged(value: unknown): unknown {
  if (typeof value === "string") return scrubText(value);
  if (Array.isArray(value)) return value.map(scrubLogged);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubLogged(v)]));
}

/** Bodies are taken as sent (no type coercion, unknown fields refused); query and path strings are coerced. */
function validators() {
  const common = {
    allErrors: true,
    verbose: true,
    strict: false,
    useDefaults: true,
    removeAdditional: false,
  } as const;
  const body = addFormats(new Ajv({ ...common, coerceTypes: false }));
  const text = addFormats(new Ajv({ ...common, coerceTypes: "array" }));
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => {
    return (httpPart === "body" ? body : text).compile(schema);
  };
}

/** Where the built console lives (`npm run build:console` writes it). */
export const CONSOLE_DIR = fileURLToPath(new URL("../../console/dist", import.meta.url));

/** A 415 names the Content-Type that came, and curl's form encoding for what it is. */
function withMediaType(err: AppError, request: FastifyRequest): AppError {
  if (err.code !== "UNSUPPORTED_MEDIA_TYPE") return err;
  const sent = String(request.headers["content-type"] ?? "").slice(0, 100);
  const form = sent.toLowerCase().startsWith("application/x-www-form-urlencoded")
    ? ", which is what curl -d sends without -H 'Content-Type: application/json'"
    : "";
  const came = sent === "" ? "none was sent" : `this request sent ${JSON.stringify(sent)}${form}`;
  return new AppError(
    err.code,
    `${err.message}: ${came}`,
    err.details,
    err.retryAfterS,
    err.headers,
  );
}

export async function buildApp(
  kg: Keygate,
  opts: {
    logger?: boolean;
    consoleDir?: string;
    /** Where log lines go (standard output by default); tests read them here. */
    logStream?: { write(line: string): void };
  } = {},
): Promise<App> {
  // Computed first: the router's own errors (frameworkErrors) carry the headers too.
  const security = await securityPolicy(kg.config);
  const app = Fastify({
    logger:
      opts.logger === false
        ? false
        : {
            level: kg.config.logLevel,
            redact: ["req.headers.authorization", "req.headers['x-api-key']", "req.headers.cookie"],
            // An error can quote what it was given (a driver's message, a value): nothing
            // key-shaped reaches a log line.
            serializers: { err: serializeError },
            ...(opts.logStream ? { stream: opts.logStream } : {}),
          },
    // Requests that arrive while the server drains are answered in the surface's envelope
    // by the hook below, not by the framework's own 503.
    return503OnClosing: false,
    frameworkErrors: security.frameworkErrors(frameworkErrors(kg)),
    clientErrorHandler: clientErrorHandler(kg),
    // Call logs record external requests; per-request server log lines would only repeat them.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger: lines that concern a request name its id themselves.
    childLoggerFactory: (logger) => logger,
    trustProxy: kg.config.trustProxy,
    // `/subscribers/` is `/subscribers`: a trailing slash is how many clients join paths.
    routerOptions: { ignoreTrailingSlash: true },
    // A client's own X-Request-Id is kept when it is safe to echo; otherwise one is made.
    requestIdHeader: false,
    genReqId: requestId,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  kg.warn = (msg) => app.log.warn(msg);
  kg.info = (msg) => app.log.info(msg);

  // Before any route or plugin, so that every response carries them.
  app.addHook("onSend", security.onSend);
  // Then each answer waits for the end of its turn, to be written with the others of it.
  if (kg.config.coalesceWrites)
    app.addHook(
      "onSend",
      coalescedWrites((err) => app.log.error({ err }, "an answer could not be written")),
    );
  app.setValidatorCompiler(validators());
  // Every route's methods and path, to tell a wrong method (405) or a near miss from nothing;
  // first, so that no route registered later is missed.
  const routes = new RouteTable();
  app.addHook("onRoute", (route) => routes.add(route.method, route.url));
  // Each route's request counts and latencies, for /metrics; also before any route.
  countRequests(app, kg);
  // Only JSON bodies are read; anything else is a clear 415 rather than a string to validate.
  app.removeContentTypeParser("text/plain");
  boundedJsonParser(app);
  app.decorateRequest("principal", null);
  app.decorateRequest("errorCode", null);
  app.decorateRequest("errorMessage", null);
  app.decorateRequest("clientIp", "");
  app.decorateRequest("keyRecord", null);
  app.decorateRequest("ipRate", null);
  app.decorateRequest("signaturePending", null);
  app.decorateRequest("rawBody", null);
  app.decorateRequest("credential", "key");

  // The OpenAPI documents and their pages (/openapi.json, /docs): before any route.
  await registerReference(app, kg, security.docsPolicy);

  // Every surface: the per-IP budget, before any other work. A callback hook: with the
  // limit off or kept in memory it costs no promise.
  let closing = false;
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.addHook("onRequest", (request, reply, done) => {
    request.clientIp = normalizeClientIp(request.ip);
    reply.header("X-Request-Id", request.id);
    if (closing) {
      reply.header("Connection", "close");
      return done(SHUTTING_DOWN);
    }
    const limit = kg.config.ipRateLimit;
    if (limit === 0) return done();
    const decision = kg.limiter.hit(`ip:${request.clientIp}`, limit, MINUTE, kg.clock());
    if (decision instanceof Promise) decision.then((d) => ipBudget(request, reply, d, done), done);
    else ipBudget(request, reply, decision, done);
  });
  const ipBudget = (
    request: FastifyRequest,
    reply: FastifyReply,
    decision: RateDecision,
    done: HookHandlerDoneFunction,
  ): void => {
    request.ipRate = decision;
    if (decision.allowed) return done();
    const wait = Math.max(1, Math.ceil(decision.resetMs / 1000));
    reply.header("RateLimit-Limit", decision.limit);
    reply.header("RateLimit-Remaining", 0);
    reply.header("RateLimit-Reset", wait);
    done(
      new AppError(
        "RATE_LIMIT_EXCEEDED",
        `too many requests from ${request.clientIp}: the limit is ${decision.limit} per minute per client IP; retry in ${wait} s`,
        undefined,
        wait,
      ),
    );
  };

  app.setErrorHandler((err, request, reply) => {
    const known = toAppError(err as Error);
    if (known) return sendError(request, reply, withMediaType(known, request));
    request.log.error(
      { err, reqId: request.id, url: request.routeOptions.url, method: request.method },
      "unhandled error",
    );
    return sendError(
      request,
      reply,
      new AppError(
        "INTERNAL_ERROR",
        `internal error; the server log has the details (request ${request.id})`,
      ),
    );
  });

  // Input hygiene, added per route where there is input to check, so a route that takes
  // none (whoami) runs no hook for it.
  app.addHook("onRoute", (route) => {
    const schema = route.schema as { body?: unknown; querystring?: unknown } | undefined;
    const hasBody = schema?.body !== undefined;
    if (!hasBody && schema?.querystring === undefined && !/[:*]/.test(route.url)) return;
    const hooks = route.preValidation;
    const own: preValidationHookHandler = (request, _reply, done) => {
      // A request with no body at all reads as `{}`, so routes whose fields are all optional
      // take a bare POST; a body that is present (even JSON null) is validated as sent.
      if (
        hasBody &&
        (request.body === undefined || (request.body === null && !hasContent(request)))
      )
        request.body = {};
      // PostgreSQL text cannot hold NUL, and no field here has a use for it: refuse it up front.
      // Only a body, or a URL with an encoded NUL, can carry one.
      const nul =
        findNul(request.body, "") ??
        (request.url.includes("%00")
          ? (findNul(request.query, "") ?? findNul(request.params, ""))
          : null);
      if (nul === null) return done();
      const message = "must not contain the NUL character (\\u0000)";
      done(new AppError("VALIDATION_ERROR", `${nul} ${message}`, [{ field: nul, message }]));
    };
    route.preValidation = hooks === undefined ? own : [own, ...[hooks].flat()];
  });

  const consoleDir = opts.consoleDir ?? CONSOLE_DIR;
  const hasConsole = existsSync(join(consoleDir, "index.html"));
  const consolePage = hasConsole ? security.consolePage(consoleDir, app.log) : null;
  if (hasConsole) {
    // The console's built files; any other non-API GET falls back to its index.html.
    await app.register(fastifyStatic, {
      root: consoleDir,
      prefix: "/",
      index: false,
      wildcard: false,
      // index.html only through consolePage, which puts a fresh nonce in it.
      allowedPath: (path) => path !== "/index.html",
    });
  }
  app.setNotFoundHandler((request, reply) => {
    // An API path (or one aimed at the external surface under an old prefix) is answered
    // in an envelope; anything else a browser asks for is the console's page.
    const api =
      request.url === "/api" || request.url.startsWith("/api/") || looksExternal(request.url);
    if (consolePage && !api && (request.method === "GET" || request.method === "HEAD")) {
      return consolePage(reply);
    }
    return sendError(request, reply, routes.miss(request), looksExternal(request.url));
  });

  await app.register(jwtSurface(kg), { prefix: "/api" });
  await app.register(healthRoute(kg), { prefix: EXTERNAL_PREFIX });
  await app.register(exposureRoutes(kg), { prefix: EXTERNAL_PREFIX });
  await app.register(oauthRoutes(kg), { prefix: `${EXTERNAL_PREFIX}/oauth` });
  await app.register(wellKnownRoutes(kg));
  metricsRoute(app, kg);
  await app.register(externalSurface(kg, routes), { prefix: EXTERNAL_PREFIX });

  if (!hasConsole) {
    app.get("/", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/docs"));
  }
  return app as unknown as App;
}
