import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emitEvent } from "../src/events/outbox.js";
import { expectStatus, type Harness, harness } from "./helpers.js";
import { receiver, until } from "./webhook-receiver.js";

type Rx = Awaited<ReturnType<typeof receiver>>;
const FAST = { pollMs: 20, retryScheduleMs: [100, 300, 600, 1200, 2400, 4800], jitter: 0 };

/** The events a receiver got, each verified with the endpoint's secret by standardwebhooks itself. */
function verified(rx: Rx, secret: string) {
  const wh = new Webhook(secret);
  return rx.received.map((r) => ({
    id: r.headers["webhook-id"] as string,
    event: wh.verify(r.body, r.headers as Record<string, string>) as {
      type: string;
      timestamp: string;
      data: Record<string, unknown>;
    },
  }));
}

async function register(h: Harness, body: Record<string, unknown>, token = h.adminToken) {
  const res = await h.api("POST", "/api/webhooks", token, body);
  expectStatus(res, 201);
  return res.json() as { data: { id: number } & Record<string, unknown>; secret: string };
}

describe("webhook endpoints", () => {
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

  it("shows the signing secret once, at creation and at rotation, never in reads", async () => {
    const made = await register(h, { url: rx.url, events: ["key.created"], description: "ops" });
    expect(made.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(made.data).toMatchObject({ url: rx.url, events: ["key.created"], enabled: true });
    const id = made.data.id;
    const read = await h.api("GET", `/api/webhooks/${id}`, h.adminToken);
    expectStatus(read, 200);
    const list = await h.api("GET", "/api/webhooks", h.adminToken);
    for (const body of [read.body, list.body]) {
      expect(body).not.toContain(made.secret);
      expect(body).not.toContain("whsec_");
      expect(body).not.toContain('secret":');
    }
    const rotated = await h.api("POST", `/api/webhooks/${id}/rotate-secret`, h.adminToken);
    expectStatus(rotated, 200);
    const next = rotated.json().secret as string;
    expect(next).toMatch(/^whsec_/);
    expect(next).not.toBe(made.secret);
    expect(rotated.json().data.previous_secret_until).not.toBeNull();
    const again = await h.api("GET", `/api/webhooks/${id}`, h.adminToken);
    expect(again.body).not.toContain(next);

    // During the overlap both secrets sign each message.
    const before = rx.received.length;
    await h.mint(h.adminToken, { name: "after rotation" });
    await until(() => rx.received.length > before, "delivery after rotation");
    const msg = rx.received.at(-1)!;
    expect(String(msg.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    for (const s of [made.secret, next])
      expect(() =>
        new Webhook(s).verify(msg.body, msg.headers as Record<string, string>),
      ).not.toThrow();
    expectStatus(await h.api("DELETE", `/api/webhooks/${id}`, h.adminToken), 200);
    expectStatus(await h.api("GET", `/api/webhooks/${id}`, h.adminToken), 404);
  });

  it("answers every client error in the envelope, never a 500", async () => {
    const cases: [string, string, unknown, number, string][] = [
      ["POST", "/api/webhooks", {}, 400, "VALIDATION_ERROR"],
      ["POST", "/api/webhooks", { url: "ftp://x.example/" }, 400, "VALIDATION_ERROR"],
      ["POST", "/api/webhooks", { url: "https://u:p@x.example/" }, 400, "VALIDATION_ERROR"],
      ["POST", "/api/webhooks", { url: rx.url, events: ["key.nope"] }, 400, "VALIDATION_ERROR"],
      ["POST", "/api/webhooks", { url: rx.url, events: [] }, 400, "VALIDATION_ERROR"],
      [
        "POST",
        "/api/webhooks",
        { url: rx.url, events: ["*", "key.created"] },
        400,
        "VALIDATION_ERROR",
      ],
      ["POST", "/api/webhooks", { url: rx.url, extra: 1 }, 400, "VALIDATION_ERROR"],
      [
        "POST",
        "/api/webhooks",
        { url: `https://x.example/${"a".repeat(2100)}` },
        400,
        "VALIDATION_ERROR",
      ],
      ["POST", "/api/webhooks", { url: "https://nothing.invalid/" }, 400, "VALIDATION_ERROR"],
      ["GET", "/api/webhooks/abc", undefined, 400, "VALIDATION_ERROR"],
      ["GET", "/api/webhooks/999999", undefined, 404, "NOT_FOUND"],
      ["PUT", "/api/webhooks/999999", { enabled: false }, 404, "NOT_FOUND"],
      ["POST", "/api/webhooks/999999/rotate-secret", undefined, 404, "NOT_FOUND"],
      ["GET", "/api/webhooks/999999/deliveries", undefined, 404, "NOT_FOUND"],
      ["POST", "/api/webhooks/999999/deliveries/1/redeliver", undefined, 404, "NOT_FOUND"],
    ];
    for (const [method, url, body, status, code] of cases) {
      const res = await h.api(method, url, h.adminToken, body);
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({ url, status, code });
      expect(res.json().success).toBe(false);
      expect(typeof res.json().message).toBe("string");
    }
    // One user's endpoints are bounded.
    const carl = await h.user("hookcarl");
    for (let i = 0; i < 50; i++) await register(h, { url: `${rx.url}/${i}` }, carl.token);
    const over = await h.api("POST", "/api/webhooks", carl.token, { url: rx.url });
    expect([over.statusCode, over.json().code]).toEqual([409, "CONFLICT"]);
    expect(over.json().message).toMatch(/50 webhook endpoints/);
    const made = await register(h, { url: rx.url, events: ["subscriber.created"] });
    const res = await h.api(
      "POST",
      `/api/webhooks/${made.data.id}/deliveries/123456/redeliver`,
      h.adminToken,
    );
    expect([res.statusCode, res.json().code]).toEqual([404, "NOT_FOUND"]);
    expectStatus(
      await h.api("PUT", `/api/webhooks/${made.data.id}`, h.adminToken, { enabled: false }),
      200,
    );
    const test = await h.api("POST", `/api/webhooks/${made.data.id}/test`, h.adminToken);
    expect([test.statusCode, test.json().code]).toEqual([409, "CONFLICT"]);
    expectStatus(await h.api("DELETE", `/api/webhooks/${made.data.id}`, h.adminToken), 200);
  });

  it("lets a key owner see and receive only its own, with self-service on", async () => {
    const bob = await h.user("hookbob");
    const carol = await h.user("hookcarol");
    const rxBob = await receiver();
    try {
      const mine = await register(h, { url: rxBob.url }, bob.token);
      expect(mine.data.owner_id).toBe(bob.id);
      const theirs = await h.api("GET", `/api/webhooks/${mine.data.id}`, carol.token);
      expect([theirs.statusCode, theirs.json().code]).toEqual([404, "NOT_FOUND"]);
      expect((await h.api("GET", "/api/webhooks", carol.token)).json().data).toEqual([]);
      const adminSees = (await h.api("GET", "/api/webhooks", h.adminToken)).json().data;
      expect(adminSees.map((w: { id: number }) => w.id)).toContain(mine.data.id);

      const svc = await h.service("Hooks");
      for (const [token, username] of [
        [carol.token, "carol-sub"],
        [bob.token, "bob-sub"],
      ] as const)
        expectStatus(
          await h.api("POST", "/api/subscribers", token, {
            username,
            password: "pass1234",
            service_id: svc,
          }),
          201,
        );
      await h.mint(bob.token, { name: "bob key" });
      await until(() => rxBob.received.length >= 2, "bob's events");
      await new Promise((r) => setTimeout(r, 200));
      const got = verified(rxBob, mine.secret).map((m) => m.event);
      expect(got.map((e) => e.type).sort()).toEqual(["key.created", "subscriber.created"]);
      expect(got.every((e) => e.data.owner_id === bob.id)).toBe(true);
    } finally {
      await rxBob.close();
    }
  });

  it("delivers every change's event, signed, with no key material in it", async () => {
    const local = await receiver();
    try {
      const made = await register(h, { url: local.url });
      const minted = await h.mint(h.adminToken, { name: "evented" });
      expectStatus(
        await h.api("PUT", `/api/api-keys/${minted.id}`, h.adminToken, { name: "renamed" }),
        200,
      );
      const rolled = await h.api("POST", `/api/api-keys/${minted.id}/roll`, h.adminToken, {});
      expectStatus(rolled, 201);
      const newKey = rolled.json().key as string;
      expectStatus(
        await h.api("DELETE", `/api/api-keys/${rolled.json().data.id}`, h.adminToken),
        200,
      );
      const svc = await h.service("Evented");
      const sub = await h.api("POST", "/api/subscribers", h.adminToken, {
        username: "evented-sub",
        password: "pass1234",
        service_id: svc,
      });
      const sid = sub.json().data.id;
      expectStatus(
        await h.api("PUT", `/api/subscribers/${sid}`, h.adminToken, { full_name: "E" }),
        200,
      );
      expectStatus(await h.api("POST", `/api/subscribers/${sid}/suspend`, h.adminToken), 200);
      expectStatus(await h.api("POST", `/api/subscribers/${sid}/activate`, h.adminToken), 200);
      const tx = await h.api("POST", "/api/transactions", h.adminToken, {
        subscriber_id: sid,
        amount: "5.00",
        reference: "evt-1",
      });
      expectStatus(tx, 201);
      // A replayed reference records nothing, and emits nothing.
      expectStatus(
        await h.api("POST", "/api/transactions", h.adminToken, {
          subscriber_id: sid,
          amount: "5.00",
          reference: "evt-1",
        }),
        200,
      );
      expectStatus(await h.api("DELETE", `/api/subscribers/${sid}`, h.adminToken), 200);
      const types = [
        "key.created",
        "key.updated",
        "key.rolled",
        "key.revoked",
        "subscriber.created",
        "subscriber.updated",
        "subscriber.suspended",
        "subscriber.activated",
        "transaction.created",
        "subscriber.deleted",
      ];
      await until(() => local.received.length >= types.length, "every event", 10_000);
      await new Promise((r) => setTimeout(r, 200));
      const got = verified(local, made.secret);
      expect(got.map((m) => m.event.type).sort()).toEqual([...types].sort());
      expect(new Set(got.map((m) => m.id)).size).toBe(types.length);
      for (const r of local.received) {
        expect(r.body).not.toContain(minted.key);
        expect(r.body).not.toContain(newKey);
        expect(r.body).not.toMatch(/hash|password|secret/i);
        expect(r.headers["content-type"]).toBe("application/json");
      }
      const rolledEvent = got.find((m) => m.event.type === "key.rolled")!.event;
      expect(rolledEvent.data).toMatchObject({ id: minted.id, name: "renamed" });
      expect((rolledEvent.data.replaced_by as { id: number }).id).toBe(rolled.json().data.id);

      const log = await h.api("GET", `/api/webhooks/${made.data.id}/deliveries`, h.adminToken);
      expectStatus(log, 200);
      expect(log.json().data).toHaveLength(types.length);
      expect(log.json().data[0]).toMatchObject({
        status: "succeeded",
        attempts: 1,
        response_status: 200,
        response_body: "ok",
      });
      expect(log.json().data[0].latency_ms).toBeGreaterThanOrEqual(0);

      // By hand: the same message again, with its webhook-id.
      const first = log.json().data.at(-1);
      const again = await h.api(
        "POST",
        `/api/webhooks/${made.data.id}/deliveries/${first.id}/redeliver`,
        h.adminToken,
      );
      expectStatus(again, 200);
      await until(() => local.received.length > types.length, "redelivery");
      expect(local.received.at(-1)!.headers["webhook-id"]).toBe(first.message_id);

      const ping = await h.api("POST", `/api/webhooks/${made.data.id}/test`, h.adminToken);
      expectStatus(ping, 202);
      await until(() => local.received.some((r) => r.body.includes("webhook.test")), "test ping");
      await h.api("DELETE", `/api/webhooks/${made.data.id}`, h.adminToken);
    } finally {
      await local.close();
    }
  });

  it("does not hold one endpoint's deliveries behind another's slow answers", async () => {
    const slow = await receiver();
    const fast = await receiver();
    slow.answer(() => ({ status: 200, delayMs: 3_000 }));
    try {
      const a = await register(h, { url: slow.url, events: ["subscriber.created"] });
      const b = await register(h, { url: fast.url, events: ["subscriber.created"] });
      const svc = await h.service("Slow");
      const make = (username: string) =>
        h.api("POST", "/api/subscribers", h.adminToken, {
          username,
          password: "pass1234",
          service_id: svc,
        });
      expectStatus(await make("slow-1"), 201);
      await until(
        () => slow.received.length === 1 && fast.received.length === 1,
        "both got the first",
      );
      const second = Date.now();
      expectStatus(await make("slow-2"), 201);
      await until(() => fast.received.length === 2, "the fast endpoint's second", 2_000);
      // Well before the slow endpoint has answered the first.
      expect(Date.now() - second).toBeLessThan(2_000);
      for (const w of [a, b]) await h.api("DELETE", `/api/webhooks/${w.data.id}`, h.adminToken);
    } finally {
      await slow.close();
      await fast.close();
    }
  });

  it("retries while the receiver is down and loses nothing once it is back", async () => {
    const local = await receiver();
    const made = await register(h, { url: local.url, events: ["subscriber.created"] });
    await local.close();
    const svc = await h.service("Outage");
    const N = 20;
    const created: Record<string, number> = {};
    for (let i = 0; i < N; i++) {
      const res = await h.api("POST", "/api/subscribers", h.adminToken, {
        username: `outage-${i}`,
        password: "pass1234",
        service_id: svc,
      });
      expectStatus(res, 201);
      created[`outage-${i}`] = Date.now();
    }
    await until(async () => {
      const log = (
        await h.api("GET", `/api/webhooks/${made.data.id}/deliveries`, h.adminToken)
      ).json().data;
      return log.length === N && log.every((d: { attempts: number }) => d.attempts >= 2);
    }, "two failed attempts each");
    const log = (
      await h.api("GET", `/api/webhooks/${made.data.id}/deliveries`, h.adminToken)
    ).json().data;
    expect(log[0]).toMatchObject({ status: "pending", response_status: null });
    expect(log[0].error).toMatch(/ECONNREFUSED/);
    const failing = (await h.api("GET", `/api/webhooks/${made.data.id}`, h.adminToken)).json().data;
    expect(failing.failing_since).not.toBeNull();
    const back = Date.now();
    await local.open();
    await until(
      () => new Set(local.received.map((r) => r.headers["webhook-id"])).size >= N,
      "all after outage",
    );
    const got = verified(local, made.secret);
    const names = got.map((m) => m.event.data.username as string);
    expect(new Set(names).size).toBe(N);
    const delays = local.received.map((r) => r.at - back);
    // Reported in the test output: how long after the receiver came back the last one arrived.
    console.info(
      `outage: ${N} events, ${local.received.length - N} duplicates, last delivered ${Math.max(...delays)} ms after the receiver was back`,
    );
    expect(
      (await h.api("GET", `/api/webhooks/${made.data.id}`, h.adminToken)).json().data.failing_since,
    ).toBeNull();
    await local.close();
    await h.api("DELETE", `/api/webhooks/${made.data.id}`, h.adminToken);
  });
});

describe("the outbox", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => h?.close());

  const count = async (table: "events" | "api_keys" | "subscribers") =>
    Number(
      (
        await h.kg.database.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as("n"))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it("writes one event per change, and none for a change refused", async () => {
    const before = await count("events");
    const minted = await h.mint(h.adminToken, { name: "one" });
    expect(await count("events")).toBe(before + 1);
    // Revoking twice changes the key once: one event.
    await h.api("DELETE", `/api/api-keys/${minted.id}`, h.adminToken);
    await h.api("DELETE", `/api/api-keys/${minted.id}`, h.adminToken);
    expect(await count("events")).toBe(before + 2);
    const svc = await h.service("Atomic");
    const body = { username: "atomic", password: "pass1234", service_id: svc };
    expectStatus(await h.api("POST", "/api/subscribers", h.adminToken, body), 201);
    const dup = await h.api("POST", "/api/subscribers", h.adminToken, body);
    expect([dup.statusCode, dup.json().code]).toEqual([409, "CONFLICT"]);
    expect(await count("events")).toBe(before + 3);
  });

  it("rolls the change back when its event cannot be written, and the event with a failed change", async () => {
    const keys = await count("api_keys");
    const events = await count("events");
    const row = {
      name: "doomed",
      description: null,
      keyHash: "0".repeat(64),
      keyPrefix: "pk_live_0000",
      scopes: "read" as const,
      permissions: ["*:read"],
      environment: "live" as const,
      ownerId: 1,
      allowedIps: null,
      rateLimit: null,
      expiresAt: null,
      createdAt: new Date().toISOString(),
      createdBy: 1,
      updatedAt: new Date().toISOString(),
      rolledFromId: null,
      signing: "off" as const,
      signingSecret: null,
    };
    // The event's data cannot be serialised: the key's insert is undone with it.
    await expect(
      h.kg.keyRepo.insert(row, (k) => ({
        type: "key.created",
        environment: "live",
        ownerId: k.ownerId,
        data: { n: 1n },
      })),
    ).rejects.toThrow();
    expect(await count("api_keys")).toBe(keys);
    expect(await count("events")).toBe(events);
    // The change fails after its event was written: the event is undone with it.
    await expect(
      h.kg.database.db.transaction().execute(async (trx) => {
        await emitEvent(
          trx,
          { type: "key.created", environment: "live", ownerId: 1, data: {} },
          new Date().toISOString(),
        );
        // The change itself is refused (a primary key taken): the event goes with it.
        await trx.insertInto("settings").values({ name: "jwt_secret", value: "x" }).execute();
      }),
    ).rejects.toThrow();
    expect(await count("events")).toBe(events);
  });
});

describe("webhook targets on private addresses", () => {
  let h: Harness;
  let rx: Rx;
  beforeAll(async () => {
    h = await harness({}, { delivery: FAST });
    rx = await receiver();
    await h.kg.deliveries.start();
  });
  afterAll(async () => {
    await h?.close();
    await rx?.close();
  });

  it("refuses them at registration", async () => {
    for (const url of [
      rx.url,
      `http://localhost:${rx.port}/`,
      "http://[::1]/",
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00:ec2::254]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:a00:1]/",
      "http://10.0.0.1/",
      "http://192.168.1.1/",
      "http://100.64.0.1/",
      "http://0.0.0.0/",
      "http://2130706433/",
    ]) {
      const res = await h.api("POST", "/api/webhooks", h.adminToken, { url });
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({
        url,
        status: 400,
        code: "VALIDATION_ERROR",
      });
      expect(res.json().message).toMatch(/refused.*KEYGATE_WEBHOOK_ALLOW_PRIVATE/);
    }
  });

  it("refuses them at delivery, after resolving the name", async () => {
    // As if the name had resolved to a public address when it was registered (DNS rebinding).
    const now = new Date().toISOString();
    const { id } = await h.kg.database.db
      .insertInto("webhook_endpoints")
      .values({
        owner_id: 1,
        environment: "live",
        url: `http://localhost:${rx.port}/hook`,
        description: null,
        events: "*",
        enabled: 1,
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        created_at: now,
        updated_at: now,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    await h.mint(h.adminToken, { name: "rebound" });
    const log = await until(async () => {
      const d = (await h.api("GET", `/api/webhooks/${id}/deliveries`, h.adminToken)).json().data;
      return d.length === 1 && d[0].attempts >= 1 ? d : null;
    }, "a refused attempt");
    expect(log[0].error).toMatch(
      /refused: localhost resolves to 127\.0\.0\.1 is a loopback address/,
    );
    expect(rx.received).toHaveLength(0);
  });
});

describe("an endpoint that keeps failing", () => {
  let h: Harness;
  let rx: Rx;
  beforeAll(async () => {
    h = await harness(
      { KEYGATE_WEBHOOK_ALLOW_PRIVATE: "true" },
      {
        delivery: {
          ...FAST,
          retryScheduleMs: [50, 50, 50, 50, 50, 50, 50, 50, 50, 50],
          disableAfterMs: 400,
        },
      },
    );
    rx = await receiver();
    await h.kg.deliveries.start();
  });
  afterAll(async () => {
    await h?.close();
    await rx?.close();
  });

  it("is disabled with the reason stored and shown; a redirect is a failure that says so", async () => {
    rx.answer(() => ({ status: 302, headers: { location: "https://elsewhere.example/" } }));
    const made = await register(h, { url: rx.url });
    await h.mint(h.adminToken, { name: "failing" });
    const w = await until(async () => {
      const d = (await h.api("GET", `/api/webhooks/${made.data.id}`, h.adminToken)).json().data;
      return d.enabled ? null : d;
    }, "disabled");
    expect(w.disabled_reason).toMatch(
      /disabled automatically .* every delivery failed since .*redirect/,
    );
    expect(h.kg.deliveries.counts.disabled).toBe(1);
    const log = (
      await h.api("GET", `/api/webhooks/${made.data.id}/deliveries`, h.adminToken)
    ).json().data;
    expect(log[0].response_status).toBe(302);
    expect(log[0].error).toMatch(/redirects are not followed/);
    const redeliver = await h.api(
      "POST",
      `/api/webhooks/${made.data.id}/deliveries/${log[0].id}/redeliver`,
      h.adminToken,
    );
    expect([redeliver.statusCode, redeliver.json().code]).toEqual([409, "CONFLICT"]);
    // Enabled again: a fresh start, and the pending delivery goes out.
    rx.answer(() => ({ status: 204 }));
    const on = await h.api("PUT", `/api/webhooks/${made.data.id}`, h.adminToken, { enabled: true });
    expect(on.json().data).toMatchObject({
      enabled: true,
      disabled_reason: null,
      failing_since: null,
    });
    await until(
      () => rx.received.some((r) => r.headers["webhook-id"] && true) && rx.received.length > 0,
      "after enabling",
    );
  });

  it("gives a test message one attempt: a failure is final, and counted as given up", async () => {
    rx.answer(() => ({ status: 500, body: `\u0000${"x".repeat(5000)}` }));
    const made = await register(h, { url: rx.url, events: ["transaction.created"] });
    const before = h.kg.deliveries.counts.gave_up;
    const test = await h.api("POST", `/api/webhooks/${made.data.id}/test`, h.adminToken);
    expectStatus(test, 202);
    const d = await until(async () => {
      const log = (
        await h.api("GET", `/api/webhooks/${made.data.id}/deliveries`, h.adminToken)
      ).json().data;
      return log[0]?.status === "failed" ? log[0] : null;
    }, "a failed test message");
    expect(d).toMatchObject({ event_type: "webhook.test", attempts: 1, response_status: 500 });
    expect(d.error).toBe("answered 500");
    expect(d.response_body).toHaveLength(1024);
    expect(h.kg.deliveries.counts.gave_up).toBe(before + 1);
  });
});
