/**
 * What the request accounting behind /metrics costs per request, in isolation: the hooks
 * `countRequests` adds (the route's own counter and the scope-wide one for unmatched
 * requests), run by Fastify's own onResponse hook runner on a real request and reply, against
 * the same runner without them; the verification-outcome counter; and, for comparison, the
 * same accounting done per request with prom-client (`inc` with labels and `observe`).
 * Single process, no server, no load generator.
 *
 *   node --import tsx bench/metrics-micro.ts
 */
import { createRequire } from "node:module";
import Fastify, { type FastifyReply, type FastifyRequest } from "fastify";
import { Counter, Histogram, Registry } from "prom-client";
import { loadConfig } from "../src/config.js";
import { countRequests } from "../src/http/metrics.js";
import type { App } from "../src/http/types.js";
import { createKeygate } from "../src/keygate.js";
import { LATENCY_BUCKETS_MS } from "../src/metrics/requests.js";

type Hook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void;
type Runner = (
  hooks: Hook[],
  request: FastifyRequest,
  reply: FastifyReply,
  cb: (err: unknown, request: FastifyRequest, reply: FastifyReply) => void,
) => void;

// Fastify's internals, for the benchmark only: the runner every onResponse hook goes through,
// and where a request keeps its route's context (with the hooks the route ended up with).
const require = createRequire(import.meta.url);
const { onResponseHookRunner } = require("fastify/lib/hooks.js") as {
  onResponseHookRunner: Runner;
};
const { kRouteContext } = require("fastify/lib/symbols.js") as { kRouteContext: symbol };

const N = Number(process.env.MICRO_N ?? 2_000_000);
const ROUNDS = Number(process.env.MICRO_ROUNDS ?? 7);

const kg = await createKeygate(
  loadConfig({
    KEYGATE_DATABASE_URL: "sqlite::memory:",
    KEYGATE_LOG_LEVEL: "silent",
    KEYGATE_METRICS_TOKEN: "m".repeat(32),
  }),
  { oneShot: true },
);
const app = Fastify({ logger: false });
countRequests(app as unknown as App, kg);
// Where the external scope's call-log hook sits: a hook every external request runs anyway.
const callLogStandIn: Hook = (_request, _reply, done) => done();
app.addHook("onResponse", callLogStandIn);
app.get("/api/v1/external/whoami", async () => ({ ok: true }));
let captured: [FastifyRequest, FastifyReply] | null = null;
app.addHook("onRequest", (request, reply, done) => {
  captured ??= [request, reply];
  done();
});
await app.inject({ method: "GET", url: "/api/v1/external/whoami" });
if (captured === null) throw new Error("no request captured");
const [request, reply] = captured as [FastifyRequest, FastifyReply];
const context = (request as unknown as Record<symbol, { onResponse: Hook[] }>)[kRouteContext];
const withMetrics = context?.onResponse ?? [];
if (withMetrics.length !== 3)
  throw new Error(`expected 3 onResponse hooks, got ${withMetrics.length}`);
const without = withMetrics.filter((h) => h === callLogStandIn);

let sink = 0;
const finished = () => {
  sink++;
};
const done = () => {
  sink++;
};

function time(label: string, f: () => void): number {
  for (let i = 0; i < 200_000; i++) f();
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f();
    samples.push(Number(process.hrtime.bigint() - t) / N);
  }
  samples.sort((a, b) => a - b);
  const median = samples[samples.length >> 1] as number;
  const lo = samples[0] as number;
  const hi = samples[samples.length - 1] as number;
  process.stdout.write(
    `${label.padEnd(66)} ${median.toFixed(1).padStart(7)} ns  (${lo.toFixed(1)}–${hi.toFixed(1)})\n`,
  );
  return median;
}

// prom-client doing the same per request, as the alternative that was not taken.
const registry = new Registry();
const counter = new Counter({
  name: "x_requests_total",
  help: "x",
  labelNames: ["surface", "method", "route", "status"],
  registers: [registry],
});
const histogram = new Histogram({
  name: "x_duration_seconds",
  help: "x",
  labelNames: ["surface", "method", "route"],
  buckets: LATENCY_BUCKETS_MS.map((ms) => ms / 1000),
  registers: [registry],
});
const promHook: Hook = (req, rep, next) => {
  const route = "/api/v1/external/whoami";
  counter.inc({ surface: "external", method: req.method, route, status: rep.statusCode });
  histogram.observe({ surface: "external", method: req.method, route }, rep.elapsedTime / 1000);
  next();
};
const withProm = [callLogStandIn, promHook];

const slot = kg.metrics.requests.route("GET", "/bench");
const latencies = Float64Array.from({ length: 1024 }, (_, i) => 0.05 + (i % 97) * 0.031);
let j = 0;

process.stdout.write(`${N.toLocaleString("en")} calls a round, median of ${ROUNDS} rounds\n`);
for (let pass = 0; pass < 2; pass++) {
  const base = time("onResponse runner, the call-log stand-in alone", () =>
    onResponseHookRunner(without, request, reply, finished),
  );
  const ours = time("onResponse runner, + countRequests' two hooks", () =>
    onResponseHookRunner(withMetrics, request, reply, finished),
  );
  const prom = time("onResponse runner, + prom-client inc() and observe() instead", () =>
    onResponseHookRunner(withProm, request, reply, finished),
  );
  time("RouteSlot.record(status, ms) alone, varied latencies", () => {
    slot.record(200, latencies[j++ & 1023] as number);
  });
  time("Metrics.verified(code)", () => kg.metrics.verified("ok"));
  time("the route's counting hook called directly", () =>
    (withMetrics[2] as Hook)(request, reply, done),
  );
  process.stdout.write(
    `  → added per request: countRequests ${(ours - base).toFixed(1)} ns; prom-client ${(prom - base).toFixed(1)} ns\n`,
  );
}
if (sink === 0) process.stdout.write("(nothing ran)\n");
await app.close();
await kg.close();
