import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { JWKS_PATH, METADATA_PATH } from "../../credentials/tokens.js";
import { AppError, type ErrorCode } from "../../errors.js";
import type { Keygate } from "../../keygate.js";
import { isWellFormedKey } from "../../keys/format.js";
import { ACTIONS, covers, normalize, parsePermissions, RESOURCES } from "../../keys/permissions.js";
import type { KeyRecord } from "../../keys/verify.js";
import { shown } from "../errors.js";
import { admit, logCall } from "../external.js";
import { formParser } from "../input.js";
import { component, errorResponses } from "../schemas.js";
import type { App } from "../types.js";

/**
 * OAuth 2.0 for keys (SPEC §8): the client-credentials grant (RFC 6749 §4.4) exchanging a
 * key for a short-lived JWT access token (RFC 9068), introspection (RFC 7662) and revocation
 * (RFC 7009). Clients are keys: `client_id` is the key's prefix, `client_secret` the key.
 * Errors are RFC 6749 §5.2 bodies, not the structured envelope, so OAuth libraries read them.
 */

/** Every permission a scope may name: what `scopes_supported` lists. */
const ALL_SCOPES = [...RESOURCES, "*"].flatMap((r) => ACTIONS.map((a) => `${r}:${a}`));

type OAuthFailure = {
  status: number;
  error: string;
  description: string;
  headers?: Record<string, string>;
  /**
   * What the call log keeps as the error code, when the key's own check refused it
   * (API_KEY_REVOKED, …): so the key's log and last refusal say why, and the call is not
   * counted as admitted. Otherwise the OAuth error is kept.
   */
  logCode?: ErrorCode;
};

const BASIC_CHALLENGE = { "WWW-Authenticate": 'Basic realm="keygate", charset="UTF-8"' };

function oauthError(reply: FastifyReply, request: FastifyRequest, f: OAuthFailure) {
  const description = shown(f.description);
  request.errorCode = f.logCode ?? f.error;
  request.errorMessage = description;
  reply.code(f.status).header("Cache-Control", "no-store").header("Pragma", "no-cache");
  if (f.headers) reply.headers(f.headers);
  return reply.send({ error: f.error, error_description: description });
}

const invalidRequest = (description: string): OAuthFailure => ({
  status: 400,
  error: "invalid_request",
  description,
});

type Fields = Record<string, string | string[] | undefined>;

/** A single-valued form field; given twice, an error (RFC 6749 §3.2). */
function field(fields: Fields, name: string): string | undefined | OAuthFailure {
  const v = fields[name];
  if (Array.isArray(v)) return invalidRequest(`${name} was given more than once; send it once`);
  return v === "" ? undefined : v;
}

const isFailure = (v: unknown): v is OAuthFailure =>
  typeof v === "object" && v !== null && "error" in v;

/** `Authorization: Basic` credentials, form-decoded as RFC 6749 §2.3.1 says; null if absent. */
function basicCredentials(
  request: FastifyRequest,
): { id: string; secret: string } | null | OAuthFailure {
  const header = request.headers.authorization;
  if (header === undefined) return null;
  const [scheme, value] = header.split(" ", 2);
  if (scheme?.toLowerCase() !== "basic" || value === undefined) {
    return {
      status: 401,
      error: "invalid_client",
      description:
        "client authentication is HTTP Basic (client_id = the key's prefix, client_secret = the key) or client_id and client_secret in the form body",
      headers: BASIC_CHALLENGE,
    };
  }
  const decoded = Buffer.from(value, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon === -1) {
    return {
      status: 401,
      error: "invalid_client",
      description: "the Basic credentials are not client_id:client_secret in base64",
      headers: BASIC_CHALLENGE,
    };
  }
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, " "));
    } catch {
      return s;
    }
  };
  return { id: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
}

/**
 * Authenticates the client: the key, through the same checks as any call (revoked,
 * expired, owner, IP, budget), then `client_id` against its prefix.
 */
async function authenticate(
  kg: Keygate,
  request: FastifyRequest,
  reply: FastifyReply,
  fields: Fields,
): Promise<KeyRecord | OAuthFailure> {
  const basic = basicCredentials(request);
  if (isFailure(basic)) return basic;
  const bodyId = field(fields, "client_id");
  const bodySecret = field(fields, "client_secret");
  if (isFailure(bodyId)) return bodyId;
  if (isFailure(bodySecret)) return bodySecret;
  if (basic !== null && (bodyId !== undefined || bodySecret !== undefined)) {
    return invalidRequest(
      "the client authenticated twice (HTTP Basic and client_id/client_secret in the body); use one",
    );
  }
  const id = basic?.id ?? bodyId;
  const secret = basic?.secret || bodySecret;
  if (secret === undefined && id !== undefined && isWellFormedKey(id)) {
    return {
      status: 401,
      error: "invalid_client",
      description: `the key was sent as client_id, with no client_secret: client_id is the key's 12-character prefix (${id.slice(0, 12)}) and client_secret the whole key, as in curl -u "\${KEY:0:12}:$KEY"`,
      headers: BASIC_CHALLENGE,
    };
  }
  if (secret === undefined) {
    return {
      status: 401,
      error: "invalid_client",
      description:
        "no client credentials: send HTTP Basic with client_id = the key's prefix and client_secret = the key, or both as form fields",
      headers: BASIC_CHALLENGE,
    };
  }
  const verdict = await kg.verifier.verify({
    header: secret,
    ip: request.clientIp,
    method: "POST",
    need: 0,
    now: kg.clock(),
  });
  // The key's record (and budget headers) on the request, for the call log.
  const refused = admit(kg, request, reply, verdict);
  kg.metrics.verified(refused === null ? "ok" : refused.code);
  if (refused !== null) {
    if (refused.code === "SIGNATURE_REQUIRED") {
      return {
        status: 400,
        error: "unauthorized_client",
        description: `this key (${verdict.key?.prefix ?? "?"}…) requires signed requests, and a bearer token would let calls through unsigned: sign each call with the key's signing secret instead, or set its signing to optional`,
        logCode: refused.code,
      };
    }
    if (refused.code === "RATE_LIMIT_EXCEEDED") {
      return {
        status: 429,
        error: "temporarily_unavailable",
        description: refused.message,
        headers: { "Retry-After": String(refused.retryAfterS ?? 60) },
        logCode: refused.code,
      };
    }
    return {
      status: 401,
      error: "invalid_client",
      description: `client_secret: ${refused.message}`,
      headers: BASIC_CHALLENGE,
      logCode: refused.code,
    };
  }
  const key = verdict.key as KeyRecord;
  if (id !== undefined && id !== key.prefix) {
    return {
      status: 401,
      error: "invalid_client",
      description: `client_id is the key's 12-character prefix, ${key.prefix}, not "${id.slice(0, 40)}"`,
      headers: BASIC_CHALLENGE,
    };
  }
  return key;
}

/** Who the tokens say issued them: KEYGATE_PUBLIC_URL, else the address the client used. */
function issuerOf(kg: Keygate, request: FastifyRequest): string {
  return kg.config.publicUrl ?? `${request.protocol}://${request.host}`;
}

const TokenResponse = component(
  "TokenResponse",
  Type.Object(
    {
      access_token: Type.String({ description: "a JWT access token (RFC 9068, ES256)" }),
      token_type: Type.Literal("Bearer"),
      expires_in: Type.Integer({ description: "seconds until it expires" }),
      scope: Type.String({ description: "the permissions granted, space-separated" }),
    },
    { description: "RFC 6749 §5.1" },
  ),
);
const OAuthError = component(
  "OAuthError",
  Type.Object(
    {
      error: Type.String({
        description:
          "invalid_request, invalid_client, invalid_scope, unsupported_grant_type, unauthorized_client or temporarily_unavailable",
      }),
      error_description: Type.String(),
    },
    { description: "RFC 6749 §5.2" },
  ),
);
const Introspection = component(
  "TokenIntrospection",
  Type.Object(
    {
      active: Type.Boolean(),
      scope: Type.Optional(Type.String()),
      client_id: Type.Optional(Type.String()),
      token_type: Type.Optional(Type.String()),
      exp: Type.Optional(Type.Integer()),
      iat: Type.Optional(Type.Integer()),
      sub: Type.Optional(Type.String()),
      aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
      iss: Type.Optional(Type.String()),
      jti: Type.Optional(Type.String()),
    },
    { description: "RFC 7662 §2.2: only active is present for a token that is not active" },
  ),
);

const formBody = (fields: Record<string, string>) =>
  Type.Object(
    Object.fromEntries(
      Object.entries(fields).map(([k, d]) => [
        k,
        Type.Optional(Type.String({ maxLength: 8192, description: d })),
      ]),
    ),
  );
const CLIENT_FIELDS = {
  client_id: "the key's prefix, when not sent with HTTP Basic",
  client_secret: "the key, when not sent with HTTP Basic",
};
const errorsOf = {
  400: OAuthError,
  401: OAuthError,
  429: OAuthError,
  503: OAuthError,
};

/** `/api/v1/external/oauth/*`: the token, introspection and revocation endpoints. */
export function oauthRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    formParser(app);
    app.addHook("onResponse", (request, reply, done) => {
      logCall(kg, request, reply);
      done();
    });
    // Whatever goes wrong before a handler (a body that is not a form, too large, …) is
    // answered as OAuth clients expect.
    app.setErrorHandler((err, request, reply) => {
      const status = (err as { statusCode?: number }).statusCode ?? 500;
      if (status >= 500 && !(err instanceof AppError)) {
        request.log.error({ err }, "oauth endpoint failed");
        return oauthError(reply, request, {
          status: 503,
          error: "temporarily_unavailable",
          description: `the token service failed; retry shortly (request ${request.id})`,
        });
      }
      const message = err instanceof AppError ? err.message : (err as Error).message;
      return oauthError(reply, request, invalidRequest(message));
    });
    const common = {
      tags: ["oauth"],
      consumes: ["application/x-www-form-urlencoded"],
    };
    const fieldsOf = (request: FastifyRequest): Fields | OAuthFailure => {
      const type = request.headers["content-type"] ?? "";
      if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
        return invalidRequest(
          "send the parameters form-encoded, with Content-Type: application/x-www-form-urlencoded (RFC 6749 §4.4.2)",
        );
      }
      return (request.body ?? {}) as Fields;
    };

    /** Introspection and revocation: the form's `token`, from an authenticated client. */
    const tokenOfClient = async (
      request: FastifyRequest,
      reply: FastifyReply,
    ): Promise<{ key: KeyRecord; token: string } | OAuthFailure> => {
      reply.header("Cache-Control", "no-store").header("Pragma", "no-cache");
      const fields = fieldsOf(request);
      if (isFailure(fields)) return fields;
      const token = field(fields, "token");
      if (isFailure(token)) return token;
      const key = await authenticate(kg, request, reply, fields);
      if (isFailure(key)) return key;
      if (token === undefined) return invalidRequest("token is required");
      return { key, token };
    };

    app.post(
      "/token",
      {
        attachValidation: true,
        schema: {
          ...common,
          summary:
            "Exchange a key for an access token (OAuth 2.0 client credentials): HTTP Basic with client_id = the key's prefix and client_secret = the key",
          security: [{ oauthClient: [] }],
          body: formBody({
            grant_type: "client_credentials",
            scope:
              "optional: space-separated permissions, a subset of the key's (e.g. subscribers:read usage:read); all of the key's when absent",
            ...CLIENT_FIELDS,
          }),
          response: { 200: TokenResponse, ...errorsOf },
        },
      },
      async (request, reply) => {
        reply.header("Cache-Control", "no-store").header("Pragma", "no-cache");
        const fields = fieldsOf(request);
        if (isFailure(fields)) return oauthError(reply, request, fields);
        const grant = field(fields, "grant_type");
        if (isFailure(grant)) return oauthError(reply, request, grant);
        if (grant === undefined)
          return oauthError(
            reply,
            request,
            invalidRequest("grant_type is required: send grant_type=client_credentials"),
          );
        if (grant !== "client_credentials") {
          return oauthError(reply, request, {
            status: 400,
            error: "unsupported_grant_type",
            description: `grant_type "${grant.slice(0, 40)}" is not supported; Keygate issues tokens for client_credentials only`,
          });
        }
        const scope = field(fields, "scope");
        if (isFailure(scope)) return oauthError(reply, request, scope);
        const key = await authenticate(kg, request, reply, fields);
        if (isFailure(key)) return oauthError(reply, request, key);

        let granted = [...key.permissions];
        if (scope !== undefined) {
          const asked = scope.split(" ").filter(Boolean);
          const parsed = parsePermissions(asked);
          if (!parsed.ok || asked.length === 0) {
            const bad = parsed.ok ? scope : asked[parsed.problems[0]?.index ?? 0];
            return oauthError(reply, request, {
              status: 400,
              error: "invalid_scope",
              description: `scope "${(bad ?? "").slice(0, 60)}" is not a permission: scopes are the key's permissions, resource:action (e.g. subscribers:read), space-separated`,
            });
          }
          if (!covers(key.grants, parsed.mask)) {
            return oauthError(reply, request, {
              status: 400,
              error: "invalid_scope",
              description: `scope asks for more than the key has: its permissions are ${key.permissions.join(" ") || "none"}`,
            });
          }
          granted = normalize(parsed.mask);
        }
        const issuer = issuerOf(kg, request);
        let issued;
        try {
          issued = await kg.tokens.issue({
            issuer,
            audience: `${issuer}/api/v1/external`,
            subject: key.prefix,
            clientId: key.prefix,
            keyId: key.id,
            scope: granted,
            environment: key.environment,
          });
        } catch (err) {
          request.log.error({ err }, "issuing an access token failed");
          return oauthError(reply, request, {
            status: 503,
            error: "temporarily_unavailable",
            description:
              "Keygate cannot sign tokens right now: its token-signing key does not open (was KEYGATE_MASTER_KEY changed or removed?). Restore the master key they were sealed under, or run keygate rotate-master-key",
          });
        }
        await kg.tokenLedger.issued(key.id, kg.now().toISOString());
        return {
          access_token: issued.token,
          token_type: "Bearer" as const,
          expires_in: issued.expiresIn,
          scope: granted.join(" "),
        };
      },
    );

    app.post(
      "/introspect",
      {
        attachValidation: true,
        schema: {
          ...common,
          summary:
            "Whether an access token issued for the calling key is active, and what it grants (RFC 7662)",
          security: [{ oauthClient: [] }],
          body: formBody({
            token: "the access token",
            token_type_hint: "ignored",
            ...CLIENT_FIELDS,
          }),
          response: { 200: Introspection, ...errorsOf },
        },
      },
      async (request, reply) => {
        const asked = await tokenOfClient(request, reply);
        if (isFailure(asked)) return oauthError(reply, request, asked);
        const { key, token } = asked;
        const v = await kg.tokens.verify(token);
        // Active only for the caller's own tokens, while the key would still accept them.
        if (
          !v.ok ||
          v.claims.kgk !== key.id ||
          key.revokedTokens?.has(v.claims.jti) === true ||
          key.replacedByPrefix !== null
        )
          return { active: false };
        const c = v.claims;
        return {
          active: true,
          scope: c.scope,
          client_id: c.client_id,
          token_type: "Bearer",
          exp: c.exp,
          iat: c.iat,
          sub: c.sub,
          aud: typeof c.aud === "string" ? c.aud : [...c.aud],
          iss: c.iss,
          jti: c.jti,
        };
      },
    );

    app.post(
      "/revoke",
      {
        attachValidation: true,
        schema: {
          ...common,
          summary:
            "Revoke an access token issued for the calling key (RFC 7009): refused from the next request on, on every instance",
          security: [{ oauthClient: [] }],
          body: formBody({
            token: "the access token",
            token_type_hint: "ignored",
            ...CLIENT_FIELDS,
          }),
          response: { 200: Type.Object({}), ...errorsOf },
        },
      },
      async (request, reply) => {
        const asked = await tokenOfClient(request, reply);
        if (isFailure(asked)) return oauthError(reply, request, asked);
        const { key, token } = asked;
        const v = await kg.tokens.verify(token);
        // RFC 7009 §2.2: a token that is invalid, expired or another client's is answered 200 too.
        if (v.ok && v.claims.kgk === key.id) {
          await kg.tokenLedger.revoke(v.claims.jti, key.id, v.claims.exp * 1000);
          await kg.evictKeyId(key.id);
        }
        return {};
      },
    );
  };
}

/** `/.well-known/jwks.json` and `/.well-known/oauth-authorization-server` (RFC 8414). */
export function wellKnownRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.get(
      JWKS_PATH,
      {
        config: { public: true },
        schema: {
          tags: ["oauth"],
          summary: "The public keys access tokens are signed with (JWK Set, RFC 7517)",
          response: {
            200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
            ...errorResponses(false, [429]),
          },
        },
      },
      async (_request, reply) => {
        reply.header("Cache-Control", "public, max-age=300");
        return kg.tokens.jwks();
      },
    );
    app.get(
      METADATA_PATH,
      {
        config: { public: true },
        schema: {
          tags: ["oauth"],
          summary: "OAuth 2.0 authorization server metadata (RFC 8414)",
          response: {
            200: Type.Record(Type.String(), Type.Unknown()),
            ...errorResponses(false, [429]),
          },
        },
      },
      async (request, reply) => {
        reply.header("Cache-Control", "public, max-age=300");
        return kg.tokens.metadata(issuerOf(kg, request), ALL_SCOPES);
      },
    );
  };
}
