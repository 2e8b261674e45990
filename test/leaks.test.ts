import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { buildApp } from "../src/http/app.js";
import { createKeygate } from "../src/keygate.js";
import {
  ADMIN,
  clearOfMinuteBoundary,
  expectStatus,
  freshDatabase,
  type Harness,
  harness,
} from "./helpers.js";
import { startRedis } from "./process.js";

// A scanner's signing key made here; reports are signed exactly as GitHub signs them.
const scanner = generateKeyPairSync("ec", { namedCurve: "P-256" });
const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });
const KID = "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d";
const REPORTER_KEYS = JSON.stringify({
  public_keys: [
    {
      key_identifier: KID,
      key: scanner.publicKey.export({ type: "spki", format: "pem" }),
      is_current: true,
    },
  ],
});

const signed = (body: string, key: KeyObject = scanner.privateKey) =>
  sign("sha256", Buffer.from(body), { key, dsaEncoding: "der" }).toString("base64");

function report(
  h: Harness,
  items: unknown,
  opts: { kid?: string; sig?: string; body?: string; headers?: Record<string, string> } = {},
) {
  const body = opts.body ?? JSON.stringify(items);
  return h.app.inject({
    method: "POST",
    url: "/api/v1/external/leaks",
    headers: {
      "content-type": "application/json",
      "github-public-key-identifier": opts.kid ?? KID,
      "github-public-key-signature": opts.sig ?? signed(body),
      ...opts.headers,
    },
    payload: body,
  });
}

const leak = (token: string, url = "https://github.com/octo/app/blob/abc/config.yml") => ({
  token,
  type: "keygate_api_key",
  url,
  source: "content",
});

type Alert = { id: string; kind: string; message: string; link: string | null };
const alertsOf = async (h: Harness, token: string, env?: string) => {
  const res = await h.app.inject({
    method: "GET",
    url: "/api/alerts",
    headers: { authorization: `Bearer ${token}`, ...(env ? { "keygate-environment": env } : {}) },
  });
  expectStatus(res, 200);
  return res.json().data as Alert[];
};

describe("leak reports", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      KEYGATE_LEAK_REPORTER_KEYS: REPORTER_KEYS,
      KEYGATE_LEAK_RATE_LIMIT: "1000",
    });
  });
  afterAll(async () => h?.close());

  it("revokes a reported key at once, labels it, audits and alerts where it was found", async () => {
    const { key, id } = await h.mint(h.adminToken, { name: "billing" });
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    const res = await report(h, [leak(key)]);
    expectStatus(res, 200);
    expect(res.json()).toEqual([
      { token_raw: key, token_type: "keygate_api_key", label: "true_positive" },
    ]);
    const next = await h.ext("GET", "/whoami", key);
    expectStatus(next, 401);
    expect(next.json().error.code).toBe("API_KEY_REVOKED");

    const audit = await h.api("GET", "/api/audit?action=key.leaked", h.adminToken);
    const entry = audit.json().data[0];
    expect(entry).toMatchObject({
      action: "key.leaked",
      target_id: String(id),
      via: "leak_report",
    });
    expect(entry.details).toMatchObject({
      action: "revoked",
      url: "https://github.com/octo/app/blob/abc/config.yml",
      source: "content",
      reported_by: "scanner",
    });
    expect(JSON.stringify(audit.json())).not.toContain(key.slice(12));

    const alert = (await alertsOf(h, h.adminToken)).find((a) => a.link === `/keys/${id}`);
    expect(alert?.kind).toBe("key.leaked");
    expect(alert?.message).toContain("https://github.com/octo/app/blob/abc/config.yml");
    expect(alert?.message).toContain("revoked");

    // Reported again: still a real key, nothing more to do.
    const again = await report(h, [leak(key)]);
    expect(again.json()[0].label).toBe("true_positive");
  });

  it("answers false_positive for values that are no key, in the order sent", async () => {
    const unknown = `pk_live_${"0".repeat(32)}`;
    const { key } = await h.mint(h.adminToken);
    const res = await report(h, [
      { token: "NMIfyYncKcRALEXAMPLE", type: "other" },
      leak(unknown),
      leak(key),
      leak(key),
    ]);
    expectStatus(res, 200);
    expect(res.json().map((l: { label: string }) => l.label)).toEqual([
      "false_positive",
      "false_positive",
      "true_positive",
      "true_positive",
    ]);
    expect(res.json()[0]).toEqual({
      token_raw: "NMIfyYncKcRALEXAMPLE",
      token_type: "other",
      label: "false_positive",
    });
    expectStatus(await report(h, []), 200);
  });

  it("refuses an unsigned, wrongly signed, tampered or unknown-key report, and keeps the key", async () => {
    const { key } = await h.mint(h.adminToken);
    const body = JSON.stringify([leak(key)]);
    const refused = [
      [
        "SIGNATURE_INVALID",
        await report(h, null, { body, sig: signed(body, stranger.privateKey) }),
      ],
      ["SIGNATURE_INVALID", await report(h, null, { body, kid: "no-such-key" })],
      [
        "SIGNATURE_INVALID",
        await report(h, null, { body: body.replace("config.yml", "other.yml"), sig: signed(body) }),
      ],
      ["SIGNATURE_INVALID", await report(h, null, { body, sig: "not base64 at all!" })],
      [
        "SIGNATURE_REQUIRED",
        await h.app.inject({
          method: "POST",
          url: "/api/v1/external/leaks",
          headers: { "content-type": "application/json" },
          payload: body,
        }),
      ],
    ] as const;
    for (const [code, res] of refused) {
      expectStatus(res, 401);
      expect(res.json()).toMatchObject({ success: false, error: { code } });
      expect(res.body).not.toContain(key.slice(12));
    }
    expectStatus(await h.ext("GET", "/whoami", key), 200);
  });

  it("answers 400 to a signed body that is no list of reports, never 500", async () => {
    for (const body of ['{"token":"x"}', "[1,2]", '[{"type":"t"}]', "[{", "null"]) {
      const res = await report(h, null, { body });
      expectStatus(res, 400);
      expect(res.json().error.code).toBe("VALIDATION_ERROR");
    }
    const text = await h.app.inject({
      method: "POST",
      url: "/api/v1/external/leaks",
      headers: { "content-type": "text/plain" },
      payload: "hello",
    });
    expectStatus(text, 415);
  });

  it("lets anyone holding a key revoke it, naming only its prefix", async () => {
    const owner = await h.user("rita");
    const { key, id } = await h.mint(h.adminToken, { owner_id: owner.id });
    const res = await h.ext("POST", "/keys/revoke-exposed", undefined, { key });
    expectStatus(res, 200);
    expect(res.json().data).toEqual({ key_prefix: key.slice(0, 12), status: "revoked" });
    expect(res.body).not.toContain("rita");
    expect((await h.ext("GET", "/whoami", key)).json().error.code).toBe("API_KEY_REVOKED");
    const again = await h.ext("POST", "/keys/revoke-exposed", key, {});
    expect(again.json().data.status).toBe("already_revoked");

    // The owner sees the alert on their key; another reseller does not.
    expect((await alertsOf(h, owner.token)).some((a) => a.link === `/keys/${id}`)).toBe(true);
    const other = await h.user("otto");
    expect((await alertsOf(h, other.token)).some((a) => a.link === `/keys/${id}`)).toBe(false);

    const unknown = await h.ext("POST", "/keys/revoke-exposed", undefined, {
      key: `pk_live_${"1".repeat(32)}`,
    });
    expectStatus(unknown, 404);
    expect(unknown.json().error.code).toBe("NOT_FOUND");
    const malformed = await h.ext("POST", "/keys/revoke-exposed", undefined, { key: "pk_live_x" });
    expectStatus(malformed, 400);
    expect(malformed.json().error.details[0].field).toBe("key");
    expectStatus(await h.ext("POST", "/keys/revoke-exposed", undefined, {}), 400);
  });

  it("shows test keys' alerts under test data only", async () => {
    const { key, id } = await h.mint(h.adminToken, { environment: "test" });
    expectStatus(await report(h, [leak(key)]), 200);
    expect((await alertsOf(h, h.adminToken)).some((a) => a.link === `/keys/${id}`)).toBe(false);
    expect((await alertsOf(h, h.adminToken, "test")).some((a) => a.link === `/keys/${id}`)).toBe(
      true,
    );
  });
});

describe("alerts", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ KEYGATE_LEAK_REPORTER_KEYS: REPORTER_KEYS });
  });
  afterAll(async () => h?.close());

  it("lists keys expiring within 7 days, and remembers a dismissal per person", async () => {
    const soon = new Date(Date.now() + 3 * 86_400_000).toISOString();
    const later = new Date(Date.now() + 30 * 86_400_000).toISOString();
    const owner = await h.user("erin");
    const { id } = await h.mint(h.adminToken, { owner_id: owner.id, expires_at: soon });
    const { id: far } = await h.mint(h.adminToken, { owner_id: owner.id, expires_at: later });
    const mine = await alertsOf(h, owner.token);
    const expiring = mine.find((a) => a.link === `/keys/${id}`);
    expect(expiring?.kind).toBe("key.expiring");
    expect(mine.some((a) => a.link === `/keys/${far}`)).toBe(false);

    const dismiss = await h.api("POST", `/api/alerts/${expiring?.id}/dismiss`, owner.token);
    expectStatus(dismiss, 200);
    expect((await alertsOf(h, owner.token)).some((a) => a.link === `/keys/${id}`)).toBe(false);
    // The admin's own list is theirs to dismiss.
    expect((await alertsOf(h, h.adminToken)).some((a) => a.link === `/keys/${id}`)).toBe(true);
    expectStatus(await h.api("POST", `/api/alerts/${expiring?.id}/dismiss`, owner.token), 200);
  });

  it("dismisses stored alerts, and refuses one the person cannot see", async () => {
    const { key, id } = await h.mint(h.adminToken);
    expectStatus(await report(h, [leak(key)]), 200);
    const alert = (await alertsOf(h, h.adminToken)).find((a) => a.link === `/keys/${id}`);
    expect(alert).toBeDefined();
    const reseller = await h.user("ines");
    const hidden = await h.api("POST", `/api/alerts/${alert?.id}/dismiss`, reseller.token);
    expectStatus(hidden, 404);
    expectStatus(await h.api("POST", `/api/alerts/${alert?.id}/dismiss`, h.adminToken), 200);
    expect((await alertsOf(h, h.adminToken)).some((a) => a.id === alert?.id)).toBe(false);
    expectStatus(await h.api("POST", "/api/alerts/999999/dismiss", h.adminToken), 404);
    expectStatus(await h.api("POST", "/api/alerts/nope/dismiss", h.adminToken), 400);
    expectStatus(await h.api("GET", "/api/alerts"), 401);
  });
});

describe("leak reports, configured otherwise", () => {
  it("only flags a reported key with KEYGATE_LEAK_ACTION=flag: it keeps working, and the alert says so", async () => {
    const h = await harness({
      KEYGATE_LEAK_REPORTER_KEYS: REPORTER_KEYS,
      KEYGATE_LEAK_ACTION: "flag",
    });
    try {
      const { key, id } = await h.mint(h.adminToken);
      const res = await report(h, [leak(key)]);
      expect(res.json()[0].label).toBe("true_positive");
      expectStatus(await h.ext("GET", "/whoami", key), 200);
      const alert = (await alertsOf(h, h.adminToken)).find((a) => a.link === `/keys/${id}`);
      expect(alert?.message).toContain("still works");
      const audit = await h.api("GET", "/api/audit?action=key.leaked", h.adminToken);
      expect(audit.json().data[0].details.action).toBe("flagged");
    } finally {
      await h.close();
    }
  });

  it("limits each client IP, and takes no reports without reporter keys", async () => {
    const h = await harness({ KEYGATE_LEAK_RATE_LIMIT: "3" });
    try {
      const answers = [];
      await clearOfMinuteBoundary();
      for (let i = 0; i < 4; i++) answers.push(await report(h, []));
      expect(answers.slice(0, 3).map((r) => r.statusCode)).toEqual([404, 404, 404]);
      expect(answers[0]?.json().error.message).toContain("KEYGATE_LEAK_REPORTER_KEYS");
      const limited = answers[3];
      expectStatus(limited as never, 429);
      expect(limited?.json().error.code).toBe("RATE_LIMIT_EXCEEDED");
      expect(limited?.headers["retry-after"]).toBeDefined();
      // Another address has its own budget; revoke-exposed shares this one.
      const elsewhere = await h.app.inject({
        method: "POST",
        url: "/api/v1/external/keys/revoke-exposed",
        remoteAddress: "203.0.113.9",
        payload: { key: `pk_live_${"2".repeat(32)}` },
      });
      expectStatus(elsewhere, 404);
      expectStatus(await h.ext("POST", "/keys/revoke-exposed", undefined, { key: "x" }), 429);
      // Each is an external call, in the call log with no key of the caller's; the key a
      // body names never is.
      await h.kg.callLog.flush();
      const rows = await h.kg.database.db
        .selectFrom("api_key_logs")
        .select(["api_key_id", "path", "status_code", "error_code", "ip"])
        .orderBy("id")
        .execute();
      expect(rows.map((r) => [r.path, r.status_code, r.error_code])).toEqual([
        ...Array.from({ length: 3 }, () => ["/api/v1/external/leaks", 404, "NOT_FOUND"]),
        ["/api/v1/external/leaks", 429, "RATE_LIMIT_EXCEEDED"],
        ["/api/v1/external/keys/revoke-exposed", 404, "NOT_FOUND"],
        ["/api/v1/external/keys/revoke-exposed", 429, "RATE_LIMIT_EXCEEDED"],
      ]);
      expect(rows.every((r) => r.api_key_id === null)).toBe(true);
      expect(rows[4]?.ip).toBe("203.0.113.9");
    } finally {
      await h.close();
    }
  });

  it("never writes a reported key to the server log", async () => {
    const lines: string[] = [];
    const database = await freshDatabase();
    const kg = await createKeygate(
      loadConfig({
        KEYGATE_DATABASE_URL: database.url,
        KEYGATE_ADMIN_USERNAME: ADMIN.username,
        KEYGATE_ADMIN_PASSWORD: ADMIN.password,
        KEYGATE_LOG_LEVEL: "trace",
        KEYGATE_LEAK_REPORTER_KEYS: REPORTER_KEYS,
      }),
    );
    const app = await buildApp(kg, { logStream: { write: (l) => void lines.push(l) } });
    try {
      await kg.auth.bootstrap(ADMIN.username, ADMIN.password);
      const login = await app.inject({
        method: "POST",
        url: "/api/auth/login",
        payload: ADMIN,
      });
      const token = login.json().data.access_token as string;
      const minted = await app.inject({
        method: "POST",
        url: "/api/api-keys",
        headers: { authorization: `Bearer ${token}` },
        payload: {},
      });
      const key = minted.json().key as string;
      const h = { app } as Harness;
      expectStatus(await report(h, [leak(key, `https://example.com/?k=${key}`)]), 200);
      await app.inject({
        method: "POST",
        url: "/api/v1/external/keys/revoke-exposed",
        payload: { key },
      });
      await report(h, null, { body: JSON.stringify([leak(key)]), sig: "AAAA" });
      const rows = await kg.database.db.selectFrom("alerts").selectAll().execute();
      const audit = await kg.database.db.selectFrom("audit_log").selectAll().execute();
      const everything = [...lines, JSON.stringify(rows), JSON.stringify(audit)].join("\n");
      expect(everything).not.toContain(key.slice(12));
      expect(JSON.stringify(rows)).toContain(`${key.slice(0, 12)}…`);
    } finally {
      await app.close();
      await kg.close();
      await database.drop();
    }
  });
});

describe("leak reports with several instances", () => {
  it("refuses the reported key on the other instance from its very next call", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kg-leaks-"));
    const redis = await startRedis();
    const database = await freshDatabase(join(dir, "keygate.db"));
    const env = {
      KEYGATE_DATABASE_URL: database.url,
      KEYGATE_REDIS_URL: redis.url,
      KEYGATE_LEAK_REPORTER_KEYS: REPORTER_KEYS,
    };
    const a = await harness(env);
    const b = await harness(env);
    try {
      const { key } = await a.mint(a.adminToken);
      expectStatus(await b.ext("GET", "/whoami", key), 200); // cached on b
      expectStatus(await report(a, [leak(key)]), 200);
      const next = await b.ext("GET", "/whoami", key);
      expectStatus(next, 401);
      expect(next.json().error.code).toBe("API_KEY_REVOKED");
    } finally {
      await a.close();
      await b.close();
      await database.drop();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("leak reporter keys from a file", () => {
  it("takes a scanner's new key from the file without a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kg-leak-keys-"));
    const file = join(dir, "keys.json");
    writeFileSync(file, REPORTER_KEYS);
    const h = await harness({ KEYGATE_LEAK_REPORTER_KEYS: file });
    try {
      const { key } = await h.mint(h.adminToken);
      const body = JSON.stringify([leak(key)]);
      const rotated = { kid: "new-key", sig: signed(body, stranger.privateKey), body };
      // The scanner publishes its new key; the operator saves the document again.
      const doc = JSON.parse(REPORTER_KEYS) as { public_keys: object[] };
      doc.public_keys.push({
        key_identifier: "new-key",
        key: stranger.publicKey.export({ type: "spki", format: "pem" }),
        is_current: true,
      });
      writeFileSync(file, JSON.stringify(doc));
      const res = await report(h, null, rotated);
      expectStatus(res, 200);
      expect(res.json()[0].label).toBe("true_positive");
      // The keys there were still verify, and an unknown key is still refused.
      expectStatus(await report(h, []), 200);
      expectStatus(await report(h, null, { ...rotated, kid: "other" }), 401);
    } finally {
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
