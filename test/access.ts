import type { LightMyRequestResponse } from "fastify";
import { ROUTE_PERMISSIONS } from "../src/http/permissions.js";
import { expectStatus, type Harness } from "./helpers.js";

/**
 * Shared by the permission and environment matrices: the route table as a list, the rule a
 * key's permissions follow (written here from the contract, not taken from the server), and
 * the requests those tests send.
 */

export type RouteName = keyof typeof ROUTE_PERMISSIONS;
/** Every external route of the one table, e.g. `GET /subscribers/:id`. */
export const ROUTES = Object.keys(ROUTE_PERMISSIONS) as RouteName[];

export function methodOf(route: string): string {
  return route.slice(0, route.indexOf(" "));
}
export function templateOf(route: string): string {
  return route.slice(route.indexOf(" ") + 1);
}

const RANK: Record<string, number> = { read: 1, write: 2, delete: 3 };

/**
 * Whether a list of permissions (as given, not normalised) grants `need`: a permission of the
 * same resource or of `*`, with an action at least as strong (read < write < delete).
 * `null` (a route that needs nothing) is granted to every key.
 */
export function grants(permissions: readonly string[], need: string | null): boolean {
  if (need === null) return true;
  const [resource, action] = need.split(":") as [string, string];
  return permissions.some((p) => {
    const [r, a] = p.split(":") as [string, string];
    return (r === "*" || r === resource) && (RANK[a] ?? 0) >= (RANK[action] ?? 99);
  });
}

/** A `/api` request with extra headers (the harness's `api` sends none). */
export function apiWith(
  h: Harness,
  method: string,
  url: string,
  token: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<LightMyRequestResponse> {
  return h.app.inject({
    method: method as "GET",
    url,
    headers: { authorization: `Bearer ${token}`, ...headers },
    ...(body === undefined ? {} : { payload: body as object }),
  });
}

export type LogRow = {
  id: number;
  method: string;
  path: string;
  status_code: number;
  error_code: string | null;
  message: string | null;
  environment: string;
};

/** A key's call log, oldest first, as an admin reads it. */
export async function keyLog(h: Harness, keyId: number): Promise<LogRow[]> {
  await h.kg.callLog.flush();
  const res = await h.api("GET", `/api/api-keys/${keyId}/logs?limit=1000`, h.adminToken);
  expectStatus(res, 200);
  return (res.json().data as LogRow[]).reverse();
}
