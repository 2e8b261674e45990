import { describe, expect, it } from "vitest";
import { hex12, timeOrderedId } from "./transport.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("request ids", () => {
  it("writes 48-bit counters as Number#toString(16) does, padded to 12 digits", () => {
    const edges = [0, 1, 0xfff, 0x1000, 0xffffff, 0x1000000, 0xfff_ffff_ffff, 2 ** 48 - 1];
    for (let i = 0; i < 2000; i++) edges.push(Math.floor(Math.random() * 2 ** 48));
    for (const n of edges) expect(hex12(n), String(n)).toBe(n.toString(16).padStart(12, "0"));
  });

  it("are UUID version 7: the millisecond first, then a counter that counts up", () => {
    const ms = Date.UTC(2026, 11, 3, 12, 0, 0, 123);
    const ids = Array.from({ length: 10_000 }, () => timeOrderedId(ms));
    let previous: number | null = null;
    for (const id of ids) {
      expect(id).toMatch(UUID_V7);
      expect(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
      const count = Number.parseInt(id.slice(24), 16);
      if (previous !== null) expect(count).toBe((previous + 1) % 2 ** 48);
      previous = count;
    }
    // A later millisecond sorts after, whatever the counter.
    expect(timeOrderedId(ms + 1) > (ids.at(-1) as string)).toBe(true);
  });
});
