import { createHmac } from "node:crypto";
import { Secret, TOTP } from "otpauth";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { matchTotp, totpAt } from "../src/auth/totp.js";
import { ADMIN, expectStatus, type Harness, harness } from "./helpers.js";

// Two-factor sign-in (TOTP, RFC 6238) through the API, on the engine of this run.

/** RFC 6238 by hand: HMAC-SHA1 over the 8-byte big-endian step, dynamic truncation (RFC 4226 §5.3). */
function rfcTotp(key: Buffer, seconds: number, digits: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(seconds / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = (mac[19] as number) & 0xf;
  const bin =
    (((mac[offset] as number) & 0x7f) << 24) |
    ((mac[offset + 1] as number) << 16) |
    ((mac[offset + 2] as number) << 8) |
    (mac[offset + 3] as number);
  return String(bin % 10 ** digits).padStart(digits, "0");
}

/** RFC 4648 base32, decoded by hand (what an authenticator app does with the secret). */
function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of text.replace(/=/g, "")) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

describe("TOTP against RFC 6238 Appendix B", () => {
  // The SHA-1 seed of the appendix, and its 8-digit codes at the listed times.
  const seed = Buffer.from("12345678901234567890", "ascii");
  const vectors: [number, string][] = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ];

  it("the hand-written HMAC-SHA1 TOTP, otpauth and Keygate's check agree on every vector", () => {
    const secret = new Secret({ buffer: new Uint8Array(seed).buffer });
    expect(secret.base32).toBe("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    expect(base32Decode(secret.base32).equals(seed)).toBe(true);
    for (const [seconds, code] of vectors) {
      expect(rfcTotp(seed, seconds, 8)).toBe(code);
      const lib = TOTP.generate({ secret, digits: 8, period: 30, timestamp: seconds * 1000 });
      expect(lib).toBe(code);
      // Keygate uses 6 digits: the same truncation, modulo 10^6.
      const six = rfcTotp(seed, seconds, 6);
      expect(six).toBe(code.slice(2));
      expect(totpAt(secret.base32, seconds * 1000)).toBe(six);
      const step = Math.floor(seconds / 30);
      expect(matchTotp(secret.base32, six, seconds * 1000, null)).toEqual({ result: "ok", step });
      // ±1 step of clock drift is accepted; two steps are not.
      expect(matchTotp(secret.base32, six, seconds * 1000 + 30_000, null).result).toBe("ok");
      expect(matchTotp(secret.base32, six, seconds * 1000 - 30_000, null).result).toBe("ok");
      expect(matchTotp(secret.base32, six, seconds * 1000 + 60_000, null).result).toBe("wrong");
      // A step already spent is refused as reused.
      expect(matchTotp(secret.base32, six, seconds * 1000, step).result).toBe("reused");
    }
  });
});

let t = Date.parse("2026-06-01T12:00:10Z");
let h: Harness;

async function start(env: Record<string, string> = {}) {
  t = Date.parse("2026-06-01T12:00:10Z");
  h = await harness(env, { now: () => new Date(t) });
}

const login = (body: Record<string, unknown>) => h.api("POST", "/api/auth/login", undefined, body);

/** Enrols and confirms two-factor for the holder of `token`; answers the secret and codes. */
async function turnOn(token: string, password: string) {
  const enrol = await h.api("POST", "/api/auth/2fa/enrol", token, { password });
  expectStatus(enrol, 200);
  const secret = enrol.json().data.secret as string;
  const confirm = await h.api("POST", "/api/auth/2fa/confirm", token, {
    code: totpAt(secret, t),
  });
  expectStatus(confirm, 200);
  return { secret, codes: confirm.json().data.recovery_codes as string[] };
}

const auditOf = async (action: string) => {
  const res = await h.api("GET", `/api/audit?action=${action}&per_page=500`, h.adminToken);
  expectStatus(res, 200);
  return res.json().data as Record<string, unknown>[];
};

describe("two-factor sign-in", () => {
  beforeEach(() => start());
  afterEach(() => h.close());

  it("enrols with a QR code, takes effect only at the first valid code, and shows recovery codes once", async () => {
    const before = await h.api("GET", "/api/auth/2fa", h.adminToken);
    expectStatus(before, 200);
    expect(before.json().data).toEqual({
      enabled: false,
      enabled_at: null,
      pending: false,
      recovery_codes_left: 0,
      required: false,
    });

    const wrongPassword = await h.api("POST", "/api/auth/2fa/enrol", h.adminToken, {
      password: "not-the-password",
    });
    expectStatus(wrongPassword, 400);
    expect(wrongPassword.json()).toMatchObject({
      code: "VALIDATION_ERROR",
      details: [{ field: "password" }],
    });

    const enrol = await h.api("POST", "/api/auth/2fa/enrol", h.adminToken, {
      password: ADMIN.password,
    });
    expectStatus(enrol, 200);
    expect(enrol.headers["cache-control"]).toBe("no-store");
    const data = enrol.json().data;
    expect(data.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(data).toMatchObject({
      issuer: "Keygate",
      account: "admin",
      algorithm: "SHA1",
      digits: 6,
      period: 30,
    });
    const url = new URL(data.otpauth_url);
    expect(url.protocol).toBe("otpauth:");
    expect(url.searchParams.get("secret")).toBe(data.secret);
    expect(url.searchParams.get("issuer")).toBe("Keygate");
    expect(data.qr_svg).toMatch(/^<svg [^>]*viewBox/);
    expect(data.qr_svg).toContain("<path");

    // Pending: nothing asks for a code yet, and the secret is never shown again.
    const pending = await h.api("GET", "/api/auth/2fa", h.adminToken);
    expect(pending.json().data).toMatchObject({ enabled: false, pending: true });
    expectStatus(await login(ADMIN), 200);
    for (const res of [
      pending,
      await h.api("GET", "/api/auth/me", h.adminToken),
      await h.api("GET", "/api/users", h.adminToken),
    ])
      expect(res.body).not.toContain(data.secret);

    // A wrong code does not turn it on.
    const wrong = await h.api("POST", "/api/auth/2fa/confirm", h.adminToken, { code: "000000" });
    expectStatus(wrong, 400);
    expect(wrong.json().details[0].field).toBe("code");
    expect(wrong.body).not.toContain("000000");

    // A code the hand-written RFC 6238 computes from the secret turns it on.
    const code = rfcTotp(base32Decode(data.secret), t / 1000, 6);
    expect(code).toBe(totpAt(data.secret, t));
    const confirm = await h.api("POST", "/api/auth/2fa/confirm", h.adminToken, { code });
    expectStatus(confirm, 200);
    expect(confirm.headers["cache-control"]).toBe("no-store");
    const codes = confirm.json().data.recovery_codes as string[];
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);

    const after = await h.api("GET", "/api/auth/2fa", h.adminToken);
    expect(after.json().data).toMatchObject({
      enabled: true,
      pending: false,
      recovery_codes_left: 10,
    });
    const me = await h.api("GET", "/api/auth/me", h.adminToken);
    expect(me.json().data).toMatchObject({ two_factor_enabled: true, two_factor_required: false });
    for (const res of [after, me, await h.api("GET", "/api/audit?per_page=500", h.adminToken)]) {
      expect(res.body).not.toContain(data.secret);
      for (const c of codes) expect(res.body).not.toContain(c);
    }

    // Already on: a second enrolment is refused, and so is a second confirmation.
    const again = await h.api("POST", "/api/auth/2fa/enrol", h.adminToken, {
      password: ADMIN.password,
    });
    expectStatus(again, 409);
    expect(again.json().message).toContain("turn it off first");
    expectStatus(await h.api("POST", "/api/auth/2fa/confirm", h.adminToken, { code }), 409);

    expect(await auditOf("auth.2fa_enrol")).toHaveLength(1);
    const [confirmed] = await auditOf("auth.2fa_confirm");
    expect(confirmed).toMatchObject({ actor_username: "admin", target_id: "1", via: "jwt" });
  });

  it("shows admins which users have it", async () => {
    const bob = await h.user("bob");
    await turnOn(bob.token, "bob-password");
    const users = (await h.api("GET", "/api/users", h.adminToken)).json().data as {
      username: string;
      two_factor_enabled: boolean;
    }[];
    expect(users.map((u) => [u.username, u.two_factor_enabled])).toEqual([
      ["admin", false],
      ["bob", true],
    ]);
  });

  it("asks for the code at sign-in, accepts a current one once, and ±1 step of drift", async () => {
    const { secret } = await turnOn(h.adminToken, ADMIN.password);

    const asked = await login(ADMIN);
    expectStatus(asked, 401);
    expect(asked.json()).toMatchObject({
      success: false,
      code: "TWO_FACTOR_REQUIRED",
      details: [{ field: "otp" }],
    });
    expect(asked.json().message).toContain("otp");

    // The code that confirmed the enrolment is spent: it cannot sign in.
    const confirmCode = totpAt(secret, t);
    const spent = await login({ ...ADMIN, otp: confirmCode });
    expectStatus(spent, 401);
    expect(spent.json().code).toBe("INVALID_TWO_FACTOR_CODE");
    expect(spent.json().message).toContain("already used");

    t += 30_000;
    const code = totpAt(secret, t);
    const ok = await login({ ...ADMIN, otp: code });
    expectStatus(ok, 200);
    expect(ok.json().data.user.username).toBe("admin");
    expect(ok.body).not.toContain(secret);

    // The same code again, within its window: refused.
    const reused = await login({ ...ADMIN, otp: code });
    expectStatus(reused, 401);
    expect(reused.json()).toMatchObject({ code: "INVALID_TWO_FACTOR_CODE" });
    expect(reused.body).not.toContain(code);

    // A phone 30 s ahead: the next step's code works; two steps ahead does not.
    t += 30_000;
    expectStatus(await login({ ...ADMIN, otp: totpAt(secret, t + 30_000) }), 200);
    t += 30_000; // the code of "now" was spent as "next" above; move on
    t += 30_000;
    const far = await login({ ...ADMIN, otp: totpAt(secret, t + 60_000) });
    expectStatus(far, 401);
    expect(far.json().message).toContain("not valid");

    // A wrong password with a right code says only that the credentials are wrong.
    const wrongPassword = await login({ username: "admin", password: "nope", otp: "123456" });
    expectStatus(wrongPassword, 401);
    expect(wrongPassword.json().code).toBe("INVALID_CREDENTIALS");

    // Spaces inside the code, as some apps show it, are fine.
    const spaced = totpAt(secret, t);
    expectStatus(await login({ ...ADMIN, otp: `${spaced.slice(0, 3)} ${spaced.slice(3)}` }), 200);
  });

  it("accepts one of two sign-ins racing with the same code", async () => {
    const { secret } = await turnOn(h.adminToken, ADMIN.password);
    t += 30_000;
    const otp = totpAt(secret, t);
    const results = await Promise.all([login({ ...ADMIN, otp }), login({ ...ADMIN, otp })]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401]);
  });

  it("counts wrong codes in the sign-in throttle: locked even with the right code", async () => {
    const { secret } = await turnOn(h.adminToken, ADMIN.password);
    t += 30_000;
    const right = totpAt(secret, t);
    const wrong = right === "111111" ? "222222" : "111111";
    for (let i = 0; i < 10; i++) {
      const res = await login({ ...ADMIN, otp: wrong });
      expectStatus(res, 401);
      expect(res.json().code).toBe("INVALID_TWO_FACTOR_CODE");
    }
    const locked = await login({ ...ADMIN, otp: right });
    expectStatus(locked, 429);
    expect(locked.json().code).toBe("RATE_LIMIT_EXCEEDED");
    expect(Number(locked.headers["retry-after"])).toBeGreaterThan(0);
    const failed = await auditOf("auth.login_failed");
    expect(failed).toHaveLength(10);
    expect(failed[0]).toMatchObject({ target_id: "1", details: { second_factor: "otp" } });

    // Once the window passes, the right code signs in.
    t += 15 * 60_000;
    expectStatus(await login({ ...ADMIN, otp: totpAt(secret, t) }), 200);
  });

  it("signs in with a recovery code once, in any case and without dashes", async () => {
    const { codes } = await turnOn(h.adminToken, ADMIN.password);
    const [first, second] = codes as [string, string];
    expectStatus(await login({ ...ADMIN, recovery_code: first }), 200);
    const twice = await login({ ...ADMIN, recovery_code: first });
    expectStatus(twice, 401);
    expect(twice.json().code).toBe("INVALID_TWO_FACTOR_CODE");
    expect(twice.json().message).toContain("works once");
    expect(twice.body).not.toContain(first);

    expectStatus(
      await login({ ...ADMIN, recovery_code: ` ${second.replace(/-/g, "").toUpperCase()} ` }),
      200,
    );
    expectStatus(await login({ ...ADMIN, recovery_code: "not-a-code" }), 401);

    const status = await h.api("GET", "/api/auth/2fa", h.adminToken);
    expect(status.json().data.recovery_codes_left).toBe(8);
    const used = await auditOf("auth.2fa_recovery_code_used");
    expect(
      used.map((e) => (e.details as { recovery_codes_left: number }).recovery_codes_left),
    ).toEqual([8, 9]);
    expect(JSON.stringify(used)).not.toContain(first);

    const both = await login({ ...ADMIN, otp: "123456", recovery_code: second });
    expectStatus(both, 400);
    expect(both.json().code).toBe("VALIDATION_ERROR");
  });

  it("replaces the recovery codes on request, voiding the old ones", async () => {
    const { secret, codes } = await turnOn(h.adminToken, ADMIN.password);
    const res = await h.api("POST", "/api/auth/2fa/recovery-codes", h.adminToken, {
      password: ADMIN.password,
    });
    expectStatus(res, 200);
    const fresh = res.json().data.recovery_codes as string[];
    expect(fresh).toHaveLength(10);
    expect(fresh.some((c) => codes.includes(c))).toBe(false);
    expectStatus(await login({ ...ADMIN, recovery_code: codes[0] }), 401);
    expectStatus(await login({ ...ADMIN, recovery_code: fresh[0] }), 200);
    expect(await auditOf("auth.2fa_recovery_codes_regenerate")).toHaveLength(1);
    expect(secret).not.toBe("");
  });

  it("turns off only with the password or a current code", async () => {
    const { secret } = await turnOn(h.adminToken, ADMIN.password);
    const none = await h.api("POST", "/api/auth/2fa/disable", h.adminToken, {});
    expectStatus(none, 400);
    expect(none.json().message).toContain("password or code");

    const wrong = await h.api("POST", "/api/auth/2fa/disable", h.adminToken, {
      password: "wrong-password",
    });
    expectStatus(wrong, 400);
    expect(wrong.json().details[0].field).toBe("password");
    const wrongCode = await h.api("POST", "/api/auth/2fa/disable", h.adminToken, {
      code: "12345",
    });
    expectStatus(wrongCode, 400);
    expect(wrongCode.json().details[0].field).toBe("code");
    // Both were counted as failed sign-ins.
    expect(await auditOf("auth.login_failed")).toHaveLength(2);

    t += 30_000;
    const off = await h.api("POST", "/api/auth/2fa/disable", h.adminToken, {
      code: totpAt(secret, t),
    });
    expectStatus(off, 200);
    expectStatus(await login(ADMIN), 200);
    expect((await h.api("GET", "/api/auth/2fa", h.adminToken)).json().data.enabled).toBe(false);
    const again = await h.api("POST", "/api/auth/2fa/disable", h.adminToken, {
      password: ADMIN.password,
    });
    expectStatus(again, 409);

    // On again, and off with the password this time.
    await turnOn(h.adminToken, ADMIN.password);
    expectStatus(
      await h.api("POST", "/api/auth/2fa/disable", h.adminToken, { password: ADMIN.password }),
      200,
    );
    const disabled = await auditOf("auth.2fa_disable");
    expect(disabled).toHaveLength(2);
    expect(disabled[0]).toMatchObject({ actor_username: "admin", target_id: "1" });
  });

  it("answers a clear 4xx to every wrong input", async () => {
    const cases: [string, unknown, number, string][] = [
      ["/api/auth/2fa/confirm", { code: "123456" }, 409, "CONFLICT"],
      ["/api/auth/2fa/enrol", {}, 400, "VALIDATION_ERROR"],
      ["/api/auth/2fa/enrol", { password: 12345678 }, 400, "VALIDATION_ERROR"],
      ["/api/auth/2fa/enrol", { password: ADMIN.password, extra: 1 }, 400, "VALIDATION_ERROR"],
      ["/api/auth/2fa/confirm", { code: 123456 }, 400, "VALIDATION_ERROR"],
      ["/api/auth/2fa/confirm", { code: "x".repeat(100) }, 400, "VALIDATION_ERROR"],
      ["/api/auth/2fa/disable", { password: ADMIN.password }, 409, "CONFLICT"],
      ["/api/auth/2fa/recovery-codes", { password: ADMIN.password }, 409, "CONFLICT"],
      ["/api/auth/2fa/disable", { code: null }, 400, "VALIDATION_ERROR"],
    ];
    for (const [url, body, status, code] of cases) {
      const res = await h.api("POST", url, h.adminToken, body);
      expect([url, res.statusCode, res.json().code]).toEqual([url, status, code]);
      expect(res.json().success).toBe(false);
    }
    expectStatus(await h.api("GET", "/api/auth/2fa"), 401);
    expectStatus(await login({ ...ADMIN, otp: 123456 }), 400);
    expectStatus(await login({ ...ADMIN, otp: "" }), 400);
  });

  it("documents its routes and the login fields in the OpenAPI document", async () => {
    const doc = (await h.api("GET", "/openapi.json")).json();
    for (const path of ["enrol", "confirm", "disable", "recovery-codes"])
      expect(doc.paths[`/api/auth/2fa/${path}`].post.summary).toBeTruthy();
    expect(doc.paths["/api/auth/2fa"].get.summary).toBeTruthy();
    const login = doc.paths["/api/auth/login"].post;
    const props = login.requestBody.content["application/json"].schema.properties;
    expect(Object.keys(props)).toEqual(expect.arrayContaining(["otp", "recovery_code"]));
    expect(login.description).toContain("TWO_FACTOR_REQUIRED");
  });
});

describe("KEYGATE_REQUIRE_2FA", () => {
  afterEach(() => h.close());

  it("admins: an admin must turn it on before minting, changing, rolling or revoking keys", async () => {
    await start({ KEYGATE_REQUIRE_2FA: "admins", KEYGATE_SELF_SERVICE_KEYS: "true" });
    const me = await h.api("GET", "/api/auth/me", h.adminToken);
    expect(me.json().data).toMatchObject({ two_factor_enabled: false, two_factor_required: true });
    expect((await h.api("GET", "/api/auth/2fa", h.adminToken)).json().data.required).toBe(true);

    const refused = await h.api("POST", "/api/api-keys", h.adminToken, { name: "billing" });
    expectStatus(refused, 403);
    expect(refused.json()).toMatchObject({ success: false, code: "TWO_FACTOR_ENROLMENT_REQUIRED" });
    expect(refused.json().message).toMatch(/turn on two-factor sign-in before you mint keys/);
    expect(refused.json().message).toContain("KEYGATE_REQUIRE_2FA=admins");
    expect(refused.json().message).toContain("/api/auth/2fa/enrol");

    // A reseller is not covered by "admins".
    const bob = await h.user("bob");
    const bobs = await h.mint(bob.token, { name: "bob's" });
    expect((await h.api("GET", "/api/auth/me", bob.token)).json().data.two_factor_required).toBe(
      false,
    );

    // Reading stays open; every change to a key is refused.
    expectStatus(await h.api("GET", "/api/api-keys", h.adminToken), 200);
    for (const [method, url, body] of [
      ["PUT", `/api/api-keys/${bobs.id}`, { name: "renamed" }],
      ["POST", `/api/api-keys/${bobs.id}/roll`, {}],
      ["DELETE", `/api/api-keys/${bobs.id}`, undefined],
    ] as const) {
      const res = await h.api(method, url, h.adminToken, body);
      expectStatus(res, 403);
      expect(res.json().code).toBe("TWO_FACTOR_ENROLMENT_REQUIRED");
    }

    // Once on (the same session), all of it works.
    await turnOn(h.adminToken, ADMIN.password);
    const minted = await h.mint(h.adminToken, { name: "billing" });
    expectStatus(
      await h.api("PUT", `/api/api-keys/${minted.id}`, h.adminToken, { name: "b2" }),
      200,
    );
    const rolled = await h.api("POST", `/api/api-keys/${minted.id}/roll`, h.adminToken, {
      grace_period_hours: 0,
    });
    expectStatus(rolled, 201);
    expectStatus(await h.api("DELETE", `/api/api-keys/${bobs.id}`, h.adminToken), 200);
  });

  it("all: a reseller with self-service must turn it on too", async () => {
    await start({ KEYGATE_REQUIRE_2FA: "all", KEYGATE_SELF_SERVICE_KEYS: "true" });
    const bob = await h.user("bob");
    const refused = await h.api("POST", "/api/api-keys", bob.token, {});
    expectStatus(refused, 403);
    expect(refused.json().code).toBe("TWO_FACTOR_ENROLMENT_REQUIRED");
    expect(refused.json().message).toContain("every user");
    await turnOn(bob.token, "bob-password");
    const { id } = await h.mint(bob.token, {});
    expectStatus(await h.api("DELETE", `/api/api-keys/${id}`, bob.token), 200);

    // Turning it off again brings the refusal back.
    expectStatus(
      await h.api("POST", "/api/auth/2fa/disable", bob.token, { password: "bob-password" }),
      200,
    );
    expectStatus(await h.api("POST", "/api/api-keys", bob.token, {}), 403);
  });

  it("off (the default) asks nobody", async () => {
    await start();
    expect((await h.api("GET", "/api/auth/me", h.adminToken)).json().data.two_factor_required).toBe(
      false,
    );
    await h.mint(h.adminToken, {});
  });
});
