import type { FastifyInstance, FastifyRequest, preValidationHookHandler } from "fastify";
import { AppError } from "../errors.js";

/**
 * How deep a JSON body may nest. The deepest body any route takes is two levels; the bound
 * is what lets every later walk over a body (the NUL check, validation) recurse safely.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * The nesting depth of a JSON text, or -1 once it passes `limit`: one linear pass that skips
 * strings, so a body is measured before anything parses or walks it.
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return -1;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/**
 * Replaces Fastify's JSON body parser with one that refuses deep nesting before parsing,
 * then parses exactly as the default does (prototype poisoning refused).
 */
export function boundedJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    const raw = body as Buffer;
    // A signed request's digest is checked against the bytes exactly as they arrived.
    if (request.signaturePending !== null) request.rawBody = raw;
    const text = raw.toString("utf8");
    // Most HTTP clients send Content-Type: application/json on a body-less POST or DELETE:
    // no body at all reads as no body (a route whose fields are all optional takes `{}`).
    if (text.length === 0) {
      done(null, undefined);
      return;
    }
    if (jsonDepth(text, MAX_JSON_DEPTH) === -1) {
      done(
        new AppError(
          "VALIDATION_ERROR",
          `request body nests deeper than ${MAX_JSON_DEPTH} levels; no field here takes more than two`,
        ),
        undefined,
      );
      return;
    }
    parse(request, text, done);
  });
}

/**
 * Reads `application/x-www-form-urlencoded` bodies (the OAuth endpoints take them) into an
 * object; a field given twice becomes a list, for the route to refuse (RFC 6749 §3.2).
 */
export function formParser(app: FastifyInstance): void {
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "buffer" },
    (request, body, done) => {
      const raw = body as Buffer;
      if (request.signaturePending !== null) request.rawBody = raw;
      const fields: Record<string, string | string[]> = Object.create(null) as Record<
        string,
        string | string[]
      >;
      for (const [name, value] of new URLSearchParams(raw.toString("utf8"))) {
        const had = fields[name];
        fields[name] = had === undefined ? value : [...[had].flat(), value];
      }
      done(null, fields);
    },
  );
}

/** The path of the first string (or key) holding U+0000, or null. Bodies are depth-bounded. */
export function findNul(value: unknown, path: string): string | null {
  if (typeof value === "string") return value.includes("\u0000") ? path || "value" : null;
  if (value === null || typeof value !== "object") return null;
  for (const [k, v] of Object.entries(value)) {
    const at = Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    if (k.includes("\u0000")) return at;
    const found = findNul(v, at);
    if (found !== null) return found;
  }
  return null;
}

export function hasContent(request: FastifyRequest): boolean {
  const length = request.headers["content-length"];
  return (
    (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined
  );
}

const DECIMAL = /^[0-9]+$/;
const SIGNED_DECIMAL = /^-?[0-9]+$/;

type Properties = { properties?: Record<string, { type?: unknown }> } | undefined;

/** Each schema's integer fields, found once: the hook runs on every request of its routes. */
const integerFields = new WeakMap<object, string[]>();
const NO_FIELDS: string[] = [];

function integersOf(schema: Properties): string[] {
  if (schema === undefined) return NO_FIELDS;
  let names = integerFields.get(schema);
  if (names === undefined) {
    names = Object.entries(schema.properties ?? {})
      .filter(([, property]) => property.type === "integer")
      .map(([name]) => name);
    integerFields.set(schema, names);
  }
  return names;
}

/** The first integer field of `values` not written in decimal digits, as a refusal; or null. */
function notDecimal(
  schema: Properties,
  values: unknown,
  part: "params" | "querystring",
): AppError | null {
  const given = (values ?? {}) as Record<string, unknown>;
  const digits = part === "params" ? DECIMAL : SIGNED_DECIMAL;
  for (const name of integersOf(schema)) {
    for (const raw of [given[name]].flat()) {
      if (typeof raw !== "string" || digits.test(raw)) continue;
      const message =
        part === "params"
          ? "must be a positive whole number written in decimal digits (such as 42)"
          : "must be a whole number written in decimal digits (such as 42)";
      return new AppError("VALIDATION_ERROR", `invalid ${part}: ${name} ${message}`, [
        { field: name, message },
      ]);
    }
  }
  return null;
}

/**
 * Refuses a path parameter or query field its route takes as a whole number unless it is
 * written in decimal digits. The validator coerces such strings with `Number()`, which also
 * reads `0x10`, `0b1`, `1e3`, `1.0` and ` 1`: without this, `DELETE /subscribers/0x10`
 * deleted subscriber 16, and `?subscriber_id=0x10` listed subscriber 16's transactions.
 */
export const decimalIds: preValidationHookHandler = (request, _reply, done) => {
  const schema = request.routeOptions.schema;
  const refused =
    notDecimal(schema?.params as Properties, request.params, "params") ??
    notDecimal(schema?.querystring as Properties, request.query, "querystring");
  if (refused) done(refused);
  else done();
};
