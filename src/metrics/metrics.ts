import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from "prom-client";
import type { FailureCode } from "../keys/verify.js";
import { LATENCY_BUCKETS_MS, RequestStats, STATUS_LABELS } from "./requests.js";

/** What a key check can end in: `ok`, or the refusal's code. */
export const VERIFICATION_OUTCOMES = [
  "ok",
  "MISSING_API_KEY",
  "INVALID_API_KEY",
  "API_KEY_REVOKED",
  "API_KEY_EXPIRED",
  "INVALID_USER",
  "IP_NOT_ALLOWED",
  "SIGNATURE_REQUIRED",
  "SIGNATURE_INVALID",
  "SIGNATURE_EXPIRED",
  "SIGNATURE_REPLAYED",
  "INVALID_TOKEN",
  "TOKEN_EXPIRED",
  "RATE_LIMIT_EXCEEDED",
  "QUOTA_EXCEEDED",
  "SCOPE_REQUIRED",
  "FORBIDDEN",
] as const;
export type VerificationOutcome = (typeof VERIFICATION_OUTCOMES)[number];
// A refusal code the list above lacks fails to compile here.
const everyCode: Exclude<FailureCode, VerificationOutcome> extends never ? true : false = true;
void everyCode;

/**
 * How one webhook delivery attempt ended: `delivered` (the endpoint answered 2xx), `failed`
 * (it did not; the message will be retried) or `gave_up` (the last attempt failed, or the
 * endpoint was disabled, and the message will not be retried).
 */
export const WEBHOOK_OUTCOMES = ["delivered", "failed", "gave_up"] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

/** Where the numbers come from: plain counters each module keeps, read at scrape time. */
export type MetricSources = {
  version: string;
  callLog: {
    readonly pending: number;
    readonly capacity: number;
    readonly counts: { readonly written: number; readonly dropped: number };
  };
  keyCache: {
    readonly counts: {
      readonly hits: number;
      readonly unknownHits: number;
      readonly misses: number;
    };
    readonly size: { found: number; unknown: number };
  };
  /** The Redis-backed limiter with its in-memory fallback; null without Redis. */
  limiter: {
    readonly counts: { readonly fallbacks: number; readonly localDecisions: number };
    readonly isDegraded: boolean;
  } | null;
  database: { ping(): Promise<boolean> };
  /** Null when no Redis is configured. */
  redis: { readonly available: boolean } | null;
};

/** How long a scrape waits for the database's answer before calling it down. */
const PING_TIMEOUT_MS = 2_500;

const OUTCOME_INDEX: Readonly<Record<string, number>> = Object.fromEntries(
  VERIFICATION_OUTCOMES.map((o, i) => [o, i]),
);
const WEBHOOK_INDEX: Readonly<Record<string, number>> = Object.fromEntries(
  WEBHOOK_OUTCOMES.map((o, i) => [o, i]),
);

/**
 * Keygate's Prometheus metrics. The request path only adds to plain numbers and typed arrays
 * (here and in each module's own counters); prom-client's registry is made on the first
 * scrape and turns them into series then, so a request never pays for label hashing.
 */
export class Metrics {
  readonly requests = new RequestStats();
  private readonly outcomes = new Float64Array(VERIFICATION_OUTCOMES.length);
  private readonly webhooks = new Float64Array(WEBHOOK_OUTCOMES.length);
  private registry: Registry | null = null;

  constructor(private readonly sources: MetricSources) {}

  /** Counts the outcome of one request's key check: `ok`, or the refusal code answered. */
  verified(outcome: string): void {
    const i = OUTCOME_INDEX[outcome];
    if (i !== undefined) this.outcomes[i] = (this.outcomes[i] as number) + 1;
  }

  /** Counts one webhook delivery attempt by how it ended. */
  webhookDelivery(outcome: WebhookOutcome): void {
    const i = WEBHOOK_INDEX[outcome];
    if (i !== undefined) this.webhooks[i] = (this.webhooks[i] as number) + 1;
  }

  /** The content type of `scrape()`'s text. */
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  /**
   * Makes the registry (and starts prom-client's process metrics: GC, event-loop lag) now
   * rather than on the first scrape; a serving process that will be scraped calls it at start.
   */
  start(): void {
    this.registry ??= this.build();
  }

  /** Every metric in the Prometheus text exposition format. */
  scrape(): Promise<string> {
    this.registry ??= this.build();
    return this.registry.metrics();
  }

  private build(): Registry {
    const registry = new Registry();
    const registers = [registry];
    const s = this.sources;
    const requests = this.requests;
    const outcomes = this.outcomes;
    const webhooks = this.webhooks;
    collectDefaultMetrics({ register: registry });

    new Gauge({
      name: "keygate_build_info",
      help: "Always 1; the version label names the Keygate that answers",
      labelNames: ["version"],
      registers,
      collect() {
        this.set({ version: s.version }, 1);
      },
    });
    new Counter({
      name: "keygate_http_requests_total",
      help: "Requests answered, by surface (external, api, other), method, route template (unmatched when no route took the request) and status code",
      labelNames: ["surface", "method", "route", "status"],
      registers,
      collect() {
        this.reset();
        for (const slot of requests.slots) {
          if (slot.count === 0) continue;
          const { statuses } = slot;
          for (let c = 0; c < statuses.length; c++) {
            const n = statuses[c] as number;
            if (n === 0) continue;
            const labels = {
              surface: slot.surface,
              method: slot.method,
              route: slot.route,
              status: STATUS_LABELS[c] as string,
            };
            this.inc(labels, n);
          }
        }
      },
    });
    new ScrapedHistogram(requests, {
      name: "keygate_http_request_duration_seconds",
      help: "Time from a request's arrival to its answer being sent, by surface, method and route template",
      labelNames: ["surface", "method", "route"],
      buckets: LATENCY_BUCKETS_MS.map((ms) => ms / 1000),
      registers,
    });
    new Counter({
      name: "keygate_key_verifications_total",
      help: "Key checks of external requests by outcome: ok, or the refusal code answered (a key, a signed call or an access token)",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        VERIFICATION_OUTCOMES.forEach((outcome, i) => this.inc({ outcome }, outcomes[i] as number));
      },
    });
    new Gauge({
      name: "keygate_calllog_queue_rows",
      help: "Call-log rows waiting in memory to be written",
      registers,
      collect() {
        this.set(s.callLog.pending);
      },
    });
    new Gauge({
      name: "keygate_calllog_queue_capacity_rows",
      help: "Most call-log rows held in memory; past it, the oldest are dropped",
      registers,
      collect() {
        this.set(s.callLog.capacity);
      },
    });
    new Counter({
      name: "keygate_calllog_rows_written_total",
      help: "Call-log rows written to the database",
      registers,
      collect() {
        this.reset();
        this.inc(s.callLog.counts.written);
      },
    });
    new Counter({
      name: "keygate_calllog_rows_dropped_total",
      help: "Call-log rows dropped because the queue was full (the database was slow or away)",
      registers,
      collect() {
        this.reset();
        this.inc(s.callLog.counts.dropped);
      },
    });
    new Counter({
      name: "keygate_key_cache_hits_total",
      help: "Key look-ups answered from the in-process cache: a known key (kind=key), or a hash remembered as unknown (kind=unknown)",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        this.inc({ kind: "key" }, s.keyCache.counts.hits);
        this.inc({ kind: "unknown" }, s.keyCache.counts.unknownHits);
      },
    });
    new Counter({
      name: "keygate_key_cache_misses_total",
      help: "Key look-ups the cache could not answer, each a database read (concurrent misses of one key share it)",
      registers,
      collect() {
        this.reset();
        this.inc(s.keyCache.counts.misses);
      },
    });
    new Gauge({
      name: "keygate_key_cache_entries",
      help: "Entries in the key cache: known keys (kind=key) and hashes remembered as unknown (kind=unknown)",
      labelNames: ["kind"],
      registers,
      collect() {
        const size = s.keyCache.size;
        this.set({ kind: "key" }, size.found);
        this.set({ kind: "unknown" }, size.unknown);
      },
    });
    new Counter({
      name: "keygate_ratelimit_fallbacks_total",
      help: "Times the shared (Redis) rate limiter became unavailable and budgets fell back to this instance's memory",
      registers,
      collect() {
        this.reset();
        this.inc(s.limiter?.counts.fallbacks ?? 0);
      },
    });
    new Counter({
      name: "keygate_ratelimit_fallback_decisions_total",
      help: "Rate-limit decisions taken in this instance's memory because the shared (Redis) limiter was unavailable",
      registers,
      collect() {
        this.reset();
        this.inc(s.limiter?.counts.localDecisions ?? 0);
      },
    });
    new Gauge({
      name: "keygate_ratelimit_fallback_active",
      help: "1 while rate limits are kept per instance because the shared (Redis) limiter is unavailable, else 0",
      registers,
      collect() {
        this.set(s.limiter?.isDegraded ? 1 : 0);
      },
    });
    new Gauge({
      name: "keygate_database_up",
      help: "1 when the database answered a query during this scrape, else 0",
      registers,
      async collect() {
        this.set((await pingWithin(s.database, PING_TIMEOUT_MS)) ? 1 : 0);
      },
    });
    const redis = s.redis;
    if (redis !== null) {
      new Gauge({
        name: "keygate_redis_up",
        help: "1 while the connection to Redis is ready, else 0 (only exposed when KEYGATE_REDIS_URL is set)",
        registers,
        collect() {
          this.set(redis.available ? 1 : 0);
        },
      });
    }
    new Counter({
      name: "keygate_webhook_deliveries_total",
      help: "Webhook delivery attempts by outcome: delivered (2xx), failed (to be retried), gave_up (no further attempt)",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        WEBHOOK_OUTCOMES.forEach((outcome, i) => this.inc({ outcome }, webhooks[i] as number));
      },
    });
    return registry;
  }
}

/** Whether the database answers within `ms` (a scrape must not hang on a database that is away). */
async function pingWithin(db: { ping(): Promise<boolean> }, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([db.ping().catch(() => false), late]);
  } finally {
    clearTimeout(timer);
  }
}

type HistogramLabel = "surface" | "method" | "route";
type HistogramObject = Awaited<ReturnType<Histogram<HistogramLabel>["get"]>>;
/** One line of the histogram: a bucket (with its `le` label), the sum or the count. */
type Sample = { metricName: string; labels: Record<string, string>; value: number };

/**
 * The request-latency histogram, read from the routes' slots at scrape time instead of being
 * observed per request: prom-client's own series building, fed with our counts.
 */
class ScrapedHistogram extends Histogram<HistogramLabel> {
  constructor(
    private readonly stats: RequestStats,
    private readonly config: HistogramConfiguration<HistogramLabel>,
  ) {
    super(config);
  }

  // prom-client's declarations type `type` as an enum; at run time (and in the text) it is
  // the metric type's name.
  override async get(): Promise<HistogramObject> {
    return {
      name: this.config.name,
      help: this.config.help,
      type: "histogram",
      aggregator: "sum",
      values: this.series() as HistogramObject["values"],
    } as unknown as HistogramObject;
  }

  /** What the registry formats as text (prom-client asks for this before `get`). */
  getForPromString(): Promise<HistogramObject> {
    return this.get();
  }

  private series(): Sample[] {
    const out: Sample[] = [];
    const bounds = LATENCY_BUCKETS_MS;
    const name = this.config.name;
    for (const slot of this.stats.slots) {
      if (slot.count === 0) continue;
      const base = { surface: slot.surface, method: slot.method, route: slot.route };
      let cumulative = 0;
      for (let i = 0; i <= bounds.length; i++) {
        cumulative += slot.buckets[i] as number;
        const le = i < bounds.length ? String((bounds[i] as number) / 1000) : "+Inf";
        out.push({ metricName: `${name}_bucket`, labels: { ...base, le }, value: cumulative });
      }
      out.push({ metricName: `${name}_sum`, labels: base, value: slot.sumMs / 1000 });
      out.push({ metricName: `${name}_count`, labels: base, value: slot.count });
    }
    return out;
  }
}
