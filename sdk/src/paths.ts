import type { paths } from "./api-types.js";

/**
 * Type-level reading of the generated document: the external paths relative to
 * /api/v1/external, and for a method and a concrete path ("/subscribers/42") the operation's
 * query, body and success answer. A path no operation matches is typed `unknown`.
 */

export const EXTERNAL_PREFIX = "/api/v1/external";

export type Method = "GET" | "POST" | "PUT" | "DELETE" | "HEAD";

/** The document's external paths, relative: "/subscribers/{id}", ... */
export type ExternalPaths = {
  [K in keyof paths as K extends `${typeof EXTERNAL_PREFIX}${infer R}` ? R : never]: paths[K];
};
export type ExternalPath = keyof ExternalPaths & string;

/** A template as the concrete paths it stands for: `{id}` is a number, other parameters text. */
type Concrete<S extends string> = S extends `${infer A}{${infer Name}}${infer B}`
  ? `${A}${Name extends "id" ? number : string}${Concrete<B>}`
  : S;

type OperationOf<T extends ExternalPath, M extends Method> =
  Lowercase<M> extends keyof ExternalPaths[T]
    ? NonNullable<ExternalPaths[T][Lowercase<M> & keyof ExternalPaths[T]]>
    : never;

/** The templates a concrete path matches that serve the method (one, for Keygate's paths). */
export type TemplateOf<M extends Method, P extends string> = {
  [T in ExternalPath]: P extends Concrete<T>
    ? [OperationOf<T, M>] extends [never]
      ? never
      : T
    : never;
}[ExternalPath];

type Operation<M extends Method, P extends string> = OperationOf<TemplateOf<M, P>, M>;
type Known<M extends Method, P extends string> = [TemplateOf<M, P>] extends [never] ? false : true;

type JsonOf<R> = R extends { content: { "application/json": infer B } } ? B : never;

/** The JSON body of the operation's 2xx answers. */
export type SuccessBody<M extends Method, P extends string> =
  Known<M, P> extends true
    ? Operation<M, P> extends { responses: infer R }
      ? { [S in keyof R]: S extends 200 | 201 | 202 | 204 ? JsonOf<R[S]> : never }[keyof R]
      : unknown
    : unknown;

/** The operation's JSON request body (`never` when it takes none). */
export type RequestBody<M extends Method, P extends string> =
  Known<M, P> extends true
    ? Operation<M, P> extends { requestBody?: infer B }
      ? JsonOf<NonNullable<B>>
      : never
    : unknown;

export type QueryValue = string | number | boolean | null | undefined;

/** The operation's query parameters. */
export type RequestQuery<M extends Method, P extends string> =
  Known<M, P> extends true
    ? Operation<M, P> extends { parameters: { query?: infer Q } }
      ? [Q] extends [never]
        ? never
        : Q
      : never
    : Record<string, QueryValue | QueryValue[]>;
