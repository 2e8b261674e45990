import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";
import { receiver, until } from "./webhook-receiver.js";

// A delivery's attempt history (GET /api/webhooks/:id/deliveries/:delivery_id/attempts),
// against real HTTP receivers on 127.0.0.1.

type Rx = Awaited<ReturnType<typeof receiver>>;
type Attempt = {
  attempt: number;
  attempted_at: string;
  outcome: string;
  manual: boolean;
  response_status: number | null;
  latency_ms: number;
  error: string | null;
  response_body: string | null;
};
const FAST = { pollMs: 20, retryScheduleMs: [100, 100, 100, 100, 100, 100], jitter: 0 };

async function register(h: Harness, url: string, token = h.adminToken) {
  const res = await h.api("POST", "/api/webhooks", token, { url, events: ["key.created"] });
  expectStatus(res, 201);
  return res.json().data.id as number;
}

/** The endpoint's only delivery, once `done` says it is where the test wants it. */
async function delivery(
  h: Harness,
  endpoint: number,
  done: (d: { status: string; attempts: number }) => boolean,
  token = h.adminToken,
) {
  return until(async () => {
    const log = (await h.api("GET", `/api/webhooks/${endpoint}/deliveries`, token)).json().data;
    return log.length === 1 && done(log[0]) ? (log[0] as Record<string, unknown>) : null;
  }, "the delivery");
}

async function attempts(h: Harness, endpoint: number, deliveryId: number, query = "") {
  const res = await h.api(
    "GET",
    `/api/webhooks/${endpoint}/deliveries/${deliveryId}/attempts${query}`,
    h.adminToken,
  );
  expectStatus(res, 200);
  return res.json().data as Attempt[];
}

describe("a delivery's attempts", () => {
  let h: Harness;
  let rx: Rx;
  beforeAll(async () => {
    h = await harness(
      { KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true", KEYGATE_SELF_SERVICE_KEYS: "true" },
      { delivery: FAST },
    );
    rx = await receiver();
    await h.kg.deliveries.start();
  });
  afterAll(async () => {
    await h?.close();
    await rx?.close();
  });

  it("are each kept, in order, with status, error, latency and answer: two failures, then a success", async () => {
    const answers = [
      { status: 500, body: "first: database down" },
      { status: 503, body: "second: warming up", delayMs: 150 },
      { status: 200, body: "third: ok" },
    ];
    rx.answer(() => answers[Math.min(rx.received.length - 1, answers.length - 1)]!);
    const endpoint = await register(h, rx.url);
    await h.mint(h.adminToken, { name: "flaky receiver" });
    const d = await delivery(h, endpoint, (x) => x.status === "succeeded");
    expect(d.attempts).toBe(3);
    expect(rx.received).toHaveLength(3);

    const all = await attempts(h, endpoint, d.id as number);
    expect(
      all.map((a) => [a.attempt, a.outcome, a.response_status, a.error, a.response_body]),
    ).toEqual([
      [1, "failed", 500, "answered 500", "first: database down"],
      [2, "failed", 503, "answered 503", "second: warming up"],
      [3, "succeeded", 200, null, "third: ok"],
    ]);
    expect(all.every((a) => !a.manual)).toBe(true);
    // Each attempt's time is the webhook-timestamp it was sent with, and they follow each other.
    all.forEach((a, i) =>
      expect(Math.floor(Date.parse(a.attempted_at) / 1000)).toBe(
        Number(rx.received[i]!.headers["webhook-timestamp"]),
      ),
    );
    const times = all.map((a) => Date.parse(a.attempted_at));
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(100);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(100);
    expect(all[1]!.latency_ms).toBeGreaterThanOrEqual(150);
    expect(all[0]!.latency_ms).toBeLessThan(150);
    // The delivery's last attempt is the history's last.
    expect(d).toMatchObject({ response_status: 200, response_body: "third: ok", error: null });

    // Pages, oldest first.
    expect((await attempts(h, endpoint, d.id as number, "?limit=2")).map((a) => a.attempt)).toEqual(
      [1, 2],
    );
    expect((await attempts(h, endpoint, d.id as number, "?after=2")).map((a) => a.attempt)).toEqual(
      [3],
    );

    // A redelivery by hand to a receiver that is gone: a fourth attempt, manual, with no status.
    await rx.close();
    try {
      expectStatus(
        await h.api(
          "POST",
          `/api/webhooks/${endpoint}/deliveries/${d.id as number}/redeliver`,
          h.adminToken,
        ),
        200,
      );
      await delivery(h, endpoint, (x) => x.status === "failed" && x.attempts === 4);
      const fourth = (await attempts(h, endpoint, d.id as number, "?after=3"))[0]!;
      expect(fourth).toMatchObject({
        attempt: 4,
        outcome: "failed",
        manual: true,
        response_status: null,
        response_body: null,
      });
      expect(fourth.error).toMatch(/ECONNREFUSED/);
    } finally {
      await rx.open();
    }
    expectStatus(await h.api("DELETE", `/api/webhooks/${endpoint}`, h.adminToken), 200);
  });

  it("are read only by whoever may read the endpoint: another reseller gets 404", async () => {
    const bob = await h.user("attempts-bob");
    const carol = await h.user("attempts-carol");
    const rxBob = await receiver();
    try {
      rxBob.answer(() => ({ status: 418, body: "bob's teapot" }));
      const endpoint = await register(h, rxBob.url, bob.token);
      await h.mint(bob.token, { name: "bob's key" });
      const d = await delivery(h, endpoint, (x) => x.attempts >= 1, bob.token);
      const url = `/api/webhooks/${endpoint}/deliveries/${d.id as number}/attempts`;

      const own = await h.api("GET", url, bob.token);
      expectStatus(own, 200);
      expect(own.json().data[0]).toMatchObject({ attempt: 1, response_status: 418 });
      expectStatus(await h.api("GET", url, h.adminToken), 200);

      const theirs = await h.api("GET", url, carol.token);
      expect([theirs.statusCode, theirs.json().code]).toEqual([404, "NOT_FOUND"]);
      expect(theirs.body).not.toContain("teapot");
      // Carol's own endpoint does not open Bob's delivery either.
      const hers = await register(h, rxBob.url, carol.token);
      const through = await h.api(
        "GET",
        `/api/webhooks/${hers}/deliveries/${d.id as number}/attempts`,
        carol.token,
      );
      expect([through.statusCode, through.json().code]).toEqual([404, "NOT_FOUND"]);

      for (const [path, code] of [
        [`/api/webhooks/999999/deliveries/1/attempts`, "NOT_FOUND"],
        [`/api/webhooks/${endpoint}/deliveries/999999/attempts`, "NOT_FOUND"],
        [`${url}?limit=0`, "VALIDATION_ERROR"],
        [`${url}?after=-1`, "VALIDATION_ERROR"],
        [`${url}?extra=1`, "VALIDATION_ERROR"],
      ] as const) {
        const res = await h.api("GET", path, h.adminToken);
        expect([path, res.json().success, res.json().code]).toEqual([path, false, code]);
      }
    } finally {
      await rxBob.close();
    }
  });

  it("are refused to other users without self-service (403), as the rest of /api/webhooks", async () => {
    const h2 = await harness({ KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true" });
    try {
      const dave = await h2.user("attempts-dave");
      const res = await h2.api("GET", "/api/webhooks/1/deliveries/1/attempts", dave.token);
      expect([res.statusCode, res.json().code]).toEqual([403, "FORBIDDEN"]);
      expect(res.json().message).toMatch(/KEYGATE_SELF_SERVICE_KEYS/);
    } finally {
      await h2.close();
    }
  });
});

describe("attempt retention", () => {
  it("drops the attempts of finished deliveries past retention with them, and keeps a pending delivery's", async () => {
    const dir = mkdtempSync(join(tmpdir(), "keygate-attempts-"));
    const database = await freshDatabase(join(dir, "keygate.db"));
    const env = { KEYGATE_DATABASE_URL: database.url, KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true" };
    const done = await receiver();
    const down = await receiver();
    try {
      done.answer(() => (done.received.length === 1 ? { status: 500 } : { status: 204 }));
      down.answer(() => ({ status: 502, body: "still down" }));
      let h = await harness(env, {
        delivery: { ...FAST, retryScheduleMs: [100, 3_600_000] },
      });
      const ok = await register(h, done.url);
      const failing = await register(h, down.url);
      await h.kg.deliveries.start();
      await h.mint(h.adminToken, { name: "retention" });
      const finished = await delivery(h, ok, (x) => x.status === "succeeded");
      const pending = await delivery(h, failing, (x) => x.attempts === 2);
      expect(pending.status).toBe("pending");
      const count = async (id: unknown) =>
        Number(
          (
            await h.kg.database.db
              .selectFrom("webhook_attempts")
              .select((eb) => eb.fn.countAll<number>().as("n"))
              .where("delivery_id", "=", id as number)
              .executeTakeFirstOrThrow()
          ).n,
        );
      expect([await count(finished.id), await count(pending.id)]).toEqual([2, 2]);
      await h.close();

      // 31 days on (retention is 30): the start prunes, as a serving process does every hour.
      h = await harness(env, { now: () => new Date(Date.now() + 31 * 86_400_000) });
      try {
        expect([await count(finished.id), await count(pending.id)]).toEqual([0, 2]);
        const gone = await h.api(
          "GET",
          `/api/webhooks/${ok}/deliveries/${finished.id as number}/attempts`,
          h.adminToken,
        );
        expect([gone.statusCode, gone.json().code]).toEqual([404, "NOT_FOUND"]);
        const kept = await attempts(h, failing, pending.id as number);
        expect(kept.map((a) => [a.attempt, a.response_status, a.response_body])).toEqual([
          [1, 502, "still down"],
          [2, 502, "still down"],
        ]);
        // Removing an endpoint removes its deliveries' attempts too.
        expectStatus(await h.api("DELETE", `/api/webhooks/${failing}`, h.adminToken), 200);
        expect(await count(pending.id)).toBe(0);
      } finally {
        await h.close();
      }
    } finally {
      await done.close();
      await down.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
