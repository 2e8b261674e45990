/**
 * The one catalogue of error codes and their HTTP statuses. Both surfaces, the docs and
 * the tests read it from here; the envelopes are built in `http/errors.ts`.
 */
export const ERROR_STATUS = {
  MISSING_API_KEY: 401,
  INVALID_API_KEY: 401,
  API_KEY_REVOKED: 401,
  API_KEY_EXPIRED: 401,
  INVALID_USER: 401,
  IP_NOT_ALLOWED: 403,
  RATE_LIMIT_EXCEEDED: 429,
  /** The key's quota of admitted calls for its day or month is spent; Retry-After says until its refill. */
  QUOTA_EXCEEDED: 429,
  SCOPE_REQUIRED: 403,
  /** The key requires signed requests (RFC 9421) and this one carries no signature. */
  SIGNATURE_REQUIRED: 401,
  /** The signature does not verify, or covers too little; details give the server's base. */
  SIGNATURE_INVALID: 401,
  /** The signature's `created` is outside ±300 s of the server clock (or it has expired). */
  SIGNATURE_EXPIRED: 401,
  /** The signature's nonce was already used with this key. */
  SIGNATURE_REPLAYED: 401,
  /** The bearer token is not one this Keygate issued and still honours. */
  INVALID_TOKEN: 401,
  /** The bearer token's lifetime is over: exchange the key for a new one. */
  TOKEN_EXPIRED: 401,
  VALIDATION_ERROR: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAUTHORIZED: 401,
  INVALID_CREDENTIALS: 401,
  FORBIDDEN: 403,
  METHOD_NOT_ALLOWED: 405,
  /** Sign-in: the password was right, and this account also needs its second factor. */
  TWO_FACTOR_REQUIRED: 401,
  /** Sign-in: the second-factor code (or recovery code) was wrong or already used. */
  INVALID_TWO_FACTOR_CODE: 401,
  /** KEYGATE_REQUIRE_2FA: turn on two-factor sign-in before managing keys. */
  TWO_FACTOR_ENROLMENT_REQUIRED: 403,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/** One problem with one input field, e.g. `{ field: "body.amount", message: "must be > 0" }`. */
export type FieldProblem = { field: string; message: string };

/** A failure the client can act on. Its message is safe to show: it never holds a secret. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldProblem[],
    /** Seconds the client should wait, for 429 and 503. */
    readonly retryAfterS?: number,
    /** Headers the answer carries, such as `Allow` on a 405. */
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    // A client error is answered, never logged with a trace: skip capturing one, which is
    // most of the cost of refusing a bad key.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = "AppError";
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}

export function notFound(what: string): AppError {
  return new AppError("NOT_FOUND", `${what} not found`);
}

export function invalid(field: string, message: string): AppError {
  return new AppError("VALIDATION_ERROR", `${field} ${message}`, [{ field, message }]);
}

export function forbidden(message: string): AppError {
  return new AppError("FORBIDDEN", message);
}

export function conflict(message: string): AppError {
  return new AppError("CONFLICT", message);
}
