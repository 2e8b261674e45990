import type { components } from "./api-types.js";

/**
 * Refusals as typed errors. Every answer that is not 2xx becomes a `KeygateError` (or one of
 * its subclasses, one per family of codes) carrying the envelope's `error.code`, `message` and
 * `details`, the `X-Request-Id` that ties it to the key's call log, and `Retry-After`.
 */

/** The codes of the external document's catalogue, the token endpoint's, and the SDK's own. */
export type ErrorCode =
  | components["schemas"]["ErrorCode"]
  // The token endpoint answers in RFC 6749 §5.2's words.
  | "invalid_client"
  | "invalid_scope"
  | "invalid_request"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "temporarily_unavailable"
  // Anything not in the envelope: a proxy's page, a body that is not JSON.
  | "UNEXPECTED_RESPONSE";

/** What kind of refusal: one per subclass, for a `switch`. */
export type ErrorFamily =
  | "authentication"
  | "signature"
  | "permission"
  | "rate_limit"
  | "validation"
  | "not_found"
  | "conflict"
  | "unavailable"
  | "token_exchange"
  | "server"
  | "other";

export type KeygateErrorInit = {
  status: number;
  code: ErrorCode | (string & {});
  message: string;
  details?: unknown;
  requestId?: string | null;
  retryAfter?: number | null;
  method?: string;
  url?: string;
};

export class KeygateError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The envelope's `error.code` (or RFC 6749's `error` on the token endpoint). */
  readonly code: ErrorCode | (string & {});
  /** The envelope's `error.details`: field problems, or what a signature refusal adds. */
  readonly details: unknown;
  /** The answer's `X-Request-Id`; quote it when asking an admin to find the call. */
  readonly requestId: string | null;
  /** `Retry-After` in seconds, when the answer said. */
  readonly retryAfter: number | null;
  /** The request refused, e.g. `POST https://keygate.example.com/api/v1/external/subscribers`. */
  readonly request: string;
  readonly family: ErrorFamily = "other";

  constructor(init: KeygateErrorInit) {
    super(init.message);
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.details = init.details;
    this.requestId = init.requestId ?? null;
    this.retryAfter = init.retryAfter ?? null;
    this.request = init.method && init.url ? `${init.method} ${init.url}` : "";
  }
}

/** The key or token is missing, malformed, unknown, revoked, expired, or its owner is gone. */
export class AuthenticationError extends KeygateError {
  override readonly family = "authentication";
}

/** A signed request was refused: `SIGNATURE_REQUIRED`, `_INVALID`, `_EXPIRED`, `_REPLAYED`. */
export class SignatureError extends KeygateError {
  override readonly family = "signature";
  /** On SIGNATURE_INVALID: the signature base the server computed, to diff against your own. */
  get signatureBase(): string | null {
    const v = detail(this.details, "signature_base");
    return typeof v === "string" ? v : null;
  }
  /** On SIGNATURE_EXPIRED: seconds `created` was ahead (+) of or behind (−) the server clock. */
  get skew(): number | null {
    const v = detail(this.details, "clock_skew_s") ?? detail(this.details, "skew_s");
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    return typeof n === "number" && Number.isFinite(n) ? n : null;
  }
}

/**
 * One named value of `details`: Keygate sends them as field problems
 * (`[{ field: "signature_base", message: "…" }]`); an object keyed by name is read too.
 */
function detail(details: unknown, name: string): unknown {
  if (Array.isArray(details)) {
    const found = (details as { field?: unknown; message?: unknown }[]).find(
      (d) => d?.field === name,
    );
    return found?.message;
  }
  if (details !== null && typeof details === "object")
    return (details as Record<string, unknown>)[name];
  return undefined;
}

/** The key may not do this: `SCOPE_REQUIRED`, `IP_NOT_ALLOWED`, `FORBIDDEN`. */
export class PermissionError extends KeygateError {
  override readonly family = "permission";
}

/** 429: a budget is spent; `retryAfter` says when to try again. */
export class RateLimitError extends KeygateError {
  override readonly family = "rate_limit";
}

/** 400/413/414/415/431: the request itself is wrong; `details` lists each field. */
export class ValidationError extends KeygateError {
  override readonly family = "validation";
  /** `details` as field problems (`[{ field, message }]`), or empty. */
  get fields(): components["schemas"]["FieldProblem"][] {
    return Array.isArray(this.details)
      ? (this.details as components["schemas"]["FieldProblem"][])
      : [];
  }
}

export class NotFoundError extends KeygateError {
  override readonly family = "not_found";
}

export class ConflictError extends KeygateError {
  override readonly family = "conflict";
}

/** 503: shutting down, or the database is down; `retryAfter` says when to try again. */
export class UnavailableError extends KeygateError {
  override readonly family = "unavailable";
}

/** The token endpoint refused (RFC 6749 §5.2: `invalid_client`, `invalid_scope`, ...). */
export class TokenExchangeError extends KeygateError {
  override readonly family = "token_exchange";
}

/** 5xx other than 503, or an answer that is not Keygate's envelope. */
export class ServerError extends KeygateError {
  override readonly family = "server";
}

const BY_CODE: Record<string, new (init: KeygateErrorInit) => KeygateError> = {
  MISSING_API_KEY: AuthenticationError,
  INVALID_API_KEY: AuthenticationError,
  API_KEY_REVOKED: AuthenticationError,
  API_KEY_EXPIRED: AuthenticationError,
  INVALID_USER: AuthenticationError,
  INVALID_TOKEN: AuthenticationError,
  TOKEN_EXPIRED: AuthenticationError,
  UNAUTHORIZED: AuthenticationError,
  SIGNATURE_REQUIRED: SignatureError,
  SIGNATURE_INVALID: SignatureError,
  SIGNATURE_EXPIRED: SignatureError,
  SIGNATURE_REPLAYED: SignatureError,
  IP_NOT_ALLOWED: PermissionError,
  SCOPE_REQUIRED: PermissionError,
  FORBIDDEN: PermissionError,
  RATE_LIMIT_EXCEEDED: RateLimitError,
  VALIDATION_ERROR: ValidationError,
  PAYLOAD_TOO_LARGE: ValidationError,
  URI_TOO_LONG: ValidationError,
  UNSUPPORTED_MEDIA_TYPE: ValidationError,
  HEADERS_TOO_LARGE: ValidationError,
  NOT_FOUND: NotFoundError,
  CONFLICT: ConflictError,
  SERVICE_UNAVAILABLE: UnavailableError,
  INTERNAL_ERROR: ServerError,
};

/** The subclass for a code, else for the status. */
function classOf(status: number, code: string): new (init: KeygateErrorInit) => KeygateError {
  const known = BY_CODE[code];
  if (known) return known;
  if (/^[a-z_]+$/.test(code)) return TokenExchangeError;
  if (status === 401) return AuthenticationError;
  if (status === 403) return PermissionError;
  if (status === 404) return NotFoundError;
  if (status === 409) return ConflictError;
  if (status === 429) return RateLimitError;
  if (status === 503) return UnavailableError;
  if (status >= 500) return ServerError;
  if (status >= 400 && status < 500) return ValidationError;
  return KeygateError;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) in seconds: delta-seconds or an HTTP date; null when
 * absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * The error for a refused answer. Reads the external surface's envelope
 * `{success:false, error:{code, message, details?}}`, the token endpoint's
 * `{error, error_description}`, or anything else as `UNEXPECTED_RESPONSE`.
 */
export async function errorFrom(
  res: Response,
  request: { method: string; url: string },
): Promise<KeygateError> {
  const text = await res.text().catch(() => "");
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: reported below
  }
  const common = {
    status: res.status,
    requestId: res.headers.get("x-request-id"),
    retryAfter: parseRetryAfter(res.headers.get("retry-after")),
    method: request.method,
    url: request.url,
  };
  const envelope = body as {
    error?: { code?: unknown; message?: unknown; details?: unknown } | string;
    error_description?: unknown;
  } | null;
  if (envelope && typeof envelope.error === "object" && typeof envelope.error.code === "string") {
    const { code, message, details } = envelope.error;
    const Class = classOf(res.status, code);
    return new Class({
      ...common,
      code,
      message: typeof message === "string" ? message : code,
      details,
    });
  }
  if (envelope && typeof envelope.error === "string") {
    const description = envelope.error_description;
    return new TokenExchangeError({
      ...common,
      code: envelope.error,
      message: typeof description === "string" ? description : envelope.error,
    });
  }
  const Class = res.status >= 500 ? ServerError : KeygateError;
  return new Class({
    ...common,
    code: "UNEXPECTED_RESPONSE",
    message: `${request.method} ${request.url} answered ${res.status} without Keygate's error envelope${text ? `: ${text.slice(0, 200)}` : ""}`,
  });
}
