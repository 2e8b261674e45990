import { createHmac, hash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import { call, freePort, type Pinning, type Server, startServer } from "./lib.js";

export const ADMIN_PASSWORD = "bench-admin-password";
/** The bench server's master key, so it can mint signed keys. */
export const MASTER_KEY = "5e".repeat(32);

/** Limits raised so the load is never refused: what is measured is the work, not a 429. */
export const UNLIMITED = {
  KEYGATE_IP_RATE_LIMIT: "0",
  // The largest per-key limit the configuration accepts (10,000,000 per minute).
  KEYGATE_KEY_RATE_LIMIT: "10000000",
  KEYGATE_FAILED_KEY_LIMIT: "0",
};

export type Keygate = Server & { dir: string; dbPath: string; cleanup: () => void };

/** Starts the real server process (`node --import tsx src/main.ts`) on a fresh SQLite file (or `env`'s database). */
export async function startKeygate(
  pinning: Pinning,
  opts: {
    nodeArgs?: string[];
    dir?: string;
    cwd?: string;
    name?: string;
    /** More environment, over the defaults (e.g. KEYGATE_DATABASE_URL for PostgreSQL). */
    env?: Record<string, string>;
  } = {},
): Promise<Keygate> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "keygate-bench-"));
  const dbPath = join(dir, "keygate.db");
  const port = await freePort();
  const server = await startServer({
    name: opts.name ?? "keygate",
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    nodeArgs: [...(opts.nodeArgs ?? []), "--import", "tsx", "src/main.ts"],
    env: {
      TMPDIR: tmpdir(),
      KEYGATE_DATABASE_URL: `sqlite:${dbPath}`,
      KEYGATE_HOST: "127.0.0.1",
      KEYGATE_PORT: String(port),
      KEYGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      KEYGATE_LOG_LEVEL: "warn",
      KEYGATE_MASTER_KEY: MASTER_KEY,
      ...UNLIMITED,
      ...opts.env,
    },
    pinning,
  });
  return { ...server, dir, dbPath, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export type Fixture = {
  token: string;
  adminId: number;
  /** A read key minted through the API. */
  key: string;
  keyId: number;
  /** A key minted and then revoked through the API. */
  revokedKey: string;
  subscriberId: number;
  /** A read key that requires signed requests, and its signing secret (null on a revision without signing). */
  signed: { key: string; secret: string } | null;
  /** An access token exchanged for `key` (null on a revision without the token endpoint). */
  accessToken: string | null;
};

/** Sets up what the scenarios need through the HTTP API, as an integration would. */
export async function setUpFixture(base: string): Promise<Fixture> {
  const must = (what: string, r: { status: number; text: string }, status: number) => {
    if (r.status !== status) throw new Error(`${what}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  };
  const login = await call(base, "POST", "/api/auth/login", {
    body: { username: "admin", password: ADMIN_PASSWORD },
  });
  must("login", login, 200);
  const token = (login.json.data as { access_token: string }).access_token;
  const me = await call(base, "GET", "/api/auth/me", { token });
  must("me", me, 200);
  const adminId = (me.json.data as { id: number }).id;

  const svc = await call(base, "POST", "/api/services", {
    token,
    body: { name: "Fibre 100", price: 30, download_kbps: 100_000, upload_kbps: 20_000 },
  });
  must("create service", svc, 201);
  const serviceId = (svc.json.data as { id: number }).id;
  const sub = await call(base, "POST", "/api/subscribers", {
    token,
    body: {
      username: "bench-subscriber",
      password: "bench-pass",
      full_name: "Bench Subscriber",
      email: "bench@example.com",
      service_id: serviceId,
    },
  });
  must("create subscriber", sub, 201);
  const subscriberId = (sub.json.data as { id: number }).id;

  const minted = await call(base, "POST", "/api/api-keys", {
    token,
    body: { name: "bench", scopes: "read" },
  });
  must("mint key", minted, 201);
  const revoked = await call(base, "POST", "/api/api-keys", {
    token,
    body: { name: "bench-revoked", scopes: "read" },
  });
  must("mint key to revoke", revoked, 201);
  const revokedId = (revoked.json.data as { id: number }).id;
  must("revoke", await call(base, "DELETE", `/api/api-keys/${revokedId}`, { token }), 200);

  const signedKey = await call(base, "POST", "/api/api-keys", {
    token,
    body: { name: "bench-signed", scopes: "read", signing: "required" },
  });
  const key = minted.json.key as string;
  const exchanged = await fetch(`${base}/api/v1/external/oauth/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${key.slice(0, 12)}:${key}`).toString("base64")}`,
    },
    body: "grant_type=client_credentials",
  });
  const secret = signedKey.json.signing_secret as string | undefined;
  return {
    token,
    adminId,
    key,
    keyId: (minted.json.data as { id: number }).id,
    revokedKey: revoked.json.key as string,
    subscriberId,
    signed:
      signedKey.status === 201 && secret !== undefined
        ? { key: signedKey.json.key as string, secret }
        : null,
    accessToken:
      exchanged.status === 200
        ? ((await exchanged.json()) as { access_token: string }).access_token
        : null,
  };
}

/**
 * Well-formed keys that are distinct per run and per index, without keeping a list:
 * `pk_live_` + 16 hex of run tag + 16 hex of the index.
 */
export function keyMaker(tag = randomBytes(8).toString("hex")): (i: number) => string {
  return (i) => `pk_live_${tag}${i.toString(16).padStart(16, "0")}`;
}

/**
 * Inserts `count` read keys owned by `ownerId` straight into the SQLite file, as the API would
 * store them (only the SHA-256 hex of the key and its display prefix). Safe while the server
 * runs (WAL); returns the number inserted.
 */
export function seedKeys(
  dbPath: string,
  ownerId: number,
  count: number,
  keyOf: (i: number) => string,
  onProgress?: (done: number) => void,
): number {
  const db = new SQLite(dbPath);
  try {
    db.pragma("busy_timeout = 10000");
    const now = new Date().toISOString();
    const insert = db.prepare(
      `insert into api_keys (name, key_hash, key_prefix, scopes, owner_id, created_at, created_by, updated_at)
       values (?, ?, ?, 'read', ?, ?, ?, ?)`,
    );
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const key = keyOf(i);
        insert.run(
          `seed-${i}`,
          hash("sha256", key, "hex"),
          key.slice(0, 12),
          ownerId,
          now,
          ownerId,
          now,
        );
      }
    });
    const step = 50_000;
    for (let from = 0; from < count; from += step) {
      batch(from, Math.min(count, from + step));
      onProgress?.(Math.min(count, from + step));
    }
    return count;
  } finally {
    db.close();
  }
}

/** Rows in the call log, read from the SQLite file. */
export function callLogRows(dbPath: string): number {
  const db = new SQLite(dbPath, { readonly: true });
  try {
    db.pragma("busy_timeout = 10000");
    return (db.prepare("select count(*) as n from api_key_logs").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * The headers of one RFC 9421 signed GET of `url` (hmac-sha256 over @method and @target-uri,
 * created now, a fresh nonce), built directly: the bench needs tens of thousands per run.
 */
export function signedGet(url: string, key: string, secret: string): Record<string, string> {
  const created = Math.floor(Date.now() / 1000);
  const nonce = randomBytes(12).toString("base64url");
  const params = `("@method" "@target-uri");created=${created};keyid="${key.slice(0, 12)}";alg="hmac-sha256";nonce="${nonce}"`;
  const base = `"@method": GET\n"@target-uri": ${url}\n"@signature-params": ${params}`;
  const signature = createHmac("sha256", Buffer.from(secret, "utf8")).update(base).digest("base64");
  return {
    "x-api-key": key,
    "signature-input": `sig1=${params}`,
    signature: `sig1=:${signature}:`,
  };
}
