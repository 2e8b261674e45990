import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import type { Keygate } from "../keygate.js";
import { Metrics } from "../metrics/metrics.js";
import { countRequests } from "./metrics.js";
import type { App } from "./types.js";

function keygate(env: Record<string, string>): Keygate {
  const metrics = new Metrics({
    version: "test",
    callLog: { pending: 0, capacity: 1, counts: { written: 0, dropped: 0 } },
    keyCache: { counts: { hits: 0, unknownHits: 0, misses: 0 }, size: { found: 0, unknown: 0 } },
    limiter: null,
    database: { ping: async () => true },
    redis: null,
  });
  const config = loadConfig({ KEYGATE_DATABASE_URL: "sqlite::memory:", ...env });
  return { config, metrics } as unknown as Keygate;
}

const slotsOf = (kg: Keygate) =>
  kg.metrics.requests.slots
    .filter((s) => s.count > 0)
    .map((s) => `${s.surface} ${s.method} ${s.route} ${s.count}`)
    .sort();

describe("countRequests", () => {
  it("counts each route under its template and method, a route of several methods per method", async () => {
    const kg = keygate({ KEYGATE_METRICS_TOKEN: "t".repeat(24) });
    const app = Fastify({ logger: false });
    countRequests(app as unknown as App, kg);
    app.get("/api/things/:id", async () => ({ ok: true }));
    app.route({
      method: ["PUT", "PATCH"],
      url: "/api/v1/external/things",
      handler: async () => "",
    });
    await app.inject({ method: "GET", url: "/api/things/1" });
    await app.inject({ method: "GET", url: "/api/things/2" });
    await app.inject({ method: "HEAD", url: "/api/things/2" });
    await app.inject({ method: "PATCH", url: "/api/v1/external/things" });
    await app.inject({ method: "GET", url: "/elsewhere" });
    expect(slotsOf(kg)).toEqual([
      "api GET /api/things/:id 2",
      "api HEAD /api/things/:id 1",
      "external PATCH /api/v1/external/things 1",
      "other GET unmatched 1",
    ]);
    await app.close();
  });

  it("adds no hook while metrics are off", async () => {
    const kg = keygate({});
    const app = Fastify({ logger: false });
    countRequests(app as unknown as App, kg);
    app.get("/api/things", async () => ({ ok: true }));
    await app.inject({ method: "GET", url: "/api/things" });
    expect(slotsOf(kg)).toEqual([]);
    expect(kg.metrics.requests.slots.every((s) => s.route === "unmatched")).toBe(true);
    await app.close();
  });
});
