import { STATUS_CODES } from "node:http";

/** Which surface a request came to: the external API, the console's /api, or anything else. */
export type Surface = "external" | "api" | "other";

/** The route label of a request no route took (a 404 or 405 of the router). */
export const UNMATCHED = "unmatched";

/**
 * Upper bounds of the latency histogram's buckets, in milliseconds (0.5 ms to 10 s). They are
 * exposed in seconds, as Prometheus wants.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000,
];
const BOUNDS = Float64Array.from(LATENCY_BUCKETS_MS);
const BUCKETS = BOUNDS.length;

/**
 * The status codes a request can be counted under, each a column of a route's counts: every
 * code Node names, then one column per class for any other code (labelled `4xx` and so on),
 * so a route's counts are a small fixed array.
 */
export const STATUS_LABELS: readonly string[] = [
  ...Object.keys(STATUS_CODES).filter((c) => Number(c) >= 100 && Number(c) <= 599),
  "1xx",
  "2xx",
  "3xx",
  "4xx",
  "5xx",
];
const COLUMNS = STATUS_LABELS.length;
/** Status − 100 → column. */
const COLUMN = new Uint8Array(500);
for (let s = 100; s < 600; s++) {
  const exact = STATUS_LABELS.indexOf(String(s));
  COLUMN[s - 100] = exact === -1 ? COLUMNS - 5 + Math.floor(s / 100) - 1 : exact;
}
/** A status outside 100–599 (never sent by Node): counted as a server error. */
const OUT_OF_RANGE = COLUMNS - 1;

/**
 * One route's request accounting: counts per status and a latency histogram, in preallocated
 * typed arrays. Recording a request is a few array increments — no labels, no hashing, no
 * allocation; the registry turns these into Prometheus series when it is scraped.
 */
export class RouteSlot {
  /** Requests answered, by status column (see STATUS_LABELS). */
  readonly statuses = new Float64Array(COLUMNS);
  /** Requests by latency bucket (not cumulative); the last is above the largest bound. */
  readonly buckets = new Float64Array(BUCKETS + 1);
  /** Requests answered, all statuses. */
  count = 0;
  /** Latencies added up, in milliseconds. */
  sumMs = 0;

  constructor(
    readonly surface: Surface,
    readonly method: string,
    readonly route: string,
  ) {}

  /** Counts one answered request: its status and how long it took, in milliseconds. */
  record(status: number, ms: number): void {
    const s = status - 100;
    const c = s >= 0 && s < 500 ? (COLUMN[s] as number) : OUT_OF_RANGE;
    this.statuses[c] = (this.statuses[c] as number) + 1;
    let i = 0;
    while (i < BUCKETS && ms > (BOUNDS[i] as number)) i++;
    this.buckets[i] = (this.buckets[i] as number) + 1;
    this.count++;
    this.sumMs += ms;
  }
}

/** The methods an unmatched request is counted under; anything else is `OTHER`. */
const UNMATCHED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * Every route's slot, made once when the route is registered, plus a fixed set for requests
 * no route took (per surface and method): however many distinct paths arrive, the series are
 * bounded by the routes Keygate serves.
 */
export class RequestStats {
  readonly slots: RouteSlot[] = [];
  private readonly unmatched = new Map<string, RouteSlot>();

  constructor() {
    for (const surface of ["external", "api", "other"] as const) {
      for (const method of [...UNMATCHED_METHODS, "OTHER"]) {
        const slot = new RouteSlot(surface, method, UNMATCHED);
        this.unmatched.set(`${surface} ${method}`, slot);
        this.slots.push(slot);
      }
    }
  }

  /** The slot of a served route, made at registration (never per request). */
  route(method: string, url: string): RouteSlot {
    const slot = new RouteSlot(surfaceOf(url), method, url);
    this.slots.push(slot);
    return slot;
  }

  /** The slot of a request no route took, by its surface and method. */
  miss(url: string, method: string): RouteSlot {
    const m = UNMATCHED_METHODS.includes(method) ? method : "OTHER";
    return this.unmatched.get(`${surfaceOf(url)} ${m}`) as RouteSlot;
  }
}

/** The surface of a path: `/api/v1/external…` is external, the rest of `/api…` is the console's. */
export function surfaceOf(url: string): Surface {
  if (url.startsWith("/api/v1/external") && "/?".includes(url[16] ?? "")) return "external";
  if (url.startsWith("/api") && "/?".includes(url[4] ?? "")) return "api";
  return "other";
}
