import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type Harness, harness } from "./helpers.js";

// A scanner's key pair made here, signing reports as GitHub's secret scanning does.
const scanner = generateKeyPairSync("ec", { namedCurve: "P-256" });
const KID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const REPORTER_KEYS = JSON.stringify({
  public_keys: [
    { key_identifier: KID, key: scanner.publicKey.export({ type: "spki", format: "pem" }) },
  ],
});

function report(h: Harness, token: string) {
  const body = JSON.stringify([
    {
      token,
      type: "keygate_api_key",
      url: "https://github.com/o/r/blob/main/.env",
      source: "content",
    },
  ]);
  return h.app.inject({
    method: "POST",
    url: "/api/v1/external/leaks",
    headers: {
      "content-type": "application/json",
      "github-public-key-identifier": KID,
      "github-public-key-signature": sign("sha256", Buffer.from(body), {
        key: scanner.privateKey,
        dsaEncoding: "der",
      }).toString("base64"),
    },
    payload: body,
  });
}

/** The events written since `after` (a message count), oldest first. */
async function events(h: Harness) {
  const rows = await h.kg.database.db
    .selectFrom("events")
    .select(["type", "payload"])
    .orderBy("id")
    .execute();
  return rows.map((r) => ({ type: r.type, data: JSON.parse(r.payload).data }));
}

describe("events of a key found exposed", () => {
  it("a reported key is revoked with key.leaked and key.revoked, written together", async () => {
    const h = await harness({ KEYGATE_LEAK_REPORTER_KEYS: REPORTER_KEYS });
    try {
      const { key, id } = await h.mint(h.adminToken, { name: "leaky" });
      const before = (await events(h)).length;
      expect((await report(h, key)).statusCode).toBe(200);
      const fresh = (await events(h)).slice(before);
      expect(fresh.map((e) => e.type)).toEqual(["key.leaked", "key.revoked"]);
      expect(fresh[0]?.data).toMatchObject({
        id,
        name: "leaky",
        action: "revoked",
        reported_by: "scanner",
        url: "https://github.com/o/r/blob/main/.env",
        source: "content",
        key_identifier: KID,
      });
      expect(fresh[1]?.data).toMatchObject({ id, reason: "exposed", status: "revoked" });
      expect(JSON.stringify(fresh)).not.toContain(key);
      // Reported again: already revoked, nothing more to announce.
      expect((await report(h, key)).statusCode).toBe(200);
      expect((await events(h)).length).toBe(before + 2);
    } finally {
      await h.close();
    }
  });

  it("a key its holder revokes says who did; a flagged key gets key.leaked alone", async () => {
    const h = await harness({
      KEYGATE_LEAK_REPORTER_KEYS: REPORTER_KEYS,
      KEYGATE_LEAK_ACTION: "flag",
    });
    try {
      const flagged = await h.mint(h.adminToken, { name: "flagged" });
      let before = (await events(h)).length;
      expect((await report(h, flagged.key)).statusCode).toBe(200);
      let fresh = (await events(h)).slice(before);
      expect(fresh.map((e) => e.type)).toEqual(["key.leaked"]);
      expect(fresh[0]?.data).toMatchObject({ id: flagged.id, action: "flagged", revoked_at: null });

      const held = await h.mint(h.adminToken, { name: "held" });
      before = (await events(h)).length;
      const res = await h.ext("POST", "/keys/revoke-exposed", undefined, { key: held.key });
      expect(res.statusCode).toBe(200);
      fresh = (await events(h)).slice(before);
      expect(fresh.map((e) => e.type)).toEqual(["key.leaked", "key.revoked"]);
      expect(fresh[0]?.data).toMatchObject({ id: held.id, reported_by: "holder", url: null });
    } finally {
      await h.close();
    }
  });
});
