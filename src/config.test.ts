import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, redactUrl } from "./config.js";

describe("loadConfig", () => {
  it("has the documented defaults", () => {
    expect(loadConfig({})).toMatchObject({
      host: "127.0.0.1",
      port: 8080,
      databaseUrl: "sqlite:./data/keygate.db",
      redisUrl: null,
      jwtSecret: null,
      adminUsername: "admin",
      adminPassword: null,
      keyRateLimit: 600,
      ipRateLimit: 3000,
      failedKeyLimit: 100,
      logRetentionDays: 30,
      trustProxy: false,
      selfServiceKeys: false,
      requireTwoFactor: "off",
    });
  });

  it("takes KEYGATE_SQLITE_SYNCHRONOUS as normal (the default) or full, and nothing else", () => {
    expect(loadConfig({}).sqliteSynchronous).toBe("normal");
    expect(loadConfig({ KEYGATE_SQLITE_SYNCHRONOUS: "FULL" }).sqliteSynchronous).toBe("full");
    expect(() => loadConfig({ KEYGATE_SQLITE_SYNCHRONOUS: "off" })).toThrow(
      /KEYGATE_SQLITE_SYNCHRONOUS must be one of normal, full \(got "off"\)/,
    );
  });

  it("is frozen", () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });

  it.each([
    [{ KEYGATE_PORT: "70000" }, "KEYGATE_PORT"],
    [{ KEYGATE_PORT: "8o8o" }, "KEYGATE_PORT"],
    [{ KEYGATE_DATABASE_URL: "mysql://x" }, "KEYGATE_DATABASE_URL"],
    [{ KEYGATE_REDIS_URL: "localhost:6379" }, "KEYGATE_REDIS_URL"],
    [{ KEYGATE_JWT_SECRET: "short" }, "KEYGATE_JWT_SECRET"],
    [{ KEYGATE_ADMIN_USERNAME: "a b" }, "KEYGATE_ADMIN_USERNAME"],
    [{ KEYGATE_ADMIN_PASSWORD: "1234" }, "KEYGATE_ADMIN_PASSWORD"],
    [{ KEYGATE_KEY_RATE_LIMIT: "0" }, "KEYGATE_KEY_RATE_LIMIT"],
    [{ KEYGATE_LOG_RETENTION_DAYS: "-1" }, "KEYGATE_LOG_RETENTION_DAYS"],
    [{ KEYGATE_SELF_SERVICE_KEYS: "maybe" }, "KEYGATE_SELF_SERVICE_KEYS"],
    [{ KEYGATE_COALESCE_WRITES: "sometimes" }, "KEYGATE_COALESCE_WRITES"],
    [{ KEYGATE_TRUST_PROXY: "10.0.0.1/8" }, "KEYGATE_TRUST_PROXY"],
    [{ KEYGATE_LOG_LEVEL: "loud" }, "KEYGATE_LOG_LEVEL"],
    [{ KEYGATE_REQUIRE_2FA: "yes" }, "KEYGATE_REQUIRE_2FA"],
  ])("refuses %o with a message naming the variable", (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`^${name} `));
  });

  it("reads booleans, proxy lists and zero-means-off limits", () => {
    const c = loadConfig({
      KEYGATE_TRUST_PROXY: "127.0.0.1, 10.0.0.0/8",
      KEYGATE_SELF_SERVICE_KEYS: "yes",
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
    });
    expect(c.trustProxy).toEqual(["127.0.0.1", "10.0.0.0/8"]);
    expect(c.selfServiceKeys).toBe(true);
    expect(c.ipRateLimit).toBe(0);
    expect(loadConfig({ KEYGATE_TRUST_PROXY: "true" }).trustProxy).toBe(true);
    expect(loadConfig({}).coalesceWrites).toBe(true);
    expect(loadConfig({ KEYGATE_COALESCE_WRITES: "false" }).coalesceWrites).toBe(false);
  });

  it("takes KEYGATE_PUBLIC_URL as an http(s) URL, unset by default", () => {
    expect(loadConfig({}).publicUrl).toBeNull();
    expect(loadConfig({ KEYGATE_PUBLIC_URL: "https://keygate.example.com/" }).publicUrl).toBe(
      "https://keygate.example.com",
    );
    expect(loadConfig({ KEYGATE_PUBLIC_URL: " http://10.0.0.5:8080 " }).publicUrl).toBe(
      "http://10.0.0.5:8080",
    );
    expect(loadConfig({ KEYGATE_PUBLIC_URL: "https://example.com/keygate/" }).publicUrl).toBe(
      "https://example.com/keygate",
    );
    for (const bad of [
      "keygate.example.com",
      "ftp://keygate.example.com",
      "https://",
      "https://keygate.example.com/?x=1",
      "https://keygate.example.com/#top",
      "javascript:alert(1)",
    ]) {
      expect(() => loadConfig({ KEYGATE_PUBLIC_URL: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig({ KEYGATE_PUBLIC_URL: bad }), bad).toThrow(
        /^KEYGATE_PUBLIC_URL must be the http:\/\/ or https:\/\/ address .*such as https:\/\/keygate\.example\.com/,
      );
    }
    // A password in it is refused and never printed back.
    expect(() =>
      loadConfig({ KEYGATE_PUBLIC_URL: "https://kg:s3cret@keygate.example.com" }),
    ).toThrow(/kg:\*\*\*@keygate/);
  });

  it("reads the master key from KEYGATE_MASTER_KEY or a file, never both, and says what it must be", () => {
    const hex = randomBytes(32).toString("hex");
    expect(loadConfig({}).masterKey).toBeNull();
    expect(loadConfig({ KEYGATE_MASTER_KEY: hex }).masterKey?.toString("hex")).toBe(hex);
    const dir = mkdtempSync(join(tmpdir(), "kg-config-"));
    const file = join(dir, "master.key");
    writeFileSync(file, `${Buffer.from(hex, "hex").toString("base64")}\n`);
    expect(loadConfig({ KEYGATE_MASTER_KEY_FILE: file }).masterKey?.toString("hex")).toBe(hex);
    expect(() => loadConfig({ KEYGATE_MASTER_KEY: hex, KEYGATE_MASTER_KEY_FILE: file })).toThrow(
      "set KEYGATE_MASTER_KEY or KEYGATE_MASTER_KEY_FILE, not both",
    );
    expect(() => loadConfig({ KEYGATE_MASTER_KEY: "short" })).toThrow(
      /^KEYGATE_MASTER_KEY must be 32 bytes as 64 hex characters or base64/,
    );
    expect(() => loadConfig({ KEYGATE_MASTER_KEY_FILE: join(dir, "none") })).toThrow(
      /KEYGATE_MASTER_KEY_FILE .* cannot be read: no such file/,
    );
    writeFileSync(file, "not a key");
    expect(() => loadConfig({ KEYGATE_MASTER_KEY_FILE: file })).toThrow(ConfigError);
    rmSync(dir, { recursive: true, force: true });
  });

  it("reads earlier master keys from KEYGATE_MASTER_KEY_PREVIOUS, only beside a current one", () => {
    const current = randomBytes(32);
    const a = randomBytes(32);
    const b = randomBytes(32);
    expect(loadConfig({}).masterKeyPrevious).toEqual([]);
    expect(loadConfig({ KEYGATE_MASTER_KEY: current.toString("hex") }).masterKeyPrevious).toEqual(
      [],
    );
    const both = loadConfig({
      KEYGATE_MASTER_KEY: current.toString("hex"),
      KEYGATE_MASTER_KEY_PREVIOUS: ` ${a.toString("hex")} , ${b.toString("base64")}`,
    });
    expect(both.masterKeyPrevious.map((k) => k.toString("hex"))).toEqual([
      a.toString("hex"),
      b.toString("hex"),
    ]);
    // The current key, or one listed twice, counts once.
    const repeated = loadConfig({
      KEYGATE_MASTER_KEY: current.toString("hex"),
      KEYGATE_MASTER_KEY_PREVIOUS: [a, current, a].map((k) => k.toString("hex")).join(","),
    });
    expect(repeated.masterKeyPrevious.map((k) => k.toString("hex"))).toEqual([a.toString("hex")]);

    expect(() => loadConfig({ KEYGATE_MASTER_KEY_PREVIOUS: a.toString("hex") })).toThrow(
      /^KEYGATE_MASTER_KEY_PREVIOUS is set without KEYGATE_MASTER_KEY: set the new master key/,
    );
    const wrong = (value: string) => () =>
      loadConfig({
        KEYGATE_MASTER_KEY: current.toString("hex"),
        KEYGATE_MASTER_KEY_PREVIOUS: value,
      });
    expect(wrong("short")).toThrow(
      /^KEYGATE_MASTER_KEY_PREVIOUS must hold the earlier master key\(s\), comma-separated, each 32 bytes as 64 hex characters or base64$/,
    );
    expect(wrong(`${a.toString("hex")},,${b.toString("hex")}`)).toThrow(/\(entry 2 of 3 is not\)$/);
    // The refusal never prints a key back.
    const refusal = (() => {
      try {
        wrong(`${a.toString("hex")},${a.toString("hex").slice(1)}`)();
      } catch (err) {
        return err;
      }
      return null;
    })();
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as Error).message).not.toContain(a.toString("hex").slice(1, 20));
  });

  it("never prints a database password", () => {
    expect(redactUrl("postgres://kg:s3cret@db:5432/kg")).toBe("postgres://kg:***@db:5432/kg");
    expect(() => loadConfig({ KEYGATE_DATABASE_URL: "mongodb://u:s3cret@h" })).toThrow(
      /u:\*\*\*@h/,
    );
  });
});
