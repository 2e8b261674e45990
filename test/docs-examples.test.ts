import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./helpers.js";
import { call, ROOT, type Server, startKeygate } from "./process.js";

/**
 * The examples of docs/integrating.md, run as written against the real process: each fenced
 * block after an `<!-- example: name -->` marker is extracted and run (bash with curl and a
 * `keygate` on the PATH, Node through tsx with `@keygate/sdk` resolved to sdk/, Python when
 * python3 with requests is there), with the variables the page names set.
 */

const DOC = "docs/integrating.md";
const PASSWORD = "docs-admin-password";

type Example = { lang: string; code: string };

/** The marked fenced blocks of the page, by name. */
function examples(): Map<string, Example> {
  const text = readFileSync(join(ROOT, DOC), "utf8");
  const found = new Map<string, Example>();
  const marker = /<!-- example: ([\w-]+) -->\n\n```(\w+)\n([\s\S]*?)\n```/g;
  for (const m of text.matchAll(marker)) {
    const [, name, lang, code] = m as unknown as [string, string, string, string];
    expect(found.has(name), `example ${name} is marked once`).toBe(false);
    found.set(name, { lang, code });
  }
  return found;
}

const EXAMPLES = examples();
const example = (name: string): Example => {
  const e = EXAMPLES.get(name);
  if (!e) throw new Error(`${DOC} has no example marked ${name}`);
  return e;
};

type Run = { code: number | null; out: string; err: string };

function run(command: string, args: string[], env: Record<string, string>, cwd = ROOT) {
  // Nothing of this process's own Keygate settings leaks into an example.
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("KEYGATE_")),
  );
  const proc = spawn(command, args, { cwd, env: { ...base, ...env }, stdio: "pipe" });
  let out = "";
  let err = "";
  proc.stdout.on("data", (c: Buffer) => (out += c.toString()));
  proc.stderr.on("data", (c: Buffer) => (err += c.toString()));
  proc.stdin.end();
  return new Promise<Run>((resolve, reject) => {
    proc.on("error", reject);
    proc.on("close", (code) => resolve({ code, out, err }));
  });
}

function expectRan(r: Run, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code}:\n${r.err}\n${r.out}`);
}

/** The JSON objects an example printed (curl prints one answer per line or run-on). */
function answers(out: string): Record<string, unknown>[] {
  return out
    .replace(/\}\s*\{/g, "}\n{")
    .split("\n")
    .filter((l) => l.trim().startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const hasPythonRequests =
  spawnSync("python3", ["-c", "import requests"], { stdio: "ignore" }).status === 0;
const hasJq = spawnSync("jq", ["--version"], { stdio: "ignore" }).status === 0;

describe(`the examples of ${DOC}`, () => {
  let dir: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let server: Server;
  let admin: Record<string, string>;
  let subscriber: number;
  /** A key with signing off that may read subscribers and post transactions. */
  let plain: string;
  /** A key with signing required, its secret. */
  let signed: { key: string; secret: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "keygate-docs-"));
    // `keygate` as the page calls it: this checkout's command.
    writeFileSync(
      join(dir, "keygate"),
      `#!/bin/sh\nexec "${process.execPath}" "${join(ROOT, "bin", "keygate.mjs")}" "$@"\n`,
    );
    chmodSync(join(dir, "keygate"), 0o755);
    db = await freshDatabase(join(dir, "keygate.db"));
    server = await startKeygate({
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_ADMIN_PASSWORD: PASSWORD,
      KEYGATE_MASTER_KEY: randomBytes(32).toString("hex"),
      KEYGATE_MASTER_KEY_FILE: undefined,
      KEYGATE_PUBLIC_URL: undefined,
      KEYGATE_IP_RATE_LIMIT: "0",
    });
    const login = await call(
      server.base,
      "POST",
      "/api/auth/login",
      {},
      {
        username: "admin",
        password: PASSWORD,
      },
    );
    admin = { authorization: `Bearer ${login.json.data.access_token}` };
    const service = await call(server.base, "POST", "/api/services", admin, {
      name: "Fibre 100",
      download_kbps: 100_000,
      upload_kbps: 20_000,
      price: "19.99",
    });
    const sub = await call(server.base, "POST", "/api/subscribers", admin, {
      username: "docs-example",
      password: "auto-generate",
      service_id: service.json.data.id,
    });
    expect(sub.status).toBe(201);
    subscriber = sub.json.data.id;
    const p = await call(server.base, "POST", "/api/api-keys", admin, {
      name: "docs plain",
      scopes: "write",
    });
    expect(p.status).toBe(201);
    plain = p.json.key;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const envFor = (key: string, secret?: string): Record<string, string> => ({
    PATH: `${dir}:${process.env.PATH ?? ""}`,
    KEYGATE_URL: server.base,
    KEYGATE_KEY: key,
    ...(secret === undefined ? {} : { KEYGATE_SIGNING_SECRET: secret }),
    SUBSCRIBER_ID: String(subscriber),
  });

  const bash = async (name: string, env: Record<string, string>) => {
    const e = example(name);
    expect(e.lang).toBe("bash");
    const r = await run("bash", ["-euo", "pipefail", "-c", e.code], env);
    expectRan(r, name);
    return answers(r.out);
  };

  /** Runs a Node example through tsx, `@keygate/sdk` resolved to this checkout's sdk/. */
  const node = async (name: string, env: Record<string, string>) => {
    const e = example(name);
    const sdk = pathToFileURL(join(ROOT, "sdk", "src", "index.ts")).href;
    // .mts and .mjs: ES modules (top-level await) wherever the file is.
    const file = join(dir, `${name}.${e.lang === "ts" ? "mts" : "mjs"}`);
    writeFileSync(file, e.code.replaceAll('"@keygate/sdk"', JSON.stringify(sdk)));
    const r = await run(process.execPath, ["--import", "tsx", file], env);
    expectRan(r, name);
    return r.out;
  };

  it("marks every example this test runs, and runs every example it marks", () => {
    expect([...EXAMPLES.keys()].sort()).toEqual(
      [
        "curl-key",
        "curl-signed",
        "curl-signed-get",
        "curl-token",
        "node-fetch-signed",
        "node-sdk",
        "node-sdk-token",
        "python-signed",
      ].sort(),
    );
  });

  it("curl with the key alone", async () => {
    const [whoami] = await bash("curl-key", envFor(plain));
    expect(whoami).toMatchObject({ success: true, data: { key_prefix: plain.slice(0, 12) } });
  });

  describe("signed requests", () => {
    beforeAll(async () => {
      const s = await call(server.base, "POST", "/api/api-keys", admin, {
        name: "docs signed",
        scopes: "write",
        signing: "required",
      });
      expect(s.status, JSON.stringify(s.json)).toBe(201);
      signed = { key: s.json.key, secret: s.json.signing_secret };
    });

    it("Node, the SDK: signed calls, a typed request and a refusal as a PermissionError", async () => {
      const out = await node("node-sdk", envFor(signed.key, signed.secret));
      expect(out).toContain(`docs signed (${signed.key.slice(0, 12)}…) may *:write`);
      expect(out).toMatch(/^\d+ active subscribers, first: /m);
      expect(out).toMatch(/^transaction \d+: 19\.99 /m);
      expect(out).toContain("usage days: ");
      expect(out).toContain("refused: SCOPE_REQUIRED: ");
    });

    it("Node, plain fetch signed with node:crypto", async () => {
      const out = await node("node-fetch-signed", envFor(signed.key, signed.secret));
      expect(out).toMatch(/^201 \{"success":true,"data":\{"id":\d+/);
      // The same code with another secret is refused: the signature is what let it in.
      const wrong = await node(
        "node-fetch-signed",
        envFor(signed.key, `pks_live_${"0".repeat(64)}`),
      );
      expect(wrong).toMatch(/^401 .*"code":"SIGNATURE_INVALID"/);
    });

    it.skipIf(!hasPythonRequests)("Python, requests signed with hmac", async () => {
      const e = example("python-signed");
      expect(e.lang).toBe("python");
      const r = await run("python3", ["-c", e.code], envFor(signed.key, signed.secret));
      expectRan(r, "python-signed");
      expect(r.out).toMatch(/^201 \{"success":true/);
    });

    it("curl, signed with keygate sign: a POST with a body and a GET", async () => {
      const [created] = await bash("curl-signed", envFor(signed.key, signed.secret));
      expect(created).toMatchObject({
        success: true,
        data: { subscriber_id: subscriber, amount: 19.99 },
      });
      const [list] = await bash("curl-signed-get", envFor(signed.key, signed.secret));
      expect(list).toMatchObject({ success: true, meta: { per_page: 5 } });

      // The same examples with a wrong secret are refused: the signature is what let them in.
      const wrong = await bash("curl-signed-get", envFor(signed.key, `pks_live_${"0".repeat(64)}`));
      expect(wrong[0]).toMatchObject({ success: false, error: { code: "SIGNATURE_INVALID" } });
    });
  });

  describe("token exchange", () => {
    // CI installs jq (.ci/run); elsewhere the example is skipped without it.
    it.skipIf(!hasJq && process.env.CI !== "true")(
      "curl, token exchange with -u and a Bearer call",
      async () => {
        const [list] = await bash("curl-token", envFor(plain));
        expect(list).toMatchObject({ success: true, meta: { per_page: 5 } });
      },
    );

    it("Node, the SDK with token exchange", async () => {
      const out = await node("node-sdk-token", envFor(plain));
      expect(out).toMatch(/^\d+ subscribers, read with a token$/m);
    });
  });
});
