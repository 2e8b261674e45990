import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.js";
import { Metrics, type MetricSources } from "./metrics.js";
import {
  LATENCY_BUCKETS_MS,
  RequestStats,
  RouteSlot,
  STATUS_LABELS,
  surfaceOf,
} from "./requests.js";

function sources(over: Partial<MetricSources> = {}): MetricSources {
  return {
    version: "9.9.9",
    callLog: { pending: 7, capacity: 100, counts: { written: 40, dropped: 2 } },
    keyCache: { counts: { hits: 5, unknownHits: 1, misses: 3 }, size: { found: 2, unknown: 1 } },
    limiter: null,
    database: { ping: async () => true },
    redis: null,
    ...over,
  };
}

/** The value of one sample line of the text, or undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("RouteSlot", () => {
  it("counts each latency in the first bucket whose bound is not below it (le), and past the last in +Inf", () => {
    const slot = new RouteSlot("external", "GET", "/x");
    slot.record(200, 0); // le 0.5 ms
    slot.record(200, 0.5); // le 0.5 ms: bounds are inclusive
    slot.record(200, 0.51); // le 1 ms
    slot.record(200, 10_000); // le 10 s
    slot.record(200, 10_001); // +Inf
    expect(slot.buckets[0]).toBe(2);
    expect(slot.buckets[1]).toBe(1);
    expect(slot.buckets[LATENCY_BUCKETS_MS.length - 1]).toBe(1);
    expect(slot.buckets[LATENCY_BUCKETS_MS.length]).toBe(1);
    expect(slot.count).toBe(5);
    expect(slot.sumMs).toBeCloseTo(20_002.01, 6);
  });

  it("counts a status under its own code, a code Node does not name under its class", () => {
    const slot = new RouteSlot("api", "GET", "/y");
    slot.record(200, 1);
    slot.record(429, 1);
    slot.record(429, 1);
    slot.record(299, 1);
    slot.record(99, 1);
    const counted = Object.fromEntries(
      STATUS_LABELS.map((label, i) => [label, slot.statuses[i]]).filter(([, n]) => n !== 0),
    );
    expect(counted).toEqual({ "200": 1, "429": 2, "2xx": 1, "5xx": 1 });
  });
});

describe("surfaceOf", () => {
  it("tells the external surface, the console's /api and the rest apart by path", () => {
    expect(surfaceOf("/api/v1/external")).toBe("external");
    expect(surfaceOf("/api/v1/external/whoami?x=1")).toBe("external");
    expect(surfaceOf("/api/v1/externally")).toBe("api");
    expect(surfaceOf("/api")).toBe("api");
    expect(surfaceOf("/api/api-keys/:id")).toBe("api");
    expect(surfaceOf("/apix")).toBe("other");
    expect(surfaceOf("/metrics")).toBe("other");
    expect(surfaceOf("/.well-known/jwks.json")).toBe("other");
  });
});

describe("RequestStats", () => {
  it("keeps unmatched requests in a fixed set of slots, whatever the path or method", () => {
    const stats = new RequestStats();
    const before = stats.slots.length;
    for (let i = 0; i < 1000; i++) stats.miss(`/api/v1/external/nope-${i}`, i % 2 ? "GET" : "BREW");
    expect(stats.slots.length).toBe(before);
    expect(stats.miss("/x", "GET")).toBe(stats.miss("/y", "GET"));
    expect(stats.miss("/x", "BREW").method).toBe("OTHER");
  });
});

describe("Metrics", () => {
  it("materialises the plain counters as Prometheus series when scraped", async () => {
    const m = new Metrics(sources());
    const slot = m.requests.route("GET", "/api/v1/external/whoami");
    slot.record(200, 0.7);
    slot.record(200, 3);
    slot.record(401, 0.2);
    m.verified("ok");
    m.verified("ok");
    m.verified("API_KEY_REVOKED");
    m.verified("NOT_A_CODE");
    m.webhookDelivery("delivered");
    const text = await m.scrape();
    const route = 'surface="external",method="GET",route="/api/v1/external/whoami"';
    expect(sample(text, `keygate_http_requests_total{${route},status="200"}`)).toBe(2);
    expect(sample(text, `keygate_http_requests_total{${route},status="401"}`)).toBe(1);
    expect(sample(text, `keygate_http_request_duration_seconds_bucket{${route},le="0.0005"}`)).toBe(
      1,
    );
    expect(sample(text, `keygate_http_request_duration_seconds_bucket{${route},le="0.001"}`)).toBe(
      2,
    );
    expect(sample(text, `keygate_http_request_duration_seconds_bucket{${route},le="0.005"}`)).toBe(
      3,
    );
    expect(sample(text, `keygate_http_request_duration_seconds_bucket{${route},le="+Inf"}`)).toBe(
      3,
    );
    expect(sample(text, `keygate_http_request_duration_seconds_count{${route}}`)).toBe(3);
    expect(sample(text, `keygate_http_request_duration_seconds_sum{${route}}`)).toBeCloseTo(
      0.0039,
      9,
    );
    expect(sample(text, 'keygate_key_verifications_total{outcome="ok"}')).toBe(2);
    expect(sample(text, 'keygate_key_verifications_total{outcome="API_KEY_REVOKED"}')).toBe(1);
    expect(sample(text, 'keygate_key_verifications_total{outcome="INVALID_API_KEY"}')).toBe(0);
    expect(text).not.toContain("NOT_A_CODE");
    expect(sample(text, 'keygate_webhook_deliveries_total{outcome="delivered"}')).toBe(1);
    expect(sample(text, 'keygate_webhook_deliveries_total{outcome="gave_up"}')).toBe(0);
    expect(sample(text, "keygate_calllog_queue_rows")).toBe(7);
    expect(sample(text, "keygate_calllog_queue_capacity_rows")).toBe(100);
    expect(sample(text, "keygate_calllog_rows_written_total")).toBe(40);
    expect(sample(text, "keygate_calllog_rows_dropped_total")).toBe(2);
    expect(sample(text, 'keygate_key_cache_hits_total{kind="key"}')).toBe(5);
    expect(sample(text, 'keygate_key_cache_hits_total{kind="unknown"}')).toBe(1);
    expect(sample(text, "keygate_key_cache_misses_total")).toBe(3);
    expect(sample(text, 'keygate_key_cache_entries{kind="key"}')).toBe(2);
    expect(sample(text, "keygate_database_up")).toBe(1);
    expect(sample(text, "keygate_ratelimit_fallback_active")).toBe(0);
    expect(sample(text, 'keygate_build_info{version="9.9.9"}')).toBe(1);
    // No Redis configured: no Redis gauge to alert on.
    expect(text).not.toContain("keygate_redis_up");
    // A route no request reached has no series.
    expect(text).not.toContain('route="unmatched"');

    // Counters keep counting between scrapes; they are never reset by one.
    slot.record(200, 1);
    expect(sample(await m.scrape(), `keygate_http_requests_total{${route},status="200"}`)).toBe(3);
  });

  it("reads the limiter's fallback, Redis and the database at scrape time", async () => {
    const limiter = { counts: { fallbacks: 2, localDecisions: 9 }, isDegraded: true };
    const redis = { available: false };
    const m = new Metrics(sources({ limiter, redis, database: { ping: async () => false } }));
    let text = await m.scrape();
    expect(sample(text, "keygate_ratelimit_fallbacks_total")).toBe(2);
    expect(sample(text, "keygate_ratelimit_fallback_decisions_total")).toBe(9);
    expect(sample(text, "keygate_ratelimit_fallback_active")).toBe(1);
    expect(sample(text, "keygate_redis_up")).toBe(0);
    expect(sample(text, "keygate_database_up")).toBe(0);
    limiter.isDegraded = false;
    redis.available = true;
    text = await m.scrape();
    expect(sample(text, "keygate_ratelimit_fallback_active")).toBe(0);
    expect(sample(text, "keygate_redis_up")).toBe(1);
  });

  it("calls a database that does not answer in time down, and a ping that throws too", async () => {
    const hanging = new Metrics(sources({ database: { ping: () => new Promise(() => {}) } }));
    const started = Date.now();
    expect(sample(await hanging.scrape(), "keygate_database_up")).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    const throwing = new Metrics(
      sources({ database: { ping: () => Promise.reject(new Error("x")) } }),
    );
    expect(sample(await throwing.scrape(), "keygate_database_up")).toBe(0);
  }, 10_000);
});

describe("metrics settings", () => {
  const base = { KEYGATE_DATABASE_URL: "sqlite::memory:" };
  it("are off unless set", () => {
    const c = loadConfig(base);
    expect(c.metricsToken).toBeNull();
    expect(c.metricsAddress).toBeNull();
  });

  it("take a token of 24 or more visible characters", () => {
    const token = "a".repeat(24);
    expect(loadConfig({ ...base, KEYGATE_METRICS_TOKEN: token }).metricsToken).toBe(token);
    for (const bad of ["short", `${"a".repeat(20)} ${"b".repeat(8)}`, `${"é".repeat(30)}`]) {
      expect(() => loadConfig({ ...base, KEYGATE_METRICS_TOKEN: bad })).toThrow(ConfigError);
    }
    try {
      loadConfig({ ...base, KEYGATE_METRICS_TOKEN: "tooshort-secret" });
    } catch (err) {
      // The message says what is wrong and how to make one, never the value.
      expect((err as Error).message).toMatch(
        /KEYGATE_METRICS_TOKEN must be at least 24.*openssl rand/,
      );
      expect((err as Error).message).not.toContain("tooshort-secret");
    }
  });

  it("take an address as host:port, IPv6 in brackets, on another port than Keygate's", () => {
    const at = (v: string, env: Record<string, string> = {}) =>
      loadConfig({ ...base, ...env, KEYGATE_METRICS_ADDRESS: v }).metricsAddress;
    expect(at("127.0.0.1:9464")).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(at("[::1]:9464")).toEqual({ host: "::1", port: 9464 });
    expect(at("metrics.internal:0")).toEqual({ host: "metrics.internal", port: 0 });
    for (const bad of ["9464", ":9464", "127.0.0.1", "127.0.0.1:99999", "::1:9464", "a b:1"]) {
      expect(() => at(bad), bad).toThrow(/KEYGATE_METRICS_ADDRESS must be host:port/);
    }
    expect(() => at("127.0.0.1:8080")).toThrow(/another port than KEYGATE_PORT \(8080\)/);
    expect(() => at("0.0.0.0:3000", { KEYGATE_PORT: "3000" })).toThrow(/another port/);
    expect(at("0.0.0.0:8080", { KEYGATE_PORT: "3000" })).toEqual({ host: "0.0.0.0", port: 8080 });
  });
});
