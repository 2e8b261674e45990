/**
 * Scenario C, a peer doing the same job in the same Fastify shape: verify a credential header
 * through better-auth on SQLite (better-sqlite3) and answer a whoami-like JSON.
 *
 * better-auth's API-key plugin is its own package, `@better-auth/api-key`, since better-auth
 * 1.4; `better-auth/plugins` no longer exports `apiKey`. When that package can be imported, the
 * peer verifies `X-API-Key` through it (`auth.api.verifyApiKey`). When it cannot, the peer
 * verifies a better-auth session token sent as `Authorization: Bearer` (bearer plugin,
 * `auth.api.getSession`), the nearest job better-auth itself can do here, and says so.
 *
 * Prints `peer: mode <api-key|session> <header> <credential>` and then `peer: listening on <url>`.
 */
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { bearer } from "better-auth/plugins";
import SQLite from "better-sqlite3";
import Fastify from "fastify";

type Verified = { id: string; name: string; userId: string; email: string } | null;

const dbPath = process.env.BENCH_PEER_DB ?? ":memory:";
const db = new SQLite(dbPath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");

// A specifier in a variable: the package is optional, and type-checking must not require it.
const API_KEY_PACKAGE = "@better-auth/api-key";
type PluginFactory = (opts?: Record<string, unknown>) => unknown;
async function optionalApiKeyPlugin(): Promise<PluginFactory | null> {
  try {
    const mod = (await import(API_KEY_PACKAGE)) as { apiKey?: PluginFactory };
    return mod.apiKey ?? null;
  } catch {
    return null;
  }
}
const apiKeyPlugin = await optionalApiKeyPlugin();
const mode = apiKeyPlugin ? "api-key" : "session";

const auth = betterAuth({
  database: db,
  secret: "bench-secret-bench-secret-bench-secret-0123",
  baseURL: "http://127.0.0.1",
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  logger: { disabled: true },
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the optional plugin has no types here
  plugins: apiKeyPlugin ? [apiKeyPlugin() as any] : [bearer()],
});
const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const signUp = await auth.api.signUpEmail({
  body: { email: "peer@example.com", password: "peer-password-123", name: "peer" },
  returnHeaders: true,
});
const user = signUp.response.user;

// The plugin's server API, as its documentation describes it; absent in session mode.
type ApiKeyApi = {
  createApiKey(a: { body: Record<string, unknown> }): Promise<{ key: string }>;
  verifyApiKey(a: {
    body: { key: string };
  }): Promise<{ valid: boolean; key: { id: string; name: string | null; userId: string } | null }>;
};

let header: string;
let credential: string;
let verify: (value: string | undefined) => Promise<Verified>;

if (mode === "api-key") {
  const api = auth.api as unknown as ApiKeyApi;
  // Rate limiting on (as in Keygate) with a budget the benchmark cannot exhaust.
  const created = await api.createApiKey({
    body: {
      userId: user.id,
      name: "bench",
      rateLimitEnabled: true,
      rateLimitTimeWindow: 60_000,
      rateLimitMax: 1_000_000_000,
    },
  });
  header = "x-api-key";
  credential = created.key;
  verify = async (value) => {
    if (!value) return null;
    const r = await api.verifyApiKey({ body: { key: value } });
    if (!r.valid || !r.key) return null;
    return { id: r.key.id, name: r.key.name ?? "", userId: r.key.userId, email: user.email };
  };
} else {
  header = "authorization";
  credential = `Bearer ${signUp.headers.get("set-auth-token") ?? ""}`;
  verify = async (value) => {
    if (!value) return null;
    const s = await auth.api.getSession({ headers: new Headers({ authorization: value }) });
    if (!s) return null;
    return { id: s.session.id, name: s.user.name, userId: s.user.id, email: s.user.email };
  };
}

const app = Fastify({ logger: false });
app.get("/api/v1/external/whoami", async (request, reply) => {
  const raw = request.headers[header];
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
      key_prefix: credential.replace(/^Bearer /, "").slice(0, 12),
      scopes: "read",
      owner: { id: v.userId, username: v.email, role: "admin" },
      expires_at: null,
      rate_limit_per_minute: 0,
      allowed_ips: null,
      client_ip: request.ip,
    },
  };
});

const address = await app.listen({ host: "127.0.0.1", port: Number(process.env.BENCH_PORT ?? 0) });
process.stdout.write(`peer: mode ${mode} ${header} ${credential}\n`);
process.stdout.write(`peer: listening on ${address}\n`);
process.on("SIGTERM", () => {
  void app.close().then(() => {
    db.close();
    process.exit(0);
  });
});
