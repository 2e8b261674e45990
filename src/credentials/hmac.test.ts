import { createHmac, createSecretKey, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { hmacMatches, hmacSha256 } from "./hmac.js";

describe("hmacSha256", () => {
  it("agrees with createHmac for keys and messages of every length that matters", () => {
    // Keys shorter than, equal to and longer than the 64-byte block; messages empty, ASCII,
    // multi-byte and longer than the scratch buffer's first size.
    const keys = [0, 1, 32, 63, 64, 65, 200].map((n) => randomBytes(n));
    const messages = [
      "",
      "a",
      '"@method": GET\n"@signature-params": ("@method");created=1;keyid="pk_live_x"',
      "é€😀".repeat(50),
      "x".repeat(40_000),
    ];
    for (let i = 0; i < 200; i++) messages.push(randomBytes(i * 7).toString("latin1"));
    for (const key of keys) {
      for (const m of messages) {
        const expected = createHmac("sha256", key).update(m, "utf8").digest();
        expect(hmacSha256(key, m).equals(expected)).toBe(true);
      }
    }
  });

  it("takes a secret KeyObject and gives the same MAC as its bytes", () => {
    const bytes = Buffer.from("kgs_example-secret-of-forty-three-characters!!");
    const object = createSecretKey(bytes);
    const m = "GET /api/v1/external/whoami";
    expect(hmacSha256(object, m).equals(hmacSha256(bytes, m))).toBe(true);
    expect(hmacSha256(object, m).equals(createHmac("sha256", object).update(m).digest())).toBe(
      true,
    );
  });

  it("keeps each result its own: a later call does not change an earlier MAC", () => {
    const key = randomBytes(32);
    const first = hmacSha256(key, "one");
    const copy = Buffer.from(first);
    hmacSha256(key, "two");
    expect(first.equals(copy)).toBe(true);
  });

  it("tells a matching MAC from one that differs in any byte or in length", () => {
    const key = randomBytes(43);
    const m = '"@method": GET\n"@signature-params": ("@method");created=1';
    const right = createHmac("sha256", key).update(m).digest();
    expect(hmacMatches(key, m, right)).toBe(true);
    expect(hmacMatches(key, m, new Uint8Array(right))).toBe(true);
    for (let i = 0; i < right.length; i++) {
      const wrong = Buffer.from(right);
      wrong[i] = (wrong[i] as number) ^ 0x01;
      expect(hmacMatches(key, m, wrong)).toBe(false);
    }
    expect(hmacMatches(key, m, right.subarray(0, 31))).toBe(false);
    expect(hmacMatches(key, m, Buffer.concat([right, Buffer.from([0])]))).toBe(false);
    expect(hmacMatches(key, `${m} `, right)).toBe(false);
    expect(hmacMatches(randomBytes(43), m, right)).toBe(false);
  });
});
