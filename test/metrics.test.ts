import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parser as promql } from "@prometheus-io/lezer-promql";
import parsePrometheus from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase, type Harness, harness } from "./helpers.js";
import { call, ROOT, startKeygate, startRedis } from "./process.js";

const TOKEN = "metrics-token-0123456789abcdef";
const BEARER = { authorization: `Bearer ${TOKEN}` };

type Family = ReturnType<typeof parsePrometheus>[number];

async function scrape(h: Harness): Promise<string> {
  const res = await h.app.inject({ method: "GET", url: "/metrics", headers: BEARER });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
  return res.body;
}

/** The scrape as parse-prometheus-text-format reads it (a parser independent of prom-client). */
function families(text: string): Map<string, Family> {
  return new Map(parsePrometheus(text).map((f) => [f.name, f]));
}

/** The value of the counter or gauge series with exactly these labels (0 when there is none). */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  const family = families(text).get(name);
  if (family === undefined) throw new Error(`the scrape has no ${name}`);
  const found = family.metrics.find((m) => {
    const own = m.labels ?? {};
    return (
      Object.keys(own).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => own[k] === v)
    );
  });
  return found === undefined ? 0 : Number(found.value);
}

/** Every series of the scrape (name and labels), as lines. */
function seriesOf(text: string): Set<string> {
  return new Set(
    text
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"))
      .map((l) => l.slice(0, l.lastIndexOf(" "))),
  );
}

function histogramCount(text: string, labels: string): number {
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`keygate_http_request_duration_seconds_count{${labels}} `));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

const WHOAMI = { surface: "external", method: "GET", route: "/api/v1/external/whoami" };

describe("GET /metrics is protected", () => {
  it("answers 403 saying what to set while neither a token nor an address is configured", async () => {
    const h = await harness();
    try {
      const res = await h.app.inject({ method: "GET", url: "/metrics", headers: BEARER });
      expect(res.statusCode).toBe(403);
      const body = res.json();
      expect(body).toMatchObject({ success: false, code: "FORBIDDEN" });
      expect(body.message).toContain("KEYGATE_METRICS_TOKEN");
      expect(body.message).toContain("KEYGATE_METRICS_ADDRESS");
    } finally {
      await h.close();
    }
  });

  it("takes only the metrics token as a bearer token, never echoing what was sent", async () => {
    const h = await harness({ KEYGATE_METRICS_TOKEN: TOKEN });
    try {
      const ask = (headers: Record<string, string>) =>
        h.app.inject({ method: "GET", url: "/metrics", headers });
      const missing = await ask({});
      expect(missing.statusCode).toBe(401);
      expect(missing.json()).toMatchObject({ success: false, code: "UNAUTHORIZED" });
      expect(missing.json().message).toContain("Authorization: Bearer");
      expect(missing.headers["www-authenticate"]).toBe('Bearer realm="keygate-metrics"');

      const wrongValue = `${TOKEN.slice(0, -1)}X`;
      const attempts: Record<string, string>[] = [
        { authorization: `Bearer ${wrongValue}` },
        { authorization: `Bearer ${h.adminToken}` },
        { authorization: TOKEN },
        { "x-api-key": TOKEN },
      ];
      for (const headers of attempts) {
        const res = await ask(headers);
        expect(res.statusCode, JSON.stringify(headers)).toBe(401);
        expect(res.json().code).toBe("UNAUTHORIZED");
        expect(res.body).not.toContain(wrongValue);
        expect(res.body).not.toContain(TOKEN);
      }
      const ok = await ask({ authorization: `bearer  ${TOKEN}` });
      expect(ok.statusCode).toBe(200);
      expect(ok.body).toContain("# TYPE keygate_http_requests_total counter");
      expect(ok.body).not.toContain(TOKEN);
    } finally {
      await h.close();
    }
  });

  it("is not call-logged and does not touch a key's budget", async () => {
    const h = await harness({ KEYGATE_METRICS_TOKEN: TOKEN });
    try {
      const { key } = await h.mint(h.adminToken, { rate_limit_per_minute: 100 });
      const first = await h.ext("GET", "/whoami", key);
      for (let i = 0; i < 5; i++) await scrape(h);
      // With the key as well: /metrics reads no key, so none is counted.
      await h.app.inject({
        method: "GET",
        url: "/metrics",
        headers: { ...BEARER, "x-api-key": key },
      });
      const second = await h.ext("GET", "/whoami", key);
      expect(Number(second.headers["ratelimit-remaining"])).toBe(
        Number(first.headers["ratelimit-remaining"]) - 1,
      );
      await h.kg.callLog.flush();
      const rows = await h.kg.database.db.selectFrom("api_key_logs").select(["path"]).execute();
      expect(rows.map((r) => r.path)).toEqual([
        "/api/v1/external/whoami",
        "/api/v1/external/whoami",
      ]);
    } finally {
      await h.close();
    }
  });
});

describe("what the scrape counts", () => {
  let h: Harness;
  beforeAll(async () => {
    // The 3,000 unknown paths below would spend the per-IP budget.
    h = await harness({ KEYGATE_METRICS_TOKEN: TOKEN, KEYGATE_IP_RATE_LIMIT: "0" });
  });
  afterAll(async () => {
    await h.close();
  });

  it("moves the counters by the requests made", async () => {
    const { key } = await h.mint(h.adminToken);
    const revoked = await h.mint(h.adminToken);
    expect((await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken)).statusCode).toBe(
      200,
    );
    const before = await scrape(h);

    for (let i = 0; i < 3; i++) expect((await h.ext("GET", "/whoami", key)).statusCode).toBe(200);
    expect((await h.ext("GET", "/whoami", revoked.key)).statusCode).toBe(401);
    expect((await h.ext("GET", "/whoami", "pk_live_nope")).statusCode).toBe(401);
    expect((await h.ext("GET", "/whoami")).statusCode).toBe(401);
    expect((await h.ext("GET", "/no-such-thing", key)).statusCode).toBe(404);
    expect((await h.api("GET", "/api/users", h.adminToken)).statusCode).toBe(200);
    const head = await h.app.inject({
      method: "HEAD",
      url: "/api/v1/external/whoami",
      headers: { "x-api-key": key },
    });
    expect(head.statusCode).toBe(200);
    // A URL the router cannot read is answered before any route: counted all the same.
    expect((await h.app.inject({ method: "GET", url: "/api/%zz" })).statusCode).toBe(400);
    await h.kg.callLog.flush();
    const after = await scrape(h);

    const moved = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);
    expect(moved("keygate_http_requests_total", { ...WHOAMI, status: "200" })).toBe(3);
    expect(moved("keygate_http_requests_total", { ...WHOAMI, status: "401" })).toBe(3);
    const headWhoami = { ...WHOAMI, method: "HEAD", status: "200" };
    expect(moved("keygate_http_requests_total", headWhoami)).toBe(1);
    const unmatched = { surface: "external", method: "GET", route: "unmatched", status: "404" };
    expect(moved("keygate_http_requests_total", unmatched)).toBe(1);
    const unreadable = { surface: "api", method: "GET", route: "unmatched", status: "400" };
    expect(moved("keygate_http_requests_total", unreadable)).toBe(1);
    const users = { surface: "api", method: "GET", route: "/api/users", status: "200" };
    expect(moved("keygate_http_requests_total", users)).toBe(1);
    const whoami = 'surface="external",method="GET",route="/api/v1/external/whoami"';
    expect(histogramCount(after, whoami) - histogramCount(before, whoami)).toBe(6);

    const outcome = (o: string) => moved("keygate_key_verifications_total", { outcome: o });
    // The unknown route checks the key first, so it counts as ok too (and so does HEAD).
    expect(outcome("ok")).toBe(5);
    expect(outcome("API_KEY_REVOKED")).toBe(1);
    expect(outcome("INVALID_API_KEY")).toBe(1);
    expect(outcome("MISSING_API_KEY")).toBe(1);
    expect(outcome("SCOPE_REQUIRED")).toBe(0);

    // The revoked key and the valid one were read once each; the valid one's four later calls
    // (two whoami, the unknown route, HEAD) were answered from the cache.
    expect(moved("keygate_key_cache_misses_total")).toBe(2);
    expect(moved("keygate_key_cache_hits_total", { kind: "key" })).toBe(4);
    // Every external call is a call-log row, written by the flush.
    expect(moved("keygate_calllog_rows_written_total")).toBe(8);
    expect(value(after, "keygate_calllog_queue_rows")).toBe(0);
    expect(value(after, "keygate_calllog_rows_dropped_total")).toBe(0);
    expect(value(after, "keygate_database_up")).toBe(1);
    expect(value(after, "keygate_ratelimit_fallback_active")).toBe(0);
    expect(value(after, "keygate_webhook_deliveries_total", { outcome: "delivered" })).toBe(0);
    expect(value(after, "process_cpu_seconds_total")).toBeGreaterThan(0);
  });

  it("counts the key checks of the token endpoint's client authentication", async () => {
    const { key } = await h.mint(h.adminToken);
    const revoked = await h.mint(h.adminToken);
    expect((await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken)).statusCode).toBe(
      200,
    );
    const exchange = (k: string) =>
      h.app.inject({
        method: "POST",
        url: "/api/v1/external/oauth/token",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Basic ${Buffer.from(`${k.slice(0, 12)}:${k}`).toString("base64")}`,
        },
        payload: "grant_type=client_credentials",
      });
    const before = await scrape(h);
    expect((await exchange(key)).statusCode).toBe(200);
    expect((await exchange(revoked.key)).statusCode).toBe(401);
    const after = await scrape(h);
    const outcome = (o: string) =>
      value(after, "keygate_key_verifications_total", { outcome: o }) -
      value(before, "keygate_key_verifications_total", { outcome: o });
    expect(outcome("ok")).toBe(1);
    expect(outcome("API_KEY_REVOKED")).toBe(1);
  });

  it("adds no series for 1,000 distinct unknown paths", async () => {
    const { key } = await h.mint(h.adminToken, { rate_limit_per_minute: 10_000 });
    const paths = (i: number) => [`/api/v1/external/nope-${i}`, `/api/nope-${i}`, `/nope-${i}`];
    // One of each first, so that the unmatched series exist before counting.
    for (const url of paths(-1))
      await h.app.inject({ method: "GET", url, headers: { "x-api-key": key } });
    await scrape(h); // and of /metrics itself
    const before = await scrape(h);
    for (let i = 0; i < 1000; i++) {
      for (const url of paths(i)) {
        await h.app.inject({ method: "GET", url, headers: { "x-api-key": key } });
      }
    }
    const after = await scrape(h);
    const known = seriesOf(before);
    const added = [...seriesOf(after)].filter((s) => !known.has(s));
    // Only the default metrics may come and go (garbage collection kinds seen for the first time).
    expect(added.filter((s) => s.startsWith("keygate_"))).toEqual([]);
    expect(after).not.toContain("nope-");
    // Whatever each was answered (a console page answers unknown paths outside /api, when built).
    const unmatched = (text: string, surface: string) =>
      (families(text).get("keygate_http_requests_total")?.metrics ?? [])
        .filter((m) => m.labels?.surface === surface && m.labels?.route === "unmatched")
        .reduce((n, m) => n + Number(m.value), 0);
    for (const surface of ["external", "api", "other"]) {
      expect(unmatched(after, surface) - unmatched(before, surface), surface).toBe(1000);
    }
  }, 60_000);

  it("passes promtool check metrics", async () => {
    const promtool = spawnSync("promtool", ["--version"]);
    if (promtool.error !== undefined) {
      // CI installs Debian's prometheus package (.ci/run): there this must run.
      expect(process.env.CI, "promtool is missing (apt-get install prometheus)").not.toBe("true");
      return;
    }
    const text = await scrape(h);
    const check = (input: string) => {
      const r = spawnSync("promtool", ["check", "metrics"], { input, encoding: "utf8" });
      return { status: r.status, problems: `${r.stdout}${r.stderr}`.split("\n").filter(Boolean) };
    };
    // prom-client's own process metrics name three gauges *_total; promtool's linter says so,
    // and that is all it may say. Keygate's own families must pass without a remark.
    const whole = check(text);
    const PROM_CLIENT_GAUGES =
      /^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
    expect(whole.problems.filter((p) => !PROM_CLIENT_GAUGES.test(p))).toEqual([]);
    const own = text
      .split("\n\n")
      .filter((block) => block.includes("# TYPE keygate_"))
      .join("\n\n");
    expect(own).toContain("keygate_http_request_duration_seconds_bucket");
    expect(check(`${own}\n`)).toEqual({ status: 0, problems: [] });
  });
});

describe("with Redis", () => {
  it("says Redis is up, then that budgets fell back to memory once it is gone; the dashboard names only metrics the scrape has", async () => {
    const redis = await startRedis();
    const h = await harness({ KEYGATE_METRICS_TOKEN: TOKEN, KEYGATE_REDIS_URL: redis.url });
    try {
      await h.kg.cluster?.ready(5_000);
      const { key } = await h.mint(h.adminToken);
      expect((await h.ext("GET", "/whoami", key)).statusCode).toBe(200);
      const up = await scrape(h);
      expect(value(up, "keygate_redis_up")).toBe(1);
      expect(value(up, "keygate_ratelimit_fallback_active")).toBe(0);
      expect(value(up, "keygate_ratelimit_fallbacks_total")).toBe(0);
      expectDashboardMatches(up);

      await redis.stop();
      const deadline = Date.now() + 10_000;
      while (h.kg.cluster?.available && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      for (let i = 0; i < 2; i++) expect((await h.ext("GET", "/whoami", key)).statusCode).toBe(200);
      const down = await scrape(h);
      expect(value(down, "keygate_redis_up")).toBe(0);
      expect(value(down, "keygate_ratelimit_fallback_active")).toBe(1);
      expect(value(down, "keygate_ratelimit_fallbacks_total")).toBe(1);
      expect(value(down, "keygate_ratelimit_fallback_decisions_total")).toBeGreaterThanOrEqual(2);
    } finally {
      await h.close();
      await redis.stop();
    }
  });
});

/** Metric names a PromQL expression selects (the histogram's series by their family name). */
function metricNames(grafanaExpr: string): string[] {
  // Grafana's interval variables stand where PromQL wants a duration.
  const expr = grafanaExpr.replaceAll("$__rate_interval", "5m").replaceAll("$__range", "1h");
  const tree = promql.parse(expr);
  const names: string[] = [];
  const cursor = tree.cursor();
  let errors = 0;
  do {
    if (cursor.type.isError) errors++;
    if (cursor.name === "VectorSelector") {
      const child = cursor.node.firstChild;
      if (child?.name === "Identifier") names.push(expr.slice(child.from, child.to));
    }
  } while (cursor.next());
  expect(errors, `PromQL does not parse: ${expr}`).toBe(0);
  return names;
}

type Panel = { title?: string; type?: string; targets?: { expr?: string }[]; panels?: Panel[] };

function expectDashboardMatches(text: string): void {
  const dashboard = JSON.parse(readFileSync(join(ROOT, "docs/grafana-dashboard.json"), "utf8"));
  expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
  expect(dashboard.__inputs).toEqual([
    expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" }),
  ]);
  const exposed = new Set<string>();
  for (const f of parsePrometheus(text)) {
    exposed.add(f.name);
    if (f.type === "HISTOGRAM")
      for (const s of ["_bucket", "_sum", "_count"]) exposed.add(`${f.name}${s}`);
  }
  const panels: Panel[] = (dashboard.panels as Panel[]).flatMap((p) => [p, ...(p.panels ?? [])]);
  const graphs = panels.filter((p) => p.type !== "row");
  expect(graphs.length).toBeGreaterThanOrEqual(8);
  const named = new Set<string>();
  for (const panel of graphs) {
    expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
    for (const target of panel.targets ?? []) {
      const names = metricNames(target.expr ?? "");
      expect(names.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
      for (const name of names) {
        expect(exposed.has(name), `${panel.title} asks for ${name}, which the scrape lacks`).toBe(
          true,
        );
        named.add(name);
      }
    }
    expect(JSON.stringify(panel)).toContain("${DS_PROMETHEUS}");
  }
  // Every family of Keygate's own is on the dashboard.
  const own = [...parsePrometheus(text)].map((f) => f.name).filter((n) => n.startsWith("keygate_"));
  for (const name of own) {
    const shown = [...named].some((n) => n === name || n.startsWith(`${name}_`));
    expect(shown, `${name} is on no panel`).toBe(true);
  }
}

describe("KEYGATE_METRICS_ADDRESS", () => {
  it("serves /metrics without a token on a listener of its own, and only there", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keygate-metrics-"));
    const database = await freshDatabase(join(dir, "keygate.db"));
    const server = await startKeygate({
      KEYGATE_DATABASE_URL: database.url,
      KEYGATE_METRICS_ADDRESS: "127.0.0.1:0",
    });
    try {
      const m = /keygate: metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(server.output());
      expect(m, server.output()).not.toBeNull();
      const listener = (m as RegExpExecArray)[1] as string;
      const res = await fetch(`${listener}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      const text = await res.text();
      expect(value(text, "keygate_database_up")).toBe(1);
      expect(text).toContain("# TYPE keygate_webhook_deliveries_total counter");

      const other = await call(listener, "GET", "/api/users");
      expect(other.status).toBe(404);
      expect(other.json).toMatchObject({ success: false, code: "NOT_FOUND" });
      expect(other.json.message).toContain("only GET /metrics");

      // Keygate's own port does not serve it (no token is set), and says where it is.
      const main = await call(server.base, "GET", "/metrics");
      expect(main.status).toBe(404);
      expect(main.json.message).toContain("KEYGATE_METRICS_ADDRESS");
      // The main port's request shows up on the listener's next scrape.
      const later = await (await fetch(`${listener}/metrics`)).text();
      const route = { surface: "other", method: "GET", route: "/metrics", status: "404" };
      expect(value(later, "keygate_http_requests_total", route)).toBe(1);
    } finally {
      await server.stop();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
