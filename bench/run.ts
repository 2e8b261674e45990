/**
 * `npm run bench`: what Keygate adds to every request, as ratios to a bare Fastify server
 * measured in the same run, beside a peer (better-auth on SQLite). See docs/performance.md.
 *
 * Environment: BENCH_DURATION (s per run, default 5), BENCH_ROUNDS (default 3),
 * BENCH_CONNECTIONS (default 50), BENCH_ACCOUNTING (requests in the call-log check, default
 * 60000), BENCH_PROFILE=0 to skip the profile, BENCH_NO_PIN=1 to skip CPU pinning,
 * BENCH_BASELINE=<git revision> to measure that revision's Keygate beside this one in the same
 * rounds (scenarios B@base and B2@base: before and after a change, in one run).
 */
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { Options, Request } from "autocannon";
import { summaryMarkdown } from "./cpuprofile.js";
import {
  callLogRows,
  type Fixture,
  keyMaker,
  seedKeys,
  setUpFixture,
  signedGet,
  startKeygate,
} from "./keygate.js";
import {
  call,
  cpuMicros,
  fmt,
  fmtInt,
  freePort,
  load,
  log,
  memory,
  type Pinning,
  ROOT,
  responses,
  type Server,
  type Spread,
  setupPinning,
  sleep,
  sourceState,
  spread,
  startServer,
  unexpected,
  varied,
} from "./lib.js";
import {
  compareFunctionsMarkdown,
  compareMarkdown,
  type ProfileResult,
  profileScenario,
} from "./profile.js";

const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ACCOUNTING = Number(process.env.BENCH_ACCOUNTING ?? 60_000);
const BULK_KEYS = 10_000;
const WHOAMI = "/api/v1/external/whoami";

/**
 * The performance targets (against A: Kong's key-auth with rate limiting keeps 0.76× of its
 * bare throughput) and the proposed ones (against F, the contract's floor).
 */
const TARGETS: { label: string; id: string; base: "A" | "F" | "B"; atLeast: number }[] = [
  { label: "B whoami, valid key", id: "B", base: "A", atLeast: 0.76 },
  { label: "B3 whoami, random keys", id: "B3", base: "A", atLeast: 0.65 },
  { label: "B3 malformed key", id: "B3-malformed", base: "A", atLeast: 0.8 },
  { label: "B2 subscriber read", id: "B2", base: "A", atLeast: 0.6 },
  { label: "B whoami, valid key", id: "B", base: "F", atLeast: 0.85 },
  { label: "B3 whoami, random keys", id: "B3", base: "F", atLeast: 0.75 },
  { label: "B3 malformed key", id: "B3-malformed", base: "F", atLeast: 0.95 },
  // SPEC §8: signing and tokens against the bare key on the same route.
  { label: "S whoami, signed (RFC 9421)", id: "S", base: "B", atLeast: 0.75 },
  { label: "T whoami, bearer access token", id: "T", base: "B", atLeast: 0.85 },
];

type ServerId = "bare" | "bareCoalesced" | "floor" | "keygate" | "peer" | "baseline";
type Mode = "p1" | "p10" | "rate";

type Scenario = {
  id: string;
  label: string;
  server: ServerId;
  path: string;
  headers?: Record<string, string>;
  /**
   * A header whose value changes per request: each connection cycles through its own
   * `perConnection` values drawn by `next` (see `varied` in lib.ts).
   */
  header?: { name: string; next: () => string; perConnection: number };
  /**
   * Requests that must each differ (a signature's nonce): each connection gets `perConnection`
   * of them, made afresh for every run, and never cycles within one.
   */
  unique?: { perConnection: number; make: () => Request };
  /** Sent right before each of the scenario's runs and not measured: `count` requests, `next` keys. */
  warm?: { count: number; next: () => string };
  expect: number;
};

type Run = {
  round: number;
  scenario: string;
  mode: Mode;
  rps: number;
  responses: number;
  /** Requests written to the socket, answered or not when the run ended. */
  sent: number;
  unexpected: number;
  errors: number;
  timeouts: number;
  p50: number;
  p99: number;
  cpuUsPerReq: number;
  /** Share of one core the server used during the run (100 = saturated). */
  serverBusyPct: number;
  targetRate: number | null;
};

/** Per-connection sequences of requests for a scenario whose header changes per request. */
function requestsFor(s: Scenario): Pick<Options, "setupClient"> {
  if (s.unique) {
    // Made here, before the run starts, so the load generator's signing is not in the run.
    const { perConnection, make } = s.unique;
    const pools = Array.from({ length: CONNECTIONS }, () =>
      Array.from({ length: perConnection }, make),
    );
    let next = 0;
    return {
      setupClient: (client) =>
        client.requestIterator.setRequests(pools[next++ % CONNECTIONS] as Request[]),
    };
  }
  return s.header ? keyed(s, s.header.perConnection, s.header.next) : {};
}

/** GETs of the scenario's path, each connection cycling through `perConnection` keys. */
function keyed(s: Scenario, perConnection: number, next: () => string) {
  const name = s.header?.name ?? "x-api-key";
  return varied(perConnection, () => ({
    method: "GET",
    path: s.path,
    headers: { [name]: next() },
  }));
}

async function measure(
  s: Scenario,
  server: Server,
  mode: Mode,
  round: number,
  rate: number,
): Promise<Run> {
  const cpu0 = cpuMicros(server.pid);
  const result = await load({
    url: server.url + s.path,
    connections: CONNECTIONS,
    pipelining: mode === "p10" ? 10 : 1,
    duration: DURATION,
    headers: s.headers,
    ...requestsFor(s),
    ...(mode === "rate" ? { overallRate: rate } : {}),
  });
  // Let the run's tail (e.g. the last call-log batch) land in this run's CPU time.
  await sleep(400);
  const cpu1 = cpuMicros(server.pid);
  const n = responses(result);
  return {
    round,
    scenario: s.id,
    mode,
    rps: n / result.sendingS,
    responses: n,
    sent: result.requests.sent,
    unexpected: unexpected(result, s.expect),
    errors: result.errors,
    timeouts: result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuUsPerReq: n > 0 ? (cpu1 - cpu0) / n : Number.NaN,
    serverBusyPct: (100 * (cpu1 - cpu0)) / (result.sendingS * 1e6),
    targetRate: mode === "rate" ? rate : null,
  };
}

async function expectStatus(
  what: string,
  p: Promise<{ status: number; text: string }>,
  status: number,
) {
  const r = await p;
  if (r.status !== status)
    throw new Error(`${what}: expected HTTP ${status}, got ${r.status} ${r.text.slice(0, 300)}`);
  return r;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const pinning: Pinning = setupPinning();
  log(`pinning: ${pinning.note}`);
  const dir = mkdtempSync(join(tmpdir(), "keygate-bench-run-"));
  const servers: Server[] = [];
  const cleanups: (() => void)[] = [];
  try {
    // --- Keygate, its data and the key pools -----------------------------------------
    const kg = await startKeygate(pinning, { dir: join(dir, "keygate") });
    servers.push(kg);
    const source = sourceState();
    const fx: Fixture = await setUpFixture(kg.url);
    const bulkKey = keyMaker();
    seedKeys(kg.dbPath, fx.adminId, BULK_KEYS, bulkKey);
    const bulk = Array.from({ length: BULK_KEYS }, (_, i) => bulkKey(i));
    const unknownKey = keyMaker(randomBytes(8).toString("hex"));
    let unknownSeq = 0;
    let warmSeq = 0;
    const malformed = "pk_live_not-a-valid-key";
    log(`keygate up at ${kg.url}; fixture set up through the API, ${BULK_KEYS} keys seeded`);

    const who = await expectStatus("whoami", call(kg.url, "GET", WHOAMI, { key: fx.key }), 200);
    const body = who.text;
    await expectStatus(
      "subscriber read",
      call(kg.url, "GET", `/api/v1/external/subscribers/${fx.subscriberId}`, { key: fx.key }),
      200,
    );
    await expectStatus(
      "seeded key",
      call(kg.url, "GET", WHOAMI, { key: bulk[BULK_KEYS - 1] }),
      200,
    );
    await expectStatus("malformed key", call(kg.url, "GET", WHOAMI, { key: malformed }), 401);
    await expectStatus("unknown key", call(kg.url, "GET", WHOAMI, { key: unknownKey(1e9) }), 401);
    await expectStatus("revoked key", call(kg.url, "GET", WHOAMI, { key: fx.revokedKey }), 401);
    const signed = fx.signed as { key: string; secret: string };
    const signedWhoami = () => signedGet(kg.url + WHOAMI, signed.key, signed.secret);
    const signedCheck = await fetch(kg.url + WHOAMI, {
      headers: signedGet(kg.url + WHOAMI, signed.key, signed.secret),
    });
    if (signedCheck.status !== 200)
      throw new Error(`signed whoami: HTTP ${signedCheck.status} ${await signedCheck.text()}`);
    const bearer = `Bearer ${fx.accessToken as string}`;
    const tokenCheck = await fetch(kg.url + WHOAMI, { headers: { authorization: bearer } });
    if (tokenCheck.status !== 200)
      throw new Error(`token whoami: HTTP ${tokenCheck.status} ${await tokenCheck.text()}`);
    const setupCalls = 6;

    // --- The baseline: another revision's Keygate, measured in the same rounds ----------------
    const baselineRev = process.env.BENCH_BASELINE;
    let baseline: Server | null = null;
    let baseFx: Fixture | null = null;
    let baselineNote = "";
    if (baselineRev) {
      const tree = join(dir, "baseline-src");
      execFileSync("git", ["worktree", "add", "--detach", tree, baselineRev], {
        cwd: ROOT,
        stdio: "ignore",
      });
      cleanups.push(() =>
        execFileSync("git", ["worktree", "remove", "--force", tree], {
          cwd: ROOT,
          stdio: "ignore",
        }),
      );
      // Same dependencies: the lock file of the revision must match this one's.
      symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
      const rev = execFileSync("git", ["rev-parse", "--short", baselineRev], {
        cwd: ROOT,
        encoding: "utf8",
      }).trim();
      const started = await startKeygate(pinning, {
        dir: join(dir, "baseline"),
        cwd: tree,
        name: "baseline",
      });
      baseline = started;
      servers.push(started);
      baseFx = await setUpFixture(started.url);
      await expectStatus(
        "baseline whoami",
        call(started.url, "GET", WHOAMI, { key: baseFx.key }),
        200,
      );
      baselineNote = rev;
      log(`baseline ${rev} up at ${started.url}`);
    }

    // --- A: the ceiling ------------------------------------------------------------------
    const bare = await startServer({
      name: "bare",
      nodeArgs: ["--import", "tsx", "bench/bare-server.ts"],
      env: { BENCH_BODY: body, BENCH_PORT: String(await freePort()) },
      pinning,
    });
    servers.push(bare);
    const bareBody = await expectStatus("bare", call(bare.url, "GET", WHOAMI), 200);
    if (bareBody.text.length !== body.length)
      throw new Error(`bare body is ${bareBody.text.length} bytes, Keygate's ${body.length}`);

    // --- A′: the same bare server, its answers coalesced as Keygate's are (decision 0022) ----
    const bareCoalesced = await startServer({
      name: "bare-coalesced",
      nodeArgs: ["--import", "tsx", "bench/bare-server.ts"],
      env: { BENCH_BODY: body, BENCH_PORT: String(await freePort()), BENCH_COALESCE: "1" },
      pinning,
    });
    servers.push(bareCoalesced);
    await expectStatus("bare-coalesced", call(bareCoalesced.url, "GET", WHOAMI), 200);

    // --- F: the floor, the contract's own work written plainly ------------------------------
    const floor = await startServer({
      name: "floor",
      nodeArgs: ["--import", "tsx", "bench/floor-server.ts"],
      env: {
        BENCH_BODY: body,
        BENCH_FLOOR_KEY: fx.key,
        BENCH_FLOOR_DB: join(dir, "floor.db"),
        BENCH_PORT: String(await freePort()),
      },
      pinning,
    });
    servers.push(floor);
    await expectStatus("floor", call(floor.url, "GET", WHOAMI, { key: fx.key }), 200);

    // --- C: the peer -----------------------------------------------------------------------
    let peer: Server | null = null;
    let peerMode = "not started";
    let peerHeader = "";
    let peerCredential = "";
    try {
      peer = await startServer({
        name: "peer",
        nodeArgs: ["--import", "tsx", "bench/peer-server.ts"],
        env: { BENCH_PEER_DB: join(dir, "peer.db"), BENCH_PORT: String(await freePort()) },
        pinning,
      });
      servers.push(peer);
      const m = /peer: mode (\S+) (\S+) (.+)\n/.exec(peer.output());
      if (!m) throw new Error(`peer did not print its credential:\n${peer.output()}`);
      [, peerMode = "", peerHeader = "", peerCredential = ""] = m;
      const r = await fetch(peer.url + WHOAMI, { headers: { [peerHeader]: peerCredential } });
      if (r.status !== 200) throw new Error(`peer whoami: HTTP ${r.status} ${await r.text()}`);
    } catch (err) {
      peerMode = `failed: ${(err as Error).message.split("\n")[0]}`;
      log(`peer not measured: ${peerMode}`);
      await peer?.stop();
      peer = null;
    }

    const scenarios: Scenario[] = [
      {
        id: "A",
        label: "A bare Fastify, same JSON size",
        server: "bare",
        path: WHOAMI,
        expect: 200,
      },
      {
        id: "A2",
        label: "A′ bare Fastify, answers coalesced as Keygate's",
        server: "bareCoalesced",
        path: WHOAMI,
        expect: 200,
      },
      {
        id: "F",
        label: "F floor: the contract's per-request work, written plainly",
        server: "floor",
        path: WHOAMI,
        headers: { "x-api-key": fx.key },
        expect: 200,
      },
      {
        id: "B",
        label: "B whoami, valid key",
        server: "keygate",
        path: WHOAMI,
        headers: { "x-api-key": fx.key },
        expect: 200,
      },
      {
        id: "B2",
        label: "B2 subscribers/:id (a real read)",
        server: "keygate",
        path: `/api/v1/external/subscribers/${fx.subscriberId}`,
        headers: { "x-api-key": fx.key },
        expect: 200,
      },
      {
        id: "B3",
        label: `B3 whoami, ${fmtInt(BULK_KEYS)} keys at random`,
        server: "keygate",
        path: WHOAMI,
        header: {
          name: "x-api-key",
          next: () => bulk[Math.floor(Math.random() * BULK_KEYS)] as string,
          // 50 connections × 600 draws: about 95% of the 10,000 keys in every run.
          perConnection: 600,
        },
        // Every key once before each run: a minute of other scenarios lets the key cache's
        // 30 s TTL run out, and the run would otherwise start with 10,000 store reads.
        warm: { count: BULK_KEYS, next: () => bulk[warmSeq++ % BULK_KEYS] as string },
        expect: 200,
      },
      {
        id: "B3-malformed",
        label: "B3 malformed key (401)",
        server: "keygate",
        path: WHOAMI,
        headers: { "x-api-key": malformed },
        expect: 401,
      },
      {
        id: "B3-unknown",
        label: "B3 unknown keys, 20,000 a run, past the negative cache (401)",
        server: "keygate",
        path: WHOAMI,
        // 50 connections × 400 distinct keys: more than the negative cache holds (10,000),
        // so every look-up misses it; new keys in every run.
        header: { name: "x-api-key", next: () => unknownKey(unknownSeq++), perConnection: 400 },
        expect: 401,
      },
      {
        id: "B3-revoked",
        label: "B3 revoked key (401)",
        server: "keygate",
        path: WHOAMI,
        headers: { "x-api-key": fx.revokedKey },
        expect: 401,
      },
      {
        id: "S",
        label: "S whoami, signed request (RFC 9421, a fresh nonce each)",
        server: "keygate",
        path: WHOAMI,
        // More than a connection sends in one run (up to 60,000 req/s in all), so no nonce
        // repeats: on a quiet host 3,000 each ran out at p1.
        unique: {
          perConnection: Math.max(3000, Math.ceil((DURATION * 60_000) / CONNECTIONS)),
          make: () => ({ method: "GET", path: WHOAMI, headers: signedWhoami() }),
        },
        expect: 200,
      },
      {
        id: "T",
        label: "T whoami, bearer access token",
        server: "keygate",
        path: WHOAMI,
        headers: { authorization: bearer },
        expect: 200,
      },
    ];
    if (peer) {
      scenarios.push({
        id: "C",
        label: "C better-auth api-key plugin, SQLite",
        server: "peer",
        path: WHOAMI,
        headers: { [peerHeader]: peerCredential },
        expect: 200,
      });
    }
    if (baseline && baseFx) {
      scenarios.push(
        {
          id: "B@base",
          label: `B whoami, valid key, at ${baselineNote} (before)`,
          server: "baseline",
          path: WHOAMI,
          headers: { "x-api-key": baseFx.key },
          expect: 200,
        },
        {
          id: "B2@base",
          label: `B2 subscribers/:id, at ${baselineNote} (before)`,
          server: "baseline",
          path: `/api/v1/external/subscribers/${baseFx.subscriberId}`,
          headers: { "x-api-key": baseFx.key },
          expect: 200,
        },
      );
    }
    const serverOf: Record<ServerId, Server | null> = {
      bare,
      bareCoalesced,
      floor,
      keygate: kg,
      peer,
      baseline,
    };

    // --- Warm-up, then interleaved rounds -------------------------------------------------
    log(`warm-up: 2 s per scenario`);
    // Every external request sent to Keygate, for the whole-run bound on call-log rows.
    const sentToKeygate = { answered: setupCalls, sent: setupCalls };
    for (const s of scenarios) {
      const server = serverOf[s.server] as Server;
      const r = await load({
        url: server.url + s.path,
        connections: CONNECTIONS,
        duration: 2,
        headers: s.headers,
        ...requestsFor(s),
      });
      if (s.server === "keygate") {
        sentToKeygate.answered += responses(r);
        sentToKeygate.sent += r.requests.sent;
      }
    }

    const runs: Run[] = [];
    let rate = 0;
    const modes: Mode[] = ["p1", "p10", "rate"];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of modes) {
        for (const s of scenarios) {
          if (s.warm) {
            const warm = s.warm;
            const w = await load({
              url: (serverOf[s.server] as Server).url + s.path,
              connections: CONNECTIONS,
              amount: warm.count,
              ...keyed(s, Math.ceil(warm.count / CONNECTIONS), warm.next),
            });
            sentToKeygate.answered += responses(w);
            sentToKeygate.sent += w.requests.sent;
          }
          const run = await measure(s, serverOf[s.server] as Server, mode, round, rate);
          runs.push(run);
          if (s.server === "keygate") {
            sentToKeygate.answered += run.responses;
            sentToKeygate.sent += run.sent;
          }
          if (round === 1 && mode === "p1" && s.id === "A")
            rate = Math.max(100, Math.floor(run.rps / 2));
          log(
            `round ${round} ${mode.padEnd(4)} ${s.id.padEnd(12)} ${fmtInt(run.rps).padStart(7)} req/s` +
              `  p50 ${fmt(run.p50)} p99 ${fmt(run.p99)} ms  cpu ${fmt(run.cpuUsPerReq, 1)} µs/req` +
              (run.unexpected ? `  UNEXPECTED STATUS ${run.unexpected}` : "") +
              (run.errors ? `  errors ${run.errors}` : ""),
          );
        }
      }
    }

    const rss = {
      bare: memory(bare.pid).peakMb,
      bareCoalesced: memory(bareCoalesced.pid).peakMb,
      floor: memory(floor.pid).peakMb,
      keygate: memory(kg.pid).peakMb,
      peer: peer ? memory(peer.pid).peakMb : Number.NaN,
      baseline: baseline ? memory(baseline.pid).peakMb : Number.NaN,
    };

    // --- Call-log accounting: every response has its row --------------------------------
    log(`call-log check: ${fmtInt(ACCOUNTING)} mixed requests, then SIGTERM`);
    await sleep(1500); // the writer flushes every 250 ms; earlier runs are on disk by now
    const rowsBefore = callLogRows(kg.dbPath);
    const mixed: Request[] = [
      {
        method: "GET",
        path: WHOAMI,
        setupRequest: (req) => {
          (req.headers as Record<string, string>)["x-api-key"] = bulk[
            Math.floor(Math.random() * BULK_KEYS)
          ] as string;
          return req;
        },
      },
      {
        method: "GET",
        path: `/api/v1/external/subscribers/${fx.subscriberId}`,
        headers: { "x-api-key": fx.key },
      },
      { method: "GET", path: WHOAMI, headers: { "x-api-key": malformed } },
      {
        method: "GET",
        path: WHOAMI,
        setupRequest: (req) => {
          (req.headers as Record<string, string>)["x-api-key"] = unknownKey(unknownSeq++);
          return req;
        },
      },
      { method: "GET", path: WHOAMI, headers: { "x-api-key": fx.revokedKey } },
      { method: "GET", path: "/api/v1/external/no-such-route", headers: { "x-api-key": fx.key } },
    ];
    const acc = await load({
      url: kg.url,
      connections: CONNECTIONS,
      // Pipelining 1: with more, autocannon closes a connection that reached its count while
      // later answers are still on their way, and those would go uncounted.
      pipelining: 1,
      amount: ACCOUNTING,
      requests: mixed,
    });
    const accResponses = responses(acc);
    const exitCode = await kg.stop();
    const rowsAfter = callLogRows(kg.dbPath);
    const accRows = rowsAfter - rowsBefore;
    const queueDrops = (kg.output().match(/call log queue full: dropped (\d+)/g) ?? []).length;
    const accounting = {
      requests: ACCOUNTING,
      responses: accResponses,
      errors: acc.errors,
      timeouts: acc.timeouts,
      rows: accRows,
      dropped: accResponses - accRows,
      exitCode,
      queueFullWarnings: queueDrops,
      // Timed runs end with requests in flight: rows must lie between answered and sent.
      wholeRun: {
        answered: sentToKeygate.answered + accResponses,
        sent: sentToKeygate.sent + acc.requests.sent,
        rows: rowsAfter,
      },
    };
    log(
      `call-log check: ${accResponses} responses, ${accRows} rows, dropped ${accounting.dropped}, exit ${exitCode}`,
    );
    await bare.stop();
    await bareCoalesced.stop();
    await peer?.stop();

    // --- Profile of B ------------------------------------------------------------------------
    const profiles: ProfileResult[] = [];
    if (process.env.BENCH_PROFILE !== "0") {
      for (const which of ["A", "B", "B2", "B3"] as const) {
        log(`profile: ${which} under --cpu-prof`);
        try {
          profiles.push(await profileScenario(pinning, DURATION, which, body));
        } catch (err) {
          log(`profile of ${which} failed: ${(err as Error).message}`);
        }
      }
    }

    // --- Report ------------------------------------------------------------------------------
    const elapsedS = (performance.now() - t0) / 1000;
    const report = buildReport({
      scenarios,
      runs,
      rate,
      rss,
      accounting,
      profiles,
      pinning,
      peerMode,
      bodyBytes: Buffer.byteLength(body),
      elapsedS,
      source,
    });
    const resultsDir = join(ROOT, "bench", "results");
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, "latest.md"), report.markdown);
    writeFileSync(join(resultsDir, "latest.json"), `${JSON.stringify(report.json, null, 2)}\n`);
    process.stdout.write(`${report.markdown}\n`);
    log(`wrote bench/results/latest.md and latest.json in ${elapsedS.toFixed(0)} s`);
  } finally {
    for (const s of servers) await s.stop(5_000).catch(() => null);
    for (const c of cleanups) {
      try {
        c();
      } catch {
        // best effort: the temporary directory goes next
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

type ReportInput = {
  scenarios: Scenario[];
  runs: Run[];
  rate: number;
  rss: Record<ServerId, number>;
  accounting: {
    requests: number;
    responses: number;
    errors: number;
    timeouts: number;
    rows: number;
    dropped: number;
    exitCode: number | null;
    queueFullWarnings: number;
    wholeRun: { answered: number; sent: number; rows: number };
  };
  profiles: ProfileResult[];
  pinning: Pinning;
  peerMode: string;
  bodyBytes: number;
  elapsedS: number;
  /** The commit measured, and whether src/ had uncommitted changes. */
  source: string;
};

const cell = (s: Spread, f: (n: number) => string) =>
  s.n === 0 ? "–" : s.n === 1 ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;

function buildReport(r: ReportInput): { markdown: string; json: unknown } {
  const get = (id: string, mode: Mode, round: number) =>
    r.runs.find((x) => x.scenario === id && x.mode === mode && x.round === round);
  const rounds = [...new Set(r.runs.map((x) => x.round))];
  const ratio = (id: string, mode: Mode, field: "rps" | "cpuUsPerReq", base = "A") =>
    spread(
      rounds.map((round) => {
        const a = get(base, mode, round);
        const b = get(id, mode, round);
        return a && b ? b[field] / a[field] : Number.NaN;
      }),
    );
  const of = (id: string, mode: Mode, field: keyof Run) =>
    spread(r.runs.filter((x) => x.scenario === id && x.mode === mode).map((x) => Number(x[field])));

  const rows = r.scenarios.map((s) => {
    const summary = {
      id: s.id,
      label: s.label,
      rpsP1: of(s.id, "p1", "rps"),
      ratioP1: ratio(s.id, "p1", "rps"),
      rpsP10: of(s.id, "p10", "rps"),
      ratioP10: ratio(s.id, "p10", "rps"),
      rateServed: of(s.id, "rate", "rps"),
      p50: of(s.id, "rate", "p50"),
      p99: of(s.id, "rate", "p99"),
      cpu: of(s.id, "p1", "cpuUsPerReq"),
      cpuRatio: ratio(s.id, "p1", "cpuUsPerReq"),
      peakRssMb: r.rss[s.server],
      unexpected: r.runs.filter((x) => x.scenario === s.id).reduce((n, x) => n + x.unexpected, 0),
      errors: r.runs
        .filter((x) => x.scenario === s.id)
        .reduce((n, x) => n + x.errors + x.timeouts, 0),
    };
    return summary;
  });

  const x = (n: number) => `${fmt(n)}×`;
  const w = r.accounting.wholeRun;
  const wholeOk = w.rows >= w.answered && w.rows <= w.sent;
  const dropped =
    r.accounting.dropped === 0 && r.accounting.exitCode === 0
      ? "**dropped: 0**"
      : `**dropped: ${r.accounting.dropped}**`;
  const md: string[] = [
    "# Keygate load benchmark — latest run",
    "",
    `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC · Keygate ${r.source} · Node ${process.versions.node} · ` +
      `${r.pinning.cores} × ${cpus()[0]?.model.trim() ?? "cpu"} · ${r.pinning.note} · ` +
      `${rounds.length} interleaved rounds × ${DURATION} s per run · ` +
      `${CONNECTIONS} connections · whoami body ${r.bodyBytes} B · run took ${r.elapsedS.toFixed(0)} s`,
    "",
    "Median over rounds (min–max). Ratios are to A in the same round and mode; CPU is the server's user+system time per response at pipelining 1.",
    "",
    `| scenario | req/s c${CONNECTIONS} p1 | ×A | req/s c${CONNECTIONS} p10 | ×A | p50 / p99 ms at ${fmtInt(r.rate)} req/s | served req/s | CPU µs/req | ×A | peak RSS MB |`,
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (s) =>
        `| ${s.label} | ${cell(s.rpsP1, fmtInt)} | ${cell(s.ratioP1, x)} | ${cell(s.rpsP10, fmtInt)} | ${cell(s.ratioP10, x)} | ` +
        `${fmt(s.p50.median)} / ${fmt(s.p99.median)} (p99 ${fmt(s.p99.min)}–${fmt(s.p99.max)}) | ${fmtInt(s.rateServed.median)} | ` +
        `${cell(s.cpu, (n) => fmt(n, 1))} | ${cell(s.cpuRatio, x)} | ${fmt(s.peakRssMb, 0)} |`,
    ),
    "",
    `Call log: after ${fmtInt(r.accounting.responses)} responses to a mixed load (valid, random, malformed, unknown, revoked keys, a read, an unknown route) and an immediate SIGTERM, ` +
      `api_key_logs gained ${fmtInt(r.accounting.rows)} rows — ${dropped} (exit code ${r.accounting.exitCode}; "queue full" warnings: ${r.accounting.queueFullWarnings}). ` +
      `Whole run: ${fmtInt(r.accounting.wholeRun.rows)} rows for ${fmtInt(r.accounting.wholeRun.answered)} answered and ${fmtInt(r.accounting.wholeRun.sent)} sent external requests (${wholeOk ? "within bounds" : "OUT OF BOUNDS"}; timed runs end with requests in flight).`,
    "",
    "Notes:",
    `- Keygate runs as the real process (\`node --import tsx src/main.ts\`) on SQLite with verify, rate limits and call log on; limits raised (IP limit off, key limit 10,000,000/min, failed-key limit off) so nothing is refused. B, B2 and B3 share one process: its peak RSS is the whole run's.`,
    `- The fixed rate is half of A's c${CONNECTIONS} p1 maximum in round 1; "served req/s" below that rate means the server could not keep up, and its latency is queueing.`,
    `- F: the floor (\`bench/floor-server.ts\`): bare Fastify plus only what the contract makes every whoami do — key shape, SHA-256, a Map look-up, a per-key counter, three RateLimit headers, one call-log row into a table with api_key_logs' columns and indexes, written in batches of 2,000 — and nothing else. It is what the contract costs on this machine before any design choice; B's distance to F is Keygate's own overhead, F's distance to A is the contract's.`,
    `- A′: A with one hook, Keygate's own \`coalescedWrites\` (decision 0022): the answers of an event-loop turn written together at its end, as Keygate writes them (A and F write each at once). Keygate's ratios to A′, per round: B ${cell(ratio("B", "p1", "rps", "A2"), x)} at p1 and ${cell(ratio("B", "p10", "rps", "A2"), x)} at p10; S ${cell(ratio("S", "p1", "rps", "A2"), x)} / ${cell(ratio("S", "p10", "rps", "A2"), x)}.`,
    `- C: ${peerNote(r.peerMode)}`,
    `- Numbers on a shared 2-core machine are noisy: compare ratios within one run, not absolute numbers across runs.`,
  ];
  const busy = (id: string, mode: Mode) => fmt(of(id, mode, "serverBusyPct").median, 0);
  md.push(
    `- Server core busy (median): A ${busy("A", "p1")}% at p1 and ${busy("A", "p10")}% at p10; B ${busy("B", "p1")}% at p1 and ${busy("B", "p10")}% at p10. Below about 90%, the load generator (one core) is the limit, not the server; CPU µs per request does not depend on that.`,
  );
  const bad = rows.filter((s) => s.unexpected > 0 || s.errors > 0);
  if (bad.length > 0) {
    md.push(
      `- Unexpected statuses or socket errors: ${bad.map((s) => `${s.id} ${s.unexpected} status, ${s.errors} errors/timeouts`).join("; ")}.`,
    );
  }
  const targets = TARGETS.flatMap((t) =>
    (["p1", "p10"] as const).map((mode) => {
      const got = ratio(t.id, mode, "rps", t.base);
      return { ...t, mode, got, met: got.n > 0 && got.median >= t.atLeast };
    }),
  );
  const peer = { p1: ratio("B", "p1", "rps", "C"), p10: ratio("B", "p10", "rps", "C") };
  md.push(
    "",
    "## Targets",
    "",
    "Throughput ratios (req/s at c50) per round, median (min–max). The targets against A are Kong's (key-auth with rate limiting keeps 0.76× of its bare throughput) and the hot-path issue's; the ones against F are those proposed in docs/performance.md (\"The floor\"), which measure Keygate's own overhead above what the contract costs.",
    "",
    "| target | mode | at least | measured | met |",
    "| --- | --- | ---: | ---: | --- |",
    ...targets.map(
      (t) =>
        `| ${t.label} | ${t.mode} | ${x(t.atLeast)} ${t.base} | ${cell(t.got, x)} | ${t.met ? "yes" : "**no**"} |`,
    ),
    `| B against C, the peer | p1 / p10 | 2.00× C | ${cell(peer.p1, x)} / ${cell(peer.p10, x)} | ${peer.p1.median >= 2 && peer.p10.median >= 2 ? "yes" : "**no**"} |`,
    `| call-log rows dropped | – | 0 | ${fmtInt(r.accounting.dropped)} | ${r.accounting.dropped === 0 && r.accounting.exitCode === 0 ? "yes" : "**no**"} |`,
  );
  const profA = r.profiles.find((p) => p.scenario === "A");
  const profB = r.profiles.find((p) => p.scenario === "B");
  if (profA && profB) {
    md.push(
      "",
      "## What B adds to A, by area",
      "",
      `Profiled CPU per request (samples of the load phase, c${CONNECTIONS} p1) of A (${fmtInt(profA.requests)} requests) and B (${fmtInt(profB.requests)} requests); kernel time outside a JavaScript call is not sampled, so totals are below the /proc figures above.`,
      "",
      compareMarkdown(profA, profB),
      "",
      "The functions whose self time per request grew most:",
      "",
      compareFunctionsMarkdown(profA, profB),
    );
  }
  for (const p of r.profiles.filter((x) => x.scenario !== "A")) {
    const what =
      p.scenario === "B"
        ? "whoami with one valid key"
        : p.scenario === "B2"
          ? "a subscriber read (`/subscribers/:id`) with one valid key"
          : `whoami with ${fmtInt(BULK_KEYS)} valid keys at random`;
    md.push(
      "",
      `## Where the time goes in ${p.scenario}`,
      "",
      `\`node --cpu-prof --import tsx src/main.ts\`, ${what}: ${fmtInt(p.requests)} requests in the profiled window (c${CONNECTIONS} p1, ${p.durationS} s run), samples of the load phase only; raw profile in \`${p.saved}\` (git-ignored).`,
      "",
      summaryMarkdown(p.summary, p.scenario === "B" ? 20 : 12),
    );
  }
  const json = {
    meta: {
      date: new Date().toISOString(),
      node: process.versions.node,
      cpus: r.pinning.cores,
      pinning: r.pinning.note,
      durationS: DURATION,
      rounds: rounds.length,
      connections: CONNECTIONS,
      fixedRate: r.rate,
      bodyBytes: r.bodyBytes,
      peerMode: r.peerMode,
      elapsedS: r.elapsedS,
      source: r.source,
    },
    summary: rows,
    targets,
    rssPeakMb: r.rss,
    accounting: r.accounting,
    runs: r.runs,
    profiles: r.profiles.map((p) => {
      const { functions: _all, ...summary } = p.summary;
      return { scenario: p.scenario, requests: p.requests, ...summary };
    }),
  };
  return { markdown: `${md.join("\n")}\n`, json };
}

function peerNote(mode: string): string {
  if (mode === "api-key")
    return "better-auth 1.7.5 with its API-key plugin (`@better-auth/api-key` 1.7.5), verifying `X-API-Key` through `auth.api.verifyApiKey` on better-sqlite3, the plugin's per-key rate limiting on (a limit the run cannot reach). Per request: a SHA-256 of the key, one read of the key row by hash and two writes to it (`requestCount + 1, lastRequest`, then `updatedAt`), each its own transaction.";
  return `not measured (${mode}).`;
}

await main();
