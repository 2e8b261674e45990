import FindMyWay from "find-my-way";
import type { FastifyRequest } from "fastify";
import { AppError } from "../errors.js";
import { EXTERNAL_PREFIX, isExternal, pathOf } from "./errors.js";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;

/** The resources of the external surface, and words integrators reach for instead. */
const RESOURCES: Record<string, string[]> = {
  subscribers: ["subscriber", "customers", "customer", "clients", "client", "accounts", "users"],
  services: ["service", "plans", "plan", "packages", "package", "products", "tariffs"],
  nas: ["devices", "device", "routers", "router", "nas-devices", "nases"],
  transactions: ["transaction", "payments", "payment", "invoices", "charges", "txns"],
  whoami: ["me", "self", "key", "ping"],
  "system/health": ["health", "healthz", "status"],
};

/** Puts a route's methods (those a path can be asked with) on a router. */
function register(router: ReturnType<typeof FindMyWay>, method: string | string[], url: string) {
  for (const m of [method].flat()) {
    if (!(METHODS as readonly string[]).includes(m)) continue;
    try {
      router.on(m as "GET", url, () => {});
    } catch {
      // Registered twice (HEAD beside GET): already known.
    }
  }
}

/**
 * Every route's method and path, kept apart from Fastify's router so that a miss can be
 * told apart: a path that exists under other methods (405, with `Allow`), a path that is
 * almost one (404 with "did you mean"), or nothing at all.
 */
export class RouteTable {
  private readonly router = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 100 });

  add(method: string | string[], url: string): void {
    register(this.router, method, url);
  }

  /** The methods a path is served with. */
  allowed(path: string): string[] {
    return METHODS.filter((m) => this.router.find(m, path) !== null);
  }

  /** Routes behind the external surface's key check (the rest take no X-API-Key). */
  private readonly keyedRouter = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 100 });

  /** Marks a route as one the key check guards. */
  keyed(method: string | string[], url: string): void {
    register(this.keyedRouter, method, url);
  }

  /**
   * For a path some route serves under other methods: whether one of those routes takes a
   * key (`keyed`) or none does (`open`: the token endpoint, the leak reports); null for a path
   * no route serves.
   */
  servedAs(path: string): "keyed" | "open" | null {
    if (this.allowed(path).length === 0) return null;
    return METHODS.some((m) => this.keyedRouter.find(m, path) !== null) ? "keyed" : "open";
  }

  /** What to answer a request no route took: 405 when the path exists, else a 404 that helps. */
  miss(request: FastifyRequest): AppError {
    const path = pathOf(request.url, 200);
    const allowed = this.allowed(path);
    if (allowed.length > 0) {
      const list = allowed.join(", ");
      return new AppError(
        "METHOD_NOT_ALLOWED",
        `${request.method} is not served at ${path}; it takes ${list}. The full list is at /docs`,
        undefined,
        undefined,
        { Allow: list },
      );
    }
    const suggestion = this.suggest(path);
    const where = isExternal(path) ? "the external surface" : "Keygate";
    const hint = suggestion ? ` Did you mean ${suggestion}?` : "";
    return new AppError(
      "NOT_FOUND",
      `${where} has no route ${request.method} ${path}.${hint} The full list is at /docs (machine-readable: /openapi.json)`,
    );
  }

  /** A path that exists and is what `path` most likely meant, or null. */
  suggest(path: string): string | null {
    let end = path.length;
    while (end > 1 && path[end - 1] === "/") end--;
    const trimmed = path.slice(0, end);
    const rest = externalRest(trimmed);
    if (rest === null) return null;
    const candidate = `${EXTERNAL_PREFIX}${rest}`;
    if (candidate !== trimmed && this.allowed(candidate).length > 0) return candidate;
    // A near-miss resource name: the first segment, then the rest as sent.
    const [first = "", ...tail] = rest.split("/").filter(Boolean);
    const resource = closestResource(first.toLowerCase());
    if (resource === null) return null;
    const fixed = [EXTERNAL_PREFIX, resource, ...tail].join("/");
    if (this.allowed(fixed).length > 0) return fixed;
    return `${EXTERNAL_PREFIX}/${resource}`;
  }
}

/**
 * Whether a miss at this URL is answered in the external envelope: it is aimed at the
 * external surface, under its own prefix or an old or unversioned one.
 */
export function looksExternal(url: string): boolean {
  return externalRest(pathOf(url, 200)) !== null;
}

/**
 * The part after the external prefix of a path aimed at the external surface, under its
 * own prefix or an old or unversioned one (`/api/external/…`, `/v1/external/…`,
 * `/api/v1/subscribers`, `/external/…`); null when it is not aimed there.
 */
function externalRest(path: string): string | null {
  if (isExternal(path)) return path.slice(EXTERNAL_PREFIX.length);
  const m = /^(?:\/api)?(?:\/v\d{1,2})?\/external(\/[^?]*)?$/.exec(path);
  if (m) return m[1] ?? "";
  const versioned = /^\/api\/v\d{1,2}(\/[^?]*)$/.exec(path);
  if (versioned) return versioned[1] as string;
  return null;
}

function closestResource(word: string): string | null {
  if (word === "") return null;
  let best: string | null = null;
  let bestDistance = 3;
  for (const [resource, aliases] of Object.entries(RESOURCES)) {
    for (const name of [resource, ...aliases]) {
      if (name === word) return resource;
      const d = distance(word, name);
      if (d < bestDistance) {
        bestDistance = d;
        best = resource;
      }
    }
  }
  return best;
}

/** Levenshtein distance, for short words only. */
function distance(a: string, b: string): number {
  if (a.length > 32 || b.length > 32) return Number.POSITIVE_INFINITY;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + cost,
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}
