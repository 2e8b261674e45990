import { describe, expect, it } from "vitest";
import { candidateGeneration, EpochTracker } from "./epoch.js";

function tracker() {
  const resyncs: boolean[] = [];
  const t = new EpochTracker((reset) => resyncs.push(reset));
  return { t, resyncs };
}

describe("EpochTracker", () => {
  it("adopts the first generation it reads, then re-reads only past its watermark", () => {
    const { t, resyncs } = tracker();
    expect(t.observe(20, "g1")).toBe(true);
    expect(resyncs).toEqual([false]);
    expect(t.observe(20, "g1")).toBe(false);
    t.applied(21, "g1");
    expect(t.observe(21, "g1")).toBe(false);
    // 22 was bumped but its message has not arrived.
    expect(t.observe(22, "g1")).toBe(true);
    expect(resyncs).toEqual([false, false]);
    expect(t.state).toEqual({ generation: "g1", upTo: 22 });
  });

  it("after a restart, a low epoch of a new generation clears the cache and resets the watermark", () => {
    const { t, resyncs } = tracker();
    t.observe(0, "g1");
    for (let e = 1; e <= 20; e++) t.applied(e, "g1");
    expect(t.state.upTo).toBe(20);
    // Redis came back empty: the counter is 0 again under a new generation.
    expect(t.observe(0, "g2")).toBe(true);
    expect(resyncs.at(-1)).toBe(true);
    expect(t.state).toEqual({ generation: "g2", upTo: 0 });
    // The next eviction is 1; its message is lost, the budget check reads it.
    expect(t.observe(1, "g2")).toBe(true);
    expect(t.state.upTo).toBe(1);
  });

  it("a message of a generation not seen yet clears the cache before it is trusted", () => {
    const { t, resyncs } = tracker();
    t.observe(20, "g1");
    // Redis restarted; this instance's first news of it is eviction 3 (1 and 2 were missed).
    t.applied(3, "g2");
    expect(resyncs).toEqual([false, true]);
    expect(t.state).toEqual({ generation: "g2", upTo: 3 });
    expect(t.observe(3, "g2")).toBe(false);
    // An old epoch of the previous generation is not "older": it is a different counter.
    expect(t.observe(20, "g1")).toBe(true);
  });

  it("does not count an eviction as applied while an earlier one is still in flight", () => {
    const { t, resyncs } = tracker();
    t.observe(5, "g");
    t.applied(7, "g"); // 6 published concurrently on another instance, not yet received
    expect(t.state.upTo).toBe(5);
    expect(t.observe(7, "g")).toBe(true);
    t.applied(9, "g");
    t.applied(8, "g");
    expect(t.state.upTo).toBe(9);
    expect(t.observe(9, "g")).toBe(false);
    expect(resyncs).toEqual([false, false]);
  });

  it("leaves messages without a generation (older releases) to the next read", () => {
    const { t } = tracker();
    t.observe(4, "g");
    t.applied(5, undefined);
    expect(t.state.upTo).toBe(4);
    expect(t.observe(5, "g")).toBe(true);
    // A reader that cannot tell the generation compares within the current one.
    expect(t.observe(5)).toBe(false);
    expect(t.observe(6)).toBe(true);
  });

  it("never issues the same candidate generation twice", () => {
    const ids = new Set(Array.from({ length: 1000 }, candidateGeneration));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).not.toContain(" ");
  });
});
