import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "./database.js";

describe("SQLite durability", () => {
  const dir = mkdtempSync(join(tmpdir(), "keygate-db-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** SQLite's own answers for journal_mode and synchronous (0 off, 1 normal, 2 full). */
  async function pragmas(file: string, synchronous?: "normal" | "full") {
    const database = await openDatabase(
      `sqlite:${join(dir, file)}`,
      synchronous ? { sqliteSynchronous: synchronous } : {},
    );
    try {
      const journal = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(database.db);
      const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(database.db);
      return { journal: journal.rows[0]?.journal_mode, sync: sync.rows[0]?.synchronous };
    } finally {
      await database.close();
    }
  }

  it("runs in WAL with synchronous=NORMAL by default", async () => {
    expect(await pragmas("default.db")).toEqual({ journal: "wal", sync: 1 });
  });

  it("syncs every commit with KEYGATE_SQLITE_SYNCHRONOUS=full", async () => {
    expect(await pragmas("full.db", "full")).toEqual({ journal: "wal", sync: 2 });
  });
});
