import type { Environment } from "../keys/format.js";
import type { Scope } from "../keys/scopes.js";

export const ROLES = ["admin", "reseller"] as const;
export type Role = (typeof ROLES)[number];

/** Who is acting. Both surfaces and the command line produce one; every panel function takes it first. */
export type Principal = {
  /** The acting user; 0 for the operator at the command line, who is no user (see `actorId`). */
  userId: number;
  username: string;
  role: Role;
  via: "jwt" | "key" | "cli";
  /** The client address this request came from, as Keygate sees it. */
  ip: string;
  key?: { id: number; name: string; prefix: string; scopes: Scope | "custom" };
  /**
   * Which data the principal sees and changes: a key's own environment, or the one a
   * signed-in user chose (`Keygate-Environment`). Live when unset.
   */
  environment?: Environment;
  /** A signed-in user with two-factor sign-in on (what KEYGATE_REQUIRE_2FA asks for). */
  twoFactor?: boolean;
};

/**
 * The operator running `keygate` on the server: an admin's rights without being a user of
 * Keygate. `name` says who at the command line (e.g. `root@host`); nothing records a user id
 * or an address for it.
 */
export function operator(name: string): Principal {
  return { userId: 0, username: name, role: "admin", via: "cli", ip: "" };
}

/** The user id to record as the actor of a change: none for the operator at the command line. */
export function actorId(p: Pick<Principal, "userId" | "via">): number | null {
  return p.via === "cli" ? null : p.userId;
}

/** The owner a principal's queries are fenced to; `null` means "sees everything". */
export function visibleOwner(p: Principal): number | null {
  return p.role === "admin" ? null : p.userId;
}

/**
 * What a principal's panel queries are fenced to: the one place visibility is decided.
 * `ownerId` null means every owner's records (an admin); `environment` is never crossed.
 */
export type Fence = { ownerId: number | null; environment: Environment };

export function fenceOf(p: Principal): Fence {
  return { ownerId: visibleOwner(p), environment: p.environment ?? "live" };
}

export function isAdmin(p: Principal): boolean {
  return p.role === "admin";
}

/** How a principal reads in a message: "you (reseller \"bob\")" or "this key (pk_live_a8f3…, owned by …)". */
export function describe(p: Principal): string {
  if (p.key) return `this key (${p.key.prefix}…) acts for ${p.role} "${p.username}"`;
  if (p.via === "cli") return `you are the operator at the command line ("${p.username}")`;
  return `you are signed in as ${p.role} "${p.username}"`;
}
