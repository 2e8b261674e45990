import swagger from "@fastify/swagger";
import swaggerUi, { type FastifySwaggerUiOptions } from "@fastify/swagger-ui";
import { Type } from "typebox";
import type { Keygate } from "../keygate.js";
import {
  documentTransform,
  externalDocument,
  type OpenApiDocument,
  routeTransform,
  TAGS,
} from "./openapi.js";
import { componentSchemas } from "./schemas.js";
import type { App } from "./types.js";

/** Keygate's mark (the console's icon: a key's bow and blade), for the reference's pages. */
const MARK =
  '<circle cx="5" cy="8" r="4" fill="#228be6"/><rect x="8" y="7" width="7" height="2" fill="#228be6"/>';
const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">${MARK}</svg>`;
const LOGO =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 112 16" width="168" height="24">' +
  `${MARK}<text x="20" y="12.5" font-family="system-ui, sans-serif" font-size="13" font-weight="600" fill="#fff">Keygate API</text></svg>`;
/** A stylesheet file (the page's policy allows no inline style): the top bar in Keygate's colours. */
const THEME_CSS =
  ".swagger-ui .topbar { background-color: #1c2733; }\n" +
  ".swagger-ui .topbar .download-url-wrapper .select-label { color: #fff; }\n";

const OpenApiDocumentSchema = Type.Object(
  {},
  { additionalProperties: true, description: "an OpenAPI 3.1 document" },
);

/**
 * The API reference: the OpenAPI document of both surfaces (`/openapi.json`), the external
 * surface's alone (`/openapi/external.json`), and a Swagger UI page for each (`/docs`,
 * `/docs/external`). Register before any route, so that every route is in the document.
 */
export async function registerReference(app: App, kg: Keygate, docsPolicy: string): Promise<void> {
  // The records and envelopes the route schemas refer to with `$ref: "<name>#"`.
  for (const schema of componentSchemas()) app.addSchema(schema);

  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Keygate API",
        version: kg.version,
        description:
          "Two surfaces: `/api` for people (Bearer access token from `POST /api/auth/login`) and " +
          "`/api/v1/external` for machines (`X-API-Key`). Errors name a `code` (one of `ErrorCode`) " +
          "and say what to do: `FlatError` on `/api`, `StructuredError` on the external surface. " +
          "Integrators: the external surface alone is at [/docs/external](/docs/external) " +
          "(document [/openapi/external.json](/openapi/external.json)).",
      },
      // Relative unless Keygate is told the URL browsers reach it at.
      servers: [
        kg.config.publicUrl === null
          ? { url: "/", description: "this Keygate" }
          : { url: kg.config.publicUrl, description: "this Keygate (KEYGATE_PUBLIC_URL)" },
      ],
      tags: TAGS,
      components: {
        securitySchemes: {
          bearer: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "JWT",
            description: "An access token from `POST /api/auth/login`; the `/api` surface",
          },
          apiKey: {
            type: "apiKey",
            in: "header",
            name: "X-API-Key",
            description: "An API key, `pk_live_` and 32 hex characters; the external surface",
          },
          accessToken: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "JWT",
            description:
              "An access token from `POST /api/v1/external/oauth/token`, instead of X-API-Key on the external surface: the same checks as its key, within the token's scope",
          },
          oauthClient: {
            type: "http",
            scheme: "basic",
            description:
              "The OAuth endpoints' client authentication: client_id = the key's prefix, client_secret = the key (or both as form fields)",
          },
        },
      },
    },
    // Named schemas keep their names: `#/components/schemas/Subscriber`, not `def-3`.
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === "string" ? json.$id : `def-${i}`,
    },
    transform: routeTransform,
    transformObject: documentTransform as never,
  });

  let external: OpenApiDocument | null = null;
  const externalOnly = () =>
    (external ??= externalDocument(app.swagger() as unknown as OpenApiDocument));

  const page = (routePrefix: string, title: string): FastifySwaggerUiOptions => ({
    routePrefix,
    staticCSP: docsPolicy,
    logo: { type: "image/svg+xml", content: LOGO, href: routePrefix, target: "_self" },
    theme: {
      title,
      favicon: [
        {
          filename: "favicon.svg",
          rel: "icon",
          sizes: "any",
          type: "image/svg+xml",
          content: FAVICON,
        },
      ],
      css: [{ filename: "keygate.css", content: THEME_CSS }],
    },
    uiConfig: { deepLinking: true, displayOperationId: true, docExpansion: "list" },
  });
  // Each page in a scope of its own: the plugin decorates the instance it is registered on.
  await app.register(async (scope) => {
    await scope.register(swaggerUi, page("/docs", "Keygate API reference"));
  });
  await app.register(async (scope) => {
    await scope.register(swaggerUi, {
      ...page("/docs/external", "Keygate external API reference"),
      transformSpecification: () => externalOnly(),
      transformSpecificationClone: false,
    });
  });

  const documentRoute = (summary: string) => ({
    config: { public: true },
    schema: { tags: ["reference"], summary, response: { 200: OpenApiDocumentSchema } },
  });
  app.get(
    "/openapi.json",
    documentRoute("This OpenAPI document: both surfaces"),
    async () => app.swagger() as never,
  );
  app.get(
    "/openapi/external.json",
    documentRoute("The external surface's OpenAPI document, for integrators"),
    async () => externalOnly() as never,
  );
}
