import pg from "pg";
import { describe, expect, it } from "vitest";
import { openDatabase } from "../src/store/database.js";
import { freshDatabase, PG_ADMIN_URL } from "./helpers.js";

// Several deployments (or test runs) share one PostgreSQL database, each in its own schema.
// Migrating one must not fail because another schema is dropped at the same moment: Kysely
// reads the catalog of every schema before it migrates.

describe("migrating beside schemas that come and go", () => {
  it("migrates fresh schemas while other sessions create and drop theirs", async () => {
    const churn = new pg.Client({ connectionString: PG_ADMIN_URL });
    await churn.connect();
    let stop = false;
    const churning = (async () => {
      for (let i = 0; !stop; i++) {
        const s = `churn_${process.pid}_${i}`;
        await churn.query(`create schema ${s}`);
        await churn.query(`create table ${s}.t (id serial primary key, v text)`);
        await churn.query(`drop schema ${s} cascade`);
      }
    })();
    try {
      for (let n = 0; n < 6; n++) {
        const fresh = await freshDatabase();
        const database = await openDatabase(fresh.url);
        const keys = await database.db.selectFrom("api_keys").select("id").execute();
        expect(keys).toEqual([]);
        await database.close();
        await fresh.drop();
      }
    } finally {
      stop = true;
      await churning;
      await churn.end();
    }
  });
});
