import { CompiledQuery, type KyselyPlugin, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Database, openDatabase } from "../src/store/database.js";
import { SqlAuditRepo } from "../src/store/panel.js";
import { ENGINE, freshDatabase } from "./helpers.js";

// The audit trail's time filter (`from`, `to`, as the console and GET /api/audit send them)
// is answered from the index on audit_log.created_at: the very queries the repository sends
// are captured and explained.

describe(`the audit trail's time index (${ENGINE})`, () => {
  let database: Database;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const f = await freshDatabase();
    drop = f.drop;
    database = await openDatabase(f.url);
    const start = Date.UTC(2026, 0, 1);
    const rows = Array.from({ length: 3000 }, (_, i) => ({
      via: "jwt",
      actor_id: 1,
      actor_username: "admin",
      action: i % 3 === 0 ? "key.create" : "subscriber.update",
      target_type: "api_key",
      target_id: String(i),
      created_at: new Date(start + i * 60_000).toISOString(),
    }));
    for (let i = 0; i < rows.length; i += 500)
      await database.db
        .insertInto("audit_log")
        .values(rows.slice(i, i + 500))
        .execute();
    if (ENGINE === "postgres") await sql`analyze audit_log`.execute(database.db);
  });
  afterAll(async () => {
    await database?.close();
    await drop?.();
  });

  /** Each query `run` sends, with its plan. */
  async function plans(
    run: (repo: SqlAuditRepo) => Promise<unknown>,
  ): Promise<{ sql: string; plan: string }[]> {
    const sent: CompiledQuery[] = [];
    const capture: KyselyPlugin = {
      transformQuery(args) {
        sent.push(database.db.getExecutor().compileQuery(args.node, args.queryId));
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    await run(new SqlAuditRepo(database.db.withPlugin(capture)));
    expect(sent.length).toBeGreaterThan(0);
    return database.db.transaction().execute(async (trx) => {
      // A small table may be read whole, whatever indexes it has: ask whether the index serves.
      if (ENGINE === "postgres") await sql`set local enable_seqscan = off`.execute(trx);
      const prefix = ENGINE === "postgres" ? "explain " : "explain query plan ";
      const out: { sql: string; plan: string }[] = [];
      for (const q of sent) {
        const r = await trx.executeQuery<Record<string, unknown>>(
          CompiledQuery.raw(prefix + q.sql, [...q.parameters]),
        );
        out.push({
          sql: q.sql,
          plan: r.rows.map((row) => String(row.detail ?? row["QUERY PLAN"])).join("\n"),
        });
      }
      return out;
    });
  }

  it("serves a time range, and its count, from audit_log_created", async () => {
    const from = new Date(Date.UTC(2026, 0, 1, 10)).toISOString();
    const to = new Date(Date.UTC(2026, 0, 1, 11)).toISOString();
    let found: Awaited<ReturnType<SqlAuditRepo["list"]>> | null = null;
    const explained = await plans(async (repo) => {
      found = await repo.list({ limit: 50, offset: 0, from, to });
    });
    // The page and the count: both through the index.
    expect(explained).toHaveLength(2);
    for (const { plan } of explained) expect(plan).toContain("audit_log_created");
    expect(found!.total).toBe(60);
    expect(found!.rows[0]!.created_at).toBe(new Date(Date.UTC(2026, 0, 1, 10, 59)).toISOString());
  });

  it("counts an open-ended range (from alone) from it too", async () => {
    // The page of the newest entries is the id's to read backwards; what matched is counted
    // from the index instead of every row.
    const from = new Date(Date.UTC(2026, 0, 2, 23)).toISOString();
    const explained = await plans((repo) => repo.list({ limit: 50, offset: 0, from }));
    const counts = explained.filter((q) => /count\(\*\)/i.test(q.sql));
    expect(counts).toHaveLength(1);
    expect(counts[0]!.plan).toContain("audit_log_created");
  });
});
