/**
 * Where the time goes in scenario B: the real server under `node --cpu-prof`, loaded with
 * `GET /api/v1/external/whoami` and a valid key, then stopped; only the samples taken during
 * the load are summarised (start-up and the stop are left out).
 *
 *   node --import tsx bench/profile.ts [B|B3]   (both also run as the last step of `npm run bench`)
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
import type { Request } from "autocannon";
import { keyMaker, seedKeys, setUpFixture, startKeygate } from "./keygate.js";
import { load, log, type Pinning, ROOT, responses, setupPinning, sleep } from "./lib.js";

export type ProfileResult = {
  scenario: ProfiledScenario;
  summary: ProfileSummary;
  /** Where the raw profile was kept (git-ignored), for DevTools or a flame graph viewer. */
  saved: string;
  requests: number;
  durationS: number;
};

/** B: one valid key. B3: 10,000 valid keys, one chosen at random per request. */
export type ProfiledScenario = "B" | "B3";

export async function profileB(
  pinning: Pinning,
  durationS = 6,
  scenario: ProfiledScenario = "B",
): Promise<ProfileResult> {
  const profDir = mkdtempSync(join(tmpdir(), "keygate-prof-"));
  const kg = await startKeygate(pinning, { nodeArgs: ["--cpu-prof", "--cpu-prof-dir", profDir] });
  try {
    const fx = await setUpFixture(kg.url);
    const keyOf = keyMaker();
    if (scenario === "B3") seedKeys(kg.dbPath, fx.adminId, 10_000, keyOf);
    const random: Request[] = [
      {
        method: "GET",
        path: "/api/v1/external/whoami",
        setupRequest: (req) => {
          (req.headers as Record<string, string>)["x-api-key"] = keyOf(
            Math.floor(Math.random() * 10_000),
          );
          return req;
        },
      },
    ];
    const opts = {
      url: `${kg.url}/api/v1/external/whoami`,
      connections: 50,
      pipelining: 1,
      ...(scenario === "B3" ? { requests: random } : { headers: { "x-api-key": fx.key } }),
    };
    await load({ ...opts, duration: scenario === "B3" ? 4 : 2 }); // warm-up, not in the window
    await sleep(300);
    const loadStart = performance.now();
    const result = await load({ ...opts, duration: durationS });
    const loadEnd = performance.now();
    const code = await kg.stop();
    const exited = performance.now();
    if (code !== 0) throw new Error(`keygate exited with ${code} under --cpu-prof`);

    const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`no .cpuprofile written in ${profDir}`);
    const profile = JSON.parse(readFileSync(join(profDir, file), "utf8")) as CpuProfile;
    // The profile ends when the process exits; count back from there to the load phase,
    // trimming 200 ms at each edge so ramp-up and ramp-down stay out.
    const usBeforeExit = (t: number) => (exited - t) * 1000;
    const window = {
      from: profile.endTime - usBeforeExit(loadStart) + 200_000,
      to: profile.endTime - usBeforeExit(loadEnd) - 200_000,
    };
    const summary = summarise(profile, { top: 25, window, lines: await sourceLines() });
    const resultsDir = join(ROOT, "bench", "results");
    mkdirSync(resultsDir, { recursive: true });
    const saved = `bench/results/latest-${scenario}.cpuprofile.json`;
    copyFileSync(join(profDir, file), join(ROOT, saved));
    return {
      scenario,
      summary,
      saved,
      requests: responses(result),
      durationS,
    };
  } finally {
    await kg.stop();
    kg.cleanup();
    rmSync(profDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const pinning = setupPinning();
  log(`pinning: ${pinning.note}`);
  const scenario: ProfiledScenario = process.argv[2] === "B3" ? "B3" : "B";
  const r = await profileB(pinning, Number(process.env.BENCH_DURATION ?? 6), scenario);
  process.stdout.write(
    `${scenario} under --cpu-prof: ${r.requests} requests in ${r.durationS} s; raw profile: ${r.saved}\n\n`,
  );
  process.stdout.write(`${summaryMarkdown(r.summary)}\n`);
}
