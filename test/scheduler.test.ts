import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Scheduler, SPIKE_REFUSALS } from "../src/events/scheduler.js";
import { type Harness, harness } from "./helpers.js";

const DAY = 86_400_000;

describe("the scheduler's events", () => {
  let h: Harness;
  let at: number;
  let scheduler: Scheduler;
  const warnings: string[] = [];

  beforeEach(async () => {
    h = await harness();
    at = Date.now();
    scheduler = new Scheduler({
      database: h.kg.database,
      now: () => new Date(at),
      warn: (m) => warnings.push(m),
    });
  });
  afterEach(async () => {
    await scheduler.stop();
    await h.close();
    expect(warnings).toEqual([]);
  });

  /** The events in the outbox, oldest first, with their payloads read. */
  async function events(type?: string) {
    const rows = await h.kg.database.db
      .selectFrom("events")
      .select(["type", "payload", "environment", "owner_id"])
      .orderBy("id")
      .execute();
    return rows
      .filter((r) => type === undefined || r.type === type)
      .map((r) => ({ ...r, payload: JSON.parse(r.payload) }));
  }

  it("reminds 7 days and 1 day before a key expires, then says it expired, each once", async () => {
    const expiresAt = new Date(at + 3 * DAY).toISOString();
    const { id } = await h.mint(h.adminToken, { name: "billing", expires_at: expiresAt });
    const never = await h.mint(h.adminToken, { name: "forever" });

    expect(await scheduler.tick()).toMatchObject({ expiring: 1, expired: 0 });
    expect(await scheduler.tick()).toMatchObject({ expiring: 0, expired: 0 });
    let reminders = await events("key.expiring");
    expect(reminders).toHaveLength(1);
    expect(reminders[0]?.payload).toMatchObject({
      type: "key.expiring",
      data: { id, name: "billing", days_left: 7, expires_at: expiresAt, environment: "live" },
    });
    expect(JSON.stringify(reminders)).not.toMatch(/key_hash|pk_live_[0-9a-f]{32}/);

    at = Date.parse(expiresAt) - 12 * 3600_000;
    expect(await scheduler.tick()).toMatchObject({ expiring: 1 });
    expect(await scheduler.tick()).toMatchObject({ expiring: 0 });
    reminders = await events("key.expiring");
    expect(reminders.map((e) => e.payload.data.days_left)).toEqual([7, 1]);

    at = Date.parse(expiresAt) + 1000;
    expect(await scheduler.tick()).toMatchObject({ expired: 1 });
    expect(await scheduler.tick()).toMatchObject({ expired: 0, expiring: 0 });
    const expired = await events("key.expired");
    expect(expired).toHaveLength(1);
    expect(expired[0]?.payload.data).toMatchObject({ id, expired_at: expiresAt });
    // The key without an expiry was never mentioned.
    const scheduled = (await events()).filter((e) => /^key\.(expir|new_ip|refusals)/.test(e.type));
    expect(scheduled.some((e) => e.payload.data.id === never.id)).toBe(false);
  });

  it("sends only the nearer reminder to a key first seen within a day of its end, and reminds anew after a new expiry", async () => {
    const soon = new Date(at + 6 * 3600_000).toISOString();
    const { id } = await h.mint(h.adminToken, { name: "short", expires_at: soon });
    await scheduler.tick();
    expect((await events("key.expiring")).map((e) => e.payload.data.days_left)).toEqual([1]);
    // Extended by the owner: a new expiry, new reminders.
    const later = new Date(at + 5 * DAY).toISOString();
    const res = await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { expires_at: later });
    expect(res.statusCode).toBe(200);
    await scheduler.tick();
    expect((await events("key.expiring")).map((e) => e.payload.data.days_left)).toEqual([1, 7]);
  });

  it("leaves revoked keys and keys ending by a roll alone", async () => {
    const expiresAt = new Date(at + 2 * DAY).toISOString();
    const revoked = await h.mint(h.adminToken, { name: "gone", expires_at: expiresAt });
    expect((await h.api("DELETE", `/api/api-keys/${revoked.id}`, h.adminToken)).statusCode).toBe(
      200,
    );
    const rolled = await h.mint(h.adminToken, { name: "rolled" });
    const roll = await h.api("POST", `/api/api-keys/${rolled.id}/roll`, h.adminToken, {
      grace_period_hours: 24,
    });
    expect(roll.statusCode).toBe(201);
    expect(await scheduler.tick()).toMatchObject({ expiring: 0, expired: 0 });
  });

  it("announces a key's first call from an address it has not used in 30 days", async () => {
    const { key, id } = await h.mint(h.adminToken, { name: "sms" });
    const call = (ip: string) =>
      h.app.inject({
        method: "GET",
        url: "/api/v1/external/whoami",
        headers: { "x-api-key": key },
        remoteAddress: ip,
      });
    const signals = async () => {
      await h.kg.callLog.flush();
      return h.kg.signals.flush();
    };
    expect((await call("203.0.113.7")).statusCode).toBe(200);
    expect((await call("203.0.113.7")).statusCode).toBe(200);
    expect(await signals()).toEqual({ newIps: 1, spikes: 0 });
    expect((await call("203.0.113.7")).statusCode).toBe(200);
    expect((await call("198.51.100.9")).statusCode).toBe(200);
    expect(await signals()).toEqual({ newIps: 1, spikes: 0 });
    expect(await signals()).toEqual({ newIps: 0, spikes: 0 });
    const fresh = await events("key.new_ip");
    expect(fresh.map((e) => [e.payload.data.id, e.payload.data.ip])).toEqual([
      [id, "203.0.113.7"],
      [id, "198.51.100.9"],
    ]);
    expect(fresh[0]?.payload.data.previously_seen_at).toBeNull();

    // An address last used 31 days ago is new again; one used 29 days ago is not.
    const old = new Date(Date.now() - 31 * DAY).toISOString();
    const recent = new Date(Date.now() - 29 * DAY).toISOString();
    await h.kg.database.db
      .insertInto("api_key_ips")
      .values([
        { api_key_id: id, ip: "192.0.2.31", last_seen_at: old },
        { api_key_id: id, ip: "192.0.2.29", last_seen_at: recent },
      ])
      .execute();
    expect((await call("192.0.2.31")).statusCode).toBe(200);
    expect((await call("192.0.2.29")).statusCode).toBe(200);
    expect(await signals()).toEqual({ newIps: 1, spikes: 0 });
    expect((await events("key.new_ip")).at(-1)?.payload.data).toMatchObject({
      ip: "192.0.2.31",
      previously_seen_at: old,
    });
    const sightings = await h.kg.database.db
      .selectFrom("api_key_ips")
      .select(["ip", "last_seen_at"])
      .where("api_key_id", "=", id)
      .where("ip", "in", ["192.0.2.31", "192.0.2.29"])
      .execute();
    for (const s of sightings) expect(s.last_seen_at > recent).toBe(true);
  });

  it("announces a spike of refusals once, however many more follow", async () => {
    const { key, id } = await h.mint(h.adminToken, {
      name: "fenced",
      allowed_ips: ["10.1.2.3"],
    });
    const refused = () =>
      h.app.inject({
        method: "GET",
        url: "/api/v1/external/whoami",
        headers: { "x-api-key": key },
        remoteAddress: "203.0.113.50",
      });
    const signals = async () => {
      await h.kg.callLog.flush();
      return h.kg.signals.flush();
    };
    for (let i = 0; i < SPIKE_REFUSALS - 1; i++) expect((await refused()).statusCode).toBe(403);
    expect(await signals()).toEqual({ newIps: 0, spikes: 0 });
    for (let i = 0; i < 10; i++) await refused();
    const report = await signals();
    // The refusals may straddle a 5-minute boundary; only a window that crossed the line counts.
    const spikes = await events("key.refusals_spike");
    expect(spikes.length).toBe(report.spikes);
    if (spikes.length === 1) {
      expect(spikes[0]?.payload.data).toMatchObject({
        id,
        threshold: SPIKE_REFUSALS,
        window_s: 300,
      });
      expect(spikes[0]?.payload.data.refusals).toBeGreaterThanOrEqual(SPIKE_REFUSALS);
    }
    for (let i = 0; i < SPIKE_REFUSALS; i++) await refused();
    await signals();
    expect((await events("key.refusals_spike")).length).toBe(1);
  });

  it("keeps a busy log's addresses in memory: an hour's calls from known addresses cost no query", async () => {
    const { id } = await h.mint(h.adminToken, { name: "busy" });
    const row = (ip: string) => ({
      apiKeyId: id,
      timestamp: new Date().toISOString(),
      method: "GET",
      path: "/api/v1/external/whoami",
      statusCode: 200,
      ip,
      latencyMs: 1,
      userAgent: null,
      errorCode: null,
      requestId: null,
      message: null,
    });
    for (let i = 0; i < 20_000; i++) h.kg.callLog.push(row(i % 2 ? "203.0.113.1" : "203.0.113.2"));
    await h.kg.callLog.flush();
    expect(await h.kg.signals.flush()).toEqual({ newIps: 2, spikes: 0 });
    // Known now: the next batch is looked up in memory and leaves nothing to flush.
    for (let i = 0; i < 5_000; i++) h.kg.callLog.push(row("203.0.113.1"));
    await h.kg.callLog.flush();
    const transaction = vi.spyOn(h.kg.database.db, "transaction");
    expect(await h.kg.signals.flush()).toEqual({ newIps: 0, spikes: 0 });
    expect(transaction).not.toHaveBeenCalled();
    transaction.mockRestore();
  });

  it("raises a console alert for a new address, linking to the key", async () => {
    const { key, id } = await h.mint(h.adminToken, { name: "alerted" });
    const res = await h.app.inject({
      method: "GET",
      url: "/api/v1/external/whoami",
      headers: { "x-api-key": key },
      remoteAddress: "192.0.2.44",
    });
    expect(res.statusCode).toBe(200);
    await h.kg.callLog.flush();
    expect(await h.kg.signals.flush()).toMatchObject({ newIps: 1 });
    await expect
      .poll(async () => {
        const list = await h.api("GET", "/api/alerts", h.adminToken);
        return (list.json().data as { kind: string; link: string; message: string }[]).filter(
          (a) => a.kind === "key.new_ip",
        );
      })
      .toEqual([
        expect.objectContaining({
          link: `/keys/${id}`,
          message: expect.stringContaining("192.0.2.44"),
        }),
      ]);
  });

  it("commits nothing of a tick that fails, and repeats it on the next", async () => {
    const expiresAt = new Date(at + 2 * DAY).toISOString();
    await h.mint(h.adminToken, { name: "once", expires_at: expiresAt });
    const broken = new Scheduler({
      database: {
        ...h.kg.database,
        db: new Proxy(h.kg.database.db, {
          get(target, prop, receiver) {
            if (prop !== "transaction") return Reflect.get(target, prop, receiver);
            return () => ({
              execute: (fn: (trx: unknown) => Promise<unknown>) =>
                target.transaction().execute(async (trx) => {
                  await fn(trx);
                  throw new Error("the database went away");
                }),
            });
          },
        }),
      },
      now: () => new Date(at),
      warn: () => {},
    });
    await expect(broken.tick()).rejects.toThrow(/went away/);
    expect((await events()).filter((e) => e.type.startsWith("key.expir"))).toEqual([]);
    expect(await scheduler.tick()).toMatchObject({ expiring: 1 });
  });
});
