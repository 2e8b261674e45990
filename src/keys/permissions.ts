import type { Role } from "../auth/principal.js";
import { type Scope, scopeNeededFor } from "./scopes.js";

/**
 * Permissions: `resource:action` strings. Actions nest (`delete` implies `write`, `write`
 * implies `read`) and `*` stands for every resource. A set of permissions is kept as a bit
 * mask with the implied actions filled in, so a request's check is one `&` against the one
 * bit its route needs: no parsing, no look-up and no allocation on the hot path.
 */
export const RESOURCES = [
  "subscribers",
  "transactions",
  "usage",
  "services",
  "nas",
  "stats",
] as const;
export type Resource = (typeof RESOURCES)[number];
export const ACTIONS = ["read", "write", "delete"] as const;
export type Action = (typeof ACTIONS)[number];
export type Permission = `${Resource}:${Action}`;

/** Plain names for messages and summaries. */
export const RESOURCE_NAMES: Record<Resource, string> = {
  subscribers: "subscribers",
  transactions: "transactions",
  usage: "usage",
  services: "the service catalogue",
  nas: "NAS devices",
  stats: "statistics",
};

const ACTION_BITS = ACTIONS.length;
/** The bit that says "`resource` may `action`". */
export function bit(resource: Resource, action: Action): number {
  return 1 << (RESOURCES.indexOf(resource) * ACTION_BITS + ACTIONS.indexOf(action));
}
/** The bits above the resources': "some resource may `action`" (what an unknown route needs). */
const ANY_BASE = RESOURCES.length * ACTION_BITS;
export function anyBit(action: Action): number {
  return 1 << (ANY_BASE + ACTIONS.indexOf(action));
}

/** A permission and everything it implies, as bits (the "any" bits included). */
function grantBits(resource: Resource, action: Action): number {
  let bits = 0;
  for (let a = 0; a <= ACTIONS.indexOf(action); a++) {
    bits |= bit(resource, ACTIONS[a] as Action) | anyBit(ACTIONS[a] as Action);
  }
  return bits;
}

/** The highest action a mask grants on a resource: 0 none, 1 read, 2 write, 3 delete. */
function levelOf(mask: number, resource: Resource): number {
  let level = 0;
  for (let a = 0; a < ACTION_BITS; a++)
    if (mask & bit(resource, ACTIONS[a] as Action)) level = a + 1;
  return level;
}

export type Parsed =
  { ok: true; mask: number } | { ok: false; problems: { index: number; message: string }[] };

/** Reads a list of permission strings; every bad entry is named with what to write instead. */
export function parsePermissions(list: readonly string[]): Parsed {
  const problems: { index: number; message: string }[] = [];
  let mask = 0;
  list.forEach((raw, index) => {
    const text = raw.trim().toLowerCase();
    const colon = text.indexOf(":");
    const resource = colon === -1 ? text : text.slice(0, colon);
    const action = colon === -1 ? "" : text.slice(colon + 1);
    const resourceOk = resource === "*" || (RESOURCES as readonly string[]).includes(resource);
    const actionOk = (ACTIONS as readonly string[]).includes(action);
    if (!resourceOk || !actionOk) {
      problems.push({ index, message: explain(resource, action, resourceOk, actionOk) });
      return;
    }
    const resources = resource === "*" ? RESOURCES : [resource as Resource];
    for (const r of resources) mask |= grantBits(r, action as Action);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, mask };
}

function explain(resource: string, action: string, resourceOk: boolean, actionOk: boolean): string {
  const form = `is not a permission: write resource:action, e.g. "subscribers:read"`;
  if (action === "" && !resource.includes(":")) {
    return (ACTIONS as readonly string[]).includes(resource)
      ? `is not a permission: "${resource}" alone is a scope; write "*:${resource}" for every resource`
      : form;
  }
  const parts: string[] = [];
  if (!resourceOk)
    parts.push(
      `"${resource.slice(0, 32)}" is not a resource (${RESOURCES.join(", ")}, or * for all)`,
    );
  if (!actionOk) parts.push(`"${action.slice(0, 32)}" is not an action (${ACTIONS.join(", ")})`);
  return `is not a permission: ${parts.join("; ")}`;
}

/**
 * The shortest list that grants exactly what `mask` grants: `*:action` for what every
 * resource has, then each resource that has more. Sorted the same way every time, so two
 * keys with the same rights show the same list.
 */
export function normalize(mask: number): string[] {
  const levels = RESOURCES.map((r) => levelOf(mask, r));
  const floor = Math.min(...levels);
  const out: string[] = [];
  if (floor > 0) out.push(`*:${ACTIONS[floor - 1]}`);
  RESOURCES.forEach((r, i) => {
    const level = levels[i] as number;
    if (level > floor) out.push(`${r}:${ACTIONS[level - 1]}`);
  });
  return out;
}

/** Whether `mask` grants everything `other` grants. */
export function covers(mask: number, other: number): boolean {
  return (mask & other) === other;
}

/** What each old scope stands for. */
export const SCOPE_PERMISSIONS: Record<Scope, string[]> = {
  read: ["*:read"],
  write: ["*:write"],
  delete: ["*:delete"],
};

export function maskOf(list: readonly string[]): number {
  const parsed = parsePermissions(list);
  if (!parsed.ok) throw new Error(`not permissions: ${JSON.stringify(list)}`);
  return parsed.mask;
}

const SCOPE_MASKS: [Scope, number][] = (["read", "write", "delete"] as const).map((s) => [
  s,
  maskOf(SCOPE_PERMISSIONS[s]),
]);

/** The mask an old scope stands for. */
export function scopeMask(scope: Scope | "custom"): number {
  return SCOPE_MASKS.find(([s]) => s === scope)?.[1] ?? 0;
}

/**
 * The old `scopes` field for a set of permissions: the preset they are exactly, or
 * `custom`. (Never a wider preset: a client reading `write` must be able to write
 * everything a write key could.)
 */
export function scopeOf(mask: number): Scope | "custom" {
  for (const [scope, m] of SCOPE_MASKS) if (m === mask) return scope;
  return "custom";
}

/** Named presets offered by the console and `GET /api/api-keys/presets`. */
export const PRESETS: {
  name: string;
  label: string;
  description: string;
  permissions: string[];
}[] = [
  {
    name: "read_only",
    label: "Read only",
    description: "reads everything the owner can see; changes nothing",
    permissions: ["*:read"],
  },
  {
    name: "billing",
    label: "Billing",
    description: "reads subscribers and their usage, posts payments and refunds",
    permissions: ["subscribers:read", "transactions:write", "usage:read"],
  },
  {
    name: "provisioning",
    label: "Provisioning",
    description: "creates, changes, suspends and deletes subscribers; reads the service catalogue",
    permissions: ["subscribers:delete", "services:read"],
  },
  {
    name: "monitoring",
    label: "Monitoring",
    description: "reads the totals of /system/stats, nothing else",
    permissions: ["stats:read"],
  },
  {
    name: "read_write",
    label: "Read and write",
    description:
      "reads and changes everything the owner can, deletes nothing (the old write scope)",
    permissions: ["*:write"],
  },
  {
    name: "full",
    label: "Full access",
    description: "everything the owner can do, deleting included (the old delete scope)",
    permissions: ["*:delete"],
  },
];

/** What each role may do at most: a key acts for its owner and never exceeds it. */
export const ROLE_MASKS: Record<Role, number> = {
  admin: maskOf(["*:delete"]),
  reseller: maskOf([
    "subscribers:delete",
    "transactions:delete",
    "usage:delete",
    "services:read",
    "stats:read",
  ]),
};

/**
 * The permissions a list names explicitly that its owner's role does not have, e.g.
 * `nas:read` for a reseller. `*` is not counted: it stands for every resource the owner may
 * reach, and the role is checked again on each request.
 */
export function beyondRole(list: readonly string[], role: Role): string[] {
  const roleMask = ROLE_MASKS[role];
  const extra: string[] = [];
  for (const raw of list) {
    const text = raw.trim().toLowerCase();
    if (text.startsWith("*")) continue;
    const parsed = parsePermissions([text]);
    if (parsed.ok && !covers(roleMask, parsed.mask) && !extra.includes(text)) extra.push(text);
  }
  return extra;
}

/** A permission by name, for messages: the bit's `resource:action`, or `any:action`. */
export function permissionName(need: number): string {
  for (const r of RESOURCES) for (const a of ACTIONS) if (need === bit(r, a)) return `${r}:${a}`;
  for (const a of ACTIONS) if (need === anyBit(a)) return `${a} on some resource`;
  return "none";
}

/** The bit a route without its own permission needs: its method's action on any resource. */
export function methodNeed(method: string): number {
  return anyBit(scopeNeededFor(method));
}

/**
 * A plain-language account of a mask: "can read subscribers and usage, and write
 * transactions; cannot delete anything".
 */
export function summarize(mask: number): string {
  const by: Record<Action, string[]> = { read: [], write: [], delete: [] };
  for (const r of RESOURCES) {
    const level = levelOf(mask, r);
    if (level > 0) by[ACTIONS[level - 1] as Action].push(RESOURCE_NAMES[r]);
  }
  if (ACTIONS.every((a) => by[a].length === 0)) {
    return "can do nothing but test its connection (/whoami and /system/health)";
  }
  const verb: Record<Action, string> = {
    read: "read",
    write: "read and write",
    delete: "read, write and delete",
  };
  const parts = ACTIONS.filter((a) => by[a].length > 0).map((a) =>
    by[a].length === RESOURCES.length ? `${verb[a]} everything` : `${verb[a]} ${list(by[a])}`,
  );
  if (by.delete.length === 0) parts.push("cannot delete anything");
  return `can ${parts.join("; ")}`;
}

function list(items: string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
