import { createDecipheriv, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  kekId,
  MasterKeyring,
  openSecret,
  parseMasterKey,
  SealError,
  sealedUnder,
  sealSecret,
} from "./secrets.js";

const KEK = randomBytes(32);
const SECRET = `pks_live_${"ab".repeat(32)}`;

describe("signing secrets at rest", () => {
  it("seal with AES-256-GCM and open again, a fresh IV each time", () => {
    const a = sealSecret(SECRET, KEK, "api_key:7");
    const b = sealSecret(SECRET, KEK, "api_key:7");
    expect(a).not.toBe(b);
    expect(a).not.toContain(SECRET);
    expect(openSecret(a, KEK, "api_key:7")).toBe(SECRET);
    expect(sealedUnder(a)).toBe(kekId(KEK));
  });

  it("are plain AES-256-GCM: node's own decipher opens them with the key, IV, tag and AAD", () => {
    const [, , iv, body] = sealSecret(SECRET, KEK, "api_key:9").split(".") as string[];
    const bytes = Buffer.from(body as string, "base64url");
    const d = createDecipheriv("aes-256-gcm", KEK, Buffer.from(iv as string, "base64url"));
    d.setAAD(Buffer.from("api_key:9"));
    d.setAuthTag(bytes.subarray(bytes.length - 16));
    expect(Buffer.concat([d.update(bytes.subarray(0, -16)), d.final()]).toString()).toBe(SECRET);
  });

  it("refuse another key's row, another master key, and any altered byte", () => {
    const sealed = sealSecret(SECRET, KEK, "api_key:7");
    expect(() => openSecret(sealed, KEK, "api_key:8")).toThrow(SealError);
    expect(() => openSecret(sealed, randomBytes(32), "api_key:7")).toThrow(/another master key/);
    const parts = sealed.split(".");
    const body = Buffer.from(parts[3] as string, "base64url");
    body[0] = (body[0] as number) ^ 1;
    parts[3] = body.toString("base64url");
    expect(() => openSecret(parts.join("."), KEK, "api_key:7")).toThrow(/does not open/);
    expect(() => openSecret("plain-text", KEK, "api_key:7")).toThrow(/not a sealed secret/);
  });

  it("read a master key as 64 hex characters or base64 of 32 bytes, and nothing else", () => {
    const key = randomBytes(32);
    expect(parseMasterKey(key.toString("hex"))?.equals(key)).toBe(true);
    expect(parseMasterKey(` ${key.toString("base64")}\n`)?.equals(key)).toBe(true);
    expect(parseMasterKey(key.toString("base64url"))?.equals(key)).toBe(true);
    expect(parseMasterKey(key.toString("hex").slice(2))).toBeNull();
    expect(parseMasterKey(randomBytes(31).toString("base64"))).toBeNull();
    expect(parseMasterKey("correct horse battery staple")).toBeNull();
  });
});

describe("the master keyring", () => {
  const OLD = randomBytes(32);
  const OLDER = randomBytes(32);
  const NEW = randomBytes(32);

  it("opens with whichever configured key a value names, and seals only under the current one", () => {
    const ring = new MasterKeyring(NEW, [OLD, OLDER]);
    expect(ring.currentId).toBe(kekId(NEW));
    expect(ring.previousIds.sort()).toEqual([kekId(OLD), kekId(OLDER)].sort());
    for (const kek of [NEW, OLD, OLDER]) {
      expect(ring.open(sealSecret(SECRET, kek, "api_key:7"), "api_key:7")).toBe(SECRET);
    }
    const sealed = ring.seal(SECRET, "api_key:7");
    expect(sealedUnder(sealed)).toBe(kekId(NEW));
    expect(openSecret(sealed, NEW, "api_key:7")).toBe(SECRET);
    // The binding still holds whichever key opens.
    expect(() => ring.open(sealSecret(SECRET, OLD, "api_key:7"), "api_key:8")).toThrow(
      /does not open/,
    );
  });

  it("says which master key a value needs when the ring does not hold it", () => {
    const stranger = randomBytes(32);
    const sealed = sealSecret(SECRET, stranger, "api_key:7");
    const alone = new MasterKeyring(NEW);
    expect(() => alone.open(sealed, "api_key:7")).toThrow(SealError);
    expect(() => alone.open(sealed, "api_key:7")).toThrow(
      `sealed under master key ${kekId(stranger)}, which this server does not have (KEYGATE_MASTER_KEY is ${kekId(NEW)}; KEYGATE_MASTER_KEY_PREVIOUS is not set)`,
    );
    expect(() => new MasterKeyring(NEW, [OLD]).open(sealed, "api_key:7")).toThrow(
      `KEYGATE_MASTER_KEY_PREVIOUS holds ${kekId(OLD)})`,
    );
    expect(() => alone.open("plain-text", "api_key:7")).toThrow(/not a sealed secret/);
  });

  it("reseals what an earlier key sealed, and leaves what the current key sealed as it is", () => {
    const ring = new MasterKeyring(NEW, [OLD]);
    const old = sealSecret(SECRET, OLD, "oauth_signing_key:k1");
    const moved = ring.reseal(old, "oauth_signing_key:k1");
    expect(moved).not.toBe(old);
    expect(ring.isCurrent(old)).toBe(false);
    expect(ring.isCurrent(moved)).toBe(true);
    expect(openSecret(moved, NEW, "oauth_signing_key:k1")).toBe(SECRET);
    expect(ring.reseal(moved, "oauth_signing_key:k1")).toBe(moved);
    // Without the old key, nothing can be resealed.
    expect(() => new MasterKeyring(NEW).reseal(old, "oauth_signing_key:k1")).toThrow(
      new RegExp(`sealed under master key ${kekId(OLD)}`),
    );
  });
});
