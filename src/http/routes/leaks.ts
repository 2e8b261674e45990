import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { AppError } from "../../errors.js";
import type { Keygate } from "../../keygate.js";
import { logCall } from "../external.js";
import { jsonDepth, MAX_JSON_DEPTH } from "../input.js";
import { NO_PERMISSION } from "../permissions.js";
import { component, errorResponses, Ok } from "../schemas.js";
import type { App } from "../types.js";

const MINUTE = 60_000;

// Inline, not a component: bodies are validated by the app's own compiler, which resolves no $ref.
const LeakReport = Type.Object(
  {
    token: Type.String({ maxLength: 4096, description: "the value found" }),
    type: Type.String({ maxLength: 256, description: "the secret type the scanner matched" }),
    url: Type.Optional(Type.String({ maxLength: 8192, description: "where it was found" })),
    source: Type.Optional(
      Type.String({ maxLength: 256, description: "what kind of place: content, commit, issue…" }),
    ),
  },
  {
    additionalProperties: true,
    description: "One match, in GitHub's secret-scanning partner format",
  },
);

const LeakLabel = component(
  "LeakLabel",
  Type.Object(
    {
      token_raw: Type.String({ description: "the token as reported" }),
      token_type: Type.String({ description: "the type as reported" }),
      label: Type.Union([Type.Literal("true_positive"), Type.Literal("false_positive")], {
        description:
          "true_positive: a real Keygate key (now revoked, or flagged); false_positive: no key has this value",
      }),
    },
    { description: "Keygate's verdict on one reported token" },
  ),
);

const ExposedResult = component(
  "ExposedKeyRevocation",
  Type.Object(
    {
      key_prefix: Type.String({ description: "the key's display prefix" }),
      status: Type.Union([Type.Literal("revoked"), Type.Literal("already_revoked")]),
    },
    { description: "What became of the key presented" },
  ),
);

const SignatureHeaders = Type.Object({
  "github-public-key-identifier": Type.Optional(
    Type.String({ maxLength: 256, description: "the identifier of the key that signed the body" }),
  ),
  "github-public-key-signature": Type.Optional(
    Type.String({
      maxLength: 1024,
      description: "base64 DER ECDSA P-256 signature (SHA-256) over the raw body",
    }),
  ),
});

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Keys found exposed (SPEC §9): leak reports signed by a secret scanner, and revocation by
 * whoever holds a key. Beside the key-checked scope, like the health check: no key needed,
 * each client IP has its own small budget, and the raw body is kept for the signature.
 */
export function exposureRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;

    // The report's signature covers the body exactly as sent: keep its bytes, parse as usual.
    const parse = app.getDefaultJsonParser("error", "error");
    app.removeContentTypeParser("application/json");
    app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
      const raw = body as Buffer;
      request.rawBody = raw;
      const text = raw.toString("utf8");
      if (text.length === 0) return done(null, undefined);
      if (jsonDepth(text, MAX_JSON_DEPTH) === -1)
        return done(
          new AppError(
            "VALIDATION_ERROR",
            `request body nests deeper than ${MAX_JSON_DEPTH} levels`,
          ),
          undefined,
        );
      parse(request, text, done);
    });

    // External calls, so in the call log like every other (no key of the caller's: a null key id).
    app.addHook("onResponse", (request, reply, done) => {
      logCall(kg, request, reply);
      done();
    });
    app.addHook("onRequest", async (request, reply) => {
      reply.header("Keygate-Environment", "none");
      reply.header("X-Accepted-Permissions", NO_PERMISSION);
      const d = await kg.limiter.hit(
        `exposed:${request.clientIp}`,
        kg.config.leakRateLimit,
        MINUTE,
        kg.clock(),
      );
      const wait = Math.max(1, Math.ceil(d.resetMs / 1000));
      reply.header("RateLimit-Limit", d.limit);
      reply.header("RateLimit-Remaining", d.remaining);
      reply.header("RateLimit-Reset", wait);
      if (!d.allowed)
        throw new AppError(
          "RATE_LIMIT_EXCEEDED",
          `too many requests from ${request.clientIp} to this route: the limit is ${d.limit} per minute per client IP (KEYGATE_LEAK_RATE_LIMIT); retry in ${wait} s`,
          undefined,
          wait,
        );
    });

    app.post(
      "/leaks",
      {
        config: { public: true },
        schema: {
          tags: ["leaks"],
          summary:
            "A secret scanner reports where it found keys (GitHub's secret-scanning partner format); each real key is revoked, or flagged",
          description:
            "Signed by the scanner: `Github-Public-Key-Signature` is the base64 DER ECDSA P-256 signature (SHA-256) over the raw body, made with the key `Github-Public-Key-Identifier` names, one of `KEYGATE_LEAK_REPORTER_KEYS`. A real, unrevoked key is revoked at once (or, with `KEYGATE_LEAK_ACTION=flag`, left working), audited as `key.leaked` and shown as a console alert naming where it was found. Rate-limited per client IP (`KEYGATE_LEAK_RATE_LIMIT`).",
          headers: SignatureHeaders,
          body: Type.Array(LeakReport, { maxItems: 1000 }),
          response: {
            200: Type.Array(LeakLabel),
            ...errorResponses(true, [401, 404]),
          },
        },
        preValidation: (request, _reply, done) => {
          try {
            kg.leaks.authenticate(
              request.rawBody ?? Buffer.alloc(0),
              header(request, "github-public-key-identifier"),
              header(request, "github-public-key-signature"),
            );
            done();
          } catch (err) {
            done(err as Error);
          }
        },
      },
      async (request) =>
        kg.leaks.report(request.body, {
          ip: request.clientIp,
          reporter: header(request, "github-public-key-identifier") ?? "",
        }),
    );

    app.post(
      "/keys/revoke-exposed",
      {
        config: { public: true },
        schema: {
          tags: ["leaks"],
          summary:
            "Revoke a key you found exposed, by presenting it: anyone holding a key may end it",
          description:
            'Send the key as `{"key": "pk_live_…"}` (or in `X-API-Key`). It is revoked at once on every instance, audited as `key.leaked`, and its owner sees a console alert; the answer names only its display prefix. Rate-limited per client IP (`KEYGATE_LEAK_RATE_LIMIT`).',
          body: Type.Object(
            { key: Type.Optional(Type.String({ maxLength: 128, description: "the key found" })) },
            { additionalProperties: false },
          ),
          response: { 200: Ok(ExposedResult), ...errorResponses(true, [404]) },
        },
      },
      async (request) => {
        const value = request.body.key ?? header(request, "x-api-key");
        if (value === undefined || value.trim() === "")
          throw new AppError(
            "VALIDATION_ERROR",
            'send the key found as {"key": "pk_live_…"} (or in X-API-Key)',
            [{ field: "key", message: "is required" }],
          );
        return {
          success: true as const,
          data: await kg.leaks.revokeExposed(value.trim(), request.clientIp),
        };
      },
    );
  };
}
