import type { FastifyPluginAsync } from "fastify";
import { Type } from "typebox";
import type { Keygate } from "../../keygate.js";
import { ENVIRONMENTS } from "../../keys/format.js";
import { TRANSACTION_TYPES } from "../../panel/transactions.js";
import {
  component,
  Currency,
  Id,
  IdParams,
  Money,
  Nullable,
  Ok,
  PageQuery,
  StringEnum,
} from "../schemas.js";
import type { App } from "../types.js";
import { literals, strict, type Surface, surfaceOf, who } from "./common.js";

const TxType = literals(TRANSACTION_TYPES);

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
      environment: StringEnum(ENVIRONMENTS, "the environment of its subscriber"),
    },
    { description: "A payment, refund or adjustment; immutable" },
  ),
);

/** Transactions: list, look up and record (idempotent by `reference`). */
export function transactionRoutes(kg: Keygate, surface: Surface): FastifyPluginAsync {
  const { security, errors } = surfaceOf(surface);

  return async (instance) => {
    const app = instance as unknown as App;

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
  };
}
