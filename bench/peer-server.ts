/**
 * Scenario C, a peer doing the same job in the same Fastify shape: better-auth with its API-key
 * plugin (`@better-auth/api-key`, a package of its own since better-auth 1.4) on SQLite
 * (better-sqlite3), verifying `X-API-Key` through `auth.api.verifyApiKey` with the plugin's
 * per-key rate limiting on, and answering a whoami-like JSON.
 *
 * At start it creates the schema (better-auth's own migrations, plugin tables included) in
 * `BENCH_PEER_DB`, one user and one API key for that user.
 *
 * Per verified request the plugin (storage "database", updates not deferred) hashes the key
 * (SHA-256), reads the key row by hash, then writes twice: a guarded
 * `requestCount + 1, lastRequest = now` (the rate limit) and `updatedAt = now`, each an UPDATE …
 * RETURNING in its own autocommit transaction.
 *
 * Prints `peer: mode api-key x-api-key <key>` and then `peer: listening on <url>`.
 */
import { apiKey } from "@better-auth/api-key";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import SQLite from "better-sqlite3";
import Fastify from "fastify";

const HEADER = "x-api-key";
// Rate limiting on (as in Keygate) with a budget the benchmark cannot exhaust. The plugin only
// resets a key's counter after a gap of one window with no requests, so under continuous load
// the maximum bounds the whole run, not each minute.
const RATE_LIMIT_WINDOW_MS = 60_000;
const RATE_LIMIT_MAX = 1_000_000_000;

const dbPath = process.env.BENCH_PEER_DB ?? ":memory:";
const db = new SQLite(dbPath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");

const auth = betterAuth({
  database: db,
  secret: "bench-secret-bench-secret-bench-secret-0123",
  baseURL: "http://127.0.0.1",
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  logger: { disabled: true },
  plugins: [
    apiKey({
      apiKeyHeaders: HEADER,
      rateLimit: { enabled: true, timeWindow: RATE_LIMIT_WINDOW_MS, maxRequests: RATE_LIMIT_MAX },
    }),
  ],
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const { user } = await auth.api.signUpEmail({
  body: { email: "peer@example.com", password: "peer-password-123", name: "peer" },
});
// Server-side creation (no request headers): the owner is given as `userId`, and the rate-limit
// fields may be set per key.
const created = await auth.api.createApiKey({
  body: {
    userId: user.id,
    name: "bench",
    rateLimitEnabled: true,
    rateLimitTimeWindow: RATE_LIMIT_WINDOW_MS,
    rateLimitMax: RATE_LIMIT_MAX,
  },
});
if (!created.rateLimitEnabled || created.rateLimitMax !== RATE_LIMIT_MAX)
  throw new Error("the API key was created without the intended rate limit");
const credential = created.key;

type Verified = { id: string; name: string; userId: string };
async function verify(value: string | undefined): Promise<Verified | null> {
  if (!value) return null;
  const r = await auth.api.verifyApiKey({ body: { key: value } });
  if (!r.valid || !r.key) return null;
  return { id: r.key.id, name: r.key.name ?? "", userId: r.key.referenceId };
}

const app = Fastify({ logger: false });
app.get("/api/v1/external/whoami", async (request, reply) => {
  const raw = request.headers[HEADER];
  const v = await verify(Array.isArray(raw) ? raw[0] : raw);
  if (!v) {
    reply.code(401);
    return { success: false, error: { code: "INVALID_API_KEY", message: "invalid credential" } };
  }
  return {
    success: true,
    data: {
      id: v.id,
      name: v.name,
      key_prefix: credential.slice(0, 12),
      scopes: "read",
      // The only user; its name is not read per request.
      owner: { id: v.userId, username: user.email, role: "admin" },
      expires_at: null,
      rate_limit_per_minute: 0,
      allowed_ips: null,
      client_ip: request.ip,
    },
  };
});

const address = await app.listen({ host: "127.0.0.1", port: Number(process.env.BENCH_PORT ?? 0) });
process.stdout.write(`peer: mode api-key ${HEADER} ${credential}\n`);
process.stdout.write(`peer: listening on ${address}\n`);
process.on("SIGTERM", () => {
  void app.close().then(() => {
    db.close();
    process.exit(0);
  });
});
