import type { FastifyRequest } from "fastify";
import { AppError } from "../errors.js";
import { isWellFormedKey, KEY_PREFIX, TEST_KEY_PREFIX } from "../keys/format.js";
import { permissionName } from "../keys/permissions.js";
import { ROLE_LIMITS } from "../keys/service.js";
import { verbsOf } from "../keys/scopes.js";
import type { Verdict } from "../keys/verify.js";
import type { SignatureCode } from "../credentials/signature.js";
import { keyHeader } from "./errors.js";
import type { RouteGuard } from "./permissions.js";

const TOKEN_PATH = "/api/v1/external/oauth/token";

// The refusals that name nothing of the request are built once: they are what a flood of
// bad keys is answered with. AppError is read-only, so one instance serves every reply.
const NO_KEY = new AppError(
  "MISSING_API_KEY",
  "send your API key in the X-API-Key header; an admin mints keys under API keys (POST /api/api-keys)",
);
const NOT_A_KEY = new AppError(
  "INVALID_API_KEY",
  "X-API-Key is not a valid key: a key is pk_live_ followed by 32 lowercase hex characters " +
    "(pk_test_ for a test key), and must be copied whole from when it was minted",
);
const UNKNOWN_KEY = new AppError(
  "INVALID_API_KEY",
  "no key with this value exists on this Keygate: it may have been revoked and since purged, " +
    "minted on another Keygate or in another environment, or mistyped. Copy the key whole from " +
    "when it was minted; an admin can compare its first 12 characters with the prefixes under API keys",
);
const UNKNOWN_TEST_KEY = new AppError(
  "INVALID_API_KEY",
  "no test-environment key (pk_test_) with this value exists on this Keygate: it may have been " +
    "revoked and since purged, minted on another Keygate, or mistyped — or it is a live key whose " +
    "prefix was changed (a key works only as minted; live and test keys are different keys). Mint a " +
    "test key under API keys with the Test data switch on, or send the live key as it is",
);

let lastHeader = "";
let lastAnswer = NOT_A_KEY;

/**
 * What went wrong with a key header that is not a well-formed key, and how to send it.
 * A flood repeats one bad value: the last answer is kept for it.
 */
export function malformedKey(header: string): AppError {
  if (header !== lastHeader) {
    lastAnswer = diagnose(header);
    lastHeader = header;
  }
  return lastAnswer;
}

function diagnose(header: string): AppError {
  const invalid = (message: string) => new AppError("INVALID_API_KEY", message);
  const trimmed = header.trim();
  if (trimmed !== header && isWellFormedKey(trimmed)) {
    return invalid("X-API-Key has spaces or line breaks around the key; send the key alone");
  }
  const unquoted = trimmed.replace(/^["'`]|["'`]$/g, "");
  if (unquoted !== trimmed && isWellFormedKey(unquoted)) {
    return invalid("X-API-Key has quotes around the key; send the key alone, without quotes");
  }
  if (trimmed.includes(",") && trimmed.split(",").some((part) => isWellFormedKey(part.trim()))) {
    return invalid(
      "X-API-Key was sent more than once (the values arrive joined by commas): send the header once, with one key",
    );
  }
  if (/^pks_(?:live|test)_/.test(trimmed)) {
    return invalid(
      "X-API-Key holds a signing secret (pks_…): the secret signs requests and is never sent. Send the key (pk_live_… or pk_test_…) in X-API-Key, and sign with the secret",
    );
  }
  if (/^ey[\w-]*\.[\w-]*\.[\w-]*$/.test(trimmed)) {
    return invalid(
      "X-API-Key holds a JWT: an access token goes in Authorization: Bearer <token>, and X-API-Key takes the key itself",
    );
  }
  if (/^bearer\s/i.test(trimmed)) {
    return invalid(
      'X-API-Key takes the key alone: drop "Bearer " in front of it (Bearer belongs to the Authorization header of the /api surface)',
    );
  }
  if (isWellFormedKey(trimmed.toLowerCase())) {
    return invalid(
      "keys are lowercase, and this one arrived with capitals: send it exactly as it was minted",
    );
  }
  const prefix = trimmed.startsWith(TEST_KEY_PREFIX)
    ? TEST_KEY_PREFIX
    : trimmed.startsWith(KEY_PREFIX)
      ? KEY_PREFIX
      : null;
  if (prefix !== null && trimmed.length === 12) {
    return invalid(
      `only a key's 12-character display prefix was sent — that is how keys are listed. Send the whole key (40 characters), shown once when it was minted; if it is lost, mint a new one`,
    );
  }
  if (prefix !== null) {
    return invalid(
      `X-API-Key is ${trimmed.length} characters; a key is 40 (${prefix} and 32 lowercase hex characters): it was cut short or has extra characters. Copy it whole`,
    );
  }
  return NOT_A_KEY;
}

/** A request without X-API-Key: where the key was sent instead, if anywhere. */
export function missingKey(request: FastifyRequest): AppError {
  const missing = (message: string) => new AppError("MISSING_API_KEY", message);
  const auth = request.headers.authorization;
  if (typeof auth === "string") {
    const [scheme = "", value = ""] = auth.trim().split(/\s+/, 2);
    const bearer = scheme.toLowerCase() === "bearer";
    if (auth.includes("pk_live_") || auth.includes("pk_test_")) {
      const where = bearer
        ? "Authorization: Bearer"
        : `the Authorization header (scheme ${JSON.stringify(scheme.slice(0, 20))})`;
      return missing(
        `the key was sent in ${where}; the external surface reads a key from the X-API-Key header only: send X-API-Key: <your key>. Authorization takes an access token, as Bearer, from POST ${TOKEN_PATH}`,
      );
    }
    if (scheme.toLowerCase() === "basic") {
      return missing(
        `HTTP Basic is taken by the token endpoint only (POST ${TOKEN_PATH}: client_id the key's 12-character prefix, client_secret the key); elsewhere send X-API-Key: <your key>, or Authorization: Bearer <access token>`,
      );
    }
    if (bearer && /^ey/.test(value)) {
      return missing(
        `this is the external surface, which takes an API key in X-API-Key, or an access token from POST ${TOKEN_PATH}; a sign-in token from /api/auth/login works only on the /api surface`,
      );
    }
    if (bearer) {
      const empty = ["", "null", "undefined", "none", "false"].includes(value.toLowerCase());
      return missing(
        empty
          ? `Authorization: Bearer carries ${value === "" ? "nothing" : JSON.stringify(value)} where an access token belongs: whatever should have put the token there failed — check the answer of POST ${TOKEN_PATH}. Or send your API key in X-API-Key`
          : `Authorization: Bearer holds no access token of this Keygate: an access token is the JWT (it starts "ey") that POST ${TOKEN_PATH} answers. An API key goes in X-API-Key`,
      );
    }
  }
  const q = request.url.indexOf("?");
  if (
    q !== -1 &&
    /pk_(?:live|test)_|[?&](?:api_?key|apikey|key|token|access_token)=/i.test(request.url.slice(q))
  ) {
    return missing(
      "the key was sent in the query string, where proxies and servers log it; send it in the X-API-Key header instead (and consider rolling the key)",
    );
  }
  for (const name of ["api-key", "apikey", "x-apikey", "x-api-token", "x-auth-token", "api_key"]) {
    if (request.headers[name] !== undefined) {
      return missing(
        `the key was sent in the ${name} header; the header Keygate reads is X-API-Key`,
      );
    }
  }
  return NO_KEY;
}

/** Whether X-Forwarded-For was sent but not used for the client address. */
function forwardedIgnored(request: FastifyRequest): boolean {
  return (
    request.headers["x-forwarded-for"] !== undefined && request.ip === request.socket.remoteAddress
  );
}

/** The message for each refusal: what happened and what to do, never the key itself. */
export function refusal(
  v: Extract<Verdict, { ok: false }>,
  request: FastifyRequest,
  trustProxy: boolean | string[],
  guard: RouteGuard | null = null,
): AppError {
  const k = v.key;
  const ip = request.clientIp;
  const which = k ? `this key (${k.prefix}…)` : "this key";
  const successor = k?.replacedByPrefix
    ? ` It was rolled: switch to its replacement ${k.replacedByPrefix}….`
    : "";
  switch (v.code) {
    case "MISSING_API_KEY":
      return missingKey(request);
    case "INVALID_API_KEY": {
      const value = keyHeader(request) ?? "";
      if (v.unknown) return value.startsWith(TEST_KEY_PREFIX) ? UNKNOWN_TEST_KEY : UNKNOWN_KEY;
      return malformedKey(value);
    }
    case "API_KEY_REVOKED":
      return new AppError(
        "API_KEY_REVOKED",
        `${which} was revoked.${successor || " Ask an admin for a new key."}`,
      );
    case "API_KEY_EXPIRED": {
      const at = k?.expiresAt ? new Date(k.expiresAt).toISOString() : "its expiry";
      return new AppError(
        "API_KEY_EXPIRED",
        `${which} expired at ${at}.${successor || " Ask an admin to extend it or mint a new one."}`,
      );
    }
    case "INVALID_USER": {
      const owner = k ? `user "${k.ownerUsername}"` : "its owner";
      const fix =
        k?.ownerStanding === "deleted"
          ? "A deleted user cannot be restored: an admin must mint a key for another user and revoke this one"
          : `An admin can re-enable ${owner} (Users in the console, or PUT /api/users/${k?.ownerId ?? ":id"} with {"disabled": false}), or mint a key for another user`;
      const standing = k?.ownerStanding === "deleted" ? "deleted" : "disabled";
      return new AppError(
        "INVALID_USER",
        `the owner of ${which}, ${owner}, is ${standing}; keys act for their owner, so this key is refused. ${fix}`,
      );
    }
    case "IP_NOT_ALLOWED": {
      const where = k
        ? `Its owner or an admin can see and change its allowed_ips under API keys in the console (key ${k.prefix}…) or with PUT /api/api-keys/${k.id}`
        : "Its owner or an admin can change its allowed_ips";
      const proxy = !forwardedIgnored(request)
        ? ""
        : trustProxy === false
          ? ` X-Forwarded-For was sent but ignored, because KEYGATE_TRUST_PROXY is off: ${ip} is the address of whatever connected, such as a proxy. If Keygate runs behind a proxy, set KEYGATE_TRUST_PROXY to its address.`
          : ` X-Forwarded-For was sent but ignored, because ${ip} is not one of the proxies in KEYGATE_TRUST_PROXY.`;
      return new AppError(
        "IP_NOT_ALLOWED",
        `requests from ${ip} are not allowed for ${which}. ${where}.${proxy}`,
      );
    }
    case "RATE_LIMIT_EXCEEDED": {
      const wait = Math.max(1, Math.ceil((v.rate?.resetMs ?? 60_000) / 1000));
      if (v.throttled) {
        return new AppError(
          "RATE_LIMIT_EXCEEDED",
          `too many requests with invalid keys from ${ip}; retry in ${wait} s with a valid key`,
          undefined,
          wait,
        );
      }
      return new AppError(
        "RATE_LIMIT_EXCEEDED",
        `${which} allows ${v.rate?.limit} requests per minute and has used them; retry in ${wait} s, or ask an admin to raise its rate_limit_per_minute`,
        undefined,
        wait,
      );
    }
    case "QUOTA_EXCEEDED":
      return quotaExceeded(v, which);
    case "SCOPE_REQUIRED":
      return scopeRequired(v, request, which, guard);
    case "SIGNATURE_REQUIRED":
    case "SIGNATURE_INVALID":
    case "SIGNATURE_EXPIRED":
    case "SIGNATURE_REPLAYED":
      return signatureRefusal(v, which);
    case "INVALID_TOKEN":
    case "TOKEN_EXPIRED":
      // A JWT that is no access token of this kind (a sign-in token of /api) is no credential here.
      if (v.notAccessToken) return missingKey(request);
      return tokenRefusal(v);
    case "FORBIDDEN": {
      const needed = guard?.accepted ?? permissionName(v.need ?? 0);
      const role = k?.ownerRole ?? "reseller";
      return new AppError(
        "FORBIDDEN",
        `${which} has ${needed}, but its owner, ${role} "${k?.ownerUsername ?? "?"}", may not use it: a key never exceeds its owner's role, and ${ROLE_LIMITS[role]}. Use a key owned by an admin`,
      );
    }
  }
}

/**
 * A key whose quota is spent: its quota, when it refills (Retry-After: until then), and the fix.
 * Calls refused meanwhile spend nothing.
 */
function quotaExceeded(v: Extract<Verdict, { ok: false }>, which: string): AppError {
  const q = v.quota;
  const k = v.key;
  const period = k?.quota?.period === "month" ? "month" : "day";
  const resetAt = q?.resetAt ?? 0;
  const wait = Math.max(1, Math.ceil((q?.resetMs ?? 0) / 1000));
  const where = k ? ` (PUT /api/api-keys/${k.id} with "quota")` : "";
  return new AppError(
    "QUOTA_EXCEEDED",
    `${which} has used its quota of ${q?.limit === undefined ? "its calls" : q.limit === 1 ? "1 call" : `${q.limit} calls`} this ${period}; it refills at ${new Date(resetAt).toISOString()} (in ${wait} s). Wait until then, or ask its owner or an admin to raise the quota under API keys${where}`,
    undefined,
    wait,
  );
}

/**
 * A key without the permission its route needs: which permission, the ones the key has,
 * and the fix. A key of an old scope is named by its scope too, as before permissions.
 */
function scopeRequired(
  v: Extract<Verdict, { ok: false }>,
  request: FastifyRequest,
  which: string,
  guard: RouteGuard | null,
): AppError {
  const k = v.key;
  if (v.tokenScope !== undefined && guard !== null) {
    // The key may; the access token was exchanged for less.
    return new AppError(
      "SCOPE_REQUIRED",
      `this access token's scope (${v.tokenScope.join(" ") || "none"}) leaves out ${guard.accepted}, which ${guard.route} needs and its key (${k?.prefix ?? "?"}…) has: exchange the key for a token with scope=${guard.accepted} (or no scope, for all the key has) at POST ${TOKEN_PATH}`,
    );
  }
  const scope = k?.scopes ?? "read";
  const has = k?.permissions.join(", ") || "none";
  const where = k ? ` (PUT /api/api-keys/${k.id} with "permissions")` : "";
  if (guard === null) {
    // No such route: it would need the method's action on some resource, and the key has none.
    const what =
      scope === "custom" ? `permissions ${has}` : `scope ${scope} (${verbsOf(scope).join(", ")})`;
    return new AppError(
      "SCOPE_REQUIRED",
      `${which} has ${what}; ${request.method} needs ${v.scopeNeeded} on some resource, and this key has no ${v.scopeNeeded} permission — mint a ${v.scopeNeeded} key under API keys`,
    );
  }
  const needed = guard.accepted;
  if (scope !== "custom") {
    return new AppError(
      "SCOPE_REQUIRED",
      `${which} has scope ${scope} (${verbsOf(scope).join(", ")}; permissions ${has}); ${request.method} needs ${v.scopeNeeded} — ${guard.route} needs permission ${needed}: mint a ${v.scopeNeeded} key under API keys, or add ${needed} to this key's permissions${where}`,
    );
  }
  return new AppError(
    "SCOPE_REQUIRED",
    `${which} has permissions ${has}; ${guard.route} needs ${needed} — add ${needed} to this key's permissions under API keys${where}, or mint a key with it`,
  );
}

/**
 * A signature refusal: the verifier's own words (what differs, and how to sign), the base
 * the server computed on SIGNATURE_INVALID and the clock skew on SIGNATURE_EXPIRED.
 */
function signatureRefusal(v: Extract<Verdict, { ok: false }>, which: string): AppError {
  const code = v.code as SignatureCode;
  const found = v.signature;
  if (found === undefined) {
    // An unsigned call to a key that requires signing.
    const keyid = v.key?.prefix ?? "the key's prefix";
    return new AppError(
      code,
      `${which} requires signed requests, and this one has no Signature-Input and Signature headers. Sign each request with RFC 9421 hmac-sha256 using the key's signing secret: keyid "${keyid}", created and a fresh nonce, covering "@method" "@target-uri" (and "content-digest" when there is a body). The SDK signs by itself; \`keygate sign\` prints the headers for curl`,
    );
  }
  const details =
    found.base !== undefined
      ? [{ field: "signature_base", message: found.base }]
      : found.skewS !== undefined
        ? [{ field: "clock_skew_s", message: String(found.skewS) }]
        : undefined;
  return new AppError(code, found.message, details);
}

/**
 * A bearer token refused: why, and (RFC 6750 §3) a `WWW-Authenticate` challenge naming
 * `invalid_token`, so OAuth clients know to fetch a new one.
 */
function tokenRefusal(v: Extract<Verdict, { ok: false }>): AppError {
  const reason = v.tokenReason ?? "the access token is not valid";
  // A header value is ASCII: "…" becomes "...", anything else outside it is dropped.
  const quoted = reason
    .replace(/…/g, "...")
    .replace(/[^\x20-\x7e]/g, "")
    .replace(/["\\]/g, "'");
  return new AppError(v.code as "INVALID_TOKEN" | "TOKEN_EXPIRED", reason, undefined, undefined, {
    "WWW-Authenticate": `Bearer error="invalid_token", error_description="${quoted}"`,
  });
}
