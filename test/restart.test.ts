import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./helpers.js";
import { call, ROOT, startKeygate } from "./process.js";

const dir = mkdtempSync(join(tmpdir(), "keygate-restart-"));
const env: Record<string, string | undefined> = {
  ...process.env,
  KEYGATE_PORT: "0",
  KEYGATE_ADMIN_PASSWORD: "restart-password",
  KEYGATE_LOG_LEVEL: "warn",
};
let database: Awaited<ReturnType<typeof freshDatabase>>;

beforeAll(async () => {
  database = await freshDatabase(join(dir, "keygate.db"));
  env.KEYGATE_DATABASE_URL = database.url;
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await database?.drop();
});

describe("the real server process", () => {
  it("keeps keys, records and every call-log row across a SIGTERM and a restart", async () => {
    const first = await startKeygate(env);
    expect(first.output()).toContain('created admin "admin"');
    const login = await call(
      first.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "restart-password" },
    );
    expect(login.status).toBe(200);
    const auth = { authorization: `Bearer ${login.json.data.access_token}` };
    const svc = await call(first.base, "POST", "/api/services", auth, { name: "Fibre", price: 30 });
    const minted = await call(first.base, "POST", "/api/api-keys", auth, { scopes: "write" });
    expect(minted.status).toBe(201);
    const key = minted.json.key as string;
    const sub = await call(
      first.base,
      "POST",
      "/api/v1/external/subscribers",
      { "x-api-key": key },
      {
        username: "persisted",
        password: "pass1234",
        service_id: svc.json.data.id,
      },
    );
    expect(sub.status).toBe(201);

    // A burst of calls, some refused, then an immediate SIGTERM: the queue must be flushed.
    const burst = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        call(first.base, "GET", i % 3 === 0 ? "/api/v1/external/nope" : "/api/v1/external/whoami", {
          "x-api-key": key,
        }),
      ),
    );
    expect(burst.filter((r) => r.status === 200)).toHaveLength(80);
    const bad = await call(first.base, "GET", "/api/v1/external/whoami", {
      "x-api-key": "pk_live_00000000000000000000000000000000",
    });
    expect(bad.status).toBe(401);
    expect(await first.stop()).toBe(0);

    const second = await startKeygate(env);
    expect(second.output()).not.toContain("created admin");
    const again = await call(
      second.base,
      "POST",
      "/api/auth/login",
      {},
      { username: "admin", password: "restart-password" },
    );
    const auth2 = { authorization: `Bearer ${again.json.data.access_token}` };
    const who = await call(second.base, "GET", "/api/v1/external/whoami", { "x-api-key": key });
    expect(who.status).toBe(200);
    const found = await call(
      second.base,
      "GET",
      "/api/v1/external/subscribers/by-username/persisted",
      { "x-api-key": key },
    );
    expect(found.json.data.username).toBe("persisted");

    const logs = await call(
      second.base,
      "GET",
      `/api/api-keys/${minted.json.data.id}/logs?limit=1000`,
      auth2,
    );
    // 1 create + 120 burst + 1 whoami + 1 lookup, all under this key.
    expect(logs.json.data).toHaveLength(123);
    expect(
      logs.json.data.filter((r: { status_code: number }) => r.status_code === 404),
    ).toHaveLength(40);
    const stats = await call(second.base, "GET", "/api/api-keys/stats", auth2);
    // Plus the one unknown-key call, logged with no key id.
    expect(stats.json.data.calls_24h).toBe(124);
    expect(await second.stop()).toBe(0);
  });

  it("stops with one line naming a bad variable", async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: ROOT,
      env: { ...env, KEYGATE_PORT: "eighty" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    proc.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise((resolve) => proc.on("exit", resolve));
    expect(code).toBe(1);
    expect(err.trim().split("\n")).toEqual([
      'keygate: KEYGATE_PORT must be a whole number from 0 to 65535 (got "eighty")',
    ]);
  });
});

describe("first start without a password", () => {
  it("generates the admin password, prints it once, and it works", async () => {
    const db = await freshDatabase(join(dir, "generated.db"));
    const server = await startKeygate({ ...process.env, KEYGATE_DATABASE_URL: db.url });
    try {
      const m = /created admin "admin" with generated password: (\S+)/.exec(server.output());
      expect(m).not.toBeNull();
      const password = m?.[1] as string;
      expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
      const login = await call(
        server.base,
        "POST",
        "/api/auth/login",
        {},
        { username: "admin", password },
      );
      expect(login.status).toBe(200);
      expect(server.output().match(new RegExp(password, "g"))).toHaveLength(1);
    } finally {
      await server.stop();
      await db.drop();
    }
  });
});
