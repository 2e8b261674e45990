import { generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Audit } from "../audit.js";
import { LeakIntake } from "./leaks.js";
import type { ReporterKey } from "./reporters.js";
import type { Alerts } from "./service.js";

const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
const known: ReporterKey = { id: "known", key: pair.publicKey };
const body = Buffer.from("[]");
const sig = sign("sha256", body, { key: pair.privateKey, dsaEncoding: "der" }).toString("base64");

function intake(
  reload: () => ReturnType<NonNullable<ConstructorParameters<typeof LeakIntake>[0]["reload"]>>,
) {
  let now = 0;
  const warnings: string[] = [];
  let reads = 0;
  const leaks = new LeakIntake({
    find: () => null,
    revoke: async () => true,
    flag: async () => {},
    audit: {} as Audit,
    alerts: {} as Alerts,
    reporters: [known],
    action: "revoke",
    reload: () => {
      reads++;
      return reload();
    },
    clock: () => now,
    warn: (m) => void warnings.push(m),
  });
  return {
    leaks,
    warnings,
    reads: () => reads,
    later: (ms: number) => {
      now += ms;
    },
  };
}

describe("reading the reporters' keys again", () => {
  it("reads at most once a minute for keys it does not know, never for those it does", () => {
    const t = intake(() => ({ ok: true, keys: [known] }));
    const unknown = () => t.leaks.authenticate(body, "unknown", sig);
    expect(unknown).toThrow(/names no key this Keygate trusts/);
    expect(unknown).toThrow(/names no key/);
    expect(t.reads()).toBe(1);
    t.later(60_000);
    expect(unknown).toThrow(/names no key/);
    expect(t.reads()).toBe(2);
    t.leaks.authenticate(body, "known", sig);
    expect(t.reads()).toBe(2);
  });

  it("keeps the keys it had when the file no longer reads, and says so", () => {
    const t = intake(() => ({ ok: false, problem: "(the file k.json) is not valid JSON" }));
    expect(() => t.leaks.authenticate(body, "unknown", sig)).toThrow(/names no key/);
    expect(t.warnings).toEqual([
      "leak reports: KEYGATE_LEAK_REPORTER_KEYS (the file k.json) is not valid JSON; keeping the keys read before",
    ]);
    t.leaks.authenticate(body, "known", sig);
  });
});
