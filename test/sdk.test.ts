import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  AuthenticationError,
  Keygate,
  KeygateError,
  PermissionError,
  SignatureError,
  TokenExchangeError,
} from "../sdk/src/index.js";
import { freshDatabase } from "./helpers.js";
import { call, type Server, startKeygate } from "./process.js";

/**
 * The SDK against the real Keygate process: signed calls with a key minted with signing
 * "required", the refusals of a tampered, unsigned or replayed one as KeygateErrors, and
 * token exchange (Bearer instead of X-API-Key) with its refresh before expiry and after a
 * revoked token.
 */

const PASSWORD = "sdk-admin-password";

type Minted = { key: string; id: number; secret: string | undefined };

describe("the SDK against a real Keygate", () => {
  let dir: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let server: Server;
  let admin: Record<string, string>;
  let service: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "keygate-sdk-"));
    db = await freshDatabase(join(dir, "keygate.db"));
    server = await startKeygate({
      ...process.env,
      KEYGATE_DATABASE_URL: db.url,
      KEYGATE_ADMIN_PASSWORD: PASSWORD,
      KEYGATE_MASTER_KEY: randomBytes(32).toString("hex"),
      KEYGATE_MASTER_KEY_FILE: undefined,
      KEYGATE_PUBLIC_URL: undefined,
      KEYGATE_IP_RATE_LIMIT: "0",
      KEYGATE_FAILED_KEY_LIMIT: "0",
    });
    const login = await call(
      server.base,
      "POST",
      "/api/auth/login",
      {},
      {
        username: "admin",
        password: PASSWORD,
      },
    );
    expect(login.status).toBe(200);
    admin = { authorization: `Bearer ${login.json.data.access_token}` };
    const created = await call(server.base, "POST", "/api/services", admin, {
      name: "Fibre 100",
      download_kbps: 100_000,
      upload_kbps: 20_000,
      price: "19.99",
    });
    expect(created.status).toBe(201);
    service = created.json.data.id;
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function mint(body: Record<string, unknown>): Promise<Minted> {
    const res = await call(server.base, "POST", "/api/api-keys", admin, body);
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    return { key: res.json.key, id: res.json.data.id, secret: res.json.signing_secret };
  }

  /** The key's call log rows, once `count` of them are written (the log is batched). */
  async function logs(id: number, count: number): Promise<Record<string, unknown>[]> {
    for (let i = 0; ; i++) {
      const res = await call(server.base, "GET", `/api/api-keys/${id}/logs`, admin);
      const rows = (res.json.data ?? []) as Record<string, unknown>[];
      if (rows.length >= count || i > 50) return rows;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function refusalOf(p: Promise<unknown>): Promise<KeygateError> {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KeygateError);
    return err as KeygateError;
  }

  describe("signed requests", () => {
    let signed: Minted;
    beforeAll(async () => {
      signed = await mint({ name: "signed billing", scopes: "write", signing: "required" });
      expect(signed.secret).toMatch(/^pks_live_[0-9a-f]{64}$/);
    });

    it("succeed with a key minted with signing required: reads, a create, a transaction", async () => {
      const kg = new Keygate({
        baseUrl: server.base,
        key: signed.key,
        signingSecret: signed.secret as string,
      });
      const me = await kg.whoami();
      expect(me.key_prefix).toBe(signed.key.slice(0, 12));
      const subscriber = await kg.subscribers.create({
        username: "signed-sub",
        password: "auto-generate",
        service_id: service,
        full_name: "Zoë Signé",
      });
      expect(subscriber.password).toBeTruthy();
      expect(await kg.subscribers.get(subscriber.id)).toMatchObject({ full_name: "Zoë Signé" });
      expect(
        (await kg.subscribers.list({ search: "signed", per_page: 5 })).data.map((s) => s.id),
      ).toEqual([subscriber.id]);
      const t = await kg.transactions.create({
        subscriber_id: subscriber.id,
        amount: "25.00",
        reference: "sdk-signed-1",
      });
      expect(t.amount).toBe(25);
      // The same reference again: the first transaction, nothing doubled.
      expect(
        (
          await kg.transactions.create({
            subscriber_id: subscriber.id,
            amount: "25.00",
            reference: "sdk-signed-1",
          })
        ).id,
      ).toBe(t.id);
      await kg.subscribers.suspend(subscriber.id);
      const rows = await logs(signed.id, 7);
      expect(rows.filter((r) => r.status_code === 200 || r.status_code === 201).length).toBe(7);
      for (const r of rows) expect(r.credential).toBe("signature");
    });

    it("refuses an unsigned call with SIGNATURE_REQUIRED, as a SignatureError", async () => {
      const bare = new Keygate({ baseUrl: server.base, key: signed.key });
      const err = await refusalOf(bare.whoami());
      expect(err).toBeInstanceOf(SignatureError);
      expect(err).toMatchObject({ status: 401, code: "SIGNATURE_REQUIRED" });
      expect(err.requestId).toBeTruthy();
    });

    it("refuses a tampered body, URL or secret with SIGNATURE_INVALID", async () => {
      // A fetch between the client and the server that changes what was signed.
      const tamper =
        (change: (url: string, init: RequestInit) => [string, RequestInit]): typeof fetch =>
        (input, init) =>
          fetch(...change(String(input), init ?? {}));
      const body = tamper((url, init) => [
        url,
        {
          ...init,
          body: Buffer.from(String(Buffer.from(init.body as Uint8Array)).replace("1.00", "100")),
        },
      ]);
      const kg = new Keygate({
        baseUrl: server.base,
        key: signed.key,
        signingSecret: signed.secret as string,
        fetch: body,
      });
      const first = await new Keygate({
        baseUrl: server.base,
        key: signed.key,
        signingSecret: signed.secret as string,
      }).subscribers.list();
      const subscriber = first.data[0]?.id as number;
      const err = await refusalOf(
        kg.transactions.create({ subscriber_id: subscriber, amount: "1.00" }),
      );
      expect(err).toBeInstanceOf(SignatureError);
      expect(err).toMatchObject({ status: 401, code: "SIGNATURE_INVALID" });
      expect(err.message).toContain("Content-Digest");

      const moved = new Keygate({
        baseUrl: server.base,
        key: signed.key,
        signingSecret: signed.secret as string,
        fetch: tamper((url, init) => [url.replace("per_page=5", "per_page=500"), init]),
      });
      const err2 = (await refusalOf(moved.subscribers.list({ per_page: 5 }))) as SignatureError;
      expect(err2).toMatchObject({ code: "SIGNATURE_INVALID" });
      // The base the server computed names the URL it received.
      expect(err2.signatureBase).toContain("per_page=500");

      const wrongSecret = new Keygate({
        baseUrl: server.base,
        key: signed.key,
        signingSecret: `pks_live_${"0".repeat(64)}`,
      });
      expect(await refusalOf(wrongSecret.whoami())).toMatchObject({ code: "SIGNATURE_INVALID" });
      // Nothing was recorded by the refused transaction.
      const list = await new Keygate({
        baseUrl: server.base,
        key: signed.key,
        signingSecret: signed.secret as string,
      }).transactions.list({ subscriber_id: subscriber });
      expect(list.data.map((t) => t.amount)).not.toContain(100);
    });

    it("refuses a replayed request with SIGNATURE_REPLAYED", async () => {
      // A fetch that sends each request twice, the same headers both times.
      let second: Response | undefined;
      const twice: typeof fetch = async (input, init) => {
        const first = await fetch(input, init);
        second = await fetch(input, init);
        return first;
      };
      const kg = new Keygate({
        baseUrl: server.base,
        key: signed.key,
        signingSecret: signed.secret as string,
        fetch: twice,
      });
      await kg.whoami();
      expect(second?.status).toBe(401);
      expect(((await second?.json()) as { error: { code: string } }).error.code).toBe(
        "SIGNATURE_REPLAYED",
      );
    });
  });

  describe("token exchange", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    /** The requests a client sends, by path. */
    function counting(): { fetch: typeof fetch; paths: string[] } {
      const paths: string[] = [];
      return {
        paths,
        fetch: (input, init) => {
          paths.push(new URL(String(input)).pathname.replace("/api/v1/external", ""));
          return fetch(input, init);
        },
      };
    }

    it("sends a Bearer token instead of the key, and a narrowed scope is held to", async () => {
      const k = await mint({ name: "token billing", scopes: "write" });
      const seen = counting();
      const kg = new Keygate({
        baseUrl: server.base,
        key: k.key,
        tokenExchange: true,
        fetch: seen.fetch,
      });
      expect((await kg.whoami()).key_prefix).toBe(k.key.slice(0, 12));
      await kg.subscribers.list();
      expect(seen.paths).toEqual(["/oauth/token", "/whoami", "/subscribers"]);
      const token = await kg.accessToken();
      expect(token.split(".")).toHaveLength(3);
      const rows = await logs(k.id, 2);
      expect(rows.filter((r) => r.credential === "token").length).toBeGreaterThanOrEqual(2);

      const narrow = new Keygate({
        baseUrl: server.base,
        key: k.key,
        tokenExchange: { scope: ["subscribers:read"] },
      });
      await narrow.subscribers.list();
      const err = await refusalOf(narrow.transactions.create({ subscriber_id: 1, amount: 1 }));
      expect(err).toBeInstanceOf(PermissionError);
      expect(err).toMatchObject({ status: 403, code: "SCOPE_REQUIRED" });
    });

    it("refreshes the token shortly before it expires", async () => {
      const k = await mint({ name: "token refresh", scopes: "read" });
      const seen = counting();
      const kg = new Keygate({
        baseUrl: server.base,
        key: k.key,
        tokenExchange: true,
        fetch: seen.fetch,
      });
      await kg.whoami();
      const first = await kg.accessToken();
      // The client's clock moves on to the token's last minute: it exchanges again.
      vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 3_560_000 });
      await kg.whoami();
      vi.useRealTimers();
      expect(seen.paths).toEqual(["/oauth/token", "/whoami", "/oauth/token", "/whoami"]);
      expect(await kg.accessToken()).not.toBe(first);
    });

    it("with a signing secret: a key with signing optional exchanges and calls signed; one with signing required is refused a token", async () => {
      const optional = await mint({ name: "token signed", scopes: "read", signing: "optional" });
      const kg = new Keygate({
        baseUrl: server.base,
        key: optional.key,
        signingSecret: optional.secret as string,
        tokenExchange: true,
      });
      expect((await kg.whoami()).key_prefix).toBe(optional.key.slice(0, 12));
      const required = await mint({ name: "token required", scopes: "read", signing: "required" });
      const refused = await refusalOf(
        new Keygate({
          baseUrl: server.base,
          key: required.key,
          signingSecret: required.secret as string,
          tokenExchange: true,
        }).whoami(),
      );
      expect(refused).toBeInstanceOf(TokenExchangeError);
      expect(refused).toMatchObject({ status: 400, code: "unauthorized_client" });
    });

    it("replaces a revoked token once and carries on; a revoked key is thrown", async () => {
      const k = await mint({ name: "token revoked", scopes: "read" });
      const seen = counting();
      const kg = new Keygate({
        baseUrl: server.base,
        key: k.key,
        tokenExchange: true,
        fetch: seen.fetch,
      });
      await kg.whoami();
      const token = await kg.accessToken();
      const basic = Buffer.from(`${k.key.slice(0, 12)}:${k.key}`).toString("base64");
      const revoked = await fetch(`${server.base}/api/v1/external/oauth/revoke`, {
        method: "POST",
        headers: {
          authorization: `Basic ${basic}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ token }).toString(),
      });
      expect(revoked.status).toBe(200);
      await kg.whoami();
      expect(seen.paths).toEqual(["/oauth/token", "/whoami", "/whoami", "/oauth/token", "/whoami"]);
      expect(await kg.accessToken()).not.toBe(token);

      // Revoking the key refuses its tokens, and a new token too.
      const res = await call(server.base, "DELETE", `/api/api-keys/${k.id}`, admin);
      expect(res.status).toBe(200);
      const err = await refusalOf(kg.whoami());
      expect(err).toBeInstanceOf(KeygateError);
      expect(err.status).toBe(401);
      expect(err instanceof AuthenticationError || err.family === "token_exchange").toBe(true);
    });
  });
});
