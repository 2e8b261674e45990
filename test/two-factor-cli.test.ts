import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { totpAt } from "../src/auth/totp.js";
import { expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";
import { expectOneLine, runKeygate } from "./process.js";

// `keygate reset-2fa`, the real command against the database an in-process Keygate uses.

const dir = mkdtempSync(join(tmpdir(), "keygate-2fa-cli-"));
let database: Awaited<ReturnType<typeof freshDatabase>>;
let h: Harness;
let env: Record<string, string>;
const printed: string[] = [];

async function keygate(args: string[]) {
  const r = await runKeygate(args, env);
  printed.push(r.out, r.err);
  return r;
}

beforeAll(async () => {
  database = await freshDatabase(join(dir, "2fa.db"));
  env = { KEYGATE_DATABASE_URL: database.url, KEYGATE_REQUIRE_2FA: "all" };
  h = await harness(env);
});
afterAll(async () => {
  await h?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("keygate reset-2fa", () => {
  let secret = "";
  let codes: string[] = [];

  it("turns off a locked-out user's second factor, voids its recovery codes and ends its sessions", async () => {
    const alice = await h.user("alice");
    const enrol = await h.api("POST", "/api/auth/2fa/enrol", alice.token, {
      password: "alice-password",
    });
    expectStatus(enrol, 200);
    secret = enrol.json().data.secret;
    const confirm = await h.api("POST", "/api/auth/2fa/confirm", alice.token, {
      code: totpAt(secret, Date.now()),
    });
    expectStatus(confirm, 200);
    codes = confirm.json().data.recovery_codes;
    const session = await h.api("POST", "/api/auth/login", undefined, {
      username: "alice",
      password: "alice-password",
      recovery_code: codes[0],
    });
    expectStatus(session, 200);
    const refresh = session.json().data.refresh_token as string;

    const r = await keygate(["reset-2fa", "alice"]);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toBe("");
    expect(r.out).toContain('two-factor sign-in of "alice" is off');
    expect(r.out).toContain('KEYGATE_REQUIRE_2FA=all: "alice" must turn it on again');

    // The password alone signs in again; the old session and the recovery codes are gone.
    const plain = await h.api("POST", "/api/auth/login", undefined, {
      username: "alice",
      password: "alice-password",
    });
    expectStatus(plain, 200);
    expect(plain.json().data.user.username).toBe("alice");
    expectStatus(
      await h.api("POST", "/api/auth/refresh", undefined, { refresh_token: refresh }),
      401,
    );
    const token = plain.json().data.access_token as string;
    const status = await h.api("GET", "/api/auth/2fa", token);
    expect(status.json().data).toMatchObject({
      enabled: false,
      pending: false,
      recovery_codes_left: 0,
      required: true,
    });
    // Required for everyone here: it must be turned on again before minting.
    const mint = await h.api("POST", "/api/api-keys", token, {});
    expectStatus(mint, 403);

    const audit = await h.api("GET", "/api/audit?action=auth.2fa_reset", h.adminToken);
    const [entry] = audit.json().data;
    expect(entry).toMatchObject({
      via: "cli",
      actor_id: null,
      target_type: "user",
      details: { username: "alice", was_enabled: true },
    });
    expect(entry.actor_username).toMatch(/.@./);
  });

  it("leaves a user without two-factor as it is, and refuses an unknown user", async () => {
    const again = await keygate(["reset-2fa", "alice"]);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toBe('"alice" does not have two-factor sign-in; nothing was changed\n');

    const nobody = await keygate(["reset-2fa", "nobody"]);
    expect(nobody.out).toBe("");
    expectOneLine(nobody, 2, /no user "nobody"/);
    const missing = await keygate(["reset-2fa"]);
    expectOneLine(missing, 2, /reset-2fa needs <username>/);
    const help = await keygate(["reset-2fa", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: keygate reset-2fa <username>/);
    const list = await keygate(["--help"]);
    expect(list.out).toContain("reset-2fa");
  });

  it("printed no secret and no recovery code", () => {
    const all = printed.join("\n");
    expect(secret).not.toBe("");
    expect(all).not.toContain(secret);
    for (const c of codes) expect(all).not.toContain(c);
  });
});
