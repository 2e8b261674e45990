/**
 * The call-log part of `npm run bench:scale` (which runs this, then bench/scale.ts, the
 * million keys; `SCALE_ONLY=calls` or `SCALE_ONLY=keys` runs one of them).
 *
 * On SQLite and on PostgreSQL in turn: Keygate makes its schema, bench/seed-calls.ts puts
 * SCALE_CALLS call-log rows (default 10,000,000, over SCALE_CALL_DAYS = 45 days, 1,000 keys
 * with a few hot ones) with their minutes and usage rollups into it, Keygate is started on it
 * again and, over HTTP as the console asks, each of these is timed once on its own (the
 * first call) and then SCALE_TRIES times (default 30): a key's last 200 calls (`GET
 * /api/api-keys/:id/logs?limit=200`) for the busiest key, a key of middling use and the
 * quietest; and the 30-day usage query (`GET /api/api-keys/:id/usage?from=<30 days
 * ago>&bucket=day`) for the busiest. Then, Keygate stopped, one retention run that removes
 * the first (partial) UTC day and the next whole one (SqlKeyRepo.pruneLogs: dropped
 * partitions on PostgreSQL, a DELETE on SQLite). The bound is 200 ms for each query.
 *
 * Writes the "Call-log scale" section of bench/results/scale.md (the rest of the file, the
 * keys run, is kept) and bench/results/scale-calls.json.
 *
 * Environment: SCALE_CALLS, SCALE_CALL_DAYS, SCALE_TRIES, SCALE_ENGINES (default
 * "sqlite,postgres"), SCALE_PG_URL (default postgres://postgres@127.0.0.1:5432/test; a
 * fresh schema is made and dropped), BENCH_NO_PIN=1 to skip CPU pinning.
 */
import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openDatabase } from "../src/store/database.js";
import { SqlKeyRepo } from "../src/store/keys.js";
import { readUsage } from "../src/store/usage.js";
import { ADMIN_PASSWORD, startKeygate } from "./keygate.js";
import { call, fmt, fmtInt, log, ROOT, setupPinning, sourceState } from "./lib.js";
import { seedCalls, type SeedResult } from "./seed-calls.js";

const ROWS = Number(process.env.SCALE_CALLS ?? 10_000_000);
const DAYS = Number(process.env.SCALE_CALL_DAYS ?? 45);
const TRIES = Number(process.env.SCALE_TRIES ?? 30);
const ENGINES = (process.env.SCALE_ENGINES ?? "sqlite,postgres").split(",") as (
  "sqlite" | "postgres"
)[];
const PG_URL = process.env.SCALE_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** The bound each query must answer within. */
const BOUND_MS = 200;
/** The rank of the key of middling use among the 1,000. */
const MID_RANK = 50;
export const SECTION = "## Call-log scale";

type Timing = {
  what: string;
  path: string;
  /** Rows the answer held (calls, or usage buckets). */
  rows: number;
  firstMs: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  via: "http" | "store";
};

type EngineRun = {
  engine: "sqlite" | "postgres";
  seed: Omit<SeedResult, "keyIds" | "calls">;
  keys: {
    hot: { id: number; calls: number };
    mid: { id: number; calls: number };
    cold: { id: number; calls: number };
  };
  timings: Timing[];
  retention: { ms: number; rows: number; how: string };
  sizeMb: number | null;
};

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, i)] as number;
}

/** The first call timed on its own, then `TRIES` more for the median and p95. */
async function time(
  what: string,
  path: string,
  via: Timing["via"],
  once: () => Promise<number>,
): Promise<Timing> {
  let t = performance.now();
  await once();
  const firstMs = performance.now() - t;
  const ms: number[] = [];
  let rows = 0;
  for (let i = 0; i < TRIES; i++) {
    t = performance.now();
    rows = await once();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const timing = {
    what,
    path,
    rows,
    firstMs,
    medianMs: quantile(ms, 0.5),
    p95Ms: quantile(ms, 0.95),
    maxMs: ms[ms.length - 1] as number,
    via,
  };
  log(
    `  ${what}: ${rows} rows, first ${fmt(firstMs, 1)} ms, median ${fmt(timing.medianMs, 1)} ms, p95 ${fmt(timing.p95Ms, 1)} ms`,
  );
  return timing;
}

async function pgAdmin(text: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

async function runEngine(engine: "sqlite" | "postgres"): Promise<EngineRun> {
  const pinning = setupPinning();
  const dir = mkdtempSync(join(tmpdir(), "keygate-scale-calls-"));
  const schema = `bench_calls_${randomBytes(5).toString("hex")}`;
  const url =
    engine === "sqlite"
      ? `sqlite:${join(dir, "keygate.db")}`
      : `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  // Retention past the seeded days: the start-up prune must not trim the log being measured.
  const env = {
    KEYGATE_DATABASE_URL: url,
    KEYGATE_LOG_RETENTION_DAYS: String(DAYS + 30),
  };
  if (engine === "postgres") await pgAdmin(`create schema ${schema}`);
  try {
    log(`${engine}: schema and admin through Keygate`);
    const first = await startKeygate(pinning, { dir, env });
    await first.stop();
    log(`${engine}: seeding ${fmtInt(ROWS)} call-log rows over ${DAYS} days`);
    const seeded = await seedCalls(url, {
      rows: ROWS,
      days: DAYS,
      onProgress: (n) => log(`  ${engine}: ${fmtInt(n)} rows`),
    });
    log(
      `${engine}: seeded ${fmtInt(seeded.rows)} rows, ${fmtInt(seeded.minutes)} minutes, ${fmtInt(seeded.rollups)} rollups in ${fmt(seeded.seconds, 0)} s`,
    );
    const rank = (r: number) => ({
      id: seeded.keyIds[r - 1] as number,
      calls: seeded.calls[r - 1] as number,
    });
    const keys = { hot: rank(1), mid: rank(MID_RANK), cold: rank(seeded.keyIds.length) };

    const kg = await startKeygate(pinning, { dir, env });
    const timings: Timing[] = [];
    try {
      const login = await call(kg.url, "POST", "/api/auth/login", {
        body: { username: "admin", password: ADMIN_PASSWORD },
      });
      if (login.status !== 200) throw new Error(`login: ${login.status} ${login.text}`);
      const token = (login.json.data as { access_token: string }).access_token;
      const get = async (path: string) => {
        const r = await call(kg.url, "GET", path, { token });
        if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text.slice(0, 300)}`);
        return r.json.data;
      };
      for (const [name, k] of Object.entries(keys)) {
        const path = `/api/api-keys/${k.id}/logs?limit=200`;
        timings.push(
          await time(
            `last 200 calls, ${name} key (${fmtInt(k.calls)} calls)`,
            path,
            "http",
            async () => ((await get(path)) as unknown[]).length,
          ),
        );
      }
      const from = new Date(Date.now() - 30 * 86_400_000).toISOString();
      const usagePath = `/api/api-keys/${keys.hot.id}/usage?from=${from}&bucket=day`;
      const probe = await call(kg.url, "GET", usagePath, { token });
      const usageWhat = `30-day usage by day, hot key`;
      if (probe.status === 200) {
        timings.push(
          await time(
            usageWhat,
            usagePath,
            "http",
            async () => ((await get(usagePath)) as { buckets: unknown[] }).buckets.length,
          ),
        );
      } else {
        // The route is not there (404): the store's usage read, timed in this process.
        log(`  usage route answered ${probe.status}: timing the store's readUsage instead`);
        const database = await openDatabase(url, { migrate: false });
        try {
          const toHour = Math.ceil(Date.now() / 3_600_000 / 24) * 24;
          timings.push(
            await time(usageWhat, "readUsage (src/store/usage.ts)", "store", async () => {
              const u = await readUsage(database.db, {
                fromHour: toHour - 30 * 24,
                toHour,
                bucketHours: 24,
                environment: null,
                keyId: keys.hot.id,
              });
              return u.buckets.length;
            }),
          );
        } finally {
          await database.close();
        }
      }
    } finally {
      await kg.stop();
    }

    // Retention: the first (partial) UTC day and the whole day after it go.
    const database = await openDatabase(url, { migrate: false });
    let retention: EngineRun["retention"];
    try {
      const cutoff = new Date((Math.floor(seeded.startMs / 86_400_000) + 2) * 86_400_000);
      const t = performance.now();
      const rows = await new SqlKeyRepo(database).pruneLogs(cutoff.toISOString());
      retention = {
        ms: performance.now() - t,
        rows,
        how: engine === "postgres" ? "the day's partition dropped" : "DELETE",
      };
      log(
        `  retention of the first two UTC days: ${fmtInt(rows)} rows in ${fmt(retention.ms, 0)} ms`,
      );
    } finally {
      await database.close();
    }
    const file = join(dir, "keygate.db");
    const sizeMb = engine === "sqlite" && existsSync(file) ? statSync(file).size / 1_048_576 : null;
    const { keyIds: _ids, calls: _calls, ...seed } = seeded;
    return { engine, seed, keys, timings, retention, sizeMb };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (engine === "postgres") await pgAdmin(`drop schema if exists ${schema} cascade`);
  }
}

function section(runs: EngineRun[], source: string, elapsedS: number): string {
  const all = runs.flatMap((r) => r.timings.map((t) => ({ engine: r.engine, ...t })));
  const within = all.every((t) => t.p95Ms < BOUND_MS);
  const lines = [
    SECTION,
    "",
    `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC · Keygate ${source} · Node ${process.versions.node} · run took ${elapsedS.toFixed(0)} s · \`npm run bench:scale\` (\`SCALE_ONLY=calls\` for this part alone)`,
    "",
    ...runs.map(
      (r) =>
        `- ${r.engine === "sqlite" ? "SQLite" : "PostgreSQL"}: ${fmtInt(r.seed.rows)} call-log rows over ${r.seed.days} days from 1,000 keys, ${fmtInt(r.seed.minutes)} key-minutes, ${fmtInt(r.seed.rollups)} usage rollups, seeded in ${fmt(r.seed.seconds, 0)} s${r.sizeMb === null ? "" : ` (file ${fmtInt(r.sizeMb)} MB)`}; keys: hot #${r.keys.hot.id} ${fmtInt(r.keys.hot.calls)} calls, mid #${r.keys.mid.id} ${fmtInt(r.keys.mid.calls)}, cold #${r.keys.cold.id} ${fmtInt(r.keys.cold.calls)}.`,
    ),
    "",
    `Times in ms over HTTP (request to parsed body, one at a time, keep-alive), the first call apart, then median and p95 of ${TRIES}; bound ${BOUND_MS} ms:`,
    "",
    "| engine | query | rows | first | median | p95 | max | < 200 ms |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: |",
    ...all.map(
      (t) =>
        `| ${t.engine} | ${t.what}${t.via === "store" ? " (store function; route not available)" : ""} | ${t.rows} | ${fmt(t.firstMs, 1)} | ${fmt(t.medianMs, 1)} | ${fmt(t.p95Ms, 1)} | ${fmt(t.maxMs, 1)} | ${t.p95Ms < BOUND_MS ? "yes" : "**no**"} |`,
    ),
    "",
    `Retention of the first (partial) day and the whole day after it (SqlKeyRepo.pruneLogs, Keygate stopped): ${runs.map((r) => `${r.engine} ${fmtInt(r.retention.rows)} rows in ${fmt(r.retention.ms, 0)} ms (${r.retention.how})`).join("; ")}.`,
    "",
    `**${within ? "Every query within the bound at p95." : "Some query missed the bound at p95."}**`,
    "",
  ];
  return lines.join("\n");
}

/** Replaces (or appends) the call-log section of scale.md, keeping the rest of the file. */
export function writeSection(file: string, text: string): void {
  const old = existsSync(file) ? readFileSync(file, "utf8") : "# Keygate scale run — latest\n";
  const at = old.indexOf(`\n${SECTION}\n`);
  const rest = at === -1 ? old : old.slice(0, at + 1);
  writeFileSync(file, `${rest.trimEnd()}\n\n${text}`);
}

async function main(): Promise<void> {
  const only = process.env.SCALE_ONLY;
  if (only !== undefined && only !== "calls") {
    log(`SCALE_ONLY=${only}: the call-log part skipped`);
    return;
  }
  const t0 = performance.now();
  const source = sourceState();
  const runs: EngineRun[] = [];
  for (const engine of ENGINES) runs.push(await runEngine(engine));
  const elapsedS = (performance.now() - t0) / 1000;
  const text = section(runs, source, elapsedS);
  const dir = join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  writeSection(join(dir, "scale.md"), text);
  writeFileSync(
    join(dir, "scale-calls.json"),
    `${JSON.stringify({ date: new Date().toISOString(), source, rows: ROWS, days: DAYS, tries: TRIES, runs, elapsedS }, null, 2)}\n`,
  );
  process.stdout.write(text);
  log(
    `wrote the call-log section of bench/results/scale.md and scale-calls.json in ${elapsedS.toFixed(0)} s`,
  );
}

await main();
