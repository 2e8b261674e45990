import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { component, errorResponses, Nullable, Ok, OkEmpty } from "../schemas.js";
import type { App } from "../types.js";
import { who } from "./common.js";

const Alert = component(
  "Alert",
  Type.Object(
    {
      id: Type.String({
        description:
          "a stored alert's number, or a computed alert's name (expiring:<key id>:<expiry in ms>)",
      }),
      kind: Type.String({ description: "key.leaked, key.expiring, … (what happened)" }),
      severity: Type.Union([
        Type.Literal("critical"),
        Type.Literal("warning"),
        Type.Literal("info"),
      ]),
      title: Type.String(),
      message: Type.String({ description: "what happened to which record, and what to do" }),
      target: Nullable(
        Type.Object({
          type: Type.String({ description: "api_key or webhook_endpoint" }),
          id: Type.Integer(),
        }),
      ),
      link: Nullable(Type.String({ description: "the console page it concerns, e.g. /keys/12" })),
      environment: Type.String({ description: "live or test" }),
      details: Nullable(Type.Object({}, { additionalProperties: true })),
      created_at: Type.String(),
    },
    {
      description:
        "A notification: a leaked key, a key expiring within 7 days, and (later) refusal spikes, new IPs, failing webhooks",
    },
  ),
);

export function alertRoutes(kg: Keygate): FastifyPluginAsync {
  return async (instance) => {
    const app = instance as unknown as App;
    app.get(
      "/alerts",
      {
        schema: {
          tags: ["alerts"],
          security: [{ bearer: [] }],
          summary:
            "Your notifications, newest first: admins see every key's, others their own keys'; of the environment named by Keygate-Environment; dismissed ones left out",
          response: { 200: Ok(Type.Array(Alert)), ...errorResponses(false, [401]) },
        },
      },
      async (req) => ({ success: true as const, data: await kg.alerts.list(who(req)) }),
    );
    app.post(
      "/alerts/:id/dismiss",
      {
        schema: {
          tags: ["alerts"],
          security: [{ bearer: [] }],
          summary: "Dismiss a notification, for you (dismissing it again is fine)",
          params: Type.Object({
            id: Type.String({
              maxLength: 40,
              pattern: "^(?:\\d{1,10}|(?:expiring|webhook):\\d{1,10}:\\d{1,15})$",
              description: "the alert's id as listed",
            }),
          }),
          response: { 200: OkEmpty, ...errorResponses(false, [400, 401, 404]) },
        },
      },
      async (req) => {
        await kg.alerts.dismiss(who(req), req.params.id);
        return { success: true as const, message: "dismissed" };
      },
    );
  };
}
