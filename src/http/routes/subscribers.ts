import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { ENVIRONMENTS } from "../../keys/format.js";
import { SUBSCRIBER_STATUSES } from "../../panel/subscribers.js";
import {
  component,
  DateOnly,
  Id,
  IdParams,
  Nullable,
  Ok,
  OkEmpty,
  PageQuery,
  StringEnum,
  Username,
} from "../schemas.js";
import type { App } from "../types.js";
import { literals, strict, type Surface, surfaceOf, who } from "./common.js";

const Status = literals(SUBSCRIBER_STATUSES);

const SubscriberRecord = Type.Object(
  {
    id: Type.Integer(),
    username: Type.String(),
    full_name: Nullable(Type.String()),
    phone: Nullable(Type.String()),
    email: Nullable(Type.String()),
    service_id: Type.Integer(),
    status: StringEnum(SUBSCRIBER_STATUSES),
    expiry_date: Nullable(Type.String({ description: "YYYY-MM-DD" })),
    owner_id: Type.Integer(),
    environment: StringEnum(ENVIRONMENTS, "live, or test: seen only by test keys and in test mode"),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { description: "A subscriber; its password is never returned (but once, when generated)" },
);
const Subscriber = component("Subscriber", SubscriberRecord);

const SubscriberWithPassword = component(
  "SubscriberWithPassword",
  Type.Object(
    {
      ...SubscriberRecord.properties,
      password: Type.Optional(
        Type.String({
          description: 'the generated password, present once when "auto-generate" was sent',
        }),
      ),
    },
    { description: "A subscriber just created or changed" },
  ),
);

const subscriberFields = {
  full_name: Type.Optional(Nullable(Type.String({ maxLength: 128 }))),
  phone: Type.Optional(
    Nullable(
      Type.String({
        maxLength: 32,
        pattern: "^[0-9+()\\-. ]{3,32}$",
        description: "3-32 of digits, spaces and + ( ) - .",
      }),
    ),
  ),
  email: Type.Optional(
    Nullable(
      Type.String({
        maxLength: 254,
        // Dot-separated labels that cannot hold a dot: one way to match, linear on any input.
        pattern: "^[^@\\s]+@[^@\\s.]+(?:\\.[^@\\s.]+)+$",
        description: "an email address",
      }),
    ),
  ),
  service_id: Type.Optional(Id()),
  status: Type.Optional(Status),
  expiry_date: Type.Optional(Nullable(DateOnly)),
  owner_id: Type.Optional(Id("admins only")),
};

const SubscriberPassword = Type.String({
  minLength: 4,
  maxLength: 128,
  description: '4-128 characters, or "auto-generate" to have one generated and returned once',
});

/** Subscribers: list, look up, create, change, delete, suspend and activate. */
export function subscriberRoutes(kg: Keygate, surface: Surface): FastifyPluginAsync {
  const { security, errors } = surfaceOf(surface);

  return async (instance) => {
    const app = instance as unknown as App;

    app.get(
      "/subscribers",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary: "List subscribers visible to the caller, oldest first",
          querystring: Type.Object(
            {
              ...PageQuery,
              status: Type.Optional(Status),
              service_id: Type.Optional(Id()),
              search: Type.Optional(
                Type.String({
                  maxLength: 100,
                  description: "matches username, name, email or phone",
                }),
              ),
            },
            strict,
          ),
          response: { 200: Ok(Type.Array(Subscriber), true), ...errors(400) },
        },
      },
      async (req) => {
        const q = req.query;
        const { rows, meta } = await kg.subscribers.list(
          who(req),
          { status: q.status, serviceId: q.service_id, search: q.search },
          { page: q.page ?? 1, perPage: q.per_page ?? 50 },
        );
        return { success: true as const, data: rows, meta };
      },
    );
    app.get(
      "/subscribers/by-username/:username",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary: "One subscriber by username",
          params: Type.Object({ username: Type.String({ maxLength: 256 }) }),
          response: { 200: Ok(Subscriber), ...errors(404) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.subscribers.getByUsername(who(req), req.params.username),
      }),
    );
    app.get(
      "/subscribers/:id",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary: "One subscriber",
          params: IdParams,
          response: { 200: Ok(Subscriber), ...errors(400, 404) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.subscribers.get(who(req), req.params.id),
      }),
    );
    app.post(
      "/subscribers",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary:
            'Create a subscriber; password "auto-generate" returns a generated one once as data.password',
          body: Type.Object(
            {
              ...subscriberFields,
              username: Username,
              password: SubscriberPassword,
              service_id: Id(),
            },
            strict,
          ),
          response: { 201: Ok(SubscriberWithPassword), ...errors(400, 409) },
        },
      },
      async (req, reply) => {
        const { data, password } = await kg.subscribers.create(who(req), req.body);
        reply.code(201);
        if (password) reply.header("Cache-Control", "no-store");
        return { success: true as const, data: password ? { ...data, password } : data };
      },
    );
    app.put(
      "/subscribers/:id",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary: "Change any subset of a subscriber's fields",
          params: IdParams,
          body: Type.Object(
            {
              ...subscriberFields,
              username: Type.Optional(Username),
              password: Type.Optional(SubscriberPassword),
            },
            strict,
          ),
          response: { 200: Ok(SubscriberWithPassword), ...errors(400, 404, 409) },
        },
      },
      async (req) => {
        const { data, password } = await kg.subscribers.update(who(req), req.params.id, req.body);
        return { success: true as const, data: password ? { ...data, password } : data };
      },
    );
    app.delete(
      "/subscribers/:id",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary: "Delete a subscriber (soft: transactions keep pointing at it)",
          params: IdParams,
          response: { 200: OkEmpty, ...errors(400, 404) },
        },
      },
      async (req) => {
        await kg.subscribers.remove(who(req), req.params.id);
        return { success: true as const, message: `subscriber ${req.params.id} deleted` };
      },
    );
    for (const [action, status] of [
      ["suspend", "suspended"],
      ["activate", "active"],
    ] as const) {
      app.post(
        `/subscribers/:id/${action}`,
        {
          schema: {
            tags: ["subscribers"],
            security,
            summary: `Set the subscriber's status to ${status}`,
            params: IdParams,
            response: { 200: Ok(Subscriber), ...errors(400, 404) },
          },
        },
        async (req) => ({
          success: true as const,
          data: await kg.subscribers.setStatus(who(req), req.params.id, status),
        }),
      );
    }
  };
}
