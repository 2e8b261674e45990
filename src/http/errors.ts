import type { ErrorObject } from "ajv";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AppError, type ErrorCode, type FieldProblem } from "../errors.js";
import { type Environment, environmentOf } from "../keys/format.js";

export const EXTERNAL_PREFIX = "/api/v1/external";

export function isExternal(url: string): boolean {
  return (
    url.startsWith(EXTERNAL_PREFIX) &&
    (url.length === EXTERNAL_PREFIX.length || "/?".includes(url[EXTERNAL_PREFIX.length] ?? ""))
  );
}

/** The flat envelope of the `/api` surface. */
export function flatError(err: AppError) {
  return {
    success: false as const,
    message: err.message,
    code: err.code,
    ...(err.details ? { details: err.details } : {}),
  };
}

let stampSecond = -1;
let stampText = "";
/** ISO-8601 to the second, formatted once per second however many refusals share it. */
function stamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== stampSecond) {
    stampSecond = second;
    stampText = new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  return stampText;
}

/** The structured envelope of the external surface. */
export function structuredError(err: AppError, now?: Date) {
  return {
    success: false as const,
    error: {
      code: err.code,
      message: err.message,
      ...(err.details ? { details: err.details } : {}),
    },
    timestamp: stamp(now ? now.getTime() : Date.now()),
  };
}

// A key as sent, or percent-encoded, with at least five characters after its kind: what is
// left is the four-character display prefix that refusals name anyway. Long hex runs are a
// key's secret part or a key hash. Both patterns match one way only, so they run in linear time.
const KEY_SHAPED = /pk(?:_|%5f)(live|test)(?:_|%5f)([0-9a-z]{4})[0-9a-z%]+/gi;
const LONG_HEX = /[0-9a-f]{24,}/gi;
const MAYBE_SECRET = /pk(?:_|%5f)(?:live|test)|[0-9a-f]{24}/i;

/** Text with anything key-shaped cut to its display prefix and long hex runs elided. */
export function scrubText(text: string): string {
  if (!MAYBE_SECRET.test(text)) return text;
  return text.replace(KEY_SHAPED, "pk_$1_$2…").replace(LONG_HEX, "…");
}

/**
 * Text as an answer and the call log may hold it: scrubbed, and with NUL written as `\u0000`.
 * A field name can carry one (`?%00=1` names the field "\u0000"), and PostgreSQL text cannot:
 * the call-log batch holding such a message failed, and every call in it with it.
 */
export function shown(text: string): string {
  return scrubText(text).replaceAll("\u0000", "\\u0000");
}

/** The error as it may be shown: its message and details scrubbed of anything key-shaped. */
function scrubbed(err: AppError): AppError {
  const details = err.details?.map((d) => ({
    field: shown(d.field),
    message: shown(d.message),
  }));
  const message = shown(err.message);
  const same =
    message === err.message &&
    (details ?? []).every(
      (d, i) => d.field === err.details?.[i]?.field && d.message === err.details?.[i]?.message,
    );
  return same ? err : new AppError(err.code, message, details, err.retryAfterS, err.headers);
}

/**
 * Sends an AppError in the envelope of the surface the request came to. Every error answer
 * of both surfaces is built here, so this is where anything a client sent is kept out of it.
 */
export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  err: AppError,
  external = isExternal(request.url),
) {
  const safe = testKeyMiss(scrubbed(err), request, external);
  request.errorCode = safe.code;
  request.errorMessage = safe.message;
  if (safe.retryAfterS !== undefined) reply.header("Retry-After", String(safe.retryAfterS));
  if (safe.headers) reply.headers(safe.headers);
  // Also on answers no hook saw (router errors): the id ties a refusal to its log row.
  reply.header("X-Request-Id", request.id);
  if (external && !reply.hasHeader("X-Accepted-Permissions")) externalHeaders(request, reply);
  reply.code(safe.status).type("application/json; charset=utf-8");
  return reply.send(external ? structuredError(safe) : flatError(safe));
}

/**
 * A record a test key cannot find may well be live data: said on every such 404, found or
 * not in the other environment, so the answer tells nothing of live records.
 */
function testKeyMiss(err: AppError, request: FastifyRequest, external: boolean): AppError {
  if (!external || err.code !== "NOT_FOUND" || request.is404) return err;
  if (request.keyRecord?.environment !== "test") return err;
  return new AppError(
    err.code,
    `${err.message} — this is a test key (pk_test_…): it sees and changes test data only; live records need a live key`,
    err.details,
    err.retryAfterS,
    err.headers,
  );
}

const TRANSPORT: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ["PAYLOAD_TOO_LARGE", "request body is larger than 1 MiB"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    "UNSUPPORTED_MEDIA_TYPE",
    "send the body as JSON with Content-Type: application/json",
  ],
  FST_ERR_CTP_INVALID_JSON_BODY: ["VALIDATION_ERROR", "request body is not valid JSON"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [
    "VALIDATION_ERROR",
    "Content-Length does not match the body",
  ],
  FST_ERR_BAD_URL: [
    "VALIDATION_ERROR",
    "the URL's path is not valid percent-encoding (UTF-8 bytes as %XX); encode each path segment, for example with encodeURIComponent",
  ],
  FST_ERR_MAX_PARAM_LENGTH: [
    "URI_TOO_LONG",
    "a path segment is longer than 100 characters; no id or name here is that long",
  ],
  FST_ERR_ASYNC_CONSTRAINT: ["VALIDATION_ERROR", "the request could not be routed"],
};

/** Turns anything thrown while handling a request into an AppError fit to send. */
export function toAppError(err: FastifyError | Error): AppError | null {
  if (err instanceof AppError) return err;
  const fe = err as FastifyError & { validation?: ErrorObject[]; validationContext?: string };
  if (fe.validation) return validationError(fe.validation, fe.validationContext ?? "body");
  const mapped = fe.code ? TRANSPORT[fe.code] : undefined;
  if (mapped) return new AppError(mapped[0], mapped[1]);
  if (err instanceof SyntaxError && fe.statusCode === 400)
    return new AppError("VALIDATION_ERROR", "request body is not valid JSON");
  if (isDatabaseDown(err)) {
    return new AppError(
      "SERVICE_UNAVAILABLE",
      "the database is unreachable; retry shortly",
      undefined,
      5,
    );
  }
  if (typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError(
      "VALIDATION_ERROR",
      "the request could not be read; check its headers and body",
    );
  }
  return null;
}

const DB_DOWN = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "57P01",
  "57P03",
  "08006",
  "08001",
  "SQLITE_BUSY",
]);

export function isDatabaseDown(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (e?.code && DB_DOWN.has(e.code)) return true;
  return (
    typeof e?.message === "string" &&
    /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED/.test(
      e.message,
    )
  );
}

/** Ajv errors as one problem per field, worded for a person rather than a schema. */
export function validationError(errors: ErrorObject[], part: string): AppError {
  const problems: FieldProblem[] = [];
  const seen = new Set<string>();
  // A union of literals reports one `const` per branch: a field's allowed values are all of them.
  const allowedAt = new Map<string, unknown[]>();
  for (const e of errors) {
    if (e.keyword !== "const" && e.keyword !== "enum") continue;
    const values = (e.params.allowedValues as unknown[] | undefined) ?? [e.params.allowedValue];
    const list = allowedAt.get(e.instancePath) ?? [];
    for (const v of values) if (!list.includes(v)) list.push(v);
    allowedAt.set(e.instancePath, list);
  }
  for (const e of errors) {
    const p = describe(e, part, allowedAt.get(e.instancePath));
    const key = `${p.field}|${p.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(p);
  }
  // anyOf (nullable fields) reports each branch; keep the first problem per field.
  const perField = new Map<string, FieldProblem>();
  for (const p of problems) if (!perField.has(p.field)) perField.set(p.field, p);
  const list = [...perField.values()];
  const message = `invalid ${part}: ${list.map((p) => `${p.field} ${p.message}`).join("; ")}`;
  return new AppError("VALIDATION_ERROR", message, list);
}

function fieldName(path: string, part: string): string {
  const name = path
    .replace(/^\//, "")
    .replace(/\/(\d+)(?=\/|$)/g, "[$1]")
    .replace(/\//g, ".");
  return name || part;
}

function describe(e: ErrorObject, part: string, allowedHere?: unknown[]): FieldProblem {
  const base = fieldName(e.instancePath, part);
  const child = (name: string) => (e.instancePath ? `${base}.${name}` : name);
  const hint = (e.parentSchema as { description?: string } | undefined)?.description;
  switch (e.keyword) {
    case "required":
      return { field: child(String(e.params.missingProperty)), message: "is required" };
    case "additionalProperties":
      return { field: child(String(e.params.additionalProperty)), message: "is not a known field" };
    case "type":
      return { field: base, message: `must be ${article(String(e.params.type))}` };
    case "pattern":
    case "format":
      return { field: base, message: hint ? `must be ${hint}` : "has the wrong format" };
    case "minLength":
      return {
        field: base,
        message:
          e.params.limit === 1
            ? "must not be empty"
            : `must be at least ${e.params.limit} characters`,
      };
    case "maxLength":
      return { field: base, message: `must be at most ${e.params.limit} characters` };
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const s = e.parentSchema as { minimum?: number; maximum?: number };
      const range =
        s.minimum !== undefined && s.maximum !== undefined
          ? `from ${s.minimum} to ${s.maximum}`
          : `${e.params.comparison} ${e.params.limit}`;
      return { field: base, message: `must be ${range}` };
    }
    case "enum":
    case "const": {
      const allowed = allowedHere ??
        (e.params.allowedValues as unknown[] | undefined) ?? [e.params.allowedValue];
      return {
        field: base,
        message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")}`,
      };
    }
    case "anyOf":
      return { field: base, message: hint ? `must be ${hint}` : "has the wrong type" };
    case "maxItems":
      return { field: base, message: `must have at most ${e.params.limit} items` };
    default:
      return { field: base, message: e.message ?? "is invalid" };
  }
}

function article(type: string): string {
  const t = type.replace(/,/g, " or ");
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

/** A URL without its query string (which may hold search terms or a key), at most `cap` characters. */
export function pathOf(url: string, cap: number): string {
  const q = url.indexOf("?");
  const path = q === -1 ? url : url.slice(0, q);
  return path.length > cap ? path.slice(0, cap) : path;
}

/**
 * The headers every external answer carries, on one refused before its key was checked (the
 * client IP's budget, a server shutting down): the route's permission (`none` where no route
 * matched) and the environment the key's value names (`none` without one).
 */
function externalHeaders(request: FastifyRequest, reply: FastifyReply): void {
  const accepted = request.is404 ? undefined : request.routeOptions.config?.acceptedPermissions;
  reply.header("X-Accepted-Permissions", accepted ?? "none");
  reply.header("Keygate-Environment", namedEnvironment(request) ?? "none");
}

/** The request's `X-API-Key` as sent (the first, if repeated), or undefined. */
export function keyHeader(request: FastifyRequest): string | undefined {
  const raw = request.headers["x-api-key"];
  return Array.isArray(raw) ? raw[0] : raw;
}

/** The environment the request's key value names (`pk_test_…` → test), whatever its key; null if none. */
export function namedEnvironment(request: FastifyRequest): Environment | null {
  const value = keyHeader(request);
  return value === undefined ? null : environmentOf(value.trim());
}
