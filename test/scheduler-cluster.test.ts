import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { Scheduler } from "../src/events/scheduler.js";
import { createKeygate, type Keygate } from "../src/keygate.js";
import { harness } from "./helpers.js";

// Several instances on one database: PostgreSQL only (vitest.config.ts, postgresOnly).
const DAY = 86_400_000;

describe("new addresses seen by several instances", () => {
  it("is announced once, however many instances saw it in the same moment", async () => {
    const h = await harness();
    const others: Keygate[] = [];
    try {
      for (let i = 0; i < 2; i++)
        others.push(
          await createKeygate(
            loadConfig({
              KEYGATE_DATABASE_URL: h.kg.config.databaseUrl,
              KEYGATE_LOG_LEVEL: "silent",
            }),
            { oneShot: true },
          ),
        );
      const { id } = await h.mint(h.adminToken, { name: "shared" });
      const row = {
        apiKeyId: id,
        timestamp: new Date().toISOString(),
        method: "GET",
        path: "/api/v1/external/whoami",
        statusCode: 200,
        ip: "203.0.113.200",
        latencyMs: 1,
        userAgent: null,
        errorCode: null,
        requestId: null,
        message: null,
      };
      const refusal = { ...row, statusCode: 401, errorCode: "API_KEY_REVOKED" };
      // Each instance saw the address, and 20 refusals (60 in all: one spike).
      const all = [h.kg, ...others];
      for (const kg of all) kg.signals.observe([row, ...Array.from({ length: 20 }, () => refusal)]);
      const reports = await Promise.all(all.map((kg) => kg.signals.flush()));
      expect(reports.reduce((n, r) => n + r.newIps, 0)).toBe(1);
      const types = (await h.kg.database.db.selectFrom("events").select("type").execute()).map(
        (e) => e.type,
      );
      expect(types.filter((t) => t === "key.new_ip")).toHaveLength(1);
      // The window's count is the sum of all three; whichever crossed 50 announced it.
      const window = await h.kg.database.db
        .selectFrom("refusal_windows")
        .select("refusals")
        .where("api_key_id", "=", id)
        .execute();
      expect(window.reduce((n, w) => n + Number(w.refusals), 0)).toBe(60);
      const spikes = types.filter((t) => t === "key.refusals_spike").length;
      expect(spikes).toBe(window.length === 1 ? 1 : spikes);
      expect(spikes).toBeLessThanOrEqual(1);
    } finally {
      for (const kg of others) await kg.close();
      await h.close();
    }
  });
});

describe("the scheduler on several instances", () => {
  it("runs one tick at a time across instances: each reminder is sent once", async () => {
    const h = await harness();
    const url = h.kg.config.databaseUrl;
    const others: Keygate[] = [];
    try {
      for (let i = 0; i < 2; i++)
        others.push(
          await createKeygate(
            loadConfig({ KEYGATE_DATABASE_URL: url, KEYGATE_LOG_LEVEL: "silent" }),
            { oneShot: true },
          ),
        );
      for (let i = 0; i < 5; i++)
        await h.mint(h.adminToken, {
          name: `k${i}`,
          expires_at: new Date(Date.now() + 2 * DAY).toISOString(),
        });
      const schedulers = [h.kg, ...others].map(
        (kg) => new Scheduler({ database: kg.database, now: () => new Date(), warn: () => {} }),
      );
      // While one instance holds the lock, another's tick stands aside.
      await h.kg.database.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${0x6b677363})`.execute(trx);
        expect(await schedulers[1]?.tick()).toBeNull();
      });
      const reports = await Promise.all(schedulers.flatMap((s) => [s.tick(), s.tick()]));
      const sent = reports.reduce((n, r) => n + (r?.expiring ?? 0), 0);
      expect(sent).toBe(5);
      const rows = await h.kg.database.db
        .selectFrom("events")
        .select("type")
        .where("type", "=", "key.expiring")
        .execute();
      expect(rows).toHaveLength(5);
    } finally {
      for (const kg of others) await kg.close();
      await h.close();
    }
  });
});
