import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Ajv } from "ajv";
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type HookHandlerDoneFunction,
  LogController,
  type preValidationHookHandler,
} from "fastify";
import type { Principal } from "../auth/principal.js";
import { AppError } from "../errors.js";
import type { Keygate } from "../keygate.js";
import { normalizeClientIp } from "../keys/ip.js";
import type { KeyRecord } from "../keys/verify.js";
import type { RateDecision } from "../ratelimit/limiter.js";
import { EXTERNAL_PREFIX, isExternal, sendError, toAppError } from "./errors.js";
import { externalSurface, healthRoute } from "./external.js";
import { jwtSurface } from "./jwt.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
    errorCode: string | null;
    clientIp: string;
    /** The verified key behind an external request. */
    keyRecord: KeyRecord | null;
    /** This request's per-IP budget, when the IP limit is on. */
    ipRate: RateDecision | null;
  }
  interface FastifyContextConfig {
    /** Reachable without credentials. */
    public?: boolean;
  }
}

export type App = FastifyInstance<
  import("node:http").Server,
  import("node:http").IncomingMessage,
  import("node:http").ServerResponse,
  import("fastify").FastifyBaseLogger,
  TypeBoxTypeProvider
>;

const MINUTE = 60_000;

/** Bodies are taken as sent (no type coercion, unknown fields refused); query and path strings are coerced. */
function validators() {
  const common = {
    allErrors: true,
    verbose: true,
    strict: false,
    useDefaults: true,
    removeAdditional: false,
  } as const;
  const body = new Ajv({ ...common, coerceTypes: false });
  const text = new Ajv({ ...common, coerceTypes: "array" });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => {
    return (httpPart === "body" ? body : text).compile(schema);
  };
}

/** Where the built console lives (`npm run build:console` writes it). */
export const CONSOLE_DIR = fileURLToPath(new URL("../../console/dist", import.meta.url));

export async function buildApp(
  kg: Keygate,
  opts: { logger?: boolean; consoleDir?: string } = {},
): Promise<App> {
  const app = Fastify({
    logger:
      opts.logger === false
        ? false
        : {
            level: kg.config.logLevel,
            redact: ["req.headers.authorization", "req.headers['x-api-key']", "req.headers.cookie"],
          },
    // Call logs record external requests; per-request server log lines would only repeat them.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger: lines that concern a request name its id themselves.
    childLoggerFactory: (logger) => logger,
    trustProxy: kg.config.trustProxy,
    bodyLimit: 1024 * 1024,
    ajv: { customOptions: { allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  kg.warn = (msg) => app.log.warn(msg);
  kg.info = (msg) => app.log.info(msg);

  app.setValidatorCompiler(validators());
  // Only JSON bodies are read; anything else is a clear 415 rather than a string to validate.
  app.removeContentTypeParser("text/plain");
  app.decorateRequest("principal", null);
  app.decorateRequest("errorCode", null);
  app.decorateRequest("clientIp", "");
  app.decorateRequest("keyRecord", null);
  app.decorateRequest("ipRate", null);

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Keygate API",
        version: kg.version,
        description:
          "Two surfaces: `/api` for people (Bearer access token from `POST /api/auth/login`) and " +
          "`/api/v1/external` for machines (`X-API-Key`). Errors name a `code` and say what to do.",
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs", staticCSP: true });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  // Every surface: the per-IP budget, before any other work. A callback hook: with the
  // limit off or kept in memory it costs no promise.
  app.addHook("onRequest", (request, reply, done) => {
    request.clientIp = normalizeClientIp(request.ip);
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
    if (known) return sendError(request, reply, known);
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
  if (hasConsole) {
    // The console's built files; any other non-API GET falls back to its index.html.
    await app.register(fastifyStatic, {
      root: consoleDir,
      prefix: "/",
      index: false,
      wildcard: false,
    });
  }
  app.setNotFoundHandler((request, reply) => {
    const api = request.url === "/api" || request.url.startsWith("/api/");
    if (hasConsole && !api && (request.method === "GET" || request.method === "HEAD")) {
      return reply.type("text/html; charset=utf-8").sendFile("index.html");
    }
    return sendError(request, reply, routeNotFound(request));
  });

  await app.register(jwtSurface(kg), { prefix: "/api" });
  await app.register(healthRoute(kg), { prefix: EXTERNAL_PREFIX });
  await app.register(externalSurface(kg), { prefix: EXTERNAL_PREFIX });

  if (!hasConsole) {
    app.get("/", { schema: { hide: true } }, async (_req, reply) => reply.redirect("/docs"));
  }
  return app as unknown as App;
}

/** The path of the first string (or key) holding U+0000, or null. */
function findNul(value: unknown, path: string): string | null {
  if (typeof value === "string") return value.includes("\u0000") ? path || "value" : null;
  if (value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value)) {
    const at = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    if (k.includes("\u0000")) return at;
    const found = findNul(v, at);
    if (found !== null) return found;
  }
  return null;
}

function hasContent(request: FastifyRequest): boolean {
  const length = request.headers["content-length"];
  return (
    (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined
  );
}

export function routeNotFound(request: FastifyRequest): AppError {
  const path = request.url.split("?")[0]?.slice(0, 200) ?? "";
  const where = isExternal(request.url) ? "the external surface" : "Keygate";
  return new AppError(
    "NOT_FOUND",
    `${where} has no route ${request.method} ${path}; the full list is at /docs (machine-readable: /openapi.json)`,
  );
}
