import { describe, expect, it } from "vitest";
import { fillDays, fillHours, formatBytes, relative } from "./format";
import { match } from "./router";

describe("fillHours", () => {
  it("adds the hours without calls so the chart has one bar per hour", () => {
    const filled = fillHours(
      [
        { hour: "2026-05-11T12:00:00Z", calls: 5, errors: 1 },
        { hour: "2026-05-12T09:00:00Z", calls: 2, errors: 0 },
      ],
      "2026-05-11T11:30:00.000Z",
      "2026-05-12T11:30:00.000Z",
    );
    // From the hour holding `from` to the hour holding `to`: 25 buckets.
    expect(filled).toHaveLength(25);
    expect(filled[0]).toEqual({ hour: "2026-05-11T11:00:00Z", calls: 0, errors: 0 });
    expect(filled[1]).toEqual({ hour: "2026-05-11T12:00:00Z", calls: 5, errors: 1 });
    expect(filled.find((h) => h.hour === "2026-05-12T09:00:00Z")?.calls).toBe(2);
    expect(filled.at(-1)?.hour).toBe("2026-05-12T11:00:00Z");
    expect(filled.reduce((n, h) => n + h.calls, 0)).toBe(7);
  });

  it("gives empty hours for a window with no calls", () => {
    const filled = fillHours([], "2026-05-12T00:00:00Z", "2026-05-12T03:59:00Z");
    expect(filled.map((h) => h.calls)).toEqual([0, 0, 0, 0]);
  });
});

describe("fillDays", () => {
  it("has one entry per day, inclusive", () => {
    const days = fillDays(
      [{ date: "2026-05-02", bytes_in: 10, bytes_out: 5, session_seconds: 60 }],
      "2026-05-01",
      "2026-05-03",
    );
    expect(days.map((d) => [d.date, d.bytes_in])).toEqual([
      ["2026-05-01", 0],
      ["2026-05-02", 10],
      ["2026-05-03", 0],
    ]);
  });
});

describe("formatting", () => {
  it("formats sizes and relative times", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(5 * 1024 ** 3)).toBe("5.0 GiB");
    expect(relative(null)).toBe("never");
    const now = Date.parse("2026-05-12T12:00:00Z");
    expect(relative("2026-05-12T11:59:50Z", now)).toBe("just now");
    expect(relative("2026-05-12T11:00:00Z", now)).toMatch(/hour/);
  });
});

describe("router match", () => {
  it("matches patterns and extracts parameters", () => {
    expect(match("/keys/:id", "/keys/12")).toEqual({ id: "12" });
    expect(match("/keys/:id", "/keys/12/")).toEqual({ id: "12" });
    expect(match("/keys/:id", "/keys")).toBeNull();
    expect(match("/keys/:id", "/subscribers/12")).toBeNull();
    expect(match("/keys", "/keys")).toEqual({});
  });
});
