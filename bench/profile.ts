/**
 * Where the time goes: a server under `node --cpu-prof`, loaded with
 * `GET /api/v1/external/whoami`, then stopped; only the samples taken during the load are
 * summarised (start-up and the stop are left out).
 *
 *   A  – the bare Fastify server (bench/bare-server.ts), for comparison
 *   B  – the real Keygate process (`node --cpu-prof --import tsx src/main.ts`), one valid key
 *   B2 – Keygate, `GET /api/v1/external/subscribers/:id` (a real read) with one valid key
 *   B3 – the same as B with 10,000 valid keys, one at random per request
 *   M  – the same as B with a malformed key: every request refused with 401
 *
 *   node --import tsx bench/profile.ts [A|B|B2|B3|M]   (A, B, B2, B3 also run at the end of `npm run bench`)
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type CpuProfile,
  type ProfileSummary,
  sourceLines,
  summarise,
  summaryMarkdown,
} from "./cpuprofile.js";
import { keyMaker, seedKeys, setUpFixture, signedGet, startKeygate } from "./keygate.js";
import {
  freePort,
  load,
  log,
  type Pinning,
  ROOT,
  responses,
  type Server,
  setupPinning,
  sleep,
  startServer,
  varied,
} from "./lib.js";

/** A: bare Fastify. B: Keygate whoami. B2: subscriber read. B3: 10,000 keys at random. M: malformed key. */
export type ProfiledScenario = "A" | "B" | "B2" | "B3" | "M" | "S" | "T" | "X";

export type ProfileResult = {
  scenario: ProfiledScenario;
  summary: ProfileSummary;
  /** Where the raw profile was kept (git-ignored), for DevTools or a flame graph viewer. */
  saved: string;
  requests: number;
  durationS: number;
};

/** A whoami-shaped answer for A when no real one is at hand (the bench passes Keygate's own). */
const SAMPLE_BODY = JSON.stringify({
  success: true,
  data: {
    id: 1,
    name: "bench",
    key_prefix: "pk_live_0123",
    scopes: "read",
    owner: { id: 1, username: "admin", role: "admin" },
    expires_at: null,
    rate_limit_per_minute: 10000000,
    allowed_ips: null,
    client_ip: "127.0.0.1",
  },
});

type Target = {
  server: Server;
  cleanup: () => void;
  load: Omit<Parameters<typeof load>[0], "url"> & { url: string };
  /** A load run once before the warm-up (B3: every key once, so all are cached). */
  prime?: Parameters<typeof load>[0];
};

async function target(
  scenario: ProfiledScenario,
  pinning: Pinning,
  profDir: string,
  body: string,
): Promise<Target> {
  const profArgs = ["--cpu-prof", "--cpu-prof-dir", profDir];
  const path = "/api/v1/external/whoami";
  if (scenario === "A") {
    const server = await startServer({
      name: "bare",
      nodeArgs: [...profArgs, "--import", "tsx", "bench/bare-server.ts"],
      env: { BENCH_BODY: body, BENCH_PORT: String(await freePort()) },
      pinning,
    });
    return { server, cleanup: () => {}, load: { url: server.url + path } };
  }
  const kg = await startKeygate(pinning, { nodeArgs: profArgs });
  try {
    const fx = await setUpFixture(kg.url);
    if (scenario === "B2") {
      const read = `${kg.url}/api/v1/external/subscribers/${fx.subscriberId}`;
      return {
        server: kg,
        cleanup: kg.cleanup,
        load: { url: read, headers: { "x-api-key": fx.key } },
      };
    }
    if (scenario === "T") {
      return {
        server: kg,
        cleanup: kg.cleanup,
        load: { url: kg.url + path, headers: { authorization: `Bearer ${fx.accessToken}` } },
      };
    }
    if (scenario === "S" || scenario === "X") {
      // X: the same signed requests, sent with a key whose signing is off (nothing verified):
      // what the signature headers cost on the way, without the verifier.
      const signed = fx.signed as { key: string; secret: string };
      const key = scenario === "S" ? signed.key : fx.key;
      // Each request once: a connection's sequence is longer than it sends in a run, and
      // the warm-up's connections and the run's take different sequences.
      const pools = Array.from({ length: 100 }, () =>
        Array.from({ length: 3000 }, () => ({
          method: "GET",
          path,
          headers: signedGet(kg.url + path, key, signed.secret),
        })),
      );
      let next = 0;
      return {
        server: kg,
        cleanup: kg.cleanup,
        load: {
          url: kg.url + path,
          setupClient: (client) => client.requestIterator.setRequests(pools[next++ % 100] as never),
        },
      };
    }
    if (scenario === "B" || scenario === "M")
      return {
        server: kg,
        cleanup: kg.cleanup,
        load: {
          url: kg.url + path,
          headers: { "x-api-key": scenario === "M" ? "pk_live_not-a-key" : fx.key },
        },
      };
    const keyOf = keyMaker();
    seedKeys(kg.dbPath, fx.adminId, 10_000, keyOf);
    const random = varied(600, () => ({
      method: "GET",
      path,
      headers: { "x-api-key": keyOf(Math.floor(Math.random() * 10_000)) },
    }));
    let next = 0;
    const everyKey = varied(200, () => ({
      method: "GET",
      path,
      headers: { "x-api-key": keyOf(next++) },
    }));
    return {
      server: kg,
      cleanup: kg.cleanup,
      load: { url: kg.url + path, ...random },
      prime: { url: kg.url + path, connections: 50, amount: 10_000, ...everyKey },
    };
  } catch (err) {
    await kg.stop();
    kg.cleanup();
    throw err;
  }
}

export async function profileScenario(
  pinning: Pinning,
  durationS = 6,
  scenario: ProfiledScenario = "B",
  body = SAMPLE_BODY,
): Promise<ProfileResult> {
  const profDir = mkdtempSync(join(tmpdir(), "keygate-prof-"));
  const t = await target(scenario, pinning, profDir, body);
  try {
    const opts = {
      ...t.load,
      connections: 50,
      pipelining: Number(process.env.BENCH_PIPELINING ?? 1),
    };
    // Warm-up, not in the window.
    if (t.prime) await load(t.prime);
    await load({ ...opts, duration: 2 });
    await sleep(300);
    const loadStart = performance.now();
    const result = await load({ ...opts, duration: durationS });
    const loadEnd = performance.now();
    const code = await t.server.stop();
    const exited = performance.now();
    if (code !== 0) throw new Error(`${t.server.name} exited with ${code} under --cpu-prof`);

    const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`no .cpuprofile written in ${profDir}`);
    const profile = JSON.parse(readFileSync(join(profDir, file), "utf8")) as CpuProfile;
    // The profile ends when the process exits; count back from there to the load phase,
    // trimming 200 ms at each edge so ramp-up and ramp-down stay out.
    const usBeforeExit = (at: number) => (exited - at) * 1000;
    const window = {
      from: profile.endTime - usBeforeExit(loadStart) + 200_000,
      to: profile.endTime - usBeforeExit(loadEnd) - 200_000,
    };
    const summary = summarise(profile, { top: 25, window, lines: await sourceLines() });
    mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
    const saved = `bench/results/latest-${scenario}.cpuprofile.json`;
    copyFileSync(join(profDir, file), join(ROOT, saved));
    // Requests inside the trimmed window, assuming a steady rate over the run.
    const windowS = (window.to - window.from) / 1e6;
    const requests = Math.round((responses(result) * windowS) / result.sendingS);
    return { scenario, summary, saved, requests, durationS };
  } finally {
    await t.server.stop();
    t.cleanup();
    rmSync(profDir, { recursive: true, force: true });
  }
}

/** Profiled CPU per request by area, A beside B: what Keygate adds on top of Fastify. */
export function compareMarkdown(a: ProfileResult, b: ProfileResult): string {
  const per = (p: ProfileResult) =>
    new Map(p.summary.areas.map((x) => [x.area, (x.ms * 1000) / p.requests]));
  const pa = per(a);
  const pb = per(b);
  const areas = [...new Set([...pb.keys(), ...pa.keys()])].sort(
    (x, y) => (pb.get(y) ?? 0) - (pa.get(y) ?? 0) - ((pb.get(x) ?? 0) - (pa.get(x) ?? 0)),
  );
  const us = (n: number | undefined) => (n === undefined ? "–" : n.toFixed(1));
  const total = (p: ProfileResult) => (p.summary.busyMs * 1000) / p.requests;
  return [
    `| area | ${a.scenario} µs/req | ${b.scenario} µs/req | ${b.scenario} − ${a.scenario} |`,
    "| --- | ---: | ---: | ---: |",
    ...areas
      .filter((x) => Math.max(pa.get(x) ?? 0, pb.get(x) ?? 0) >= 0.2)
      .map(
        (x) =>
          `| ${x} | ${us(pa.get(x))} | ${us(pb.get(x))} | ${us((pb.get(x) ?? 0) - (pa.get(x) ?? 0))} |`,
      ),
    `| **all (busy)** | **${us(total(a))}** | **${us(total(b))}** | **${us(total(b) - total(a))}** |`,
  ].join("\n");
}

/** The functions whose self time per request grew most from A to B. */
export function compareFunctionsMarkdown(a: ProfileResult, b: ProfileResult, top = 15): string {
  const key = (r: { name: string; file: string }) => `${r.name} ${r.file}`;
  const per = (p: ProfileResult) =>
    new Map(p.summary.functions.map((r) => [key(r), { row: r, us: (r.ms * 1000) / p.requests }]));
  const pa = per(a);
  const pb = per(b);
  const rows = [...new Set([...pa.keys(), ...pb.keys()])]
    .map((k) => {
      const row = (pb.get(k) ?? pa.get(k))?.row as { name: string; file: string; area: string };
      const ua = pa.get(k)?.us ?? 0;
      const ub = pb.get(k)?.us ?? 0;
      return { row, ua, ub, d: ub - ua };
    })
    .sort((x, y) => y.d - x.d)
    .slice(0, top);
  return [
    `| function | file:line | area | ${a.scenario} µs/req | ${b.scenario} µs/req | ${b.scenario} − ${a.scenario} |`,
    "| --- | --- | --- | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| \`${r.row.name}\` | ${r.row.file || "–"} | ${r.row.area} | ${r.ua.toFixed(2)} | ${r.ub.toFixed(2)} | ${r.d.toFixed(2)} |`,
    ),
  ].join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const pinning = setupPinning();
  log(`pinning: ${pinning.note}`);
  const arg = process.argv[2];
  const scenario: ProfiledScenario =
    arg === "A" ||
    arg === "B2" ||
    arg === "B3" ||
    arg === "M" ||
    arg === "S" ||
    arg === "T" ||
    arg === "X"
      ? arg
      : "B";
  const r = await profileScenario(pinning, Number(process.env.BENCH_DURATION ?? 6), scenario);
  process.stdout.write(
    `${scenario} under --cpu-prof: ${r.requests} requests in the window; raw profile: ${r.saved}\n\n`,
  );
  process.stdout.write(`${summaryMarkdown(r.summary)}\n`);
}
