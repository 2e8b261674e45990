import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectStatus, type Harness, harness } from "./helpers.js";

let h: Harness;
let serviceId: number;
let adminKey: string;

beforeAll(async () => {
  h = await harness({ KEYGATE_IP_RATE_LIMIT: "0" });
  serviceId = await h.service();
  adminKey = (await h.mint(h.adminToken, { scopes: "delete" })).key;
});
afterAll(() => h.close());

let seq = 0;
const uname = (p: string) => `${p}${++seq}`;

describe("subscribers", () => {
  it("creates with a generated password shown once, never again", async () => {
    const res = await h.ext("POST", "/subscribers", adminKey, {
      username: uname("alice"),
      password: "auto-generate",
      service_id: serviceId,
      full_name: "Alice Ø'Brien",
      email: "alice@example.com",
      phone: "+1 555-0100",
      expiry_date: "2027-01-31",
    });
    expectStatus(res, 201);
    const data = res.json().data;
    expect(data.password).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(data).toMatchObject({
      status: "active",
      service_id: serviceId,
      owner_id: 1,
      full_name: "Alice Ø'Brien",
      expiry_date: "2027-01-31",
    });
    const again = await h.ext("GET", `/subscribers/${data.id}`, adminKey);
    expect(again.json().data).not.toHaveProperty("password");
    expect(again.body).not.toContain(data.password);
    const row = await h.kg.database.db
      .selectFrom("subscribers")
      .select("password_hash")
      .where("id", "=", data.id)
      .executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(row.password_hash).not.toContain(data.password);
  });

  it("keeps a given password out of every response", async () => {
    const res = await h.ext("POST", "/subscribers", adminKey, {
      username: uname("pw"),
      password: "s3cret-given",
      service_id: serviceId,
    });
    expectStatus(res, 201);
    expect(res.body).not.toContain("s3cret-given");
    expect(res.json().data).not.toHaveProperty("password");
  });

  it("keeps usernames unique among live subscribers, freeing them on delete", async () => {
    const username = uname("dup");
    const first = await h.ext("POST", "/subscribers", adminKey, {
      username,
      password: "pass1234",
      service_id: serviceId,
    });
    expectStatus(first, 201);
    const clash = await h.ext("POST", "/subscribers", adminKey, {
      username,
      password: "pass1234",
      service_id: serviceId,
    });
    expectStatus(clash, 409);
    expect(clash.json().error).toMatchObject({
      code: "CONFLICT",
      message: `subscriber username "${username}" is already taken`,
    });
    expectStatus(await h.ext("DELETE", `/subscribers/${first.json().data.id}`, adminKey), 200);
    expectStatus(await h.ext("GET", `/subscribers/${first.json().data.id}`, adminKey), 404);
    expectStatus(
      await h.ext("POST", "/subscribers", adminKey, {
        username,
        password: "pass1234",
        service_id: serviceId,
      }),
      201,
    );
  });

  it("updates any subset, suspends and activates, finds by username", async () => {
    const username = uname("bob");
    const id = (
      await h.ext("POST", "/subscribers", adminKey, {
        username,
        password: "pass1234",
        service_id: serviceId,
      })
    ).json().data.id;
    const put = await h.ext("PUT", `/subscribers/${id}`, adminKey, {
      full_name: "Bob",
      phone: null,
    });
    expectStatus(put, 200);
    expect(put.json().data).toMatchObject({ full_name: "Bob", phone: null, username });
    expect((await h.ext("POST", `/subscribers/${id}/suspend`, adminKey)).json().data.status).toBe(
      "suspended",
    );
    expect((await h.ext("POST", `/subscribers/${id}/activate`, adminKey)).json().data.status).toBe(
      "active",
    );
    expect(
      (await h.ext("GET", `/subscribers/by-username/${username}`, adminKey)).json().data.id,
    ).toBe(id);
    expectStatus(await h.ext("GET", "/subscribers/by-username/nobody-here", adminKey), 404);
    const bad = await h.ext("PUT", `/subscribers/${id}`, adminKey, {
      service_id: 9999,
      expiry_date: "2026-02-30",
      status: "gone",
    });
    expectStatus(bad, 400);
    const unchanged = await h.ext("GET", `/subscribers/${id}`, adminKey);
    expect(unchanged.json().data).toMatchObject({
      full_name: "Bob",
      service_id: serviceId,
      status: "active",
    });
  });

  it("filters, searches and paginates with meta", async () => {
    const tag = uname("pg");
    for (let i = 0; i < 7; i++) {
      await h.ext("POST", "/subscribers", adminKey, {
        username: `${tag}-${i}`,
        password: "pass1234",
        service_id: serviceId,
        status: i < 2 ? "suspended" : "active",
      });
    }
    const page = await h.ext("GET", `/subscribers?search=${tag}&per_page=3&page=2`, adminKey);
    expectStatus(page, 200);
    expect(page.json().meta).toEqual({ page: 2, per_page: 3, total: 7 });
    expect(page.json().data.map((s: { username: string }) => s.username)).toEqual([
      `${tag}-3`,
      `${tag}-4`,
      `${tag}-5`,
    ]);
    const suspended = await h.ext("GET", `/subscribers?search=${tag}&status=suspended`, adminKey);
    expect(suspended.json().meta.total).toBe(2);
    expectStatus(await h.ext("GET", "/subscribers?per_page=501", adminKey), 400);
    expectStatus(await h.ext("GET", "/subscribers?status=deleted", adminKey), 400);
    expectStatus(await h.ext("GET", "/subscribers?page=0", adminKey), 400);
  });

  it("records usage on the JWT surface and reads daily totals on both", async () => {
    const id = (
      await h.ext("POST", "/subscribers", adminKey, {
        username: uname("use"),
        password: "pass1234",
        service_id: serviceId,
      })
    ).json().data.id;
    for (const rec of [
      { date: "2026-05-01", bytes_in: 100, bytes_out: 50, session_seconds: 60 },
      { date: "2026-05-01", bytes_in: 1, bytes_out: 2, session_seconds: 3 },
      { date: "2026-05-03", bytes_in: 5_000_000_000, bytes_out: 0, session_seconds: 10 },
    ]) {
      expectStatus(await h.api("POST", `/api/subscribers/${id}/usage`, h.adminToken, rec), 201);
    }
    const res = await h.ext(
      "GET",
      `/subscribers/${id}/usage?from=2026-05-01&to=2026-05-31`,
      adminKey,
    );
    expectStatus(res, 200);
    expect(res.json().data).toEqual({
      subscriber_id: id,
      from: "2026-05-01",
      to: "2026-05-31",
      days: [
        { date: "2026-05-01", bytes_in: 101, bytes_out: 52, session_seconds: 63 },
        { date: "2026-05-03", bytes_in: 5_000_000_000, bytes_out: 0, session_seconds: 10 },
      ],
      totals: { bytes_in: 5_000_000_101, bytes_out: 52, session_seconds: 73 },
    });
    expectStatus(
      await h.ext("GET", `/subscribers/${id}/usage?from=2026-05-31&to=2026-05-01`, adminKey),
      400,
    );
    expectStatus(await h.ext("POST", `/subscribers/${id}/usage`, adminKey, { bytes_in: 1 }), 405);
    expectStatus(
      await h.api("POST", `/api/subscribers/${id}/usage`, h.adminToken, { bytes_in: -1 }),
      400,
    );
  });
});

describe("transactions", () => {
  let subscriber: number;
  beforeAll(async () => {
    subscriber = (
      await h.ext("POST", "/subscribers", adminKey, {
        username: uname("payer"),
        password: "pass1234",
        service_id: serviceId,
      })
    ).json().data.id;
  });

  it("stores amounts in minor units and refuses bad amounts", async () => {
    const res = await h.ext("POST", "/transactions", adminKey, {
      subscriber_id: subscriber,
      amount: 10.1,
      currency: "EUR",
    });
    expectStatus(res, 201);
    expect(res.json().data).toMatchObject({
      amount: 10.1,
      currency: "EUR",
      type: "payment",
      api_key_id: expect.any(Number),
    });
    const row = await h.kg.database.db
      .selectFrom("transactions")
      .select("amount_minor")
      .where("id", "=", res.json().data.id)
      .executeTakeFirstOrThrow();
    expect(Number(row.amount_minor)).toBe(1010);
    for (const amount of [0, -5, 1.005, "12.345", "abc", "1e3", "", Number.MAX_SAFE_INTEGER]) {
      const bad = await h.ext("POST", "/transactions", adminKey, {
        subscriber_id: subscriber,
        amount,
      });
      expectStatus(bad, 400);
      expect(bad.json().error.details[0].field).toBe("amount");
    }
    const noSub = await h.ext("POST", "/transactions", adminKey, {
      subscriber_id: 99999,
      amount: 1,
    });
    expectStatus(noSub, 400);
    expect(noSub.json().error.details).toEqual([
      {
        field: "subscriber_id",
        message: "names subscriber 99999, and there is none visible to you",
      },
    ]);
  });

  it("returns the first transaction for a repeated reference, even under concurrency", async () => {
    const body = { subscriber_id: subscriber, amount: "25.50", reference: `INV-${uname("r")}` };
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => h.ext("POST", "/transactions", adminKey, body)),
    );
    const statuses = responses.map((r) => r.statusCode).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    const ids = new Set(responses.map((r) => r.json().data.id));
    expect(ids.size).toBe(1);
    const rows = await h.kg.database.db
      .selectFrom("transactions")
      .selectAll()
      .where("reference", "=", body.reference)
      .execute();
    expect(rows).toHaveLength(1);
    const different = await h.ext("POST", "/transactions", adminKey, { ...body, amount: "99.00" });
    expectStatus(different, 409);
    expect(different.json().error.message).toContain("different details");
  });

  it("filters by subscriber and date with pagination", async () => {
    const res = await h.ext(
      "GET",
      `/transactions?subscriber_id=${subscriber}&from=2020-01-01&to=2099-12-31&per_page=1`,
      adminKey,
    );
    expectStatus(res, 200);
    expect(res.json().data).toHaveLength(1);
    expect(res.json().meta.total).toBeGreaterThanOrEqual(2);
    const none = await h.ext(
      "GET",
      `/transactions?subscriber_id=${subscriber}&to=2020-01-01`,
      adminKey,
    );
    expect(none.json().meta.total).toBe(0);
    expectStatus(await h.ext("GET", "/transactions?from=yesterday", adminKey), 400);
  });
});

describe("services and NAS", () => {
  it("lets everyone read services and only admins change them", async () => {
    const r = await h.user(uname("svc-res"));
    expectStatus(await h.api("GET", "/api/services", r.token), 200);
    expectStatus(await h.api("POST", "/api/services", r.token, { name: "Mine" }), 403);
    const id = await h.service("Temp");
    const put = await h.api("PUT", `/api/services/${id}`, h.adminToken, {
      price: 5,
      is_active: false,
    });
    expect(put.json().data).toMatchObject({ price: 5, is_active: false });
    expectStatus(await h.api("DELETE", `/api/services/${serviceId}`, h.adminToken), 409);
    expectStatus(await h.api("DELETE", `/api/services/${id}`, h.adminToken), 200);
    expectStatus(await h.ext("GET", `/services/${id}`, adminKey), 404);
    expectStatus(await h.ext("POST", "/services", adminKey, { name: "x" }), 405);
  });

  it("never returns a NAS secret", async () => {
    const res = await h.api("POST", "/api/nas", h.adminToken, {
      name: "core-1",
      ip_address: "192.0.2.10",
      type: "mikrotik",
      secret: "radius-secret-xyz",
    });
    expectStatus(res, 201);
    const id = res.json().data.id;
    for (const r of [
      res,
      await h.api("GET", "/api/nas", h.adminToken),
      await h.ext("GET", `/nas/${id}`, adminKey),
    ]) {
      expect(r.body).not.toContain("radius-secret-xyz");
      expect(r.body).not.toContain("secret");
    }
    expectStatus(
      await h.api("POST", "/api/nas", h.adminToken, {
        name: "bad",
        ip_address: "10.0.0.0/8",
        secret: "s",
      }),
      400,
    );
  });
});

describe("tenancy: a reseller's key sees exactly what its owner sees", () => {
  let a: { id: number; token: string };
  let b: { id: number; token: string };
  let keyA: string;
  let subA: number;
  let subB: number;
  let txB: number;

  beforeAll(async () => {
    a = await h.user(uname("tenant-a"));
    b = await h.user(uname("tenant-b"));
    keyA = (await h.mint(h.adminToken, { owner_id: a.id, scopes: "delete" })).key;
    const keyB = (await h.mint(h.adminToken, { owner_id: b.id, scopes: "write" })).key;
    subA = (
      await h.ext("POST", "/subscribers", keyA, {
        username: uname("sa"),
        password: "pass1234",
        service_id: serviceId,
      })
    ).json().data.id;
    const created = await h.ext("POST", "/subscribers", keyB, {
      username: uname("sb"),
      password: "pass1234",
      service_id: serviceId,
    });
    expect(created.json().data.owner_id).toBe(b.id);
    subB = created.json().data.id;
    txB = (await h.ext("POST", "/transactions", keyB, { subscriber_id: subB, amount: 5 })).json()
      .data.id;
  });

  it("cannot read, change, delete or list another reseller's subscribers", async () => {
    const username = (await h.api("GET", `/api/subscribers/${subB}`, h.adminToken)).json().data
      .username;
    for (const [method, url, body] of [
      ["GET", `/subscribers/${subB}`],
      ["GET", `/subscribers/by-username/${username}`],
      ["PUT", `/subscribers/${subB}`, { full_name: "hijacked" }],
      ["DELETE", `/subscribers/${subB}`],
      ["POST", `/subscribers/${subB}/suspend`],
      ["GET", `/subscribers/${subB}/usage`],
      ["GET", `/transactions/${txB}`],
    ] as const) {
      const res = await h.ext(method, url, keyA, body);
      expectStatus(res, 404);
      expect(res.json().error.code).toBe("NOT_FOUND");
      // Only the by-username route may echo the name, because the caller sent it.
      if (!url.includes("by-username")) expect(res.body).not.toContain(username);
    }
    const list = await h.ext("GET", "/subscribers?per_page=500", keyA);
    expect(list.json().data.map((s: { id: number }) => s.id)).toEqual([subA]);
    const own = await h.ext("GET", `/subscribers/${subA}`, keyA);
    expectStatus(own, 200);
    expect(own.json().data.id).toBe(subA);
    const txs = await h.ext("GET", "/transactions", keyA);
    expect(txs.json().meta.total).toBe(0);
    const pay = await h.ext("POST", "/transactions", keyA, { subscriber_id: subB, amount: 1 });
    expectStatus(pay, 400);
    const stillB = await h.api("GET", `/api/subscribers/${subB}`, h.adminToken);
    expect(stillB.json().data).toMatchObject({ full_name: null, status: "active" });
  });

  it("cannot give a subscriber to someone else, and the JWT surface fences the same way", async () => {
    const res = await h.ext("PUT", `/subscribers/${subA}`, keyA, { owner_id: b.id });
    expectStatus(res, 400);
    expect(res.json().error.details[0].field).toBe("owner_id");
    expectStatus(await h.api("GET", `/api/subscribers/${subB}`, a.token), 404);
    expectStatus(await h.api("GET", `/api/subscribers/${subA}`, a.token), 200);
  });

  it("counts only its own records in stats and has no NAS access", async () => {
    const stats = await h.ext("GET", "/system/stats", keyA);
    expectStatus(stats, 200);
    expect(stats.json().data.subscribers.total).toBe(1);
    expect(stats.json().data).not.toHaveProperty("nas");
    const nas = await h.ext("GET", "/nas", keyA);
    expectStatus(nas, 403);
    expect(nas.json().error.code).toBe("FORBIDDEN");
    expect(nas.json().error.message).toContain("admin");
    const all = await h.ext("GET", "/system/stats", adminKey);
    expect(all.json().data.subscribers.total).toBeGreaterThan(1);
    expect(all.json().data.nas).toBeGreaterThanOrEqual(0);
  });
});
