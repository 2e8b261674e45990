import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { operator } from "../src/auth/principal.js";
import { loadConfig } from "../src/config.js";
import { MasterKeyring } from "../src/credentials/secrets.js";
import { webhookSecretBinding } from "../src/events/webhooks.js";
import { createKeygate } from "../src/keygate.js";
import { freshDatabase } from "./helpers.js";
import { call, runKeygate, type Server, startKeygate } from "./process.js";
import { receiver, until } from "./webhook-receiver.js";

const dir = mkdtempSync(join(tmpdir(), "keygate-webhooks-"));
let database: Awaited<ReturnType<typeof freshDatabase>>;
let env: Record<string, string | undefined>;

beforeAll(async () => {
  database = await freshDatabase(join(dir, "keygate.db"));
  env = {
    ...process.env,
    KEYGATE_DATABASE_URL: database.url,
    KEYGATE_ADMIN_PASSWORD: "webhook-password",
    KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true",
    KEYGATE_LOG_LEVEL: "warn",
  };
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await database?.drop();
});

function kill(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.proc.removeAllListeners("exit");
    s.proc.on("exit", () => resolve());
    s.proc.kill("SIGKILL");
  });
}

describe("webhooks from the real server process", () => {
  it("delivers an event committed just before a SIGKILL once the server is back, and events of the command line", async () => {
    const rx = await receiver();
    await rx.close(); // the receiver is down while the events are made
    const first = await startKeygate(env);
    let second: Server | null = null;
    try {
      const login = await call(
        first.base,
        "POST",
        "/api/auth/login",
        {},
        {
          username: "admin",
          password: "webhook-password",
        },
      );
      const auth = { authorization: `Bearer ${login.json.data.access_token}` };
      const made = await call(first.base, "POST", "/api/webhooks", auth, {
        url: rx.url,
        events: ["key.created"],
      });
      expect(made.status).toBe(201);
      const secret = made.json.secret as string;
      const minted = await call(first.base, "POST", "/api/api-keys", auth, { name: "before kill" });
      expect(minted.status).toBe(201);
      await kill(first);

      // The command line writes its events to the outbox; only a serving process delivers.
      const cli = await runKeygate(["keys", "mint", "--owner", "admin", "--name", "from the cli"], {
        KEYGATE_DATABASE_URL: env.KEYGATE_DATABASE_URL as string,
      });
      expect(cli.code).toBe(0);

      await rx.open();
      second = await startKeygate(env);
      const started = Date.now();
      await until(() => rx.received.length >= 2, "both events after the restart", 15_000);
      const wh = new Webhook(secret);
      const names = rx.received.map(
        (r) =>
          (wh.verify(r.body, r.headers as Record<string, string>) as { data: { name: string } })
            .data.name,
      );
      expect(names.sort()).toEqual(["before kill", "from the cli"]);
      console.info(
        `restart: ${rx.received.length} deliveries, the last ${Math.max(...rx.received.map((r) => r.at)) - started} ms after the server was back`,
      );
      expect(await second.stop()).toBe(0);
      second = null;
    } finally {
      if (first.proc.exitCode === null && first.proc.signalCode === null) await first.stop();
      await second?.stop();
      await rx.close();
    }
  });

  it("keeps webhook secrets sealed under the master key, and keygate rotate-master-key reseals them", async () => {
    const oldKey = "a".repeat(64);
    const newKey = "b".repeat(64);
    const base = {
      KEYGATE_DATABASE_URL: env.KEYGATE_DATABASE_URL as string,
      KEYGATE_LOG_LEVEL: "silent",
    };
    const kg = await createKeygate(loadConfig({ ...base, KEYGATE_MASTER_KEY: oldKey }), {
      oneShot: true,
    });
    let secret: string;
    let id: number;
    try {
      await kg.auth.bootstrap("admin", "webhook-password");
      const admin = await kg.database.db
        .selectFrom("users")
        .select("id")
        .where("username", "=", "admin")
        .executeTakeFirstOrThrow();
      const p = { ...operator("root@test"), userId: admin.id, via: "jwt" as const };
      const made = await kg.webhooks.create(p, {
        url: "https://8.8.8.8:9/sealed",
      });
      secret = made.secret;
      id = made.data.id;
    } finally {
      await kg.close();
    }
    const stored = async () => {
      const k = await createKeygate(loadConfig(base), { oneShot: true });
      try {
        return (
          await k.database.db
            .selectFrom("webhook_endpoints")
            .select("secret")
            .where("id", "=", id)
            .executeTakeFirstOrThrow()
        ).secret;
      } finally {
        await k.close();
      }
    };
    const sealed = await stored();
    expect(sealed).not.toContain(secret.slice(6));
    expect(
      new MasterKeyring(Buffer.from(oldKey, "hex")).open(sealed, webhookSecretBinding(id)),
    ).toBe(secret);
    const run = await runKeygate(["rotate-master-key"], {
      ...base,
      KEYGATE_MASTER_KEY: newKey,
      KEYGATE_MASTER_KEY_PREVIOUS: oldKey,
    });
    expect(run.code).toBe(0);
    // The earlier endpoint, kept as given without a master key, is sealed too.
    expect(run.out).toMatch(/resealed 2 webhook signing secrets/);
    const resealed = await stored();
    expect(
      new MasterKeyring(Buffer.from(newKey, "hex")).open(resealed, webhookSecretBinding(id)),
    ).toBe(secret);
  });
});
