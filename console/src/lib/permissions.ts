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

export const FULL: Levels = Object.fromEntries(RESOURCES.map((r) => [r, 3])) as unknown as Levels;

/**
 * The most a key owned by someone of each role may do, when the server does not say (its
 * presets answer `role_limits`): a reseller's key reaches subscribers, their transactions
 * and usage, reads the catalogue and the stats, and never NAS devices.
 */
const ROLE_LIMITS: Record<string, string[]> = {
  reseller: [
    "subscribers:delete",
    "transactions:delete",
    "usage:delete",
    "services:read",
    "stats:read",
  ],
};

/** What a key of an owner with `role` may be granted at most (everything for an admin). */
export function limitsFor(role: string | undefined, roleLimits?: Record<string, string[]>): Levels {
  const list = role === undefined ? undefined : (roleLimits?.[role] ?? ROLE_LIMITS[role]);
  return list ? levelsOf(list) : FULL;
}

const clamp = (levels: Levels, limits: Levels): Levels =>
  Object.fromEntries(
    RESOURCES.map((r) => [r, Math.min(levels[r], limits[r])]),
  ) as unknown as Levels;

/** What `levels` grants a key within `limits`: the boxes that stay ticked. */
export const effective = clamp;

/**
 * The highest `*:<level>` that grants nothing beyond `e` within `limits` (0: none). A key sees
 * what its owner sees, so `*:read` on a reseller's key reads everything but NAS devices.
 */
function floorOf(e: Levels, limits: Levels): Level {
  for (const b of [3, 2, 1] as const) {
    const capped = RESOURCES.map((r) => Math.min(b, limits[r]));
    if (capped.some((c) => c > 0) && RESOURCES.every((r, i) => (capped[i] ?? 0) <= e[r])) return b;
  }
  return 0;
}

/**
 * The normal form of `levels` for an owner whose role allows `limits`: what lies beyond the
 * limits is left out (the server would refuse it), and `*` stands for every resource where
 * it grants what is ticked.
 */
export function toPermissions(levels: Levels, limits: Levels = FULL): string[] {
  const e = clamp(levels, limits);
  const base = floorOf(e, limits);
  const out = base > 0 ? [`*:${ACTIONS[base - 1]}`] : [];
  for (const r of RESOURCES)
    if (e[r] > Math.min(base, limits[r])) out.push(`${r}:${ACTIONS[e[r] - 1]}`);
  return out;
}

/** The normal form of a list of permissions (implied ones dropped, `*` where it fits). */
export function normalise(permissions: readonly string[], limits: Levels = FULL) {
  return toPermissions(levelsOf(permissions), limits);
}

export const samePermissions = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((p, i) => p === b[i]);

/** Whether `levels` grants `action` on `resource`. */
export const grants = (levels: Levels, resource: Resource, action: Action): boolean =>
  levels[resource] >= levelOf(action);

/** Whether `limits` allow `action` on `resource` at all. */
export const allows = grants;

/** The explicit permissions of `list` beyond `limits` (`*` never is: it stops at the limits). */
export function beyond(list: readonly string[], limits: Levels): string[] {
  return list.filter((text) => {
    const p = parsePermission(text);
    return p !== null && p.resource !== "*" && !allows(limits, p.resource, p.action);
  });
}

/**
 * Ticks or unticks one box of the grid, keeping the implications: ticking `delete` ticks
 * `write` and `read`; unticking `read` unticks `write` and `delete`.
 */
export function tick(levels: Levels, resource: Resource, action: Action, on: boolean): Levels {
  const level = levelOf(action);
  const next = on ? Math.max(levels[resource], level) : Math.min(levels[resource], level - 1);
  return { ...levels, [resource]: next as Level };
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
 * stats." Within an owner's `limits` (its `role`'s), what they cut off is named.
 */
export function summarise(
  levels: Levels,
  { limits = FULL, role }: { limits?: Levels; role?: string } = {},
): string {
  const e = clamp(levels, limits);
  const base = floorOf(e, limits);
  const reach = RESOURCES.filter((r) => limits[r] > 0);
  const above = (l: Level) => reach.filter((r) => e[r] === l && e[r] > Math.min(base, limits[r]));
  const names = (rs: Resource[]) => list(rs.map((r) => NAME[r]));

  const cut = (limit: Level) => RESOURCES.filter((r) => limits[r] === limit && levels[r] > limit);
  const cuts = [
    cut(0).length > 0 ? `${names(cut(0))} stay out of reach` : "",
    cut(1).length > 0 ? `${names(cut(1))} can only be read` : "",
    cut(2).length > 0 ? `${names(cut(2))} cannot be deleted` : "",
  ].filter(Boolean);
  const owner = cuts.length > 0 ? ` Its owner is a ${role ?? "user"}, so ${list(cuts)}.` : "";

  const top = Math.max(0, ...reach.map((r) => e[r]));
  if (top === 0) return `No permissions: the key could only test its connection (/whoami).${owner}`;

  const clauses: string[] = [];
  if (base === 1) clauses.push("read everything");
  if (base === 2) clauses.push("read and change everything");
  if (base === 3) clauses.push("read, change and delete everything");
  if (above(1).length > 0) clauses.push(`read ${names(above(1))}`);
  clauses.push(...byVerb(above(2), 0));
  if (base === 2 && above(3).length > 0) clauses.push(`delete ${names(above(3))}`);
  else clauses.push(...byVerb(above(3), 1));

  const cannot =
    top === 1 ? "; cannot change or delete anything" : top === 2 ? "; cannot delete anything" : "";
  const none = reach.filter((r) => e[r] === 0);
  const noAccess =
    none.length > 0
      ? ` No access to ${list(
          none.map((r) => NAME[r]),
          "or",
        )}.`
      : "";
  return `Can ${list(clauses)}${cannot}.${noAccess}${owner}`;
}

/** The summary of a key's permissions, within what its owner's `role` allows. */
export function describePermissions(permissions: readonly string[], role?: string): string {
  return summarise(levelsOf(permissions), { role, limits: limitsFor(role) });
}
