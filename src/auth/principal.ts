import type { Scope } from "../keys/scopes.js";

export const ROLES = ["admin", "reseller"] as const;
export type Role = (typeof ROLES)[number];

/** Who is acting. Both surfaces produce one; every panel function takes it first. */
export type Principal = {
  userId: number;
  username: string;
  role: Role;
  via: "jwt" | "key";
  /** The client address this request came from, as Keygate sees it. */
  ip: string;
  key?: { id: number; name: string; prefix: string; scopes: Scope };
};

/** The owner a principal's queries are fenced to; `null` means "sees everything". */
export function visibleOwner(p: Principal): number | null {
  return p.role === "admin" ? null : p.userId;
}

export function isAdmin(p: Principal): boolean {
  return p.role === "admin";
}

/** How a principal reads in a message: "you (reseller \"bob\")" or "this key (pk_live_a8f3…, owned by …)". */
export function describe(p: Principal): string {
  return p.key
    ? `this key (${p.key.prefix}…) acts for ${p.role} "${p.username}"`
    : `you are signed in as ${p.role} "${p.username}"`;
}
