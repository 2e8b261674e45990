/**
 * The keys part of `npm run bench:scale` (which first runs bench/scale-calls.ts, the call-log
 * part; `SCALE_ONLY=keys` runs this one alone): Keygate with 1,000,000 keys in the store. Measures verification of
 * keys that are (almost all) not cached — each request picks one of the million at random —
 * and samples the server's RSS every second to show whether memory stays bounded.
 *
 * Environment: SCALE_KEYS (default 1000000), SCALE_DURATION (s, default 240),
 * BENCH_CONNECTIONS (default 50), BENCH_NO_PIN=1 to skip CPU pinning. Rewrites
 * bench/results/scale.md but keeps its "Call-log scale" section.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Request } from "autocannon";
import { keyMaker, seedKeys, setUpFixture, startKeygate } from "./keygate.js";
import {
  call,
  cpuMicros,
  fmt,
  fmtInt,
  load,
  log,
  memory,
  ROOT,
  responses,
  setupPinning,
  sourceState,
  unexpected,
} from "./lib.js";

const KEYS = Number(process.env.SCALE_KEYS ?? 1_000_000);
const DURATION = Number(process.env.SCALE_DURATION ?? 240);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** The key cache's bounds (src/keys/cache.ts defaults). */
const CACHE_FOUND = 50_000;

/** Least-squares slope of RSS against time, in MB per minute. */
function slopePerMinute(xs: { t: number; rssMb: number }[]): number {
  if (xs.length < 2) return Number.NaN;
  const mt = xs.reduce((a, x) => a + x.t, 0) / xs.length;
  const mr = xs.reduce((a, x) => a + x.rssMb, 0) / xs.length;
  let num = 0;
  let den = 0;
  for (const x of xs) {
    num += (x.t - mt) * (x.rssMb - mr);
    den += (x.t - mt) ** 2;
  }
  return den > 0 ? (num / den) * 60 : Number.NaN;
}

/** The call-log section bench/scale-calls.ts wrote into scale.md, kept when this rewrites it. */
function callLogSection(file: string): string {
  if (!existsSync(file)) return "";
  const text = readFileSync(file, "utf8");
  const at = text.indexOf("\n## Call-log scale\n");
  return at === -1 ? "" : `\n${text.slice(at + 1).trimEnd()}\n`;
}

async function main(): Promise<void> {
  const only = process.env.SCALE_ONLY;
  if (only !== undefined && only !== "keys") {
    log(`SCALE_ONLY=${only}: the keys part skipped`);
    return;
  }
  const t0 = performance.now();
  const pinning = setupPinning();
  const source = sourceState();
  log(`pinning: ${pinning.note}`);
  const dir = mkdtempSync(join(tmpdir(), "keygate-scale-"));
  try {
    // Schema and admin through the real server, then the keys straight into the file.
    const first = await startKeygate(pinning, { dir });
    const fx = await setUpFixture(first.url);
    await first.stop();
    const keyOf = keyMaker();
    const seedStart = performance.now();
    seedKeys(first.dbPath, fx.adminId, KEYS, keyOf, (done) => {
      if (done % 200_000 === 0) log(`seeded ${fmtInt(done)} keys`);
    });
    const seedS = (performance.now() - seedStart) / 1000;
    log(`seeded ${fmtInt(KEYS)} keys in ${seedS.toFixed(1)} s`);

    const kg = await startKeygate(pinning, { dir });
    try {
      const probe = await call(kg.url, "GET", "/api/v1/external/whoami", {
        key: keyOf(KEYS - 1),
      });
      if (probe.status !== 200)
        throw new Error(`seeded key refused: ${probe.status} ${probe.text}`);
      const baseline = memory(kg.pid).rssMb;

      const random: Request[] = [
        {
          method: "GET",
          path: "/api/v1/external/whoami",
          setupRequest: (req) => {
            (req.headers as Record<string, string>)["x-api-key"] = keyOf(
              Math.floor(Math.random() * KEYS),
            );
            return req;
          },
        },
      ];

      const samples: { t: number; rssMb: number }[] = [];
      const started = performance.now();
      const sampler = setInterval(() => {
        try {
          samples.push({ t: (performance.now() - started) / 1000, rssMb: memory(kg.pid).rssMb });
        } catch {
          // The process is gone; the run will say so.
        }
      }, 1000);
      const cpu0 = cpuMicros(kg.pid);
      const result = await load({
        url: kg.url,
        connections: CONNECTIONS,
        pipelining: 1,
        duration: DURATION,
        requests: random,
      });
      clearInterval(sampler);
      const cpu1 = cpuMicros(kg.pid);
      const peak = memory(kg.pid).peakMb;
      const n = responses(result);
      const rps = n / result.duration;

      // Bounded: once the cache is full and the limiter's one-minute windows are being swept,
      // RSS levels off: the last third of the run rises less than 5% above the middle third,
      // or its own trend is under 5 MB a minute.
      const third = Math.floor(samples.length / 3);
      const maxOf = (xs: { rssMb: number }[]) => Math.max(...xs.map((x) => x.rssMb));
      const middle = maxOf(samples.slice(third, 2 * third));
      const last = maxOf(samples.slice(2 * third));
      const slope = slopePerMinute(samples.slice(2 * third));
      const bounded = last <= middle * 1.05 || slope < 5;
      // Expected distinct keys among n uniform draws from KEYS.
      const distinct = KEYS * (1 - Math.exp(-n / KEYS));
      const series = samples.filter((_, i) => i % 10 === 9 || i === samples.length - 1);
      const elapsedS = (performance.now() - t0) / 1000;

      const md = [
        "# Keygate scale run — latest",
        "",
        `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC · Keygate ${source} · Node ${process.versions.node} · ${pinning.note} · run took ${elapsedS.toFixed(0)} s`,
        "",
        `- Store: ${fmtInt(KEYS)} keys in SQLite (seeded in ${seedS.toFixed(1)} s), key cache bounded at ${fmtInt(CACHE_FOUND)} found + 10,000 unknown entries.`,
        `- Load: \`GET /api/v1/external/whoami\`, a key drawn at random among the ${fmtInt(KEYS)} per request, c${CONNECTIONS} p1 for ${DURATION} s; with at most ${fmtInt(CACHE_FOUND)} cached, at least ${fmt(100 * (1 - CACHE_FOUND / KEYS), 0)}% of requests miss the cache and read the store.`,
        `- Throughput: **${fmtInt(rps)} req/s** (${fmtInt(n)} responses, ${unexpected(result, 200)} not 200, ${result.errors} errors, ${result.timeouts} timeouts); latency p50 ${fmt(result.latency.p50)} ms, p99 ${fmt(result.latency.p99)} ms; server CPU ${fmt((cpu1 - cpu0) / Math.max(1, n), 1)} µs per request.`,
        `- Keys touched: about ${fmtInt(distinct)} distinct keys in ${fmtInt(n)} requests, so the cache filled and then evicted.`,
        `- Memory: RSS ${fmt(baseline, 0)} MB before the load, peak (VmHWM) ${fmt(peak, 0)} MB; highest RSS in the middle third of the run ${fmt(middle, 0)} MB, in the last third ${fmt(last, 0)} MB; trend over the last third ${fmt(slope, 1)} MB/min → **${bounded ? "levelled off: bounded" : "still rising at the end of the run"}**.`,
        "",
        "RSS over time (MB):",
        "",
        `| s | ${series.map((s) => s.t.toFixed(0)).join(" | ")} |`,
        `| --- | ${series.map(() => "---:").join(" | ")} |`,
        `| RSS | ${series.map((s) => s.rssMb.toFixed(0)).join(" | ")} |`,
        "",
      ].join("\n");
      const json = {
        date: new Date().toISOString(),
        source,
        keys: KEYS,
        seedS,
        durationS: DURATION,
        connections: CONNECTIONS,
        pinning: pinning.note,
        rps,
        responses: n,
        notOk: unexpected(result, 200),
        errors: result.errors,
        timeouts: result.timeouts,
        latency: { p50: result.latency.p50, p99: result.latency.p99 },
        cpuUsPerReq: (cpu1 - cpu0) / Math.max(1, n),
        rss: {
          baselineMb: baseline,
          peakMb: peak,
          middleThirdMaxMb: middle,
          lastThirdMaxMb: last,
          lastThirdSlopeMbPerMin: slope,
          bounded,
        },
        samples,
        elapsedS,
      };
      const resultsDir = join(ROOT, "bench", "results");
      mkdirSync(resultsDir, { recursive: true });
      const file = join(resultsDir, "scale.md");
      writeFileSync(file, md + callLogSection(file));
      writeFileSync(join(resultsDir, "scale.json"), `${JSON.stringify(json, null, 2)}\n`);
      process.stdout.write(md);
      log(`wrote bench/results/scale.md and scale.json in ${elapsedS.toFixed(0)} s`);
    } finally {
      await kg.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
