import { type TSchema, Type } from "typebox";

/** Nullable in the OpenAPI 3.0 sense: the value or JSON null. */
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** A record id: a positive 32-bit integer, as both engines store it. */
export const Id = (description = "a record id") =>
  Type.Integer({ minimum: 1, maximum: 2147483647, description });

export const IdParams = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: 2147483647, description: "a positive whole number" }),
});

export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
  per_page: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
};

export const Meta = Type.Object({
  page: Type.Integer(),
  per_page: Type.Integer(),
  total: Type.Integer(),
});

export const FieldProblem = Type.Object({ field: Type.String(), message: Type.String() });

/** Success envelope: `{ success: true, data, meta? }`. */
export function Ok<T extends TSchema>(data: T, withMeta = false) {
  return withMeta
    ? Type.Object({ success: Type.Literal(true), data, meta: Meta })
    : Type.Object({ success: Type.Literal(true), data });
}

export const OkEmpty = Type.Object({
  success: Type.Literal(true),
  message: Type.Optional(Type.String()),
});

export const FlatError = Type.Object(
  {
    success: Type.Literal(false),
    message: Type.String(),
    code: Type.String(),
    details: Type.Optional(Type.Array(FieldProblem)),
  },
  { description: "Error on the /api surface" },
);

export const StructuredError = Type.Object(
  {
    success: Type.Literal(false),
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Array(FieldProblem)),
    }),
    timestamp: Type.String(),
  },
  { description: "Error on the external surface" },
);

export const Username = Type.String({
  minLength: 3,
  maxLength: 64,
  pattern: "^[A-Za-z0-9@._-]{3,64}$",
  description: "3-64 characters of A-Z a-z 0-9 @ . _ -",
});

export const DateOnly = Type.String({
  maxLength: 10,
  pattern: "^\\d{4}-\\d{2}-\\d{2}$",
  format: "date",
  description: "a real date as YYYY-MM-DD (1970-9999)",
});

export const Money = Type.Union([Type.Number(), Type.String({ maxLength: 32 })], {
  description: 'a decimal amount with at most 2 places, as a number or a string such as "19.99"',
});

export const Currency = Type.String({
  maxLength: 3,
  pattern: "^[A-Z]{3}$",
  description: "a 3-letter ISO 4217 code such as USD",
});

/** Declares the error envelope for every status a route can answer with. */
export function errorResponses(external: boolean, statuses: number[]) {
  const schema = external ? StructuredError : FlatError;
  return Object.fromEntries(statuses.map((s) => [s, schema]));
}
