import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshDatabase } from "./helpers.js";
import { call, freePort, startKeygate } from "./process.js";

/** A newcomer's first starts: a busy port, the one-time password, a second start. */
describe("first start", () => {
  const dir = mkdtempSync(join(tmpdir(), "keygate-onboarding-"));
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let env: Record<string, string | undefined>;
  beforeAll(async () => {
    database = await freshDatabase(join(dir, "keygate.db"));
    const base = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("KEYGATE_")),
    );
    env = { ...base, KEYGATE_DATABASE_URL: database.url, KEYGATE_LOG_LEVEL: "warn" };
  });
  afterAll(async () => {
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("on a busy port says to set KEYGATE_PORT and prints no password; the next start does", async () => {
    const port = await freePort();
    const holder: NetServer = createServer();
    await new Promise<void>((r) => holder.listen(port, "127.0.0.1", () => r()));
    try {
      const failed = await startKeygate({ ...env, KEYGATE_PORT: String(port) }).then(
        () => {
          throw new Error("started on a busy port");
        },
        (err: Error) => err.message,
      );
      expect(failed).toMatch(/exited with 1/);
      expect(failed).toContain(`127.0.0.1:${port} is already in use`);
      expect(failed).toContain("set KEYGATE_PORT");
      expect(failed).not.toContain("password");
    } finally {
      await new Promise((r) => holder.close(r));
    }

    const server = await startKeygate({ ...env, KEYGATE_PORT: "0" });
    try {
      const m = /created admin "admin" with generated password: (\S+)/.exec(server.output());
      expect(m, server.output()).not.toBeNull();
      const login = await call(
        server.base,
        "POST",
        "/api/auth/login",
        {},
        { username: "admin", password: m?.[1] },
      );
      expect(login.status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it("a second start with KEYGATE_ADMIN_PASSWORD says it was ignored and how to reset", async () => {
    const server = await startKeygate({
      ...env,
      KEYGATE_PORT: "0",
      KEYGATE_ADMIN_PASSWORD: "another-password-1",
    });
    try {
      expect(server.output()).not.toContain("created admin");
      expect(server.output()).toContain("KEYGATE_ADMIN_PASSWORD was ignored");
      expect(server.output()).toContain("keygate reset-password <username>");
      const login = await call(
        server.base,
        "POST",
        "/api/auth/login",
        {},
        { username: "admin", password: "another-password-1" },
      );
      expect(login.status).toBe(401);
    } finally {
      await server.stop();
    }
  });
});
