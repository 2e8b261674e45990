import { describe, expect, it } from "vitest";
import { localToIso, rangeOf } from "./range";

describe("time ranges", () => {
  it("reads local date-times as UTC instants", () => {
    const local = "2026-05-11T10:30";
    expect(localToIso(local)).toBe(new Date(2026, 4, 11, 10, 30).toISOString());
    expect(localToIso("")).toBeNull();
    expect(localToIso("yesterday")).toBeNull();
    expect(localToIso("2026-05-11")).toBeNull();
  });

  it("sends an open or closed range, and refuses an empty or reversed one", () => {
    expect(rangeOf("", "")).toEqual({ from: undefined, to: undefined, problem: null });
    expect(rangeOf("2026-05-11T10:30", "").from).toBe(localToIso("2026-05-11T10:30"));
    expect(rangeOf("", "2026-05-11T10:30").to).toBe(localToIso("2026-05-11T10:30"));
    expect(rangeOf("2026-05-11T10:30", "2026-05-11T10:30").problem).toBe(
      "The end must be later than the start.",
    );
    expect(rangeOf("2026-05-12T00:00", "2026-05-11T00:00").problem).toMatch(/later/);
    expect(rangeOf("x", "").problem).toBe("The start is not a date and time.");
  });
});
