import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import autocannon, { type Options, type Request, type Result } from "autocannon";

/** The repository root: servers are started from here. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------
// CPU pinning: servers on core 0, this process (the load generator) on core 1.

export type Pinning = {
  enabled: boolean;
  /** Cores this process could use before pinning. */
  cores: number;
  /** Argument prefix that starts a server on its core, e.g. `["taskset", "-c", "0"]`. */
  serverPrefix: string[];
  note: string;
};

function allowedCpus(): number[] {
  try {
    const line = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync("/proc/self/status", "utf8"));
    const cpus: number[] = [];
    for (const part of (line?.[1] ?? "").split(",")) {
      const [a, b] = part.split("-").map(Number);
      if (a === undefined || Number.isNaN(a)) continue;
      for (let c = a; c <= (b ?? a); c++) cpus.push(c);
    }
    return cpus;
  } catch {
    return [];
  }
}

/**
 * Pins this process to core 1 and returns how to start servers on core 0, when the machine
 * has two usable cores and `taskset`; otherwise leaves scheduling to the OS and says so.
 */
export function setupPinning(): Pinning {
  const cores = availableParallelism();
  const off = (note: string): Pinning => ({ enabled: false, cores, serverPrefix: [], note });
  if (process.env.BENCH_NO_PIN === "1") return off("disabled by BENCH_NO_PIN=1");
  if (cores < 2) return off("only one core available: no pinning");
  const cpus = allowedCpus();
  if (!cpus.includes(0) || !cpus.includes(1))
    return off(`cores 0 and 1 not both allowed (allowed: ${cpus.join(",") || "unknown"})`);
  if (spawnSync("taskset", ["-V"], { stdio: "ignore" }).status !== 0)
    return off("taskset not found: no pinning");
  const self = spawnSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], {
    stdio: "ignore",
  });
  if (self.status !== 0) return off("taskset could not pin the load generator: no pinning");
  const extra = cpus.length > 2 ? ` (${cpus.length} cores allowed; others unused)` : "";
  return {
    enabled: true,
    cores,
    serverPrefix: ["taskset", "-c", "0"],
    note: `server on core 0, load generator on core 1 (taskset)${extra}`,
  };
}

// ---------------------------------------------------------------------------------------
// Server processes.

export type Server = {
  name: string;
  proc: ChildProcess;
  pid: number;
  url: string;
  /** Everything the process printed so far (stdout and stderr). */
  output: () => string;
  /** SIGTERM, then the exit code (SIGKILL after `graceMs`). */
  stop: (graceMs?: number) => Promise<number | null>;
};

export type StartOptions = {
  name: string;
  /** Arguments to `node`. */
  nodeArgs: string[];
  env: Record<string, string>;
  pinning: Pinning;
  /** Pattern whose first group is the base URL, printed once the server listens. */
  ready?: RegExp;
  timeoutMs?: number;
  /** Where to run it (default the repository root). */
  cwd?: string;
};

/** Starts `node …` (on the server core when pinned) and resolves once it prints its address. */
export function startServer(o: StartOptions): Promise<Server> {
  const [cmd, ...pre] = o.pinning.enabled
    ? [...o.pinning.serverPrefix, process.execPath]
    : [process.execPath];
  const proc = spawn(cmd as string, [...pre, ...o.nodeArgs], {
    cwd: o.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const ready = o.ready ?? /listening on (http:\/\/127\.0\.0\.1:\d+)/;
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${o.name} did not start within ${o.timeoutMs ?? 60_000} ms:\n${out}`));
    }, o.timeoutMs ?? 60_000);
    let started = false;
    const onData = (chunk: Buffer) => {
      // Keep the output bounded: the start of it and the latest part.
      out = out.length > 200_000 ? out.slice(0, 20_000) + out.slice(-100_000) : out;
      out += chunk.toString();
      const m = ready.exec(out);
      if (m && !started) {
        started = true;
        clearTimeout(timer);
        resolve({
          name: o.name,
          proc,
          pid: proc.pid as number,
          url: m[1] as string,
          output: () => out,
          stop: async (graceMs = 20_000) => {
            if (proc.exitCode !== null) return proc.exitCode;
            proc.kill("SIGTERM");
            const kill = setTimeout(() => proc.kill("SIGKILL"), graceMs);
            const code = await exited;
            clearTimeout(kill);
            return code;
          },
        });
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    void exited.then((code) => {
      if (!started) {
        clearTimeout(timer);
        reject(new Error(`${o.name} exited with ${code} before listening:\n${out}`));
      }
    });
  });
}

/** A free loopback TCP port (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------
// /proc readings of a server.

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time the process has used so far, in microseconds. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / ticksPerSecond();
}

/** Resident memory now and its peak (VmRSS, VmHWM), in MiB. */
export function memory(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`${name}:\\s*(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024 };
}

// ---------------------------------------------------------------------------------------
// Load.

/**
 * An autocannon result with the seconds spent sending: from the moment every connection was
 * set up (autocannon's own `duration` also counts the set-up, which `varied` makes longer).
 */
export type Load = Result & { sendingS: number };

/** Runs autocannon; a run that overstays its duration by 30 s is stopped. */
export function load(opts: Options): Promise<Load> {
  return new Promise((resolve, reject) => {
    const limitMs = ((opts.duration ?? 10) + 30) * 1000;
    let guard: NodeJS.Timeout | undefined;
    let startedAt = Date.now();
    const inst = autocannon({ timeout: 10, ...opts }, (err, result) => {
      clearTimeout(guard);
      if (err) reject(err);
      else {
        const sendingS = (result.finish.getTime() - startedAt) / 1000;
        resolve({ ...result, sendingS: sendingS > 0 ? sendingS : result.duration });
      }
    });
    inst.on("start", () => {
      startedAt = Date.now();
    });
    if (opts.amount === undefined) guard = setTimeout(() => inst.stop(), limitMs);
  });
}

/**
 * Different requests without a cost per request on the load generator. With `setupRequest`
 * autocannon rebuilds the request before every send, which costs its core about 25 µs a
 * request and caps the load far below what the server can take; fixed requests are built
 * once. So each connection gets its own sequence of `length` requests made by `make`, built
 * while the connections are set up, and cycles through it.
 */
export function varied(length: number, make: () => Request): Pick<Options, "setupClient"> {
  // Set before the connection is made, so nothing is in flight: safe at any pipelining
  // (autocannon's `Client.setRequests` refuses above 1 for fear of requests in flight).
  return {
    setupClient: (client) => client.requestIterator.setRequests(Array.from({ length }, make)),
  };
}

/** Every response received, whatever its status. */
export function responses(r: Result): number {
  return r["1xx"] + r["2xx"] + r["3xx"] + r["4xx"] + r["5xx"];
}

/** Responses whose status is not `expected`. */
export function unexpected(r: Result, expected: number): number {
  let n = 0;
  for (const [code, s] of Object.entries(r.statusCodeStats))
    if (Number(code) !== expected) n += s.count;
  return n;
}

// ---------------------------------------------------------------------------------------
// Statistics.

export type Spread = { median: number; min: number; max: number; n: number };

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const mid = Math.floor(v.length / 2);
  const median =
    v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return { median, min: v[0] as number, max: v[v.length - 1] as number, n: v.length };
}

// ---------------------------------------------------------------------------------------
// HTTP calls for setting up data.

export async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; key?: string; body?: unknown } = {},
): Promise<{ status: number; text: string; json: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.key) headers["x-api-key"] = opts.key;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(base + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON: the caller reads `text`.
  }
  return { status: res.status, text, json };
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
}

export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "–";
}

/** Which code was measured: the commit, and how many files under src/ differ from it. */
export function sourceState(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], {
      cwd: ROOT,
      encoding: "utf8",
    })
      .split("\n")
      .filter(Boolean).length;
    return dirty > 0 ? `${head} + ${dirty} uncommitted file(s) in src/` : head;
  } catch {
    return "unknown (not a git checkout)";
  }
}
