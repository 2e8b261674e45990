import { describe, expect, it } from "vitest";
import { MemoryNonces } from "./nonces.js";

describe("MemoryNonces", () => {
  it("accepts a nonce once while its signature could still be accepted, then forgets it", () => {
    const n = new MemoryNonces();
    const t = 1_000_000;
    expect(n.claim("1:a", t + 600_000, t)).toBe(true);
    expect(n.claim("1:a", t + 600_000, t + 1)).toBe(false);
    // Another key's nonce of the same value is its own.
    expect(n.claim("2:a", t + 600_000, t + 1)).toBe(true);
    // Through a turnover of generations it is still known until its window ends.
    expect(n.claim("1:b", t + 1_000, t)).toBe(true);
    expect(n.claim("1:a", t + 600_000, t + 599_999)).toBe(false);
    expect(n.claim("1:x", t + 1_300_000, t + 700_000)).toBe(true);
    expect(n.claim("1:a", t + 600_000, t + 600_001)).toBe(true);
  });

  it("keeps every nonce for at least a generation, whenever it arrived in one", () => {
    const n = new MemoryNonces(1_000_000, 600_000);
    const t = 0;
    n.claim("warm", 1, t);
    // Arriving just before the generation turns over, it must survive the turnover.
    expect(n.claim("late", t + 599_999 + 600_000, t + 599_999)).toBe(true);
    expect(n.claim("late", t + 599_999 + 600_000, t + 1_199_998)).toBe(false);
  });

  it("stays bounded: past max it turns over early", () => {
    const n = new MemoryNonces(100);
    for (let i = 0; i < 1000; i++) n.claim(`k:${i}`, 10_000_000, 1);
    expect(n.size).toBeLessThanOrEqual(200);
  });
});
