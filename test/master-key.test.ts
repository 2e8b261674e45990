import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSigner, httpbis } from "http-message-signatures";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kekId, sealedUnder } from "../src/credentials/secrets.js";
import { openDatabase } from "../src/store/database.js";
import { freshDatabase } from "./helpers.js";
import {
  call,
  type CommandRun,
  expectOneLine,
  runKeygate,
  type Server,
  startKeygate,
} from "./process.js";

// A master-key rotation as an operator runs it: real servers on one database, restarted with
// new settings, and the real `keygate rotate-master-key` between them. Requests are signed by
// http-message-signatures, an implementation written elsewhere.

const A = randomBytes(32).toString("hex");
const B = randomBytes(32).toString("hex");
const C = randomBytes(32).toString("base64");
const idOf = (hex: string) =>
  kekId(Buffer.from(hex, /^[0-9a-f]{64}$/.test(hex) ? "hex" : "base64"));
const PASSWORD = "admin-password-1";

const dir = mkdtempSync(join(tmpdir(), "keygate-master-key-"));
let database: Awaited<ReturnType<typeof freshDatabase>>;
const running: Server[] = [];

beforeAll(async () => {
  database = await freshDatabase(join(dir, "keygate.db"));
});
afterAll(async () => {
  for (const s of running) await s.stop();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** The settings every instance and the command share, with these master keys. */
function settings(current: string | null, previous?: string): Record<string, string> {
  return {
    KEYGATE_DATABASE_URL: database.url,
    KEYGATE_ADMIN_PASSWORD: PASSWORD,
    ...(current === null ? {} : { KEYGATE_MASTER_KEY: current }),
    ...(previous === undefined ? {} : { KEYGATE_MASTER_KEY_PREVIOUS: previous }),
  };
}

async function start(current: string | null, previous?: string): Promise<Server> {
  const s = await startKeygate(settings(current, previous));
  running.push(s);
  return s;
}
async function stop(s: Server): Promise<void> {
  await s.stop();
  running.splice(running.indexOf(s), 1);
}

const rotate = (env: Record<string, string>, ...args: string[]): Promise<CommandRun> =>
  runKeygate(["rotate-master-key", ...args], env);

/** A whoami signed with the key's secret, sent to the server. */
async function signedWhoami(base: string, key: string, secret: string) {
  const url = `${base}/api/v1/external/whoami`;
  const signed = await httpbis.signMessage(
    {
      key: createSigner(Buffer.from(secret, "utf8"), "hmac-sha256", key.slice(0, 12)),
      fields: ["@method", "@target-uri"],
      params: ["created", "keyid", "alg", "nonce"],
      paramValues: { created: new Date(), nonce: randomBytes(16).toString("base64url") },
    },
    { method: "GET", url, headers: { "x-api-key": key } },
  );
  const res = await fetch(url, { headers: signed.headers as Record<string, string> });
  return { status: res.status, json: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function exchange(base: string, key: string) {
  const res = await fetch(`${base}/api/v1/external/oauth/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}`,
    },
    body: "grant_type=client_credentials",
  });
  return { status: res.status, json: (await res.json()) as Record<string, string> };
}

async function login(base: string): Promise<string> {
  const r = await call(
    base,
    "POST",
    "/api/auth/login",
    {},
    { username: "admin", password: PASSWORD },
  );
  return r.json.data.access_token as string;
}

const bearerWhoami = (base: string, token: string) =>
  call(base, "GET", "/api/v1/external/whoami", { authorization: `Bearer ${token}` });

/** What the database holds sealed: each signing secret and token-signing key, by row. */
async function sealed(): Promise<{ secrets: string[]; tokenKeys: string[] }> {
  const db = await openDatabase(database.url, { migrate: false });
  try {
    const secrets = await db.db
      .selectFrom("api_keys")
      .select("signing_secret")
      .where("signing_secret", "is not", null)
      .orderBy("id")
      .execute();
    const tokenKeys = await db.db
      .selectFrom("oauth_signing_keys")
      .select("private_jwk")
      .orderBy("kid")
      .execute();
    return {
      secrets: secrets.map((r) => r.signing_secret as string),
      tokenKeys: tokenKeys.map((r) => r.private_jwk),
    };
  } finally {
    await db.close();
  }
}
const under = (values: string[]) => values.map((v) => sealedUnder(v));

describe("keygate rotate-master-key", () => {
  let signed: { key: string; secret: string; id: number };
  let plain: string;
  let token: string;
  let kid: string;

  it("mints a signed key and a token-signing key under master key A", async () => {
    const server = await start(A);
    const admin = { authorization: `Bearer ${await login(server.base)}` };
    const s = await call(server.base, "POST", "/api/api-keys", admin, {
      name: "signed",
      signing: "required",
    });
    expect(s.status).toBe(201);
    signed = { key: s.json.key, secret: s.json.signing_secret, id: s.json.data.id };
    const p = await call(server.base, "POST", "/api/api-keys", admin, { name: "tokens" });
    plain = p.json.key;
    expect((await signedWhoami(server.base, signed.key, signed.secret)).status).toBe(200);
    const t = await exchange(server.base, plain);
    expect(t.status).toBe(200);
    token = t.json.access_token as string;
    kid = decodeProtectedHeader(token).kid as string;
    await stop(server);

    const at = await sealed();
    expect(under(at.secrets)).toEqual([idOf(A)]);
    expect(under(at.tokenKeys)).toEqual([idOf(A)]);
  });

  it("refuses, changing nothing, when the old key is not configured; says what to set without any", async () => {
    const before = await sealed();
    const alone = await rotate(settings(B));
    expectOneLine(
      alone,
      1,
      new RegExp(
        `1 signing secret \\(of key ${signed.id} \\(${signed.key.slice(0, 12)}…\\)\\) is sealed under master key ${idOf(A)}, which neither KEYGATE_MASTER_KEY \\(${idOf(B)}\\) nor KEYGATE_MASTER_KEY_PREVIOUS holds`,
      ),
    );
    expect(alone.err).toMatch(
      /1 token-signing key is sealed under master key .*--discard-unreadable-token-keys/,
    );
    expect(alone.err).toMatch(/; nothing was changed\n$/);
    expect(alone.out).toBe("");

    const none = await rotate(settings(null));
    expectOneLine(
      none,
      1,
      /rotate-master-key needs the new master key: set KEYGATE_MASTER_KEY \(or KEYGATE_MASTER_KEY_FILE\) to it and KEYGATE_MASTER_KEY_PREVIOUS to the old one\(s\)/,
    );
    const wrong = await rotate(settings(B, "not-a-key"));
    expectOneLine(
      wrong,
      1,
      /^keygate: KEYGATE_MASTER_KEY_PREVIOUS must hold the earlier master key\(s\)/,
    );
    const orphan = await rotate(settings(null, A));
    expectOneLine(orphan, 1, /KEYGATE_MASTER_KEY_PREVIOUS is set without KEYGATE_MASTER_KEY/);
    for (const r of [alone, none, wrong, orphan]) {
      expect(r.err).not.toContain(A);
      expect(r.err).not.toContain(B);
    }
    expect(await sealed()).toEqual(before);
  });

  it("reseals under B while an instance with B and A serves signed calls and tokens throughout; a second run reseals nothing", async () => {
    // Step 1 of the procedure: the instance runs with the new key, the old one as previous.
    const server = await start(B, A);
    expect((await signedWhoami(server.base, signed.key, signed.secret)).status).toBe(200);
    expect((await bearerWhoami(server.base, token)).status).toBe(200);

    // Step 2.
    const first = await rotate(settings(B, A));
    expect(first.code, first.err).toBe(0);
    expect(first.err).toBe("");
    expect(first.out).toBe(
      `resealed 1 signing secret and 1 token-signing key under master key ${idOf(B)}; remove KEYGATE_MASTER_KEY_PREVIOUS once every instance runs with the new key\n`,
    );
    const at = await sealed();
    expect(under(at.secrets)).toEqual([idOf(B)]);
    expect(under(at.tokenKeys)).toEqual([idOf(B)]);

    // The running instance goes on: signed calls, the old token, new tokens with the same key.
    expect((await signedWhoami(server.base, signed.key, signed.secret)).status).toBe(200);
    expect((await bearerWhoami(server.base, token)).status).toBe(200);
    const t = await exchange(server.base, plain);
    expect(t.status).toBe(200);
    expect(decodeProtectedHeader(t.json.access_token as string).kid).toBe(kid);

    const second = await rotate(settings(B, A));
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(
      /^resealed 0 signing secrets and 0 token-signing keys under master key/,
    );
    expect(await sealed()).toEqual(at);
    await stop(server);
  });

  it("works on a server with only B: the signed key verifies, the token-signing key keeps signing", async () => {
    const server = await start(B);
    expect((await signedWhoami(server.base, signed.key, signed.secret)).status).toBe(200);
    expect((await bearerWhoami(server.base, token)).status).toBe(200);
    const t = await exchange(server.base, plain);
    expect(t.status).toBe(200);
    expect(decodeProtectedHeader(t.json.access_token as string).kid).toBe(kid);
    expect((await bearerWhoami(server.base, t.json.access_token as string)).status).toBe(200);

    // The audit trail has the rotation, once: the counts, no key material.
    const audit = await call(server.base, "GET", "/api/audit?action=master_key.rotate", {
      authorization: `Bearer ${await login(server.base)}`,
    });
    expect(audit.status).toBe(200);
    expect(audit.json.data).toHaveLength(1);
    expect(audit.json.data[0]).toMatchObject({
      via: "cli",
      target_type: "master_key",
      target_id: idOf(B),
      details: { signing_secrets: 1, token_signing_keys: 1, discarded_token_signing_keys: 0 },
    });
    await stop(server);
  });

  it("leaves a server with only A unable to open them: signed calls SIGNATURE_INVALID, tokens 503", async () => {
    const server = await start(A);
    const refused = await signedWhoami(server.base, signed.key, signed.secret);
    expect(refused.status).toBe(401);
    expect(refused.json.error.code).toBe("SIGNATURE_INVALID");
    expect(refused.json.error.message).toMatch(
      /sealed under a master key this server does not have/,
    );
    const t = await exchange(server.base, plain);
    expect(t.status).toBe(503);
    expect(t.json.error).toBe("temporarily_unavailable");
    await stop(server);
  });

  it("with --discard-unreadable-token-keys deletes a token-signing key no key opens; a live key's lost secret still refuses", async () => {
    // Master key B is lost: C is all there is.
    const blocked = await rotate(settings(C), "--discard-unreadable-token-keys");
    expectOneLine(
      blocked,
      1,
      /1 signing secret .* roll those keys \(keygate keys roll <id> --grace-hours 0\) for new secrets or revoke them; nothing was changed/,
    );
    expect(blocked.err).not.toContain("token-signing key");

    // Once the signed key is revoked its secret no longer matters.
    const server = await start(B);
    const auth = { authorization: `Bearer ${await login(server.base)}` };
    expect((await call(server.base, "DELETE", `/api/api-keys/${signed.id}`, auth)).status).toBe(
      200,
    );
    await stop(server);

    const refused = await rotate(settings(C));
    expectOneLine(
      refused,
      1,
      /^keygate: 1 token-signing key is sealed under master key .*; nothing was changed$/m,
    );
    const discarded = await rotate(settings(C), "--discard-unreadable-token-keys");
    expect(discarded.code, discarded.err).toBe(0);
    expect(discarded.out).toBe(
      `resealed 0 signing secrets and 0 token-signing keys under master key ${idOf(C)}; deleted 1 unreadable token-signing key: access tokens it signed stop working (a running server may still accept one it has verified until it expires; restart the servers to end that), and the servers make a new signing key for the next token; left 1 revoked key's signing secret sealed under a key no longer configured\n`,
    );
    expect((await sealed()).tokenKeys).toEqual([]);

    const fresh = await start(C);
    expect((await bearerWhoami(fresh.base, token)).status).toBe(401);
    const t = await exchange(fresh.base, plain);
    expect(t.status).toBe(200);
    expect(decodeProtectedHeader(t.json.access_token as string).kid).not.toBe(kid);
    expect((await bearerWhoami(fresh.base, t.json.access_token as string)).status).toBe(200);
    await stop(fresh);
    expect(under((await sealed()).tokenKeys)).toEqual([idOf(C)]);
  });
});
