import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quotaOption } from "../src/cli/keys.js";
import { expectStatus, freshDatabase, type Harness, harness } from "./helpers.js";
import { runKeygate } from "./process.js";

// `keygate keys mint --quota`, run as an operator would, against the database an in-process
// Keygate uses: the quota must show through the API, and in `keygate keys list`.
const dir = mkdtempSync(join(tmpdir(), "keygate-cli-quota-"));

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("keygate keys mint --quota", () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let h: Harness;
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await freshDatabase(join(dir, "keys.db"));
    env = { KEYGATE_DATABASE_URL: database.url };
    h = await harness({ ...env, KEYGATE_IP_RATE_LIMIT: "0" });
  });
  afterAll(async () => {
    await h?.close();
    await database?.drop();
  });

  it("mints a key with a monthly quota that the external surface enforces, and lists it", async () => {
    const r = await runKeygate(
      [
        ...["keys", "mint", "--owner", "admin", "--name", "partner"],
        ...["--quota", "2/month", "--quota-refill-day", "15"],
      ],
      env,
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain("quota 2/month@15: at most 2 admitted calls per month");
    const key = (r.out.match(/pk_live_[0-9a-f]{32}/) ?? [])[0] as string;
    const who = await h.ext("GET", "/whoami", key);
    expectStatus(who, 200);
    expect(who.json().data.quota).toMatchObject({ limit: 2, period: "month", refill_day: 15 });
    expectStatus(await h.ext("GET", "/whoami", key), 200);
    expect((await h.ext("GET", "/whoami", key)).json().error.code).toBe("QUOTA_EXCEEDED");

    const daily = await runKeygate(
      ["keys", "mint", "--owner", "admin", "--name", "daily", "--quota", "10000/day", "--json"],
      env,
    );
    expect(daily.code, daily.err).toBe(0);
    expect(JSON.parse(daily.out).data.quota).toEqual({
      limit: 10000,
      period: "day",
      refill_day: null,
    });

    const list = await runKeygate(["keys", "list"], env);
    expect(list.code, list.err).toBe(0);
    const [head, ...rows] = list.out.trimEnd().split("\n");
    expect(head).toMatch(/\bQUOTA\b/);
    const cell = (name: string) => {
      const row = (rows.find((l) => l.includes(` ${name} `)) as string).split(/\s{2,}/);
      return row[row.length - 1];
    };
    expect(cell("partner")).toBe("2/month@15");
    expect(cell("daily")).toBe("10000/day");
  });

  it("says what is wrong with a quota, naming the option", async () => {
    const bad = await runKeygate(
      ["keys", "mint", "--owner", "admin", "--name", "x", "--quota", "0/day"],
      env,
    );
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain("--quota must be a whole number of calls from 1 to 1000000000");
    const day = await runKeygate(
      [
        "keys",
        "mint",
        "--owner",
        "admin",
        "--name",
        "x",
        "--quota",
        "5/day",
        "--quota-refill-day",
        "3",
      ],
      env,
    );
    expect(day.code).not.toBe(0);
    expect(day.err).toContain("--quota-refill-day applies to monthly quotas only");
  });

  it("reads the options without a database", () => {
    expect(quotaOption(undefined, undefined)).toBeUndefined();
    expect(quotaOption("10000/day", undefined)).toEqual({ limit: 10000, period: "day" });
    expect(quotaOption("5/month", "31")).toEqual({ limit: 5, period: "month", refill_day: 31 });
    expect(() => quotaOption("10000", undefined)).toThrow(
      /--quota must be <calls>\/day or <calls>\/month/,
    );
    expect(() => quotaOption("1/week", undefined)).toThrow(/e\.g\. 10000\/day/);
    expect(() => quotaOption(undefined, "3")).toThrow(/--quota-refill-day goes with --quota/);
    expect(() => quotaOption("5/month", "first")).toThrow(/from 1 to 31/);
  });
});
