import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Principal } from "../../auth/principal.js";
import type { Keygate } from "../../keygate.js";
import { systemStats } from "../../panel/stats.js";
import { SUBSCRIBER_STATUSES } from "../../panel/subscribers.js";
import { TRANSACTION_TYPES } from "../../panel/transactions.js";
import type { App } from "../app.js";
import {
  component,
  Currency,
  DateOnly,
  errorResponses,
  IdParams,
  Money,
  Nullable,
  Ok,
  OkEmpty,
  Id,
  PageQuery,
  StringEnum,
  Username,
} from "../schemas.js";

const literals = <T extends string>(values: readonly T[]) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { description: values.map((v) => `"${v}"`).join(", ") },
  );

const Status = literals(SUBSCRIBER_STATUSES);
const TxType = literals(TRANSACTION_TYPES);

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

const Service = component(
  "Service",
  Type.Object(
    {
      id: Type.Integer(),
      name: Type.String(),
      download_kbps: Type.Integer(),
      upload_kbps: Type.Integer(),
      price: Type.Number(),
      currency: Type.String(),
      duration_days: Type.Integer(),
      is_active: Type.Boolean(),
      created_at: Type.String(),
      updated_at: Type.String(),
    },
    { description: "A service plan of the catalogue" },
  ),
);

const Kbps = Type.Integer({ minimum: 0, maximum: 100_000_000 });
const serviceFields = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  download_kbps: Type.Optional(Kbps),
  upload_kbps: Type.Optional(Kbps),
  price: Type.Optional(Money),
  currency: Type.Optional(Currency),
  duration_days: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
  is_active: Type.Optional(Type.Boolean()),
};

const Nas = component(
  "Nas",
  Type.Object(
    {
      id: Type.Integer(),
      name: Type.String(),
      ip_address: Type.String(),
      type: Type.String(),
      description: Nullable(Type.String()),
      created_at: Type.String(),
      updated_at: Type.String(),
    },
    { description: "A NAS device; its shared secret is never returned" },
  ),
);

const nasFields = {
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  ip_address: Type.Optional(Type.String({ maxLength: 64 })),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 32 })),
  description: Type.Optional(Nullable(Type.String({ maxLength: 500 }))),
  secret: Type.Optional(
    Type.String({ minLength: 1, maxLength: 128, description: "shared secret; write-only" }),
  ),
};

const Transaction = component(
  "Transaction",
  Type.Object(
    {
      id: Type.Integer(),
      subscriber_id: Type.Integer(),
      amount: Type.Number(),
      currency: Type.String(),
      type: StringEnum(TRANSACTION_TYPES),
      reference: Nullable(Type.String()),
      description: Nullable(Type.String()),
      created_at: Type.String(),
      api_key_id: Nullable(Type.Integer({ description: "the key that recorded it, if one did" })),
    },
    { description: "A payment, refund or adjustment; immutable" },
  ),
);

const Counters = {
  bytes_in: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  bytes_out: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  session_seconds: Type.Integer({ minimum: 0, maximum: 10_000_000_000 }),
};
const UsageDay = component(
  "UsageDay",
  Type.Object(
    { date: Type.String(), ...Counters },
    { description: "A subscriber's usage on a day" },
  ),
);
const UsageReport = component(
  "UsageReport",
  Type.Object(
    {
      subscriber_id: Type.Integer(),
      from: Type.String(),
      to: Type.String(),
      days: Type.Array(UsageDay),
      totals: Type.Object(Counters),
    },
    { description: "Daily usage of a subscriber between two dates, and its totals" },
  ),
);

const Stats = component(
  "SystemStats",
  Type.Object(
    {
      subscribers: Type.Object({
        total: Type.Integer(),
        active: Type.Integer(),
        suspended: Type.Integer(),
        expired: Type.Integer(),
      }),
      services: Type.Integer(),
      nas: Type.Optional(Type.Integer({ description: "admins only" })),
      transactions_30d: Type.Array(
        Type.Object({ currency: Type.String(), count: Type.Integer(), amount: Type.Number() }),
      ),
    },
    { description: "Totals of what the caller may see" },
  ),
);

const strict = { additionalProperties: false };

/**
 * The panel's resources. Registered on both surfaces: the same handlers serve people and
 * keys; the surface only decides authentication, the error envelope and which writes exist.
 */
export function panelRoutes(kg: Keygate, surface: "jwt" | "external"): FastifyPluginAsync {
  const external = surface === "external";
  const security = external ? [{ apiKey: [] }] : [{ bearer: [] }];
  const errors = (...s: number[]) =>
    errorResponses(external, external ? [...s, 401, 403, 429] : [...s, 401]);
  const who = (req: { principal: Principal | null }) => req.principal as Principal;

  return async (instance) => {
    const app = instance as unknown as App;

    // Subscribers
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
    app.get(
      "/subscribers/:id/usage",
      {
        schema: {
          tags: ["subscribers"],
          security,
          summary: "Daily usage and totals (default: the last 30 days)",
          params: IdParams,
          querystring: Type.Object(
            { from: Type.Optional(DateOnly), to: Type.Optional(DateOnly) },
            strict,
          ),
          response: { 200: Ok(UsageReport), ...errors(400, 404) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.usage.report(who(req), req.params.id, req.query),
      }),
    );
    if (!external) {
      app.post(
        "/subscribers/:id/usage",
        {
          schema: {
            tags: ["subscribers"],
            security,
            summary:
              "Record accounting: adds the counters to the subscriber's totals for that day (default today, UTC)",
            params: IdParams,
            body: Type.Object(
              {
                date: Type.Optional(DateOnly),
                bytes_in: Type.Optional(Counters.bytes_in),
                bytes_out: Type.Optional(Counters.bytes_out),
                session_seconds: Type.Optional(Counters.session_seconds),
              },
              strict,
            ),
            response: { 201: Ok(UsageDay), ...errors(400, 404) },
          },
        },
        async (req, reply) => {
          reply.code(201);
          return {
            success: true as const,
            data: await kg.usage.record(who(req), req.params.id, req.body),
          };
        },
      );
    }

    // Services
    app.get(
      "/services",
      {
        schema: {
          tags: ["services"],
          security,
          summary: "The service catalogue",
          response: { 200: Ok(Type.Array(Service)), ...errors() },
        },
      },
      async (req) => ({ success: true as const, data: await kg.services.list(who(req)) }),
    );
    app.get(
      "/services/:id",
      {
        schema: {
          tags: ["services"],
          security,
          summary: "One service",
          params: IdParams,
          response: { 200: Ok(Service), ...errors(400, 404) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.services.get(who(req), req.params.id),
      }),
    );
    if (!external) {
      app.post(
        "/services",
        {
          schema: {
            tags: ["services"],
            security,
            summary: "Create a service (admin)",
            body: Type.Object(
              { ...serviceFields, name: Type.String({ minLength: 1, maxLength: 128 }) },
              strict,
            ),
            response: { 201: Ok(Service), ...errors(400, 403) },
          },
        },
        async (req, reply) => {
          reply.code(201);
          return { success: true as const, data: await kg.services.create(who(req), req.body) };
        },
      );
      app.put(
        "/services/:id",
        {
          schema: {
            tags: ["services"],
            security,
            summary: "Change a service (admin)",
            params: IdParams,
            body: Type.Object(serviceFields, strict),
            response: { 200: Ok(Service), ...errors(400, 403, 404) },
          },
        },
        async (req) => ({
          success: true as const,
          data: await kg.services.update(who(req), req.params.id, req.body),
        }),
      );
      app.delete(
        "/services/:id",
        {
          schema: {
            tags: ["services"],
            security,
            summary: "Delete an unused service (admin)",
            params: IdParams,
            response: { 200: OkEmpty, ...errors(400, 403, 404, 409) },
          },
        },
        async (req) => {
          await kg.services.remove(who(req), req.params.id);
          return { success: true as const, message: `service ${req.params.id} deleted` };
        },
      );
    }

    // NAS devices
    app.get(
      "/nas",
      {
        schema: {
          tags: ["nas"],
          security,
          summary: "NAS devices (admin)",
          response: { 200: Ok(Type.Array(Nas)), ...errors(403) },
        },
      },
      async (req) => ({ success: true as const, data: await kg.nas.list(who(req)) }),
    );
    app.get(
      "/nas/:id",
      {
        schema: {
          tags: ["nas"],
          security,
          summary: "One NAS device (admin)",
          params: IdParams,
          response: { 200: Ok(Nas), ...errors(400, 403, 404) },
        },
      },
      async (req) => ({ success: true as const, data: await kg.nas.get(who(req), req.params.id) }),
    );
    if (!external) {
      app.post(
        "/nas",
        {
          schema: {
            tags: ["nas"],
            security,
            summary: "Add a NAS device (admin); the secret is never returned",
            body: Type.Object(
              {
                ...nasFields,
                name: Type.String({ minLength: 1, maxLength: 128 }),
                ip_address: Type.String({ maxLength: 64 }),
                secret: Type.String({ minLength: 1, maxLength: 128 }),
              },
              strict,
            ),
            response: { 201: Ok(Nas), ...errors(400, 403) },
          },
        },
        async (req, reply) => {
          reply.code(201);
          return { success: true as const, data: await kg.nas.create(who(req), req.body) };
        },
      );
      app.put(
        "/nas/:id",
        {
          schema: {
            tags: ["nas"],
            security,
            summary: "Change a NAS device (admin)",
            params: IdParams,
            body: Type.Object(nasFields, strict),
            response: { 200: Ok(Nas), ...errors(400, 403, 404) },
          },
        },
        async (req) => ({
          success: true as const,
          data: await kg.nas.update(who(req), req.params.id, req.body),
        }),
      );
      app.delete(
        "/nas/:id",
        {
          schema: {
            tags: ["nas"],
            security,
            summary: "Remove a NAS device (admin)",
            params: IdParams,
            response: { 200: OkEmpty, ...errors(400, 403, 404) },
          },
        },
        async (req) => {
          await kg.nas.remove(who(req), req.params.id);
          return { success: true as const, message: `NAS ${req.params.id} deleted` };
        },
      );
    }

    // Transactions
    app.get(
      "/transactions",
      {
        schema: {
          tags: ["transactions"],
          security,
          summary: "Transactions on subscribers visible to the caller, newest first",
          querystring: Type.Object(
            {
              ...PageQuery,
              subscriber_id: Type.Optional(Id()),
              from: Type.Optional(
                Type.String({
                  maxLength: 40,
                  format: "date-or-time",
                  description: "a real date as YYYY-MM-DD or an ISO-8601 timestamp, inclusive",
                }),
              ),
              to: Type.Optional(
                Type.String({
                  maxLength: 40,
                  format: "date-or-time",
                  description: "a real date as YYYY-MM-DD (the whole day) or an ISO-8601 timestamp",
                }),
              ),
            },
            strict,
          ),
          response: { 200: Ok(Type.Array(Transaction), true), ...errors(400) },
        },
      },
      async (req) => {
        const { page, per_page, ...q } = req.query;
        const { rows, meta } = await kg.transactions.list(who(req), q, {
          page: page ?? 1,
          perPage: per_page ?? 50,
        });
        return { success: true as const, data: rows, meta };
      },
    );
    app.get(
      "/transactions/:id",
      {
        schema: {
          tags: ["transactions"],
          security,
          summary: "One transaction",
          params: IdParams,
          response: { 200: Ok(Transaction), ...errors(400, 404) },
        },
      },
      async (req) => ({
        success: true as const,
        data: await kg.transactions.get(who(req), req.params.id),
      }),
    );
    app.post(
      "/transactions",
      {
        schema: {
          tags: ["transactions"],
          security,
          summary:
            "Record a transaction; a repeated `reference` returns the first one (200) and records nothing",
          body: Type.Object(
            {
              subscriber_id: Id(),
              amount: Money,
              currency: Type.Optional(Currency),
              type: Type.Optional(TxType),
              reference: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
              description: Type.Optional(Type.String({ maxLength: 500 })),
            },
            strict,
          ),
          response: { 200: Ok(Transaction), 201: Ok(Transaction), ...errors(400, 409) },
        },
      },
      async (req, reply) => {
        const { data, created } = await kg.transactions.create(who(req), req.body);
        reply.code(created ? 201 : 200);
        // The same reference again: the first transaction, and nothing recorded.
        if (!created) reply.header("Idempotent-Replayed", "true");
        return { success: true as const, data };
      },
    );

    app.get(
      "/system/stats",
      {
        schema: {
          tags: ["system"],
          security,
          summary: "Subscriber, service, NAS and money totals visible to the caller",
          response: { 200: Ok(Stats), ...errors() },
        },
      },
      async (req) => ({
        success: true as const,
        data: await systemStats(kg.stats, who(req), kg.now()),
      }),
    );
  };
}
