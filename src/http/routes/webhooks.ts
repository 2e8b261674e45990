import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Principal } from "../../auth/principal.js";
import { EVENT_TYPES } from "../../events/catalogue.js";
import type { Keygate } from "../../keygate.js";
import { component, errorResponses, Nullable, Ok, OkEmpty, StringEnum } from "../schemas.js";
import type { App } from "../types.js";

const Endpoint = component(
  "WebhookEndpoint",
  Type.Object(
    {
      id: Type.Integer(),
      url: Type.String(),
      description: Nullable(Type.String()),
      events: Type.Array(Type.String(), {
        description: 'the event types it receives, or ["*"] for every event',
      }),
      enabled: Type.Boolean(),
      environment: StringEnum(["live", "test"], "the environment whose events it receives"),
      owner_id: Type.Integer({
        description:
          "who registered it: an admin's endpoint receives every event, another user's only those about its own records",
      }),
      failing_since: Nullable(
        Type.String({ description: "since when every attempt failed; null after a success" }),
      ),
      disabled_at: Nullable(Type.String()),
      disabled_reason: Nullable(
        Type.String({
          description:
            "why Keygate disabled it (every delivery failing for 5 days, and the last error); null when enabled or disabled by hand",
        }),
      ),
      previous_secret_until: Nullable(
        Type.String({
          description:
            "until when the secret before the last rotation still signs beside the new one",
        }),
      ),
      created_at: Type.String(),
      updated_at: Type.String(),
    },
    { description: "A webhook endpoint; its signing secret is shown only when made or rotated" },
  ),
);

const Delivery = component(
  "WebhookDelivery",
  Type.Object(
    {
      id: Type.Integer(),
      message_id: Type.String({ description: "the webhook-id header: the same on every attempt" }),
      event_type: Type.String(),
      status: StringEnum(
        ["pending", "succeeded", "failed"],
        "pending (waiting for its next attempt), succeeded (answered 2xx) or failed (every attempt failed)",
      ),
      attempts: Type.Integer(),
      next_attempt_at: Nullable(Type.String()),
      last_attempt_at: Nullable(Type.String()),
      response_status: Nullable(Type.Integer({ description: "the last answer's HTTP status" })),
      latency_ms: Nullable(Type.Integer()),
      response_body: Nullable(
        Type.String({ description: "the first 1 KiB of the last answer's body" }),
      ),
      error: Nullable(
        Type.String({
          description:
            "why the last attempt failed (a refused address, a timeout, a 3xx, a status)",
        }),
      ),
      created_at: Type.String(),
    },
    { description: "One event's delivery to one endpoint, with its last attempt" },
  ),
);

const Attempt = component(
  "WebhookAttempt",
  Type.Object(
    {
      attempt: Type.Integer({
        description: "its number among the delivery's attempts, from 1 (what `attempts` counts)",
      }),
      attempted_at: Type.String({
        description: "when it was sent: its webhook-timestamp header, to the millisecond",
      }),
      outcome: StringEnum(
        ["succeeded", "failed"],
        "succeeded (answered 2xx within the timeout) or failed",
      ),
      manual: Type.Boolean({
        description: "asked by hand: a redelivery of a finished delivery, or a test message",
      }),
      response_status: Nullable(
        Type.Integer({
          description:
            "the answer's HTTP status; null when none came (refused address, timeout, connection error)",
        }),
      ),
      latency_ms: Type.Integer({ description: "from sending to the answer (or the failure)" }),
      error: Nullable(
        Type.String({
          description: "why it failed (a refused address, a timeout, a 3xx, a status)",
        }),
      ),
      response_body: Nullable(Type.String({ description: "the first 1 KiB of the answer's body" })),
    },
    { description: "One attempt of a webhook delivery" },
  ),
);

const WithSecret = Type.Object({
  success: Type.Literal(true),
  data: Endpoint,
  secret: Type.String({
    description:
      "the signing secret (whsec_ + base64, Standard Webhooks): shown this once; verify each delivery's webhook-signature with it",
  }),
});

const Events = Type.Array(
  Type.String({ maxLength: 40, description: `one of ${EVENT_TYPES.join(", ")}, or "*"` }),
  {
    minItems: 1,
    maxItems: EVENT_TYPES.length + 1,
    description: 'the event types to receive, or ["*"] (the default) for every event',
  },
);

const fields = {
  url: Type.String({
    minLength: 1,
    maxLength: 2048,
    description:
      "http:// or https://, no credentials, no fragment; private, loopback and link-local addresses are refused unless KEYGATE_WEBHOOK_ALLOW_PRIVATE=true",
  }),
  events: Type.Optional(Events),
  description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  enabled: Type.Optional(Type.Boolean()),
};

const Params = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: 2147483647, description: "a positive whole number" }),
});
const DeliveryParams = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: 2147483647, description: "the endpoint's id" }),
  delivery_id: Type.Integer({
    minimum: 1,
    maximum: 2147483647,
    description: "the delivery's id",
  }),
});

const tags = ["webhooks"];
const security = [{ bearer: [] }];
const who = (req: { principal: Principal | null }) => req.principal as Principal;

/** `/api/webhooks`: endpoints, their secrets and their delivery logs. */
export function webhookRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.post(
      "/webhooks",
      {
        schema: {
          tags,
          security,
          summary:
            "Register a webhook endpoint, for the environment in Keygate-Environment. The response's `secret` is the only time it is shown",
          body: Type.Object(fields, { additionalProperties: false }),
          response: { 201: WithSecret, ...errorResponses(false, [400, 401, 403, 409]) },
        },
      },
      async (req, reply) => {
        const { data, secret } = await kg.webhooks.create(who(req), req.body);
        reply.code(201).header("Cache-Control", "no-store");
        return { success: true as const, data, secret };
      },
    );
    app.get(
      "/webhooks",
      {
        schema: {
          tags,
          security,
          summary: "Webhook endpoints (every one for admins, own for others), newest first",
          response: { 200: Ok(Type.Array(Endpoint)), ...errorResponses(false, [401, 403]) },
        },
      },
      async (req) => ({ success: true as const, data: await kg.webhooks.list(who(req)) }),
    );
    app.get(
      "/webhooks/:id",
      {
        schema: {
          tags,
          security,
          summary: "One webhook endpoint",
          params: Params,
          response: { 200: Ok(Endpoint), ...errorResponses(false, [400, 401, 403, 404]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.webhooks.get(who(req), req.params.id),
      }),
    );
    app.put(
      "/webhooks/:id",
      {
        schema: {
          tags,
          security,
          summary:
            "Change a webhook endpoint; enabling it again clears why it was disabled and its failures",
          params: Params,
          body: Type.Object(
            { ...fields, url: Type.Optional(fields.url) },
            {
              additionalProperties: false,
            },
          ),
          response: { 200: Ok(Endpoint), ...errorResponses(false, [400, 401, 403, 404]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.webhooks.update(who(req), req.params.id, req.body),
      }),
    );
    app.delete(
      "/webhooks/:id",
      {
        schema: {
          tags,
          security,
          summary: "Remove a webhook endpoint and its delivery log",
          params: Params,
          response: { 200: OkEmpty, ...errorResponses(false, [400, 401, 403, 404]) },
        },
      },
      async (req) => {
        await kg.webhooks.remove(who(req), req.params.id);
        return { success: true as const, message: `webhook endpoint ${req.params.id} deleted` };
      },
    );
    app.post(
      "/webhooks/:id/rotate-secret",
      {
        schema: {
          tags,
          security,
          summary:
            "A new signing secret, shown this once; the old one keeps signing beside it for 24 hours",
          params: Params,
          response: { 200: WithSecret, ...errorResponses(false, [400, 401, 403, 404]) },
        },
      },
      async (req, reply) => {
        const { data, secret } = await kg.webhooks.rotateSecret(who(req), req.params.id);
        reply.header("Cache-Control", "no-store");
        return { success: true as const, data, secret };
      },
    );
    app.get(
      "/webhooks/:id/deliveries",
      {
        schema: {
          tags,
          security,
          summary: "The endpoint's delivery log, newest first",
          params: Params,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
              before_id: Type.Optional(
                Type.Integer({
                  minimum: 1,
                  maximum: 2147483647,
                  description: "the next page: deliveries older than this id",
                }),
              ),
              status: Type.Optional(StringEnum(["pending", "succeeded", "failed"])),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Ok(Type.Array(Delivery)),
            ...errorResponses(false, [400, 401, 403, 404]),
          },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.webhooks.deliveries(who(req), req.params.id, {
          limit: req.query.limit ?? 50,
          ...(req.query.before_id === undefined ? {} : { beforeId: req.query.before_id }),
          ...(req.query.status === undefined ? {} : { status: req.query.status }),
        }),
      }),
    );
    app.get(
      "/webhooks/:id/deliveries/:delivery_id/attempts",
      {
        schema: {
          tags,
          security,
          summary: "Every attempt of one delivery, oldest first",
          params: DeliveryParams,
          querystring: Type.Object(
            {
              limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
              after: Type.Optional(
                Type.Integer({
                  minimum: 0,
                  maximum: 2147483647,
                  description: "the next page: attempts after this attempt number",
                }),
              ),
            },
            { additionalProperties: false },
          ),
          response: {
            200: Ok(Type.Array(Attempt)),
            ...errorResponses(false, [400, 401, 403, 404]),
          },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.webhooks.attempts(who(req), req.params.id, req.params.delivery_id, {
          limit: req.query.limit ?? 50,
          ...(req.query.after === undefined ? {} : { after: req.query.after }),
        }),
      }),
    );
    app.post(
      "/webhooks/:id/deliveries/:delivery_id/redeliver",
      {
        schema: {
          tags,
          security,
          summary: "Deliver a message again now, with its original webhook-id",
          params: DeliveryParams,
          response: { 200: Ok(Delivery), ...errorResponses(false, [400, 401, 403, 404, 409]) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.webhooks.redeliver(who(req), req.params.id, req.params.delivery_id),
      }),
    );
    app.post(
      "/webhooks/:id/test",
      {
        schema: {
          tags,
          security,
          summary: "Send a webhook.test message to this endpoint alone",
          params: Params,
          response: { 202: Ok(Delivery), ...errorResponses(false, [400, 401, 403, 404, 409]) },
        },
      },
      async (req, reply) => {
        reply.code(202);
        return { success: true as const, data: await kg.webhooks.test(who(req), req.params.id) };
      },
    );
  };
}
