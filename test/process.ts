import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";

export const ROOT = join(import.meta.dirname, "..");

export type Server = {
  proc: ChildProcess;
  base: string;
  output: () => string;
  stop: () => Promise<number | null>;
};

/** Starts the real Keygate process and resolves once it prints its address. */
export function startKeygate(env: Record<string, string | undefined>): Promise<Server> {
  const proc = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { KEYGATE_PORT: "0", KEYGATE_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, base: m[1] as string, output: () => out, stop: () => stop(proc) });
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
}

function stop(proc: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    proc.removeAllListeners("exit");
    proc.on("exit", (code) => resolve(code));
    proc.kill("SIGTERM");
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** A private redis-server on its own port, so a test can stop and restart it freely. */
export async function startRedis(
  port?: number,
): Promise<{ url: string; port: number; stop: () => Promise<void> }> {
  const p = port ?? (await freePort());
  const proc = spawn(
    "redis-server",
    ["--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`redis-server did not start:\n${out}`)),
      10_000,
    );
    proc.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on("exit", (code) => reject(new Error(`redis-server exited with ${code}:\n${out}`)));
  });
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    // Resolves at once for a server that already exited (one that failed to restart on a
    // port taken meanwhile), instead of waiting for an exit that has happened.
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.removeAllListeners("exit");
        proc.on("exit", () => resolve());
        proc.kill("SIGKILL");
      }),
  };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export async function call(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const res = await fetch(base + path, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json };
}

export type CommandRun = { code: number | null; out: string; err: string };

/**
 * Runs the `keygate` command (bin/keygate.mjs) with `args`, in an environment holding no
 * Keygate setting but those in `env`, with `input` on stdin (a pipe, never a terminal).
 */
export function runKeygate(
  args: string[],
  env: Record<string, string> = {},
  input = "",
): Promise<CommandRun> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("KEYGATE_")),
  );
  const proc = spawn(process.execPath, [join(ROOT, "bin", "keygate.mjs"), ...args], {
    cwd: ROOT,
    env: { ...base, KEYGATE_LOG_LEVEL: "warn", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr.on("data", (c: Buffer) => (err += c.toString()));
  proc.stdin.end(input);
  return new Promise((resolve, reject) => {
    proc.on("error", reject);
    proc.on("close", (code) => resolve({ code, out, err }));
  });
}

/** A failed command: exit `code` and one `keygate:` line on stderr matching `message`, no trace. */
export function expectOneLine(r: CommandRun, code: number, message: RegExp): void {
  if (r.code !== code || !/^keygate: [^\n]+\n$/.test(r.err) || !message.test(r.err)) {
    throw new Error(
      `expected exit ${code} and one line matching ${message}, got exit ${r.code}:\n${r.err}${r.out}`,
    );
  }
}
