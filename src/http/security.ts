import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import helmet, { type FastifyHelmetOptions } from "@fastify/helmet";
import Fastify, {
  type FastifyReply,
  type FastifyServerOptions,
  type onSendHookHandler,
} from "fastify";
import type { Config } from "../config.js";

/**
 * What the console's build writes wherever a per-response nonce belongs in index.html
 * (`html.cspNonce` in console/vite.config.ts): the `<meta property="csp-nonce">` Mantine
 * reads its style nonce from, and the nonce attributes of its script and style tags.
 */
export const NONCE_PLACEHOLDER = "__KEYGATE_CSP_NONCE__";

/**
 * The one inline <style> Swagger UI renders: inside the SVG of its logo, in its top bar
 * (`.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}`). Allowed by its
 * hash; the browser test fails if an upgrade of Swagger UI changes it.
 */
const SWAGGER_LOGO_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='";

/** Headers helmet sets only for documents; a JSON body, script or image has no use for them. */
const DOCUMENT_ONLY = {
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xFrameOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
} as const;

/** helmet's options for each kind of response (docs/decisions/0011-security-headers.md). */
function policies(https: boolean) {
  const common = {
    referrerPolicy: { policy: "no-referrer" as const },
    // The browser ignores it over plain HTTP; sent only when Keygate is reached over HTTPS.
    strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginResourcePolicy: { policy: "same-origin" as const },
    xFrameOptions: { action: "deny" as const },
  };
  // Same-origin everything; no inline script anywhere; inline <style> only with this
  // response's nonce (Mantine's CSS variables and responsive style props). Style attributes
  // stay blocked: React and Mantine set styles through the CSSOM, which CSP does not govern.
  const documentDirectives = {
    defaultSrc: ["'self'"],
    baseUri: ["'self'"],
    connectSrc: ["'self'"],
    fontSrc: ["'self'", "data:"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    imgSrc: ["'self'", "data:"],
    objectSrc: ["'none'"],
    scriptSrc: ["'self'"],
    scriptSrcAttr: ["'none'"],
    styleSrc: ["'self'", `'nonce-${NONCE_PLACEHOLDER}'`],
    // Over plain HTTP on a LAN address it would send the console's own requests to https://.
    upgradeInsecureRequests: https ? [] : null,
  };
  const document: FastifyHelmetOptions = {
    ...common,
    contentSecurityPolicy: { useDefaults: false, directives: documentDirectives },
  };
  const docs: FastifyHelmetOptions = {
    ...common,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { ...documentDirectives, styleSrc: ["'self'", SWAGGER_LOGO_STYLE] },
    },
  };
  const resource: FastifyHelmetOptions = {
    ...common,
    ...DOCUMENT_ONLY,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
  };
  return { document, docs, resource };
}

type Headers = Record<string, string>;
const computed = new Map<string, Promise<Headers>>();

/**
 * The headers @fastify/helmet sets for these options, taken once from a private instance.
 * The plugin rebuilds helmet's middleware on every request, in two onRequest hooks (one of
 * them async); the values never change, so Keygate sets them itself in one cheap hook.
 */
function helmetHeaders(options: FastifyHelmetOptions): Promise<Headers> {
  const key = JSON.stringify(options);
  let found = computed.get(key);
  if (found === undefined) {
    found = (async () => {
      const probe = Fastify();
      await probe.register(helmet, options);
      probe.get("/", (_request, reply) => reply.code(204).send());
      const res = await probe.inject({ method: "GET", url: "/" });
      await probe.close();
      const out: Headers = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (!["date", "connection", "keep-alive", "content-length"].includes(name))
          out[name] = String(value);
      }
      return out;
    })();
    computed.set(key, found);
  }
  return found;
}

const CSP = "content-security-policy";

type FrameworkErrors = FastifyServerOptions["frameworkErrors"];

export type Security = {
  /** Sets the headers on every response that goes through Fastify's hooks. */
  onSend: onSendHookHandler;
  /** The router's own errors (a bad URL) bypass the hooks: this sets the headers first. */
  frameworkErrors(handler: FrameworkErrors): FrameworkErrors;
  /** Swagger UI's Content-Security-Policy (its `staticCSP`). */
  docsPolicy: string;
  /**
   * Serves the console's index.html, read now, with a fresh nonce in its CSP and wherever
   * the build put the placeholder. Never cached: the nonce is for this response only.
   */
  consolePage(
    consoleDir: string,
    log: { warn(msg: string): void },
  ): (reply: FastifyReply) => FastifyReply;
};

const isApi = (url: string) =>
  url.startsWith("/api") && (url.length === 4 || url[4] === "/" || url[4] === "?");

/**
 * Security headers on every response, errors and 404s included, set in one onSend hook.
 * Add `onSend` before any route or plugin: Fastify gives a plugin the hooks that exist
 * when it is registered.
 */
export async function securityPolicy(config: Config): Promise<Security> {
  const https = config.publicUrl?.startsWith("https:") ?? false;
  const options = policies(https);
  const [document, docs, resource] = await Promise.all([
    helmetHeaders(options.document),
    helmetHeaders(options.docs),
    helmetHeaders(options.resource),
  ]);
  const documentCsp = document[CSP] ?? "";
  const { [CSP]: _csp, ...documentRest } = document;
  // An HTML page other than the console's index (none today) gets the policy with no nonce.
  const plainDocumentCsp = documentCsp.replace(` 'nonce-${NONCE_PLACEHOLDER}'`, "");
  // Both surfaces carry tokens, keys and subscriber data: nothing under /api is stored.
  const api: Headers = { ...resource, "cache-control": "no-store" };
  const [before, after] = documentCsp.split(NONCE_PLACEHOLDER) as [string, string];

  return {
    onSend(request, reply, payload, done) {
      if (isApi(request.url)) {
        reply.headers(api);
      } else {
        const type = reply.getHeader("content-type");
        if (typeof type === "string" && type.startsWith("text/html")) {
          // The console's index sets its own, nonced policy; Swagger UI sets its own after this.
          if (!reply.hasHeader(CSP)) reply.header(CSP, plainDocumentCsp);
          reply.headers(documentRest);
        } else {
          reply.headers(resource);
        }
      }
      done(null, payload);
    },
    frameworkErrors(handler) {
      if (handler === undefined) return undefined;
      return (error, request, reply) => {
        // Answered in JSON, whatever the path.
        reply.headers(isApi(request.url) ? api : resource);
        handler(error, request, reply);
      };
    },
    docsPolicy: docs[CSP] ?? "",
    consolePage(consoleDir, log) {
      const html = readFileSync(join(consoleDir, "index.html"), "utf8");
      const parts = html.split(NONCE_PLACEHOLDER);
      if (parts.length === 1) {
        log.warn(
          `${join(consoleDir, "index.html")} has no CSP nonce placeholder: the console's styles will be blocked; rebuild it with npm run build:console`,
        );
      }
      return (reply) => {
        const nonce = randomBytes(16).toString("base64");
        return reply
          .code(200)
          .header(CSP, before + nonce + after)
          .header("cache-control", "no-store")
          .type("text/html; charset=utf-8")
          .send(parts.join(nonce));
      };
    },
  };
}
