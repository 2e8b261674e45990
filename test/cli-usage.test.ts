import { describe, expect, it } from "vitest";
import { VERSION } from "../src/version.js";
import { type CommandRun, expectOneLine, runKeygate } from "./process.js";

// What the `keygate` command answers before it opens any database: help, version, and
// every mistake on the command line itself. Runs once (no engine).

describe("keygate --help and --version", () => {
  it("prints help for the command and each subcommand, and the version", async () => {
    const [help, mintHelp, keysHelp, helpWord, version] = await Promise.all([
      runKeygate(["--help"]),
      runKeygate(["keys", "mint", "--help"]),
      runKeygate(["keys", "--help"]),
      runKeygate(["help", "reset-password"]),
      runKeygate(["--version"]),
    ]);
    expect(help.code).toBe(0);
    for (const cmd of [
      "serve",
      "migrate",
      "reset-password",
      "keys list",
      "keys mint",
      "keys revoke",
    ])
      expect(help.out).toContain(cmd);
    expect(help.out).toMatch(/Exit codes: 0 done, 1 failed .*2 wrong usage/s);
    expect(mintHelp.code).toBe(0);
    expect(mintHelp.out).toMatch(/^Usage: keygate keys mint --owner <username> --name <name>/);
    expect(mintHelp.out).toContain("--allowed-ips");
    expect(keysHelp.code).toBe(0);
    expect(keysHelp.out).toContain("keygate keys revoke <id>");
    expect(helpWord.out).toContain("--password-stdin");
    expect(version.out).toBe(`keygate ${VERSION}\n`);
    for (const r of [help, mintHelp, keysHelp, helpWord, version]) expect(r.err).toBe("");
  });
});

describe("keygate on a wrong command line", () => {
  it("refuses each mistake with exit code 2 and one keygate: line, before touching anything", async () => {
    // No database could be opened here: a mistake must be found before one is needed.
    const env = { KEYGATE_DATABASE_URL: "sqlite:/dev/null/never.db" };
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [["frob"], /unknown command "frob"/],
      [["--frob"], /unknown option --frob/],
      [["keys"], /keys needs a subcommand/],
      [["keys", "frob"], /unknown keys subcommand "frob"/],
      [["keys", "list", "--all"], /unknown option --all for keys list/],
      [["keys", "list", "--owner"], /option --owner needs a value/],
      [["keys", "list", "--json=yes"], /option --json takes no value/],
      [["keys", "mint", "--name", "x"], /keys mint needs --owner/],
      [["keys", "mint", "--owner", "alice"], /keys mint needs --name/],
      [["keys", "mint", "--owner", "--name", "x"], /option --owner needs a value/],
      [["keys", "revoke"], /keys revoke needs <id>/],
      [["keys", "revoke", "abc"], /key id must be a whole number/],
      [["keys", "revoke", "1", "2"], /unexpected argument "2"/],
      [["migrate", "now"], /unexpected argument "now" for migrate/],
      [["reset-password"], /reset-password needs <username>/],
      [["reset-password", "alice"], /not a terminal .* --password-stdin/],
    ];
    const results: CommandRun[] = [];
    for (let i = 0; i < cases.length; i += 6) {
      const batch = cases.slice(i, i + 6);
      results.push(...(await Promise.all(batch.map(([args]) => runKeygate(args, env)))));
    }
    results.forEach((r, i) => {
      const [args, message] = cases[i] as [string[], RegExp];
      expect(r.out, args.join(" ")).toBe("");
      expectOneLine(r, 2, message);
    });
  });

  it("fails with exit code 1 and one line on a bad setting or a database it cannot open", async () => {
    const [setting, database] = await Promise.all([
      runKeygate(["keys", "list"], { KEYGATE_PORT: "http" }),
      runKeygate(["migrate"], { KEYGATE_DATABASE_URL: "sqlite:/dev/null/keygate.db" }),
    ]);
    expectOneLine(setting, 1, /KEYGATE_PORT must be a whole number/);
    expectOneLine(database, 1, /^keygate: database sqlite:\/dev\/null\/keygate\.db: /);
  });
});
