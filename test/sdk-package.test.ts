import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, ROOT, type Server, startKeygate } from "./process.js";

/**
 * The SDK as `npm pack` makes it (compiled JavaScript and type declarations, built by the
 * prepack script into sdk/dist), installed into a project and run by plain node, without a
 * TypeScript loader, against the real server. Once, not per engine: the package is the same,
 * and two packs at a time would write sdk/dist together.
 */
describe("the packed SDK", () => {
  let dir: string;
  let server: Server;
  let admin: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "keygate-sdk-pack-"));
    server = await startKeygate({
      ...process.env,
      KEYGATE_DATABASE_URL: `sqlite:${join(dir, "keygate.db")}`,
      KEYGATE_ADMIN_PASSWORD: "sdk-pack-admin-password",
      KEYGATE_MASTER_KEY: randomBytes(32).toString("hex"),
      KEYGATE_MASTER_KEY_FILE: undefined,
      KEYGATE_PUBLIC_URL: undefined,
    });
    const login = await call(
      server.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "sdk-pack-admin-password" },
    );
    expect(login.status).toBe(200);
    admin = { authorization: `Bearer ${login.json.data.access_token}` };
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("is compiled JavaScript and types, and runs with plain node", async () => {
    const minted = await call(server.base, "POST", "/api/api-keys", admin, {
      name: "packed sdk",
      scopes: "read",
      signing: "required",
    });
    expect(minted.status).toBe(201);
    const key = minted.json.key as string;
    const secret = minted.json.signing_secret as string;

    execFileSync("npm", ["pack", "--pack-destination", dir, "--silent"], {
      cwd: join(ROOT, "sdk"),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const project = join(dir, "app");
    const installed = join(project, "node_modules", "@keygate", "sdk");
    mkdirSync(installed, { recursive: true });
    execFileSync("tar", [
      "-xzf",
      join(dir, "keygate-sdk-0.1.0.tgz"),
      "-C",
      installed,
      "--strip-components=1",
    ]);
    const files = readdirSync(join(installed, "dist"));
    expect(files).toContain("index.js");
    expect(files).toContain("index.d.ts");
    expect(
      files.filter((f) => f.includes(".test.") || (f.endsWith(".ts") && !f.endsWith(".d.ts"))),
    ).toEqual([]);
    // Its one dependency, as npm would install it beside it.
    symlinkSync(
      join(ROOT, "node_modules", "structured-headers"),
      join(project, "node_modules", "structured-headers"),
    );
    writeFileSync(
      join(project, "app.mjs"),
      `import { Keygate, KeygateError } from "@keygate/sdk";
const kg = new Keygate({ baseUrl: process.env.BASE, key: process.env.KEY, signingSecret: process.env.SECRET });
const me = await kg.whoami();
const unsigned = await new Keygate({ baseUrl: process.env.BASE, key: process.env.KEY }).whoami().catch((e) => e);
console.log(JSON.stringify({ prefix: me.key_prefix, refused: unsigned instanceof KeygateError ? unsigned.code : null }));
`,
    );
    const out = execFileSync(process.execPath, ["app.mjs"], {
      cwd: project,
      env: { PATH: process.env.PATH, BASE: server.base, KEY: key, SECRET: secret },
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toEqual({ prefix: key.slice(0, 12), refused: "SIGNATURE_REQUIRED" });

    // The call log shows one signed call and one refused unsigned one (it is written in batches).
    const id = minted.json.data.id as number;
    let credentials: unknown[] = [];
    for (let i = 0; i < 50 && credentials.length < 2; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      const logs = await call(server.base, "GET", `/api/api-keys/${id}/logs`, admin);
      credentials = (logs.json.data as { credential: unknown }[]).map((r) => r.credential);
    }
    expect(credentials.sort()).toEqual(["key", "signature"]);
  }, 120_000);
});
