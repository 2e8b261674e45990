import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectStatus, type Harness, harness } from "./helpers.js";

let h: Harness;

const revoke = (token: string, body: unknown) => h.api("POST", "/api/api-keys/revoke", token, body);

/** The key.revoked events written, oldest first. */
async function revokedEvents() {
  const rows = await h.kg.database.db
    .selectFrom("events")
    .select(["type", "payload"])
    .where("type", "=", "key.revoked")
    .orderBy("id")
    .execute();
  return rows.map((r) => JSON.parse(r.payload).data as Record<string, unknown>);
}

describe("revoking several keys at once", () => {
  beforeEach(async () => {
    h = await harness({ KEYGATE_SELF_SERVICE_KEYS: "true" });
  });
  afterEach(() => h.close());

  it("revokes each key as a single revoke does, and answers key by key", async () => {
    const a = await h.mint(h.adminToken, { name: "a" });
    const b = await h.mint(h.adminToken, { name: "b" });
    const c = await h.mint(h.adminToken, { name: "c" });
    // Used once, so the key is in the verification cache: revoking must evict it.
    expectStatus(await h.ext("GET", "/whoami", a.key), 200);
    expectStatus(await h.api("DELETE", `/api/api-keys/${c.id}`, h.adminToken), 200);

    const res = await revoke(h.adminToken, { ids: [a.id, 999, b.id, c.id], reason: " rotated " });
    expectStatus(res, 200);
    expect(res.json().data).toEqual([
      { id: a.id, revoked: true },
      { id: 999, error: { code: "NOT_FOUND", message: "API key 999 not found" } },
      { id: b.id, revoked: true },
      { id: c.id, error: { code: "CONFLICT", message: `key ${c.id} is already revoked` } },
    ]);

    const refused = await h.ext("GET", "/whoami", a.key);
    expectStatus(refused, 401);
    expect(refused.json().error.code).toBe("API_KEY_REVOKED");
    expectStatus(await h.ext("GET", "/whoami", b.key), 401);
    for (const id of [a.id, b.id])
      expect((await h.api("GET", `/api/api-keys/${id}`, h.adminToken)).json().data.status).toBe(
        "revoked",
      );

    const audit = (await h.api("GET", "/api/audit?action=key.revoke", h.adminToken)).json();
    expect(audit.meta.total).toBe(3);
    expect(audit.data.slice(0, 2).map((e: { details: unknown }) => e.details)).toEqual([
      { prefix: b.data.key_prefix, reason: "rotated" },
      { prefix: a.data.key_prefix, reason: "rotated" },
    ]);
    const events = await revokedEvents();
    expect(events.map((e) => [e.id, e.reason])).toEqual([
      [c.id, undefined],
      [a.id, "rotated"],
      [b.id, "rotated"],
    ]);
  });

  it("reaches only the caller's own keys", async () => {
    const ann = await h.user("ann");
    const bob = await h.user("bob");
    const mine = await h.mint(ann.token);
    const theirs = await h.mint(bob.token);
    const res = await revoke(ann.token, { ids: [theirs.id, mine.id] });
    expectStatus(res, 200);
    expect(res.json().data).toEqual([
      { id: theirs.id, error: { code: "NOT_FOUND", message: `API key ${theirs.id} not found` } },
      { id: mine.id, revoked: true },
    ]);
    expectStatus(await h.ext("GET", "/whoami", theirs.key), 200);
  });

  it("is refused whole where a single revoke would be", async () => {
    const off = await harness({ KEYGATE_SELF_SERVICE_KEYS: "false" });
    try {
      const ann = await off.user("ann");
      const key = await off.mint(off.adminToken, { owner_id: ann.id });
      const res = await off.api("POST", "/api/api-keys/revoke", ann.token, { ids: [key.id] });
      expectStatus(res, 403);
      expect(res.json().code).toBe("FORBIDDEN");
      expectStatus(await off.ext("GET", "/whoami", key.key), 200);
    } finally {
      await off.close();
    }
  });

  it("explains a bad body in the envelope", async () => {
    const { id } = await h.mint(h.adminToken);
    const problems: [unknown, string][] = [
      [{}, "ids"],
      [{ ids: [] }, "ids"],
      [{ ids: ["x"] }, "ids"],
      [{ ids: [0] }, "ids"],
      [{ ids: Array.from({ length: 101 }, (_, i) => i + 1) }, "ids"],
      [{ ids: [id, id] }, "ids"],
      [{ ids: [id], reason: "" }, "reason"],
      [{ ids: [id], reason: "x".repeat(201) }, "reason"],
      [{ ids: [id], force: true }, "force"],
    ];
    for (const [body, field] of problems) {
      const res = await revoke(h.adminToken, body);
      expectStatus(res, 400);
      const json = res.json();
      expect(json.code, JSON.stringify(body)).toBe("VALIDATION_ERROR");
      expect(JSON.stringify(json.details), JSON.stringify(body)).toContain(field);
    }
    expectStatus(await h.ext("GET", "/whoami", (await h.mint(h.adminToken)).key), 200);
    expect((await h.api("GET", `/api/api-keys/${id}`, h.adminToken)).json().data.status).toBe(
      "active",
    );
    expectStatus(await revoke("", { ids: [id] }), 401);
  });
});
