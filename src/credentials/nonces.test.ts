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

describe("NonceTable", () => {
  it("keeps what a map would, through growth (property)", async () => {
    const fc = (await import("fast-check")).default;
    const { NonceTable } = await import("./nonces.js");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer(), fc.integer(), fc.integer({ min: 1, max: 1e9 })), {
          maxLength: 3000,
        }),
        (entries) => {
          const table = new NonceTable(8);
          const reference = new Map<string, number>();
          for (const [h1, h2, v] of entries) {
            table.set(h1 | 0, h2 | 0, v);
            reference.set(`${h1 | 0}:${h2 | 0}`, v);
          }
          expect(table.size).toBe(reference.size);
          for (const [k, v] of reference) {
            const [a, b] = k.split(":").map(Number);
            expect(table.get(a as number, b as number)).toBe(v);
          }
          // A fingerprint never set is not there, even sharing half of one that is.
          for (const [h1] of entries.slice(0, 50)) {
            if (!reference.has(`${h1 | 0}:${(h1 + 1) | 0}`))
              expect(table.get(h1 | 0, (h1 + 1) | 0)).toBe(0);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("tells a hundred thousand distinct nonces apart, and knows each again", () => {
    const n = new MemoryNonces();
    const t = 5_000_000;
    for (let i = 0; i < 100_000; i++) expect(n.claim(`7:nonce-${i}`, t + 300_000, t)).toBe(true);
    for (let i = 0; i < 100_000; i += 997)
      expect(n.claim(`7:nonce-${i}`, t + 300_000, t + 1)).toBe(false);
    expect(n.size).toBe(100_000);
  });
});
