import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emitEvent } from "../src/events/outbox.js";
import { SqlWebhookRepo } from "../src/store/webhooks.js";
import { expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";
import { receiver, until } from "./webhook-receiver.js";

/**
 * Two Keygate instances on one PostgreSQL schema, each running its delivery worker: every
 * message must reach the endpoint exactly once, whichever instance wrote or claimed it.
 */
describe("webhook delivery with two instances", () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let a: Harness;
  let b: Harness;
  let rx: Awaited<ReturnType<typeof receiver>>;
  const delivery = { pollMs: 5, batch: 8, retryScheduleMs: [100, 200, 400], jitter: 0 };

  beforeAll(async () => {
    db = await freshDatabase();
    const env = { KEYGATE_DATABASE_URL: db.url, KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true" };
    a = await harness(env, { delivery });
    b = await harness(env, { delivery });
    rx = await receiver();
    // A little latency, so that both workers have claims in flight at once.
    rx.answer(() => ({ status: 200, body: "ok" }));
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await rx?.close();
    await db?.drop();
  });

  it("delivers each of N events exactly once", async () => {
    const made = await a.api("POST", "/api/webhooks", a.adminToken, { url: rx.url });
    expectStatus(made, 201);
    const secret = made.json().secret as string;
    await Promise.all([a.kg.deliveries.start(), b.kg.deliveries.start()]);
    const N = 300;
    // Keys minted through both instances, and events written straight to the outbox.
    for (let i = 0; i < 40; i++)
      await (i % 2 ? a : b).mint((i % 2 ? a : b).adminToken, { name: `k${i}` });
    for (let i = 0; i < N - 40; i += 20)
      await a.kg.database.db.transaction().execute(async (trx) => {
        for (let j = i; j < Math.min(i + 20, N - 40); j++)
          await emitEvent(
            trx,
            { type: "subscriber.created", environment: "live", ownerId: 1, data: { n: j } },
            new Date().toISOString(),
          );
      });
    await until(() => rx.received.length >= N, `${N} deliveries`, 25_000);
    await new Promise((r) => setTimeout(r, 300));
    const wh = new Webhook(secret);
    for (const r of rx.received) wh.verify(r.body, r.headers as Record<string, string>);
    const ids = rx.received.map((r) => r.headers["webhook-id"]);
    const duplicates = ids.length - new Set(ids).size;
    console.info(
      `two instances: ${N} events, ${rx.received.length} received, ${duplicates} duplicates; instance A delivered ${a.kg.deliveries.counts.success}, B ${b.kg.deliveries.counts.success}`,
    );
    expect(new Set(ids).size).toBe(N);
    expect(duplicates).toBe(0);
    expect(a.kg.deliveries.counts.success + b.kg.deliveries.counts.success).toBe(N);
    const rows = await a.kg.database.db
      .selectFrom("webhook_deliveries")
      .select(["status", "attempts"])
      .execute();
    expect(rows).toHaveLength(N);
    expect(rows.every((r) => r.status === "succeeded" && Number(r.attempts) === 1)).toBe(true);
  });

  it("delivers what a crashed instance had claimed once its lease is over", async () => {
    await Promise.all([a.kg.deliveries.stop(), b.kg.deliveries.stop()]);
    const repo = new SqlWebhookRepo(a.kg.database.db, "postgres");
    const before = rx.received.length;
    await a.mint(a.adminToken, { name: "orphaned" });
    // An instance claims the delivery and dies before sending it.
    const now = new Date();
    expect(await repo.fanOut(now.toISOString(), 10, () => true)).toBe(1);
    const claimed = await repo.claim(
      "dead-instance",
      now.toISOString(),
      new Date(now.getTime() + 600).toISOString(),
      10,
    );
    expect(claimed).toHaveLength(1);
    await b.kg.deliveries.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.received.length).toBe(before);
    await until(() => rx.received.length > before, "delivery after the lease", 5_000);
    expect(Date.now() - now.getTime()).toBeGreaterThanOrEqual(600);
    await new Promise((r) => setTimeout(r, 200));
    expect(rx.received.length).toBe(before + 1);
    expect(rx.received.at(-1)?.headers["webhook-id"]).toBe(claimed[0]?.messageId);
  });
});
