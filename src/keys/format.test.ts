import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  DISPLAY_PREFIX_LENGTH,
  displayPrefix,
  environmentOf,
  hashKey,
  isWellFormedKey,
  KEY_PREFIX,
  mintKey,
} from "./format.js";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** A random source that always returns the bytes 0x00, 0x01, ... 0x0f. */
const counting = (size: number) => Uint8Array.from({ length: size }, (_, i) => i);

const HEX32 = "0123456789abcdef0123456789abcdef";

describe("mintKey", () => {
  it("produces pk_live_ followed by 32 lowercase hex characters", () => {
    const { key } = mintKey();
    expect(key).toMatch(/^pk_live_[0-9a-f]{32}$/);
    expect(key).toHaveLength(40);
    expect(key.startsWith(KEY_PREFIX)).toBe(true);
  });

  it("stores the SHA-256 hex of the whole key", () => {
    const minted = mintKey();
    expect(minted.hash).toBe(sha256(minted.key));
    expect(minted.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("keeps the first 12 characters as the display prefix", () => {
    const minted = mintKey();
    expect(DISPLAY_PREFIX_LENGTH).toBe(12);
    expect(minted.prefix).toBe(minted.key.slice(0, 12));
    expect(minted.prefix).toMatch(/^pk_live_[0-9a-f]{4}$/);
  });

  it("turns injected deterministic bytes into a known key", () => {
    const sizes: number[] = [];
    const minted = mintKey((size) => {
      sizes.push(size);
      return counting(size);
    });
    expect(sizes).toEqual([16]);
    expect(minted.key).toBe("pk_live_000102030405060708090a0b0c0d0e0f");
    expect(minted.prefix).toBe("pk_live_0001");
    expect(minted.hash).toBe(sha256("pk_live_000102030405060708090a0b0c0d0e0f"));
  });

  it("renders high bytes as lowercase hex", () => {
    const minted = mintKey((size) => new Uint8Array(size).fill(0xab));
    expect(minted.key).toBe(`pk_live_${"ab".repeat(16)}`);
    expect(isWellFormedKey(minted.key)).toBe(true);
  });

  it("refuses a random source that returns the wrong number of bytes", () => {
    expect(() => mintKey(() => new Uint8Array(15))).toThrow(/16 bytes/);
    expect(() => mintKey(() => new Uint8Array(17))).toThrow(/16 bytes/);
  });

  it("mints distinct keys, hashes and well-formed results every time", () => {
    const keys = new Set<string>();
    const hashes = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const minted = mintKey();
      expect(isWellFormedKey(minted.key)).toBe(true);
      keys.add(minted.key);
      hashes.add(minted.hash);
    }
    expect(keys.size).toBe(2000);
    expect(hashes.size).toBe(2000);
  });
});

describe("hashKey and displayPrefix", () => {
  it("hashKey matches node:crypto createHash for arbitrary text", () => {
    for (const text of ["", "pk_live_x", "ünïcödé ✓", `pk_live_${HEX32}`]) {
      expect(hashKey(text)).toBe(sha256(text));
    }
  });

  it("displayPrefix takes the first 12 characters, or the whole of a shorter string", () => {
    expect(displayPrefix(`pk_live_${HEX32}`)).toBe("pk_live_0123");
    expect(displayPrefix("short")).toBe("short");
  });
});

describe("isWellFormedKey", () => {
  it("accepts pk_live_ plus exactly 32 lowercase hex characters", () => {
    expect(isWellFormedKey(`pk_live_${HEX32}`)).toBe(true);
    expect(isWellFormedKey(`pk_live_${"0".repeat(32)}`)).toBe(true);
    expect(isWellFormedKey(`pk_live_${"f".repeat(32)}`)).toBe(true);
  });

  it("accepts pk_test_ keys of the same shape (the test environment)", () => {
    expect(isWellFormedKey(`pk_test_${HEX32}`)).toBe(true);
    expect(environmentOf(`pk_test_${HEX32}`)).toBe("test");
    expect(environmentOf(`pk_live_${HEX32}`)).toBe("live");
    expect(environmentOf(HEX32)).toBeNull();
  });

  it("mints test keys with the pk_test_ prefix and live keys by default", () => {
    const test = mintKey(undefined, "test");
    expect(test.key).toMatch(/^pk_test_[0-9a-f]{32}$/);
    expect(test.prefix).toBe(test.key.slice(0, 12));
    expect(mintKey().key.startsWith("pk_live_")).toBe(true);
  });

  it.each([
    ["empty string", ""],
    ["prefix only", "pk_live_"],
    ["uppercase hex", `pk_live_${HEX32.toUpperCase()}`],
    ["one uppercase hex char", `pk_live_${HEX32.slice(0, 31)}F`],
    ["31 hex chars", `pk_live_${HEX32.slice(0, 31)}`],
    ["33 hex chars", `pk_live_${HEX32}0`],
    ["non-hex letter", `pk_live_${HEX32.slice(0, 31)}g`],
    ["other environment prefix", `pk_prod_${HEX32}`],
    ["test prefix, uppercase hex", `pk_test_${HEX32.toUpperCase()}`],
    ["uppercase prefix", `PK_LIVE_${HEX32}`],
    ["no prefix", HEX32],
    ["missing underscore", `pklive_${HEX32}`],
    ["leading space", ` pk_live_${HEX32}`],
    ["trailing space", `pk_live_${HEX32} `],
    ["trailing newline", `pk_live_${HEX32}\n`],
    ["inner space", `pk_live_${HEX32.slice(0, 16)} ${HEX32.slice(17)}`],
    ["unicode letter in place of hex", `pk_live_${HEX32.slice(0, 31)}é`],
    ["fullwidth digit", `pk_live_${HEX32.slice(0, 31)}０`],
    ["arabic-indic digit", `pk_live_${HEX32.slice(0, 31)}٣`],
    ["Bearer-prefixed", `Bearer pk_live_${HEX32}`],
  ])("rejects %s", (_label, value) => {
    expect(isWellFormedKey(value)).toBe(false);
  });
});
