import { describe, expect, it } from "vitest";
import type { CallLogEntry } from "../calllog/writer.js";
import { openDatabase } from "./database.js";
import {
  addHistogram,
  admittedSince,
  aggregateUsage,
  boundMap,
  bucketValue,
  encodeHistogram,
  LATENCY_BUCKETS,
  LATENCY_RELATIVE_ERROR,
  latencyBucket,
  MAX_IPS,
  mergedMaps,
  OTHER,
  percentiles,
  pruneUsage,
  readUsage,
  SqliteUsageRollups,
  summarize,
} from "./usage.js";

const HOUR = 3_600_000;
const base = Date.parse("2026-11-20T10:00:00.000Z");
const baseHour = base / HOUR;

function call(over: Partial<CallLogEntry> = {}): CallLogEntry {
  return {
    apiKeyId: 1,
    timestamp: new Date(base).toISOString(),
    method: "GET",
    path: "/api/v1/external/subscribers/7",
    route: "/api/v1/external/subscribers/:id",
    statusCode: 200,
    ip: "203.0.113.9",
    latencyMs: 2,
    userAgent: null,
    errorCode: null,
    requestId: null,
    message: null,
    ...over,
  };
}

/** A seeded generator, so a failure repeats. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function exact(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1] as number;
}

describe("the latency histogram", () => {
  it("puts each latency in a bucket whose value is within the stated error", () => {
    expect(LATENCY_RELATIVE_ERROR).toBeLessThan(0.022);
    for (const ms of [0.1, 0.13, 1, 2.5, 17, 250, 999, 12_345, 59_999]) {
      const v = bucketValue(latencyBucket(ms));
      expect(Math.abs(v - ms) / ms).toBeLessThanOrEqual(LATENCY_RELATIVE_ERROR + 1e-12);
    }
    expect(latencyBucket(0)).toBe(0);
    expect(latencyBucket(0.05)).toBe(0);
    expect(latencyBucket(Number.NaN)).toBe(0);
    expect(latencyBucket(10_000_000)).toBe(LATENCY_BUCKETS - 1);
    expect(latencyBucket(60_000)).toBeLessThan(LATENCY_BUCKETS - 1);
  });

  it("answers p50/p95/p99 within 2.2 % of the exact ones, merged from several histograms", () => {
    const rnd = random(7);
    const values: number[] = [];
    const parts = [new Uint32Array(LATENCY_BUCKETS), new Uint32Array(LATENCY_BUCKETS)];
    for (let i = 0; i < 20_000; i++) {
      // Log-normal-ish: mostly a few ms, a long tail to seconds.
      const ms = Math.exp(Math.log(3) + 1.2 * (rnd() + rnd() + rnd() - 1.5) * 2);
      values.push(ms);
      const h = parts[i % 2] as Uint32Array;
      const b = latencyBucket(ms);
      h[b] = (h[b] as number) + 1;
    }
    const merged = new Float64Array(LATENCY_BUCKETS);
    for (const h of parts) addHistogram(merged, encodeHistogram(h));
    const p = percentiles(merged);
    const sorted = values.sort((a, b) => a - b);
    for (const [name, q] of [
      ["p50", 0.5],
      ["p95", 0.95],
      ["p99", 0.99],
    ] as const) {
      const want = exact(sorted, q);
      // The stated bound, plus the 0.01 ms rounding of the answer.
      expect(Math.abs((p?.[name] as number) - want)).toBeLessThanOrEqual(
        want * LATENCY_RELATIVE_ERROR + 0.005,
      );
    }
  });

  it("stores only the span of buckets that count, and reads back what it wrote", () => {
    const h = new Uint32Array(LATENCY_BUCKETS);
    expect(encodeHistogram(h)).toBe("[]");
    h[40] = 3;
    h[42] = 1;
    expect(encodeHistogram(h)).toBe("[40,3,0,1]");
    const back = new Float64Array(LATENCY_BUCKETS);
    addHistogram(back, "[40,3,0,1]");
    expect(Array.from(back)).toEqual(Array.from(h));
    // Malformed or out-of-range stored values are ignored, never thrown.
    addHistogram(back, "not json");
    addHistogram(back, '{"a":1}');
    addHistogram(back, `[${LATENCY_BUCKETS - 1},1,5,5]`);
    expect(back[LATENCY_BUCKETS - 1]).toBe(1);
    expect(percentiles(new Float64Array(LATENCY_BUCKETS))).toBeNull();
  });

  it("reads percentiles by nearest rank", () => {
    const h = new Float64Array(LATENCY_BUCKETS);
    h[latencyBucket(1)] = 50;
    h[latencyBucket(10)] = 45;
    h[latencyBucket(100)] = 4;
    h[latencyBucket(1000)] = 1;
    const p = percentiles(h);
    expect(p?.p50).toBeCloseTo(1, 1);
    expect(p?.p95).toBeCloseTo(10, 0);
    expect(Math.abs((p?.p99 as number) - 100)).toBeLessThan(2.2);
  });
});

describe("bounded maps", () => {
  it("keeps the largest entries and counts the rest as (other)", () => {
    const m = new Map<string, number>();
    for (let i = 0; i < 60; i++) m.set(`10.0.0.${i}`, i + 1);
    m.set(OTHER, 5);
    const b = boundMap(m, MAX_IPS);
    expect(Object.keys(b)).toHaveLength(MAX_IPS + 1);
    expect(b["10.0.0.59"]).toBe(60);
    expect(b["10.0.0.9"]).toBeUndefined();
    // 1 + … + 10 left over, plus the 5 already there.
    expect(b[OTHER]).toBe(55 + 5);
    const total = Object.values(b).reduce((a, v) => a + v, 0);
    expect(total).toBe((60 * 61) / 2 + 5);
  });

  it("leaves a small map alone", () => {
    expect(boundMap(new Map([["a", 1]]), 50)).toEqual({ a: 1 });
  });
});

describe("aggregating a batch", () => {
  it("groups by key, environment and hour, and counts classes, codes, routes, addresses", () => {
    const groups = aggregateUsage([
      call(),
      call({ apiKeyId: null }),
      call({ statusCode: 404, errorCode: "NOT_FOUND", path: "/api/v1/external/subscribers/8" }),
      call({ statusCode: 401, errorCode: "API_KEY_REVOKED", ip: "198.51.100.1" }),
      call({ statusCode: 302 }),
      call({ statusCode: 503, errorCode: "SERVICE_UNAVAILABLE" }),
      call({ environment: "test" }),
      call({ timestamp: new Date(base + HOUR).toISOString(), route: undefined, path: "/x" }),
      call({ apiKeyId: 2, method: "POST", route: "/api/v1/external/subscribers" }),
      call({ timestamp: "not a time" }),
    ]);
    expect(groups.map((g) => [g.keyId, g.environment, g.hour])).toEqual([
      [1, "live", baseHour],
      [1, "live", baseHour + 1],
      [1, "test", baseHour],
      [2, "live", baseHour],
    ]);
    const g = groups[0];
    expect(g).toMatchObject({ calls: 5, admitted: 4, s2xx: 1, s3xx: 1, s4xx: 2, s5xx: 1 });
    const m = mergedMaps(g as NonNullable<typeof g>);
    expect(JSON.parse(m.errors)).toEqual({
      NOT_FOUND: 1,
      API_KEY_REVOKED: 1,
      SERVICE_UNAVAILABLE: 1,
    });
    // The route pattern, not the path; a call without one counts under its path.
    expect(JSON.parse(m.routes)).toEqual({ "GET /api/v1/external/subscribers/:id": 5 });
    expect(JSON.parse(mergedMaps(groups[1] as NonNullable<typeof g>).routes)).toEqual({
      "GET /x": 1,
    });
    expect(JSON.parse(m.ips)).toEqual({ "203.0.113.9": 4, "198.51.100.1": 1 });
    expect(percentiles(Float64Array.from(g?.latency ?? []))?.p50).toBeCloseTo(2, 1);
  });

  it("merges into what a row holds", () => {
    const [g] = aggregateUsage([call({ errorCode: "NOT_FOUND", statusCode: 404 })]);
    const m = mergedMaps(g as NonNullable<typeof g>, {
      errors: '{"NOT_FOUND":2,"CONFLICT":1}',
      latency: `[${latencyBucket(2)},4]`,
      routes: '{"GET /api/v1/external/subscribers/:id":3}',
      ips: "{}",
    });
    expect(JSON.parse(m.errors)).toEqual({ NOT_FOUND: 3, CONFLICT: 1 });
    expect(m.latency).toBe(`[${latencyBucket(2)},5]`);
    expect(JSON.parse(m.routes)).toEqual({ "GET /api/v1/external/subscribers/:id": 4 });
  });
});

describe("rollup rows on SQLite", () => {
  it("merges batches into one row per hour, reads buckets zero-filled, prunes", async () => {
    const database = await openDatabase("sqlite::memory:");
    try {
      const raw = database.raw.sqlite;
      if (!raw) throw new Error("sqlite expected");
      const rollups = new SqliteUsageRollups(raw);
      const batch = (entries: CallLogEntry[]) =>
        raw.transaction(() => rollups.merge(aggregateUsage(entries)))();
      batch([call(), call({ statusCode: 429, errorCode: "RATE_LIMIT_EXCEEDED" })]);
      batch([
        call({ latencyMs: 40 }),
        call({ timestamp: new Date(base + 3 * HOUR).toISOString() }),
      ]);
      const ips = Array.from({ length: 70 }, (_, i) => call({ ip: `192.0.2.${i}` }));
      batch(ips);
      const rows = raw.prepare("select * from usage_rollups order by hour").all() as {
        calls: number;
        admitted: number;
        ips: string;
      }[];
      expect(rows.map((r) => r.calls)).toEqual([73, 1]);
      expect(rows[0]?.admitted).toBe(72);
      expect(Object.keys(JSON.parse(rows[0]?.ips ?? "{}"))).toHaveLength(MAX_IPS + 1);

      expect(await admittedSince(database.db, 1, baseHour)).toBe(73);
      expect(await admittedSince(database.db, 1, baseHour + 1)).toBe(1);
      expect(await admittedSince(database.db, 2, baseHour)).toBe(0);

      const u = await readUsage(database.db, {
        fromHour: baseHour - 1,
        toHour: baseHour + 5,
        bucketHours: 1,
        environment: null,
        keyId: 1,
      });
      expect(u.buckets.map((b) => b.calls)).toEqual([0, 73, 0, 0, 1, 0]);
      expect(u.buckets[0]).toEqual({
        start: new Date(base - HOUR).toISOString(),
        calls: 0,
        admitted: 0,
        by_status: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 },
        by_error: {},
        latency_ms: null,
      });
      expect(u.totals).toMatchObject({
        calls: 74,
        admitted: 73,
        by_status: { "2xx": 73, "4xx": 1 },
        by_error: { RATE_LIMIT_EXCEEDED: 1 },
      });
      expect(u.top_ips).toHaveLength(10);
      expect(u.top_ips[0]).toEqual({ ip: "203.0.113.9", calls: 4 });
      expect(u.top_ips.some((t) => t.ip === OTHER)).toBe(false);
      expect(u.top_routes).toEqual([{ route: "GET /api/v1/external/subscribers/:id", calls: 74 }]);

      // The key's row of that hour and every key's (key 1 has no owner here).
      expect(await pruneUsage(database.db, baseHour + 1)).toBe(2);
      expect(
        raw.prepare("select owner_id, hour, calls from usage_totals order by hour").all(),
      ).toEqual([{ owner_id: 0, hour: baseHour + 3, calls: 1 }]);
      expect(await admittedSince(database.db, 1, 0)).toBe(1);
    } finally {
      await database.close();
    }
  });

  it("puts hours into UTC days", () => {
    const day = Math.floor(baseHour / 24) * 24;
    const s = summarize(
      [
        {
          hour: day + 23,
          calls: 2,
          admitted: 2,
          s2xx: 2,
          s3xx: 0,
          s4xx: 0,
          s5xx: 0,
          errors: "{}",
          latency: "[]",
          routes: "{}",
          ips: "{}",
        },
        {
          hour: day + 24,
          calls: 1,
          admitted: 1,
          s2xx: 1,
          s3xx: 0,
          s4xx: 0,
          s5xx: 0,
          errors: "{}",
          latency: "[]",
          routes: "{}",
          ips: "{}",
        },
      ],
      day,
      day + 72,
      24,
    );
    expect(s.buckets.map((b) => [b.start.slice(11), b.calls])).toEqual([
      ["00:00:00.000Z", 2],
      ["00:00:00.000Z", 1],
      ["00:00:00.000Z", 0],
    ]);
  });
});
