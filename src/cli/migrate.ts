import { loadConfig, redactUrl } from "../config.js";
import type { Command } from "./command.js";

export const migrate: Command = {
  name: "migrate",
  summary: "apply pending database migrations and say which",
  synopsis: "",
  help: `Opens the database of KEYGATE_DATABASE_URL, applies the migrations it lacks and
prints their names, or says it is up to date. The server applies them at start-up
too; run this before a deploy to do it (and see it fail, if it does) first.
Several instances or commands migrating at once are safe: migrations take a lock.

Example:
  KEYGATE_DATABASE_URL=postgres://keygate@db/keygate keygate migrate`,
  options: {},
  args: [],
  async run(_values, _args, io) {
    const config = loadConfig(io.env);
    const { openDatabase } = await import("../store/database.js");
    const { migrateToLatest } = await import("../store/migrations.js");
    const { databaseFailure } = await import("./session.js");
    const where = redactUrl(config.databaseUrl);
    const failed = (err: unknown) => {
      throw databaseFailure(config.databaseUrl, err);
    };
    const database = await openDatabase(config.databaseUrl, {
      migrate: false,
      sqliteSynchronous: config.sqliteSynchronous,
    }).catch(failed);
    try {
      const applied = await migrateToLatest(database.db, database.dialect).catch(failed);
      for (const name of applied) io.out(`applied ${name}\n`);
      io.out(
        applied.length === 0
          ? `${where} is up to date\n`
          : `${where} is up to date: ${applied.length} migration(s) applied\n`,
      );
    } finally {
      await database.close();
    }
  },
};
