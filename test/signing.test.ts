import { createHash, randomBytes } from "node:crypto";
import { createSigner, httpbis } from "http-message-signatures";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearOfMinuteBoundary, expectStatus, type Harness, harness } from "./helpers.js";

// Requests are signed here by http-message-signatures, an RFC 9421 implementation written
// elsewhere; the server's verifier never signs anything.
const MASTER_KEY = randomBytes(32).toString("hex");
const HOST = "keygate.test";
const BASE = `http://${HOST}/api/v1/external`;

type Sent = { method: string; path: string; headers: Record<string, string>; body?: string };

async function sign(
  key: string,
  secret: string,
  method: string,
  path: string,
  o: {
    body?: unknown;
    created?: number;
    nonce?: string | null;
    fields?: string[];
    keyid?: string;
  } = {},
): Promise<Sent> {
  const body = o.body === undefined ? undefined : JSON.stringify(o.body);
  const headers: Record<string, string> = { host: HOST, "x-api-key": key };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    headers["content-digest"] = `sha-256=:${createHash("sha256").update(body).digest("base64")}:`;
  }
  const nonce = o.nonce === undefined ? randomBytes(12).toString("base64url") : o.nonce;
  const signed = await httpbis.signMessage(
    {
      key: createSigner(Buffer.from(secret, "utf8"), "hmac-sha256", o.keyid ?? key.slice(0, 12)),
      fields: o.fields ?? [
        "@method",
        "@target-uri",
        ...(body === undefined ? [] : ["content-digest"]),
      ],
      params: ["created", "keyid", "alg", ...(nonce === null ? [] : ["nonce"])],
      paramValues: {
        created: new Date((o.created ?? Math.floor(Date.now() / 1000)) * 1000),
        ...(nonce === null ? {} : { nonce }),
      },
    },
    { method, url: `${BASE}${path}`, headers },
  );
  const flat = Object.fromEntries(
    Object.entries(signed.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : `${v}`]),
  );
  return { method, path, headers: flat, ...(body === undefined ? {} : { body }) };
}

describe("signed requests (RFC 9421)", () => {
  let h: Harness;
  let service: number;
  beforeAll(async () => {
    h = await harness({ KEYGATE_MASTER_KEY: MASTER_KEY });
    service = await h.service();
  });
  afterAll(async () => h?.close());

  const send = (s: Sent) =>
    h.app.inject({
      method: s.method as "GET",
      url: `/api/v1/external${s.path}`,
      headers: s.headers,
      ...(s.body === undefined ? {} : { payload: s.body }),
    });

  async function signedKey(body: Record<string, unknown> = {}) {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, {
      name: "billing",
      scopes: "delete",
      signing: "required",
      ...body,
    });
    expectStatus(res, 201);
    const json = res.json();
    return {
      key: json.key as string,
      secret: json.signing_secret as string,
      id: json.data.id as number,
      json,
    };
  }

  it("mints a secret once, keeps it sealed, and never shows it again", async () => {
    const { key, secret, id, json } = await signedKey();
    expect(secret).toMatch(/^pks_live_[0-9a-f]{64}$/);
    expect(json.data.signing).toBe("required");
    const test = await signedKey({ environment: "test" });
    expect(test.secret).toMatch(/^pks_test_[0-9a-f]{64}$/);

    for (const res of [
      await h.api("GET", `/api/api-keys/${id}`, h.adminToken),
      await h.api("GET", "/api/api-keys", h.adminToken),
      await h.api("PUT", `/api/api-keys/${id}`, h.adminToken, { name: "renamed" }),
    ]) {
      expectStatus(res, 200);
      expect(res.body).not.toContain(secret.slice(9));
    }
    // Stored sealed: no column holds the secret, or its hex, in the clear.
    const row = await h.kg.database.db
      .selectFrom("api_keys")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(secret.slice(9, 40));
    expect(row.signing_secret).toMatch(/^v1\./);
    expect(key).toMatch(/^pk_live_/);
  });

  it("accepts signed calls, with and without a body, and logs them as signed", async () => {
    const { key, secret, id } = await signedKey();
    expectStatus(await send(await sign(key, secret, "GET", "/whoami")), 200);
    const created = await send(
      await sign(key, secret, "POST", "/subscribers", {
        body: { username: "signed-sub", password: "signed-sub-pw1", service_id: service },
      }),
    );
    expectStatus(created, 201);
    expectStatus(await send(await sign(key, secret, "GET", "/subscribers?search=signed")), 200);
    await h.kg.callLog.flush();
    const logs = (await h.api("GET", `/api/api-keys/${id}/logs`, h.adminToken)).json().data;
    expect(logs.map((r: { credential: string }) => r.credential)).toEqual([
      "signature",
      "signature",
      "signature",
    ]);
  });

  it("refuses an unsigned call to a key that requires signing, saying how to sign", async () => {
    const { key, id } = await signedKey();
    const res = await h.ext("GET", "/whoami", key);
    expectStatus(res, 401);
    const err = res.json().error;
    expect(err.code).toBe("SIGNATURE_REQUIRED");
    expect(err.message).toContain(`keyid "${key.slice(0, 12)}"`);
    expect(err.message).toContain("@target-uri");
    await h.kg.callLog.flush();
    const logs = (await h.api("GET", `/api/api-keys/${id}/logs`, h.adminToken)).json().data;
    expect(logs[0]).toMatchObject({ error_code: "SIGNATURE_REQUIRED", credential: "key" });
  });

  it("SIGNATURE_INVALID gives the base the server computed, which the client can diff", async () => {
    const { key, secret } = await signedKey();
    const good = await sign(key, secret, "POST", "/subscribers", {
      body: { username: "tampered", service_id: service },
    });
    const tampered = { ...good, body: JSON.stringify({ username: "other", service_id: service }) };
    const res = await send(tampered);
    expectStatus(res, 401);
    const err = res.json().error;
    expect(err.code).toBe("SIGNATURE_INVALID");
    expect(err.message).toContain("Content-Digest");
    expect(err.message).not.toContain("line break");
    // The same body with a newline the digest missed (a body read from a file): said so.
    const newline = await send({ ...good, body: `${good.body}\n` });
    expect(newline.json().error.code).toBe("SIGNATURE_INVALID");
    expect(newline.json().error.message).toContain("the body ends with a line break");

    const wrongSecret = await sign(key, `pks_live_${"0".repeat(64)}`, "GET", "/whoami");
    const res2 = await send(wrongSecret);
    expect(res2.json().error.code).toBe("SIGNATURE_INVALID");
    const base = res2.json().error.details[0];
    expect(base.field).toBe("signature_base");
    expect(base.message).toContain(`"@method": GET`);
    expect(base.message).toContain(`"@target-uri": ${BASE}/whoami`);
    expect(base.message).toContain(`"@signature-params": ("@method" "@target-uri")`);
    // The key itself is never echoed, even inside a base that covers its header.
    const covering = await sign(key, `pks_live_${"0".repeat(64)}`, "GET", "/whoami", {
      fields: ["@method", "@target-uri", "x-api-key"],
    });
    const res3 = await send(covering);
    expect(res3.json().error.code).toBe("SIGNATURE_INVALID");
    expect(res3.body).not.toContain(key);
    // No subscriber was created by the tampered call.
    const list = await send(await sign(key, secret, "GET", "/subscribers?search=other"));
    expect(list.json().data.items ?? list.json().data).toHaveLength(0);
  });

  it("refuses a keyid that is not the key's prefix", async () => {
    const { key, secret } = await signedKey();
    const res = await send(await sign(key, secret, "GET", "/whoami", { keyid: "pk_live_0000" }));
    expect(res.json().error.code).toBe("SIGNATURE_INVALID");
    expect(res.json().error.message).toContain(key.slice(0, 12));
  });

  it("SIGNATURE_EXPIRED states the clock skew seen", async () => {
    const { key, secret } = await signedKey();
    const old = Math.floor(Date.now() / 1000) - 900;
    const res = await send(await sign(key, secret, "GET", "/whoami", { created: old }));
    expectStatus(res, 401);
    const err = res.json().error;
    expect(err.code).toBe("SIGNATURE_EXPIRED");
    expect(err.details[0].field).toBe("clock_skew_s");
    expect(Number(err.details[0].message)).toBeLessThanOrEqual(-899);
    const ahead = await send(
      await sign(key, secret, "GET", "/whoami", { created: Math.floor(Date.now() / 1000) + 400 }),
    );
    expect(ahead.json().error.code).toBe("SIGNATURE_EXPIRED");
    expect(ahead.json().error.message).toContain("ahead of");
  });

  it("accepts each nonce once per key (SIGNATURE_REPLAYED), and requires one", async () => {
    const a = await signedKey();
    const b = await signedKey();
    const first = await sign(a.key, a.secret, "GET", "/whoami", { nonce: "same-nonce" });
    expectStatus(await send(first), 200);
    const again = await send(first);
    expectStatus(again, 401);
    expect(again.json().error.code).toBe("SIGNATURE_REPLAYED");
    // The same nonce with another key is that key's first use of it.
    expectStatus(
      await send(await sign(b.key, b.secret, "GET", "/whoami", { nonce: "same-nonce" })),
      200,
    );
    const without = await send(await sign(a.key, a.secret, "GET", "/whoami", { nonce: null }));
    expect(without.json().error.code).toBe("SIGNATURE_INVALID");
    expect(without.json().error.message).toContain("nonce");
  });

  it("checks signatures after the IP fence and before the budget (SPEC §5 order)", async () => {
    const fenced = await signedKey({ allowed_ips: ["203.0.113.0/24"] });
    const res = await send(await sign(fenced.key, `pks_live_${"0".repeat(64)}`, "GET", "/whoami"));
    expect(res.json().error.code).toBe("IP_NOT_ALLOWED");

    await clearOfMinuteBoundary();
    const tight = await signedKey({ rate_limit_per_minute: 1 });
    expectStatus(await send(await sign(tight.key, tight.secret, "GET", "/whoami")), 200);
    // Budget spent: a bad signature is still told as such, and is not counted.
    const bad = await send(await sign(tight.key, `pks_live_${"0".repeat(64)}`, "GET", "/whoami"));
    expect(bad.json().error.code).toBe("SIGNATURE_INVALID");
    const over = await send(await sign(tight.key, tight.secret, "GET", "/whoami"));
    expect(over.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
  });

  it("checks the key before the body on a signed call, and signs unknown routes too", async () => {
    const { key, secret } = await signedKey();
    const revokedRes = await h.api("POST", "/api/api-keys", h.adminToken, {
      name: "r",
      signing: "required",
    });
    const revoked = revokedRes.json();
    await h.api("DELETE", `/api/api-keys/${revoked.data.id}`, h.adminToken);
    const r = await send(
      await sign(revoked.key, revoked.signing_secret, "POST", "/subscribers", { body: {} }),
    );
    expect(r.json().error.code).toBe("API_KEY_REVOKED");

    const miss = await send(await sign(key, secret, "GET", "/no-such-route"));
    expectStatus(miss, 404);
    const badMiss = await send(await sign(key, `pks_live_${"0".repeat(64)}`, "GET", "/nope"));
    expect(badMiss.json().error.code).toBe("SIGNATURE_INVALID");
  });

  it("optional: unsigned calls pass, a signed one must verify", async () => {
    const { key, secret } = await signedKey({ signing: "optional" });
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    expectStatus(await send(await sign(key, secret, "GET", "/whoami")), 200);
    const bad = await send(await sign(key, `pks_live_${"0".repeat(64)}`, "GET", "/whoami"));
    expect(bad.json().error.code).toBe("SIGNATURE_INVALID");
  });

  it("a key that does not sign ignores signature headers", async () => {
    const plain = await h.mint(h.adminToken);
    const res = await send(await sign(plain.key, `pks_live_${"0".repeat(64)}`, "GET", "/whoami"));
    expectStatus(res, 200);
  });

  it("turning signing on answers a secret once; off forgets it; a roll mints a new one", async () => {
    const plain = await h.mint(h.adminToken, { scopes: "read" });
    const on = await h.api("PUT", `/api/api-keys/${plain.id}`, h.adminToken, {
      signing: "required",
    });
    expectStatus(on, 200);
    const secret = on.json().signing_secret as string;
    expect(secret).toMatch(/^pks_live_[0-9a-f]{64}$/);
    expectStatus(await send(await sign(plain.key, secret, "GET", "/whoami")), 200);
    // optional ↔ required keeps the secret, and answers none.
    const optional = await h.api("PUT", `/api/api-keys/${plain.id}`, h.adminToken, {
      signing: "optional",
    });
    expect(optional.json().signing_secret).toBeUndefined();
    expectStatus(await send(await sign(plain.key, secret, "GET", "/whoami")), 200);

    const rolled = await h.api("POST", `/api/api-keys/${plain.id}/roll`, h.adminToken, {});
    expectStatus(rolled, 201);
    const next = rolled.json();
    expect(next.signing_secret).toMatch(/^pks_live_[0-9a-f]{64}$/);
    expect(next.signing_secret).not.toBe(secret);
    expect(next.data.signing).toBe("optional");
    expectStatus(await send(await sign(next.key, next.signing_secret, "GET", "/whoami")), 200);
    const oldSecret = await send(await sign(next.key, secret, "GET", "/whoami"));
    expect(oldSecret.json().error.code).toBe("SIGNATURE_INVALID");

    const off = await h.api("PUT", `/api/api-keys/${next.data.id}`, h.adminToken, {
      signing: "off",
    });
    expect(off.json().data.signing).toBe("off");
    const row = await h.kg.database.db
      .selectFrom("api_keys")
      .select("signing_secret")
      .where("id", "=", next.data.id)
      .executeTakeFirstOrThrow();
    expect(row.signing_secret).toBeNull();
  });

  it("refuses a bad signing mode", async () => {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, { signing: "always" });
    expectStatus(res, 400);
    expect(res.json().code).toBe("VALIDATION_ERROR");
  });
});

describe("signing without a master key", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => h?.close());

  it("is a 400 on signing that says what to set; unsigned keys mint as before", async () => {
    const res = await h.api("POST", "/api/api-keys", h.adminToken, { signing: "required" });
    expectStatus(res, 400);
    const err = res.json();
    expect(err.code).toBe("VALIDATION_ERROR");
    expect(err.details[0].field).toBe("signing");
    expect(err.message).toContain("KEYGATE_MASTER_KEY");
    expect(err.message).toContain("KEYGATE_MASTER_KEY_FILE");
    const plain = await h.mint(h.adminToken, { signing: "off" });
    expect(plain.data.signing).toBe("off");
    const put = await h.api("PUT", `/api/api-keys/${plain.id}`, h.adminToken, {
      signing: "optional",
    });
    expectStatus(put, 400);
  });
});
