import { type Action, bit, type Permission, type Resource } from "../keys/permissions.js";

/**
 * The one table of what each external route needs: a permission, or `null` for none (any
 * valid key may call it, to test its connection). Keys are `METHOD /path` under
 * `/api/v1/external`; a HEAD request needs what its GET needs. The external surface refuses to
 * start with a route missing here, and the OpenAPI document states each entry per operation.
 */
export const ROUTE_PERMISSIONS = {
  "GET /whoami": null,
  "GET /subscribers": "subscribers:read",
  "GET /subscribers/by-username/:username": "subscribers:read",
  "GET /subscribers/:id": "subscribers:read",
  "POST /subscribers": "subscribers:write",
  "PUT /subscribers/:id": "subscribers:write",
  "DELETE /subscribers/:id": "subscribers:delete",
  "POST /subscribers/:id/suspend": "subscribers:write",
  "POST /subscribers/:id/activate": "subscribers:write",
  "GET /subscribers/:id/usage": "usage:read",
  "GET /services": "services:read",
  "GET /services/:id": "services:read",
  "GET /nas": "nas:read",
  "GET /nas/:id": "nas:read",
  "GET /transactions": "transactions:read",
  "GET /transactions/:id": "transactions:read",
  "POST /transactions": "transactions:write",
  "GET /system/stats": "stats:read",
} as const satisfies Record<string, Permission | null>;

/** What a route's key check is given: the bit it needs (0 for none) and the header naming it. */
export type RouteGuard = { need: number; accepted: string; route: string };

/** `X-Accepted-Permissions` of a route that needs none, of a miss, and of the health check. */
export const NO_PERMISSION = "none";

/** The permission a route needs as the table says: null for none, undefined when not in it. */
export function permissionOf(method: string, relative: string): Permission | null | undefined {
  const route = `${method.toUpperCase()} ${relative}`;
  return Object.hasOwn(ROUTE_PERMISSIONS, route)
    ? ROUTE_PERMISSIONS[route as keyof typeof ROUTE_PERMISSIONS]
    : undefined;
}

/** The guard of an external route (a HEAD needs what its GET needs), or null when the table does not name it. */
export function guardOf(method: string, relative: string): RouteGuard | null {
  const route = `${method === "HEAD" ? "GET" : method} ${relative}`;
  const permission = permissionOf(method === "HEAD" ? "GET" : method, relative);
  if (permission === undefined) return null;
  if (permission === null) return { need: 0, accepted: NO_PERMISSION, route };
  const [resource, action] = permission.split(":") as [Resource, Action];
  return { need: bit(resource, action), accepted: permission, route };
}
