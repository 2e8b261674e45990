/** Scopes nest: each allows everything the one before it does, and more. */
export const SCOPES = ["read", "write", "delete"] as const;
export type Scope = (typeof SCOPES)[number];

const RANK: Record<Scope, number> = { read: 0, write: 1, delete: 2 };

/** The narrowest scope that allows an HTTP method. Unknown verbs need `delete`, the widest. */
export function scopeNeededFor(method: string): Scope {
  switch (method) {
    case "GET":
    case "HEAD":
    case "OPTIONS":
      return "read";
    case "POST":
    case "PUT":
    case "PATCH":
      return "write";
    default:
      return "delete";
  }
}

export function scopeAllows(scope: Scope, method: string): boolean {
  return RANK[scope] >= RANK[scopeNeededFor(method)];
}

export function isScope(value: unknown): value is Scope {
  return value === "read" || value === "write" || value === "delete";
}

/** The methods a scope allows, for messages and docs. */
export function verbsOf(scope: Scope): string[] {
  return ["GET", "POST", "PUT", "DELETE"].filter((m) => scopeAllows(scope, m));
}
