/**
 * Usage rollups (SPEC §10): one `usage_rollups` row per key, environment and UTC hour, kept
 * by the call-log writer in the transaction of each batch it stores, so a usage read never
 * touches the call log and a request costs nothing more than its row in the batch.
 *
 * A batch is first aggregated in memory (`aggregateUsage`), then merged into its rows:
 * counters are added; the JSON columns (error codes, routes, client addresses, the latency
 * histogram) are read, merged and bounded in JS and written back while the row is locked —
 * on SQLite by the batch's write transaction, on PostgreSQL by the `INSERT … ON CONFLICT DO
 * UPDATE` that adds the counters (it locks each row, in key order, until the batch commits),
 * so writers of several instances never lose one another's counts.
 *
 * Beside each key's rows, the same merge keeps `usage_totals`: one row per owner, environment
 * and hour for the calls of every key that owner had when the merge ran, and one for every
 * key (`EVERY_KEY`). `GET /api/usage` reads those, so it reads as many rows as the range has
 * hours however many keys there are.
 */
import type SQLite from "better-sqlite3";
import { type Kysely, sql } from "kysely";
import { admitted, type CallLogEntry } from "../calllog/writer.js";
import type { DB } from "./schema.js";

// ---------------------------------------------------------------------------------------
// Latency histogram
// ---------------------------------------------------------------------------------------

/** Below this a call's latency falls in bucket 0. */
export const LATENCY_FLOOR_MS = 0.1;
/** Buckets per doubling of latency: bounds 0.1 ms × 2^(i/16). */
export const LATENCY_STEPS = 16;
/** Buckets between the floor and the last bound (0.1 ms × 2^(308/16) ≈ 62.2 s). */
const SPAN = Math.ceil(LATENCY_STEPS * Math.log2(60_000 / LATENCY_FLOOR_MS));
/** Bucket 0 (under 0.1 ms), 1…SPAN (log-spaced), SPAN + 1 (at or over ≈ 62.2 s). */
export const LATENCY_BUCKETS = SPAN + 2;
/**
 * A percentile read off the histogram is the geometric middle of the bucket holding that
 * rank, so it is within this factor of the true value (2^(1/32) − 1 ≈ 2.2 %), for latencies
 * between 0.1 ms and ≈ 62 s; below, it is 0.05 ms (off by at most 0.05 ms); above, the last
 * bound (a floor).
 */
export const LATENCY_RELATIVE_ERROR = 2 ** (1 / (2 * LATENCY_STEPS)) - 1;

/** The bucket a latency (ms) is counted in. */
export function latencyBucket(ms: number): number {
  if (!(ms >= LATENCY_FLOOR_MS)) return 0; // and NaN
  const i = 1 + Math.floor(Math.log2(ms / LATENCY_FLOOR_MS) * LATENCY_STEPS);
  return i > SPAN ? SPAN + 1 : i;
}

/** The latency a bucket stands for: its geometric middle (see LATENCY_RELATIVE_ERROR). */
export function bucketValue(i: number): number {
  if (i <= 0) return LATENCY_FLOOR_MS / 2;
  if (i > SPAN) return LATENCY_FLOOR_MS * 2 ** (SPAN / LATENCY_STEPS);
  return LATENCY_FLOOR_MS * 2 ** ((i - 0.5) / LATENCY_STEPS);
}

/**
 * A histogram as stored: `[first, count(first), count(first + 1), …]` up to the last bucket
 * that counts anything, `[]` when empty — a key's calls of an hour span few buckets.
 */
export function encodeHistogram(counts: ArrayLike<number>): string {
  let first = 0;
  while (first < counts.length && counts[first] === 0) first++;
  if (first === counts.length) return "[]";
  let last = counts.length - 1;
  while (counts[last] === 0) last--;
  let out = `[${first}`;
  for (let i = first; i <= last; i++) out += `,${counts[i] as number}`;
  return `${out}]`;
}

/** Adds a stored histogram into `into` (LATENCY_BUCKETS wide) from `at`; ignores anything malformed. */
export function addHistogram(into: Float64Array | Uint32Array, stored: string, at = 0): void {
  if (stored.length <= 2) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return;
  }
  if (!Array.isArray(parsed) || parsed.length < 2) return;
  const first = parsed[0] as number;
  if (!Number.isInteger(first) || first < 0) return;
  const n = Math.min(parsed.length - 1, LATENCY_BUCKETS - first);
  for (let i = 0; i < n; i++) {
    const c = parsed[i + 1];
    const j = at + first + i;
    if (typeof c === "number" && c > 0) into[j] = (into[j] as number) + c;
  }
}

export type Percentiles = { p50: number; p95: number; p99: number };

/**
 * p50/p95/p99 of a histogram (LATENCY_BUCKETS wide from `at`) by nearest rank, null when it
 * counts nothing; in ms, rounded to 0.01.
 */
export function percentiles(h: ArrayLike<number>, at = 0): Percentiles | null {
  let total = 0;
  for (let i = 0; i < LATENCY_BUCKETS; i++) total += h[at + i] as number;
  if (total === 0) return null;
  const ranks = [0.5, 0.95, 0.99].map((q) => Math.max(1, Math.ceil(q * total)));
  const out: number[] = [];
  let seen = 0;
  for (let i = 0, r = 0; i < LATENCY_BUCKETS && r < ranks.length; i++) {
    seen += h[at + i] as number;
    while (r < ranks.length && seen >= (ranks[r] as number)) {
      out.push(Math.round(bucketValue(i) * 100) / 100);
      r++;
    }
  }
  return { p50: out[0] as number, p95: out[1] as number, p99: out[2] as number };
}

// ---------------------------------------------------------------------------------------
// Bounded maps
// ---------------------------------------------------------------------------------------

/** Most routes, client addresses and error codes a rollup row names; the rest are "(other)". */
export const MAX_ROUTES = 50;
export const MAX_IPS = 50;
export const MAX_ERRORS = 50;
/** Where what a bounded map no longer names is counted. */
export const OTHER = "(other)";

/** Largest first, ties by name: the order a bounded map keeps its entries in. */
function byCount(a: [string, number], b: [string, number]): number {
  return b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

/**
 * The map as stored, as JSON: its `max` largest entries (ties by name), the rest summed into
 * "(other)" with what was there already. Written directly: building an object to stringify
 * cost several times more.
 */
export function boundMapJson(m: Map<string, number>, max: number): string {
  let other = m.get(OTHER) ?? 0;
  if (other > 0) m.delete(OTHER);
  let out = "{";
  const put = (k: string, v: number) => {
    out += `${out.length > 1 ? "," : ""}${JSON.stringify(k)}:${v}`;
  };
  if (m.size <= max) for (const [k, v] of m) put(k, v);
  else {
    const entries = [...m].sort(byCount);
    for (let i = 0; i < entries.length; i++) {
      const [k, v] = entries[i] as [string, number];
      if (i < max) put(k, v);
      else other += v;
    }
  }
  if (other > 0) put(OTHER, other);
  return `${out}}`;
}

/** The bounded map as an object (see boundMapJson). */
export function boundMap(m: Map<string, number>, max: number): Record<string, number> {
  return JSON.parse(boundMapJson(m, max)) as Record<string, number>;
}

/** Adds a stored JSON map's counts into `into`; ignores anything malformed. */
export function addMap(into: Map<string, number>, stored: string): void {
  if (stored.length <= 2) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return;
  const o = parsed as Record<string, unknown>;
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    const v = o[k];
    if (typeof v === "number" && v > 0) into.set(k, (into.get(k) ?? 0) + v);
  }
}

// ---------------------------------------------------------------------------------------
// Aggregating a batch
// ---------------------------------------------------------------------------------------

/** A batch's calls of one key, environment and hour. */
export type RollupGroup = {
  keyId: number;
  environment: string;
  hour: number;
  calls: number;
  admitted: number;
  s2xx: number;
  s3xx: number;
  s4xx: number;
  s5xx: number;
  errors: Map<string, number>;
  /** Method → route pattern (or path) → calls: no string is built per call. */
  routes: Map<string, Map<string, number>>;
  ips: Map<string, number>;
  latency: Uint32Array;
};

/** The counters of a row or group with nothing counted yet. */
function noCalls() {
  return { calls: 0, admitted: 0, s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0 };
}

function group(keyId: number, environment: string, hour: number): RollupGroup {
  return {
    keyId,
    environment,
    hour,
    ...noCalls(),
    errors: new Map(),
    routes: new Map(),
    ips: new Map(),
    latency: new Uint32Array(LATENCY_BUCKETS),
  };
}

function count(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

/**
 * A batch's calls with a key, grouped by key, environment and hour, in that order (the order
 * rows are locked in). `seconds[i]`, when given, is entry i's epoch second; calls without a
 * key, or with an unreadable time, are not rolled up.
 */
export function aggregateUsage(
  entries: readonly CallLogEntry[],
  seconds?: readonly number[],
): RollupGroup[] {
  const all: RollupGroup[] = [];
  countInto(new Map(), all, entries, seconds);
  return sortGroups(all);
}

/**
 * Counts each call with a key into its group of `byKey` (key → its groups), making the groups
 * it lacks (also pushed onto `made`). Calls without a key, or with an unreadable time, are
 * not rolled up.
 */
function countInto(
  byKey: Map<number, RollupGroup[]>,
  made: RollupGroup[],
  entries: readonly CallLogEntry[],
  seconds?: readonly number[],
): void {
  let g: RollupGroup | null = null;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as CallLogEntry;
    const id = e.apiKeyId;
    if (id === null) continue;
    const second = seconds ? (seconds[i] as number) : Date.parse(e.timestamp) / 1000;
    if (!Number.isFinite(second)) continue;
    const hour = Math.floor(second / 3600);
    const env = e.environment ?? "live";
    if (g === null || g.keyId !== id || g.hour !== hour || g.environment !== env) {
      let list = byKey.get(id);
      if (list === undefined) byKey.set(id, (list = []));
      g = null;
      for (const c of list)
        if (c.hour === hour && c.environment === env) {
          g = c;
          break;
        }
      if (g === null) {
        g = group(id, env, hour);
        list.push(g);
        made.push(g);
      }
    }
    g.calls++;
    if (admitted(e)) g.admitted++;
    const s = e.statusCode;
    if (s >= 200 && s < 300) g.s2xx++;
    else if (s >= 300 && s < 400) g.s3xx++;
    else if (s >= 400 && s < 500) g.s4xx++;
    else if (s >= 500 && s < 600) g.s5xx++;
    if (e.errorCode !== null) count(g.errors, e.errorCode);
    let routes = g.routes.get(e.method);
    if (routes === undefined) g.routes.set(e.method, (routes = new Map()));
    count(routes, e.route ?? e.path);
    count(g.ips, e.ip);
    (g.latency[latencyBucket(e.latencyMs)] as number)++;
  }
}

/** Adds group `from` into `into` (same key, environment and hour). */
function foldGroup(into: RollupGroup, from: RollupGroup): void {
  into.calls += from.calls;
  into.admitted += from.admitted;
  into.s2xx += from.s2xx;
  into.s3xx += from.s3xx;
  into.s4xx += from.s4xx;
  into.s5xx += from.s5xx;
  for (const [k, n] of from.errors) into.errors.set(k, (into.errors.get(k) ?? 0) + n);
  for (const [method, byRoute] of from.routes) {
    let routes = into.routes.get(method);
    if (routes === undefined) into.routes.set(method, (routes = new Map()));
    for (const [r, n] of byRoute) routes.set(r, (routes.get(r) ?? 0) + n);
  }
  for (const [k, n] of from.ips) into.ips.set(k, (into.ips.get(k) ?? 0) + n);
  const l = from.latency;
  for (let b = 0; b < l.length; b++)
    if (l[b] !== 0) into.latency[b] = (into.latency[b] as number) + (l[b] as number);
}

/**
 * Rollups of stored batches that wait to be merged. A merge reads, merges and rewrites each
 * (key, environment, hour) row it touches, so it is done per row once every few seconds —
 * with the writer's last-use times, or when a read flushes the writer — not once per batch:
 * with thousands of keys a batch of 2,000 calls touches as many rows as it has calls.
 *
 * Calls enter only once their batch is stored (`add` after the commit); the groups a merge
 * takes go back when its transaction fails (`putBack`), so a retried batch is never counted
 * twice. A process killed outright loses what waits here (at most one cadence); a stop
 * flushes it.
 */
export class UsageBuffer {
  /** Waiting groups by key (a key's few hours and environments in a short list). */
  private byKey = new Map<number, RollupGroup[]>();
  private waiting: RollupGroup[] = [];
  /** A settling cycle under way: the rows waiting when it began, merged a part at a time. */
  private settling: RollupGroup[] = [];

  /**
   * At most this many rows per background merge (tens of µs each on SQLite, so a few ms of
   * event loop). A cycle merges what waited when it began over the batches that follow; what
   * arrives meanwhile waits for the next cycle. A flush merges everything.
   */
  constructor(private readonly maxRows = 250) {}

  /** Counts a stored batch's calls into the waiting groups (no group per batch is made). */
  add(entries: readonly CallLogEntry[], seconds?: readonly number[]): void {
    countInto(this.byKey, this.waiting, entries, seconds);
  }

  private fold(g: RollupGroup): void {
    let list = this.byKey.get(g.keyId);
    if (list === undefined) this.byKey.set(g.keyId, (list = []));
    for (const c of list)
      if (c.hour === g.hour && c.environment === g.environment) {
        foldGroup(c, g);
        return;
      }
    list.push(g);
    this.waiting.push(g);
  }

  /** The waiting groups, sorted; they leave the index. */
  private drainWaiting(): RollupGroup[] {
    const out = sortGroups(this.waiting);
    this.waiting = [];
    this.byKey = new Map();
    return out;
  }

  get size(): number {
    return this.waiting.length + this.settling.length;
  }

  /** Whether a settling cycle is under way: then every batch merges a part of it. */
  get backlog(): boolean {
    return this.settling.length > 0;
  }

  /**
   * The next part of the settling cycle (starting one with everything waiting if none is
   * under way), in lock order (key, environment, hour); or, with `all`, everything waiting,
   * one group per row. What is taken leaves the buffer.
   */
  take(all = false): RollupGroup[] {
    if (all) {
      const settling = this.settling;
      this.settling = [];
      // The waiting groups take the additions (one group per row, as PostgreSQL's upsert needs).
      return withGroups(this.drainWaiting(), settling);
    }
    if (this.settling.length === 0) {
      if (this.waiting.length === 0) return [];
      this.settling = this.drainWaiting();
    }
    return this.settling.splice(0, this.maxRows);
  }

  /** Groups a failed merge took, back in (merged with anything added since). */
  putBack(groups: readonly RollupGroup[]): void {
    for (const g of groups) this.fold(g);
  }
}

/**
 * A batch's own groups with the buffer's `taken` ones folded in, in lock order. The batch's
 * groups are fresh objects and take the additions; `taken` is left as it was, so a failed
 * merge can put exactly it back.
 */
export function withGroups(own: RollupGroup[], taken: readonly RollupGroup[]): RollupGroup[] {
  if (taken.length === 0) return own;
  const byId = new Map<string, RollupGroup>();
  for (const g of own) byId.set(groupId(g), g);
  for (const g of taken) {
    const id = groupId(g);
    const had = byId.get(id);
    if (had === undefined) byId.set(id, g);
    else foldGroup(had, g);
  }
  return sortGroups([...byId.values()]);
}

function groupId(g: RollupGroup): string {
  return `${g.keyId}|${g.environment}|${g.hour}`;
}

function sortGroups(groups: RollupGroup[]): RollupGroup[] {
  return groups.sort(
    (a, b) =>
      a.keyId - b.keyId ||
      (a.environment < b.environment ? -1 : a.environment > b.environment ? 1 : 0) ||
      a.hour - b.hour,
  );
}

/** A rollup row's JSON columns. */
type Maps = { errors: string; latency: string; routes: string; ips: string };

/** A row's columns as this process last wrote them, with the maps they were written from. */
type Cached = Maps & {
  e: Map<string, number>;
  r: Map<string, number>;
  i: Map<string, number>;
  h: Uint32Array;
};

/**
 * The rows this process wrote last, so the next batch's merge skips parsing what it wrote:
 * an entry is used only while the row still holds exactly the text it wrote (compared as
 * strings), so another instance's write, a rolled-back batch or a pruned row just means
 * parsing once. Cleared when full; an hour's rows of the busy keys is what it holds.
 */
const cache = new Map<string, Cached>();
const CACHE_ROWS = 5000;

function mapOf(stored: string): Map<string, number> {
  const m = new Map<string, number>();
  addMap(m, stored);
  return m;
}

function addCounts(into: Map<string, number>, from: Map<string, number>): void {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

/** Bounds `m` in place as boundMapJson does, and answers its JSON. */
function boundInPlace(m: Map<string, number>, max: number): string {
  let other = m.get(OTHER) ?? 0;
  if (m.size - (other > 0 ? 1 : 0) > max) {
    m.delete(OTHER);
    const entries = [...m].sort(byCount);
    for (let i = max; i < entries.length; i++) {
      const [k, v] = entries[i] as [string, number];
      other += v;
      m.delete(k);
    }
    m.set(OTHER, other);
  }
  let out = "{";
  for (const [k, v] of m) out += `${out.length > 1 ? "," : ""}${JSON.stringify(k)}:${v}`;
  return `${out}}`;
}

/**
 * The JSON columns of a group merged into what its row holds (`stored`; nothing, for a new
 * row), bounded. `table` tells apart rows of the two tables whose ids could be equal.
 */
export function mergedMaps(g: RollupGroup, stored?: Maps, table = ""): Maps {
  const key = table + groupId(g);
  const c = stored === undefined ? undefined : cache.get(key);
  // Out while its maps change, so a throw can never leave text and maps apart.
  cache.delete(key);
  const routes = new Map<string, number>();
  for (const [method, byRoute] of g.routes)
    for (const [route, n] of byRoute) {
      const label = `${method} ${route}`;
      routes.set(label, (routes.get(label) ?? 0) + n);
    }
  let e: Map<string, number>;
  let r: Map<string, number>;
  let i: Map<string, number>;
  let h: Uint32Array;
  if (stored === undefined) {
    e = new Map(g.errors);
    r = routes;
    i = new Map(g.ips);
    h = g.latency.slice();
  } else {
    e = c !== undefined && c.errors === stored.errors ? c.e : mapOf(stored.errors);
    addCounts(e, g.errors);
    r = c !== undefined && c.routes === stored.routes ? c.r : mapOf(stored.routes);
    addCounts(r, routes);
    i = c !== undefined && c.ips === stored.ips ? c.i : mapOf(stored.ips);
    addCounts(i, g.ips);
    if (c !== undefined && c.latency === stored.latency) h = c.h;
    else {
      h = new Uint32Array(LATENCY_BUCKETS);
      addHistogram(h, stored.latency);
    }
    const l = g.latency;
    for (let b = 0; b < LATENCY_BUCKETS; b++)
      if (l[b] !== 0) h[b] = (h[b] as number) + (l[b] as number);
  }
  const out: Maps = {
    errors: boundInPlace(e, MAX_ERRORS),
    latency: encodeHistogram(h),
    routes: boundInPlace(r, MAX_ROUTES),
    ips: boundInPlace(i, MAX_IPS),
  };
  if (cache.size >= CACHE_ROWS) cache.clear();
  cache.set(key, { ...out, e, r, i, h });
  return out;
}

// ---------------------------------------------------------------------------------------
// Merging into usage_rollups
// ---------------------------------------------------------------------------------------

/** A table merged into: usage_rollups by key, usage_totals by owner (or every key). */
type Rows = { table: "usage_rollups" | "usage_totals"; id: "api_key_id" | "owner_id" };
const BY_KEY: Rows = { table: "usage_rollups", id: "api_key_id" };
const BY_OWNER: Rows = { table: "usage_totals", id: "owner_id" };

/** The id of usage_totals' rows that sum every key, whoever owns it. */
export const EVERY_KEY = 0;

/**
 * The owners' and every key's groups of a merge's key groups: each key's calls are counted
 * for its owner (`ownerOf`; a key no longer there counts for every key only) and for
 * everyone. The groups made here are new; `groups` is left as it was.
 */
export function totalsOf(
  groups: readonly RollupGroup[],
  ownerOf: ReadonlyMap<number, number>,
): RollupGroup[] {
  const byId = new Map<string, RollupGroup>();
  const into = (id: number, g: RollupGroup) => {
    const k = `${id}|${g.environment}|${g.hour}`;
    let t = byId.get(k);
    if (t === undefined) byId.set(k, (t = group(id, g.environment, g.hour)));
    foldGroup(t, g);
  };
  for (const g of groups) {
    const owner = ownerOf.get(g.keyId);
    if (owner !== undefined && owner !== EVERY_KEY) into(owner, g);
    into(EVERY_KEY, g);
  }
  return sortGroups([...byId.values()]);
}

/** One table's prepared statements for the SQLite merge. */
class SqliteRows {
  private readonly read: SQLite.Statement;
  private readonly insert: SQLite.Statement;
  private readonly update: SQLite.Statement;

  constructor(
    conn: Pick<SQLite.Database, "prepare">,
    private readonly rows: Rows,
  ) {
    const { table, id } = rows;
    this.read = conn.prepare(
      `select errors, latency, routes, ips from ${table}
       where ${id} = ? and environment = ? and hour = ?`,
    );
    this.insert = conn.prepare(
      `insert into ${table} (${id}, environment, hour, calls, admitted,
         s2xx, s3xx, s4xx, s5xx, errors, latency, routes, ips)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.update = conn.prepare(
      `update ${table} set calls = calls + ?, admitted = admitted + ?, s2xx = s2xx + ?,
         s3xx = s3xx + ?, s4xx = s4xx + ?, s5xx = s5xx + ?, errors = ?, latency = ?, routes = ?, ips = ?
       where ${id} = ? and environment = ? and hour = ?`,
    );
  }

  merge(groups: readonly RollupGroup[]): void {
    for (const g of groups) {
      const stored = this.read.get(g.keyId, g.environment, g.hour) as Maps | undefined;
      const m = mergedMaps(g, stored, this.rows.table);
      const counts = [g.calls, g.admitted, g.s2xx, g.s3xx, g.s4xx, g.s5xx];
      if (stored === undefined)
        this.insert.run(
          g.keyId,
          g.environment,
          g.hour,
          ...counts,
          m.errors,
          m.latency,
          m.routes,
          m.ips,
        );
      else
        this.update.run(
          ...counts,
          m.errors,
          m.latency,
          m.routes,
          m.ips,
          g.keyId,
          g.environment,
          g.hour,
        );
    }
  }
}

/** The distinct key ids of some groups. */
function keyIdsOf(groups: readonly RollupGroup[]): number[] {
  return [...new Set(groups.map((g) => g.keyId))];
}

/**
 * The SQLite merge: prepared statements run inside the batch's transaction (which holds the
 * write lock from its first insert, so no other connection changes a row between its read
 * and its write). Keys' rows first, then their owners' and every key's.
 */
export class SqliteUsageRollups {
  private readonly keys: SqliteRows;
  private readonly totals: SqliteRows;
  private readonly owners: SQLite.Statement;

  constructor(conn: Pick<SQLite.Database, "prepare">) {
    this.keys = new SqliteRows(conn, BY_KEY);
    this.totals = new SqliteRows(conn, BY_OWNER);
    this.owners = conn.prepare(
      `select id, owner_id from api_keys where id in (select value from json_each(?))`,
    );
  }

  /** Call inside a write transaction. */
  merge(groups: readonly RollupGroup[]): void {
    if (groups.length === 0) return;
    this.keys.merge(groups);
    const rows = this.owners.all(JSON.stringify(keyIdsOf(groups))) as {
      id: number;
      owner_id: number;
    }[];
    this.totals.merge(totalsOf(groups, new Map(rows.map((r) => [r.id, r.owner_id]))));
  }
}

/**
 * The PostgreSQL merge, inside the batch's transaction: one `INSERT … ON CONFLICT DO UPDATE`
 * adds the counters (exact, whoever else adds at once) and locks the rows in key order —
 * answering the JSON they hold — then one `UPDATE` writes the merged JSON. A second instance
 * merging into the same row waits at the first statement until this batch commits. Keys'
 * rows first, then their owners' and every key's (so every instance locks in that order).
 */
export async function mergeUsagePg(db: Kysely<DB>, groups: readonly RollupGroup[]): Promise<void> {
  if (groups.length === 0) return;
  await mergeRowsPg(db, BY_KEY, groups);
  const owners = await db
    .selectFrom("api_keys")
    .select(["id", "owner_id"])
    .where("id", "in", keyIdsOf(groups))
    .execute();
  await mergeRowsPg(db, BY_OWNER, totalsOf(groups, new Map(owners.map((r) => [r.id, r.owner_id]))));
}

async function mergeRowsPg(
  db: Kysely<DB>,
  rows: Rows,
  groups: readonly RollupGroup[],
): Promise<void> {
  if (groups.length === 0) return;
  const table = sql.table(rows.table);
  const id = sql.ref(rows.id);
  const col = <T>(f: (g: RollupGroup) => T) => groups.map(f);
  const { rows: stored } = await sql<Maps & { id: number; environment: string; hour: string }>`
    insert into ${table} as r
      (${id}, environment, hour, calls, admitted, s2xx, s3xx, s4xx, s5xx)
    select * from unnest(
      ${col((g) => g.keyId)}::int[], ${col((g) => g.environment)}::text[],
      ${col((g) => g.hour)}::bigint[], ${col((g) => g.calls)}::int[],
      ${col((g) => g.admitted)}::int[], ${col((g) => g.s2xx)}::int[],
      ${col((g) => g.s3xx)}::int[], ${col((g) => g.s4xx)}::int[], ${col((g) => g.s5xx)}::int[])
    order by 1, 2, 3
    on conflict (${id}, environment, hour) do update set
      calls = r.calls + excluded.calls, admitted = r.admitted + excluded.admitted,
      s2xx = r.s2xx + excluded.s2xx, s3xx = r.s3xx + excluded.s3xx,
      s4xx = r.s4xx + excluded.s4xx, s5xx = r.s5xx + excluded.s5xx
    returning ${id} as id, environment, hour, errors, latency, routes, ips`.execute(db);
  const byRow = new Map<string, Maps>();
  for (const r of stored) byRow.set(`${r.id}|${r.environment}|${r.hour}`, r);
  const merged = groups.map((g) => mergedMaps(g, byRow.get(groupId(g)), rows.table));
  await sql`update ${table} as r
    set errors = u.errors, latency = u.latency, routes = u.routes, ips = u.ips
    from unnest(${col((g) => g.keyId)}::int[], ${col((g) => g.environment)}::text[],
                ${col((g) => g.hour)}::bigint[], ${merged.map((m) => m.errors)}::text[],
                ${merged.map((m) => m.latency)}::text[], ${merged.map((m) => m.routes)}::text[],
                ${merged.map((m) => m.ips)}::text[]) as u(id, environment, hour, errors, latency, routes, ips)
    where r.${id} = u.id and r.environment = u.environment and r.hour = u.hour`.execute(db);
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

export const ENVIRONMENTS = ["live", "test"] as const;

/**
 * Admitted calls of a key over both environments from the epoch hour `sinceEpochHour` on
 * (before `untilEpochHour`, when given): what a quota spends, as far as the call-log writer
 * has stored it. Both environments are named so the primary key serves the hour range.
 */
export async function admittedSince(
  db: Kysely<DB>,
  keyId: number,
  sinceEpochHour: number,
  untilEpochHour?: number,
): Promise<number> {
  let q = db
    .selectFrom("usage_rollups")
    .select((eb) => eb.fn.sum<number | string | null>("admitted").as("n"))
    .where("api_key_id", "=", keyId)
    .where("environment", "in", [...ENVIRONMENTS])
    .where("hour", ">=", sinceEpochHour);
  if (untilEpochHour !== undefined) q = q.where("hour", "<", untilEpochHour);
  const r = await q.executeTakeFirst();
  return Number(r?.n ?? 0);
}

/**
 * `admittedSince` over a roll chain: the admitted calls of the key `rootId` and of every key
 * counted under it (`quota_root_id`), what a quota shared along the chain starts from.
 */
export async function chainAdmittedSince(
  db: Kysely<DB>,
  rootId: number,
  sinceEpochHour: number,
  untilEpochHour?: number,
): Promise<number> {
  let q = db
    .selectFrom("usage_rollups")
    .select((eb) => eb.fn.sum<number | string | null>("admitted").as("n"))
    .where((eb) =>
      eb.or([
        eb("api_key_id", "=", rootId),
        eb(
          "api_key_id",
          "in",
          eb.selectFrom("api_keys").select("id").where("quota_root_id", "=", rootId),
        ),
      ]),
    )
    .where("environment", "in", [...ENVIRONMENTS])
    .where("hour", ">=", sinceEpochHour);
  if (untilEpochHour !== undefined) q = q.where("hour", "<", untilEpochHour);
  const r = await q.executeTakeFirst();
  return Number(r?.n ?? 0);
}

export type StatusCounts = { "2xx": number; "3xx": number; "4xx": number; "5xx": number };

export type UsageBucket = {
  start: string;
  calls: number;
  admitted: number;
  by_status: StatusCounts;
  by_error: Record<string, number>;
  latency_ms: Percentiles | null;
};

export type UsageTotals = Omit<UsageBucket, "start">;

export type UsageSummary = {
  totals: UsageTotals;
  buckets: UsageBucket[];
  top_routes: { route: string; calls: number }[];
  top_ips: { ip: string; calls: number }[];
};

export type UsageRead = {
  /** Epoch hours: from (inclusive) to (exclusive), whole buckets. */
  fromHour: number;
  toHour: number;
  bucketHours: 1 | 24;
  environment: "live" | "test" | null;
  /**
   * One key; else every key of `ownerId` (the keys it owned when their calls were merged);
   * else (both unset) every key.
   */
  keyId?: number;
  ownerId?: number | null;
};

/** Most entries of top_routes and top_ips. */
export const TOP = 10;

type ReadRow = {
  hour: number | string;
  calls: number;
  admitted: number;
  s2xx: number;
  s3xx: number;
  s4xx: number;
  s5xx: number;
} & Maps;

function top(m: Map<string, number>): [string, number][] {
  m.delete(OTHER);
  return [...m].sort(byCount).slice(0, TOP);
}

/**
 * Usage in a range, merged in JS: every bucket of the range, zero-filled, oldest first, with
 * totals and top lists. One key's from usage_rollups, an owner's or everyone's from
 * usage_totals; by primary key either way, never the call log.
 */
export async function readUsage(db: Kysely<DB>, q: UsageRead): Promise<UsageSummary> {
  const environments = q.environment === null ? [...ENVIRONMENTS] : [q.environment];
  const columns = ["hour", "calls", "admitted", "s2xx", "s3xx", "s4xx", "s5xx"] as const;
  const maps = ["errors", "latency", "routes", "ips"] as const;
  const query =
    q.keyId !== undefined
      ? db
          .selectFrom("usage_rollups")
          .select(columns)
          .select(maps)
          .where("api_key_id", "=", q.keyId)
          .where("environment", "in", environments)
          .where("hour", ">=", q.fromHour)
          .where("hour", "<", q.toHour)
      : db
          .selectFrom("usage_totals")
          .select(columns)
          .select(maps)
          .where("owner_id", "=", q.ownerId ?? EVERY_KEY)
          .where("environment", "in", environments)
          .where("hour", ">=", q.fromHour)
          .where("hour", "<", q.toHour);
  const rows = (await query.execute()) as ReadRow[];
  return summarize(rows, q.fromHour, q.toHour, q.bucketHours);
}

/** Rollup rows into zero-filled buckets, totals and top lists. */
export function summarize(
  rows: readonly ReadRow[],
  fromHour: number,
  toHour: number,
  bucketHours: number,
): UsageSummary {
  const n = Math.max(0, Math.ceil((toHour - fromHour) / bucketHours));
  // Per bucket: calls, admitted, 2xx, 3xx, 4xx, 5xx.
  const counts = new Float64Array(n * 6);
  const errors: (Map<string, number> | null)[] = new Array<null>(n).fill(null);
  const latency = new Float64Array(n * LATENCY_BUCKETS);
  const routes = new Map<string, number>();
  const ips = new Map<string, number>();
  for (const r of rows) {
    const b = Math.floor((Number(r.hour) - fromHour) / bucketHours);
    if (b < 0 || b >= n) continue;
    const c = b * 6;
    const add = [r.calls, r.admitted, r.s2xx, r.s3xx, r.s4xx, r.s5xx];
    for (let i = 0; i < 6; i++) counts[c + i] = (counts[c + i] as number) + Number(add[i]);
    if (r.errors.length > 2) addMap((errors[b] ??= new Map()), r.errors);
    addHistogram(latency, r.latency, b * LATENCY_BUCKETS);
    addMap(routes, r.routes);
    addMap(ips, r.ips);
  }
  const totalCounts = new Float64Array(6);
  const totalErrors = new Map<string, number>();
  const totalLatency = new Float64Array(LATENCY_BUCKETS);
  const buckets: UsageBucket[] = [];
  for (let b = 0; b < n; b++) {
    const c = b * 6;
    for (let i = 0; i < 6; i++)
      totalCounts[i] = (totalCounts[i] as number) + (counts[c + i] as number);
    const e = errors[b];
    if (e) for (const [k, v] of e) totalErrors.set(k, (totalErrors.get(k) ?? 0) + v);
    const at = b * LATENCY_BUCKETS;
    for (let i = 0; i < LATENCY_BUCKETS; i++)
      totalLatency[i] = (totalLatency[i] as number) + (latency[at + i] as number);
    buckets.push({
      start: new Date((fromHour + b * bucketHours) * 3_600_000).toISOString(),
      ...countsOf(counts, c),
      by_error: e ? Object.fromEntries(e) : {},
      latency_ms: (counts[c] as number) > 0 ? percentiles(latency, at) : null,
    });
  }
  return {
    totals: {
      ...countsOf(totalCounts, 0),
      by_error: Object.fromEntries(totalErrors),
      latency_ms: percentiles(totalLatency),
    },
    buckets,
    top_routes: top(routes).map(([route, calls]) => ({ route, calls })),
    top_ips: top(ips).map(([ip, calls]) => ({ ip, calls })),
  };
}

function countsOf(a: Float64Array, c: number) {
  return {
    calls: a[c] as number,
    admitted: a[c + 1] as number,
    by_status: {
      "2xx": a[c + 2] as number,
      "3xx": a[c + 3] as number,
      "4xx": a[c + 4] as number,
      "5xx": a[c + 5] as number,
    },
  };
}

/** One usage_totals row being summed by `backfillUsageTotals`. */
type TotalRow = Omit<RollupGroup, "keyId" | "routes"> & {
  owner_id: number;
  /** "METHOD route" → calls, as stored. */
  routes: Map<string, number>;
};

/**
 * Sums the usage_rollups rows already stored into usage_totals, as the merge would have
 * (each key's rows for its owner now, and for every key): run once, when the table is made.
 * A week of hours a round, so memory follows the owners, not the keys.
 */
export async function backfillUsageTotals(db: Kysely<DB>): Promise<number> {
  const span = await db
    .selectFrom("usage_rollups")
    .select((eb) => [eb.fn.min("hour").as("lo"), eb.fn.max("hour").as("hi")])
    .executeTakeFirst();
  if (span?.lo == null || span.hi == null) return 0;
  const WEEK = 168;
  let written = 0;
  for (let from = Number(span.lo); from <= Number(span.hi); from += WEEK) {
    const rows = await db
      .selectFrom("usage_rollups as r")
      .leftJoin("api_keys as k", "k.id", "r.api_key_id")
      .select(["r.environment", "r.hour", "r.calls", "r.admitted", "r.s2xx", "r.s3xx"])
      .select(["r.s4xx", "r.s5xx", "r.errors", "r.latency", "r.routes", "r.ips", "k.owner_id"])
      .where("r.hour", ">=", from)
      .where("r.hour", "<", from + WEEK)
      .execute();
    const totals = new Map<string, TotalRow>();
    for (const r of rows) {
      const hour = Number(r.hour);
      const ids =
        r.owner_id == null || r.owner_id === EVERY_KEY ? [EVERY_KEY] : [r.owner_id, EVERY_KEY];
      for (const owner of ids) {
        const k = `${owner}|${r.environment}|${hour}`;
        let t = totals.get(k);
        if (t === undefined) {
          t = {
            owner_id: owner,
            environment: r.environment,
            hour,
            ...noCalls(),
            errors: new Map(),
            routes: new Map(),
            ips: new Map(),
            latency: new Uint32Array(LATENCY_BUCKETS),
          };
          totals.set(k, t);
        }
        t.calls += Number(r.calls);
        t.admitted += Number(r.admitted);
        t.s2xx += Number(r.s2xx);
        t.s3xx += Number(r.s3xx);
        t.s4xx += Number(r.s4xx);
        t.s5xx += Number(r.s5xx);
        addMap(t.errors, r.errors);
        addMap(t.routes, r.routes);
        addMap(t.ips, r.ips);
        addHistogram(t.latency, r.latency);
      }
    }
    const out = [...totals.values()].map((t) => ({
      ...t,
      errors: boundMapJson(t.errors, MAX_ERRORS),
      routes: boundMapJson(t.routes, MAX_ROUTES),
      ips: boundMapJson(t.ips, MAX_IPS),
      latency: encodeHistogram(t.latency),
    }));
    for (let i = 0; i < out.length; i += 500)
      await db
        .insertInto("usage_totals")
        .values(out.slice(i, i + 500))
        .execute();
    written += out.length;
  }
  return written;
}

/** How long rollups are kept (the pruner keeps them at least as long as the call log). */
export const USAGE_RETENTION_DAYS = 400;

/** Drops rollup rows (keys' and totals') of hours before `beforeHour`; answers how many went. */
export async function pruneUsage(db: Kysely<DB>, beforeHour: number): Promise<number> {
  const r = await db.deleteFrom("usage_rollups").where("hour", "<", beforeHour).executeTakeFirst();
  const t = await db.deleteFrom("usage_totals").where("hour", "<", beforeHour).executeTakeFirst();
  return Number(r.numDeletedRows) + Number(t.numDeletedRows);
}
