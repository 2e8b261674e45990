import { Type } from "typebox";
import type { Principal } from "../../auth/principal.js";
import { errorResponses } from "../schemas.js";

/** The surface a route module is registered on: people with a JWT, or keys. */
export type Surface = "jwt" | "external";

/** What a route's schema says of its surface: its security and the errors it can answer. */
export function surfaceOf(surface: Surface) {
  const external = surface === "external";
  return {
    external,
    security: (external ? [{ apiKey: [] }, { accessToken: [] }] : [{ bearer: [] }]) as Record<
      string,
      string[]
    >[],
    errors: (...s: number[]) =>
      errorResponses(external, external ? [...s, 401, 403, 429] : [...s, 401]),
  };
}

/** The principal of a request that passed its surface's authentication. */
export const who = (req: { principal: Principal | null }) => req.principal as Principal;

export const literals = <T extends string>(values: readonly T[]) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    { description: values.map((v) => `"${v}"`).join(", ") },
  );

export const strict = { additionalProperties: false };
