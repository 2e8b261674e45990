/**
 * A key's permissions: `resource:action` strings where `write` implies `read`, `delete`
 * implies `write`, and `*` stands for every resource. The console holds them as one level per
 * resource (none < read < write < delete), so the implications hold by construction, and
 * writes them back in one normal form: `*:<level>` for what every resource has, then each
 * resource that has more, highest action only.
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

/** 0 none, 1 read, 2 write, 3 delete. */
export type Level = 0 | 1 | 2 | 3;
export type Levels = Record<Resource, Level>;

export const RESOURCE_LABEL: Record<Resource, string> = {
  subscribers: "Subscribers",
  transactions: "Transactions",
  usage: "Usage",
  services: "Services",
  nas: "NAS devices",
  stats: "Stats",
};

const NAME: Record<Resource, string> = {
  subscribers: "subscribers",
  transactions: "transactions",
  usage: "usage",
  services: "services",
  nas: "NAS devices",
  stats: "stats",
};

/** What writing means for each resource, and writing with deleting. */
const VERBS: Record<Resource, [write: string, del: string]> = {
  subscribers: ["create and change", "create, change and delete"],
  transactions: ["post", "post and delete"],
  usage: ["record", "record and delete"],
  services: ["change", "change and delete"],
  nas: ["change", "change and delete"],
  stats: ["change", "change and delete"],
};

const levelOf = (a: Action): Level => (ACTIONS.indexOf(a) + 1) as Level;

export const noLevels = (): Levels =>
  Object.fromEntries(RESOURCES.map((r) => [r, 0])) as unknown as Levels;

/** `" Subscribers:READ "` → `{ resource: "subscribers", action: "read" }`; null when not a permission. */
export function parsePermission(text: string): { resource: Resource | "*"; action: Action } | null {
  const m = /^([a-z*]+):([a-z]+)$/.exec(text.trim().toLowerCase());
  if (!m) return null;
  const [, resource = "", action = ""] = m;
  if (resource !== "*" && !(RESOURCES as readonly string[]).includes(resource)) return null;
  if (!(ACTIONS as readonly string[]).includes(action)) return null;
  return { resource: resource as Resource | "*", action: action as Action };
}

/** The level each resource reaches; strings that are not permissions are ignored. */
export function levelsOf(permissions: readonly string[]): Levels {
  const out = noLevels();
  for (const text of permissions) {
    const p = parsePermission(text);
    if (!p) continue;
    const level = levelOf(p.action);
    for (const r of p.resource === "*" ? RESOURCES : [p.resource])
      if (out[r] < level) out[r] = level;
  }
  return out;
}

/**
 * The normal form of `levels`. Resources in `unreachable` (those the owner's role cannot have)
 * are left out, and do not stop `*` from standing for the others: a key sees what its owner
 * sees, so `*:read` on a reseller's key reads everything but NAS devices.
 */
export function toPermissions(levels: Levels, unreachable: readonly Resource[] = []): string[] {
  const reach = RESOURCES.filter((r) => !unreachable.includes(r));
  if (reach.length === 0) return [];
  const base = Math.min(...reach.map((r) => levels[r]));
  const out = base > 0 ? [`*:${ACTIONS[base - 1]}`] : [];
  for (const r of reach) if (levels[r] > base) out.push(`${r}:${ACTIONS[levels[r] - 1]}`);
  return out;
}

/** The normal form of a list of permissions (implied ones dropped, `*` where it fits). */
export function normalise(permissions: readonly string[], unreachable: readonly Resource[] = []) {
  return toPermissions(levelsOf(permissions), unreachable);
}

export const samePermissions = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((p, i) => p === b[i]);

/** Whether `levels` grants `action` on `resource`. */
export const grants = (levels: Levels, resource: Resource, action: Action): boolean =>
  levels[resource] >= levelOf(action);

/**
 * Ticks or unticks one box of the grid, keeping the implications: ticking `delete` ticks
 * `write` and `read`; unticking `read` unticks `write` and `delete`.
 */
export function tick(levels: Levels, resource: Resource, action: Action, on: boolean): Levels {
  const level = levelOf(action);
  const next = on ? Math.max(levels[resource], level) : Math.min(levels[resource], level - 1);
  return { ...levels, [resource]: next as Level };
}

/** The resources a key owned by someone of `role` cannot be granted: the server refuses them. */
export function unreachableFor(role: string | undefined): Resource[] {
  return role === "reseller" ? ["nas"] : [];
}

/** "a", "a and b", "a, b and c". */
function list(items: string[], last = "and"): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} ${last} ${items[items.length - 1]}`;
}

/** Clauses such as "post transactions", one per verb, in resource order. */
function byVerb(resources: Resource[], which: 0 | 1): string[] {
  const groups = new Map<string, string[]>();
  for (const r of resources) {
    const verb = VERBS[r][which];
    groups.set(verb, [...(groups.get(verb) ?? []), NAME[r]]);
  }
  return [...groups].map(([verb, names]) => `${verb} ${list(names)}`);
}

/**
 * What a key with these permissions may do, in plain words, e.g. "Can read subscribers and
 * usage and post transactions; cannot delete anything. No access to services, NAS devices or
 * stats." `role` is the owner's: resources it cannot have are named as out of reach.
 */
export function summarise(levels: Levels, role?: string): string {
  const unreachable = unreachableFor(role);
  const reach = RESOURCES.filter((r) => !unreachable.includes(r));
  const at = (l: Level) => reach.filter((r) => levels[r] === l);
  const base = Math.min(...reach.map((r) => levels[r]));
  const top = Math.max(...reach.map((r) => levels[r]));
  const outOfReach =
    unreachable.length > 0
      ? ` Its owner is a ${role}, so ${list(unreachable.map((r) => NAME[r]))} stay out of reach.`
      : "";
  if (top === 0)
    return `No permissions: the key could only test its connection (/whoami).${outOfReach}`;

  const clauses: string[] = [];
  if (base === 1) clauses.push("read everything");
  if (base === 2) clauses.push("read and change everything");
  if (base === 3) clauses.push("read, change and delete everything");
  if (base === 0 && at(1).length > 0) clauses.push(`read ${list(at(1).map((r) => NAME[r]))}`);
  if (base < 2) clauses.push(...byVerb(at(2), 0));
  if (base === 2 && at(3).length > 0) clauses.push(`delete ${list(at(3).map((r) => NAME[r]))}`);
  if (base < 2) clauses.push(...byVerb(at(3), 1));

  const cannot =
    top === 1 ? "; cannot change or delete anything" : top === 2 ? "; cannot delete anything" : "";
  const none = at(0);
  const noAccess =
    none.length > 0
      ? ` No access to ${list(
          none.map((r) => NAME[r]),
          "or",
        )}.`
      : "";
  return `Can ${list(clauses)}${cannot}.${noAccess}${outOfReach}`;
}
