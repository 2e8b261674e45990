import { type Static, type TSchema, type TUnsafe, Type } from "typebox";
import { ERROR_CODES } from "../errors.js";

/** The named schemas, each `#/components/schemas/<name>` in the OpenAPI document. */
const COMPONENTS = new Map<string, TSchema>();

/**
 * Names `schema` as the OpenAPI component `name` (buildApp adds it with `app.addSchema`) and
 * answers a `$ref` to it, typed as the schema. The document then says `Subscriber` once,
 * and a client generated from it has one `Subscriber` type instead of one per route.
 */
export function component<T extends TSchema>(name: string, schema: T): TUnsafe<Static<T>> {
  if (COMPONENTS.has(name)) throw new Error(`the OpenAPI component ${name} is defined twice`);
  COMPONENTS.set(name, { ...(JSON.parse(JSON.stringify(schema)) as object), $id: name });
  return Type.Unsafe<Static<T>>({ $ref: `${name}#` });
}

/** Every named schema, for `app.addSchema`. */
export function componentSchemas(): TSchema[] {
  return [...COMPONENTS.values()];
}

/** A string that is one of `values`: an `enum` in the document, a union of literals in code. */
export const StringEnum = <const T extends string>(values: readonly T[], description?: string) =>
  Type.Unsafe<T>({ type: "string", enum: [...values], ...(description ? { description } : {}) });

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

export const Meta = component(
  "Meta",
  Type.Object(
    {
      page: Type.Integer(),
      per_page: Type.Integer(),
      total: Type.Integer({ description: "records matching, over every page" }),
    },
    { description: "Where a page of a list sits" },
  ),
);

export const FieldProblem = component(
  "FieldProblem",
  Type.Object(
    {
      field: Type.String({
        description: "the field, as a path into the body, query or path: amount, allowed_ips[0]",
      }),
      message: Type.String(),
    },
    { description: "One problem with one input field" },
  ),
);

/** Every code of the catalogue (src/errors.ts). */
export const ErrorCodeSchema = component(
  "ErrorCode",
  StringEnum(
    ERROR_CODES,
    "A code of the error catalogue: stable, for programs to branch on (the message is for people)",
  ),
);

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
    message: Type.String({ description: "what went wrong and what to do, for people" }),
    code: ErrorCodeSchema,
    details: Type.Optional(Type.Array(FieldProblem)),
  },
  { description: "Error on the /api surface" },
);
const FlatErrorRef = component("FlatError", FlatError);

export const StructuredError = Type.Object(
  {
    success: Type.Literal(false),
    error: Type.Object({
      code: ErrorCodeSchema,
      message: Type.String({ description: "what went wrong and what to do, for people" }),
      details: Type.Optional(Type.Array(FieldProblem)),
    }),
    timestamp: Type.String({ description: "when it was answered, ISO-8601 UTC to the second" }),
  },
  { description: "Error on the external surface" },
);
const StructuredErrorRef = component("StructuredError", StructuredError);

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

/**
 * Declares the error envelope for every status a route can answer with. The OpenAPI document
 * adds the statuses every route of its kind can answer, each with its codes and an example
 * (`http/openapi.ts`).
 */
export function errorResponses(external: boolean, statuses: number[]) {
  const schema = external ? StructuredErrorRef : FlatErrorRef;
  return Object.fromEntries(statuses.map((s) => [s, schema]));
}
