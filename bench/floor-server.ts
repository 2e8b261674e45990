/**
 * Scenario F, the floor: the least any server can do and still meet Keygate's contract for
 * whoami, written plainly on bare Fastify — what the contract costs before any design choice.
 *
 * Per request: the key's shape (regex), SHA-256 of the key, a Map look-up by hash, a per-key
 * one-minute counter, the three RateLimit headers, and one call-log row queued in memory.
 * Rows are written in transactions of up to 2,000 by a prepared INSERT into a table with
 * api_key_logs' columns and index (second, api_key_id, id), in WAL
 * mode, after the request that filled the batch. No principal, no scopes, no IP lists, no
 * error envelopes, no schema serialisation.
 *
 * BENCH_BODY: the whoami body to answer; BENCH_FLOOR_KEY: the one valid key;
 * BENCH_FLOOR_DB: the SQLite file.
 */
import { hash } from "node:crypto";
import SQLite from "better-sqlite3";
import Fastify from "fastify";

const body = JSON.parse(process.env.BENCH_BODY ?? '{"success":true}') as Record<string, unknown>;
const key = process.env.BENCH_FLOOR_KEY ?? "";
const keys = new Map([[hash("sha256", key), { id: 1, limit: 10_000_000 }]]);
const windows = new Map<number, { start: number; count: number }>();

const db = new SQLite(process.env.BENCH_FLOOR_DB ?? ":memory:");
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.exec(`create table if not exists api_key_logs (
  id integer primary key autoincrement, api_key_id integer, timestamp text not null,
  method text not null, path text not null, status_code integer not null, ip text not null,
  latency_ms real not null, user_agent text, error_code text, second integer)`);
db.exec("create index if not exists logs_key on api_key_logs (second, api_key_id, id)");
const insert = db.prepare(`insert into api_key_logs (api_key_id, timestamp, method, path,
  status_code, ip, latency_ms, user_agent, error_code, second) values (?,?,?,?,?,?,?,?,?,?)`);

type Row = [number | null, string, string, string, number, string, number, string | null, number];
let queue: Row[] = [];
let scheduled = false;
const writeRows = db.transaction((rows: Row[]) => {
  for (const r of rows) insert.run(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], null, r[8]);
});
function flush(): void {
  scheduled = false;
  const rows = queue;
  queue = [];
  writeRows(rows);
}
setInterval(() => queue.length > 0 && flush(), 250).unref();

const app = Fastify({ logger: false });
app.decorateRequest("keyId", null);
app.addHook("onRequest", (request, reply, done) => {
  const raw = request.headers["x-api-key"];
  const found =
    typeof raw === "string" && /^pk_live_[0-9a-f]{32}$/.test(raw)
      ? keys.get(hash("sha256", raw))
      : undefined;
  if (found === undefined) {
    reply.code(401).send({ success: false, error: { code: "INVALID_API_KEY" } });
    return;
  }
  (request as unknown as { keyId: number }).keyId = found.id;
  const now = Date.now();
  const start = now - (now % 60_000);
  let w = windows.get(found.id);
  if (w === undefined || w.start !== start) windows.set(found.id, (w = { start, count: 0 }));
  w.count++;
  reply.header("RateLimit-Limit", found.limit);
  reply.header("RateLimit-Remaining", found.limit - w.count);
  reply.header("RateLimit-Reset", Math.ceil((start + 60_000 - now) / 1000));
  done();
});
app.addHook("onResponse", (request, reply, done) => {
  const now = Date.now();
  queue.push([
    (request as unknown as { keyId: number | null }).keyId,
    new Date(now).toISOString(),
    request.method,
    request.url,
    reply.statusCode,
    request.ip,
    reply.elapsedTime,
    request.headers["user-agent"] ?? null,
    Math.floor(now / 1000),
  ]);
  if (queue.length >= 2000 && !scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
  done();
});
app.get("/api/v1/external/whoami", async () => body);

const address = await app.listen({ host: "127.0.0.1", port: Number(process.env.BENCH_PORT ?? 0) });
process.stdout.write(`floor: listening on ${address}\n`);
process.on("SIGTERM", () => {
  void app.close().then(() => {
    if (queue.length > 0) flush();
    db.close();
    process.exit(0);
  });
});
