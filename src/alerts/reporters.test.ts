import { generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../config.js";
import { parseReporterKeys, verifyReport } from "./reporters.js";

const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
const pem = p256.publicKey.export({ type: "spki", format: "pem" }) as string;
const github = { public_keys: [{ key_identifier: "abc", key: pem, is_current: true }] };
const base = { KEYGATE_DATABASE_URL: "sqlite::memory:" };

describe("leak reporter keys", () => {
  it("reads GitHub's published document, inline or from a file, and a bare list", () => {
    const inline = loadConfig({ ...base, KEYGATE_LEAK_REPORTER_KEYS: JSON.stringify(github) });
    expect(inline.leakReporterKeys?.map((k) => k.id)).toEqual(["abc"]);
    const dir = mkdtempSync(join(tmpdir(), "kg-leak-"));
    const file = join(dir, "keys.json");
    writeFileSync(file, JSON.stringify(github.public_keys));
    expect(loadConfig({ ...base, KEYGATE_LEAK_REPORTER_KEYS: file }).leakReporterKeys).toHaveLength(
      1,
    );
    expect(loadConfig(base).leakReporterKeys).toBeNull();
    expect(loadConfig(base).leakAction).toBe("revoke");
  });

  it("stops start-up with one line naming the variable and what is wrong", () => {
    const wrong = (value: string, message: RegExp) =>
      expect(() => loadConfig({ ...base, KEYGATE_LEAK_REPORTER_KEYS: value })).toThrow(message);
    wrong("{not json", /^KEYGATE_LEAK_REPORTER_KEYS is not valid JSON$/);
    wrong('{"keys":[]}', /KEYGATE_LEAK_REPORTER_KEYS must be \{"public_keys"/);
    wrong('{"public_keys":[]}', /lists no keys/);
    wrong('[{"key":"x"}]', /entry 1 of 1 has no key_identifier/);
    wrong('[{"key_identifier":"a","key":"x"}]', /entry 1 of 1: key is not a PEM public key/);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({
      type: "spki",
      format: "pem",
    });
    wrong(JSON.stringify([{ key_identifier: "a", key: rsa }]), /must be an ECDSA P-256/);
    wrong(
      JSON.stringify([
        { key_identifier: "a", key: pem },
        { key_identifier: "a", key: pem },
      ]),
      /listed twice/,
    );
    wrong(
      "/no/such/file.json",
      /names the file \/no\/such\/file.json, which cannot be read: no such file/,
    );
    expect(() => loadConfig({ ...base, KEYGATE_LEAK_ACTION: "delete" })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, KEYGATE_LEAK_RATE_LIMIT: "0" })).toThrow(
      /KEYGATE_LEAK_RATE_LIMIT must be a whole number from 1/,
    );
  });

  it("verifies a DER signature over the exact bytes", () => {
    const parsed = parseReporterKeys(JSON.stringify(github));
    if (!parsed.ok) throw new Error(parsed.problem);
    const key = parsed.keys[0]?.key;
    if (!key) throw new Error("no key");
    const body = Buffer.from('[{"token":"t","type":"x"}]');
    const sig = sign("sha256", body, { key: p256.privateKey, dsaEncoding: "der" }).toString(
      "base64",
    );
    expect(verifyReport(key, body, sig)).toBe(true);
    expect(verifyReport(key, Buffer.from(`${body} `), sig)).toBe(false);
    expect(verifyReport(key, body, "")).toBe(false);
    expect(verifyReport(key, body, "bm90IGEgc2lnbmF0dXJl")).toBe(false);
  });
});
