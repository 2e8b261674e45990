import { describe, expect, it } from "vitest";
import { parseQuota, quotaPeriod, quotaPlan, quotaWindow } from "./quota.js";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
function period(q: { period: "day" | "month"; refillDay?: number | null }, now: string) {
  const p = quotaPeriod({ period: q.period, refillDay: q.refillDay ?? null }, at(now));
  return [iso(p.startMs), iso(p.endMs)];
}

describe("quota periods (UTC)", () => {
  it("a day runs from midnight to midnight UTC, its first millisecond in, its last out", () => {
    expect(period({ period: "day" }, "2026-06-10T12:34:56.789Z")).toEqual([
      "2026-06-10T00:00:00.000Z",
      "2026-06-11T00:00:00.000Z",
    ]);
    expect(period({ period: "day" }, "2026-06-10T00:00:00.000Z")[0]).toBe(
      "2026-06-10T00:00:00.000Z",
    );
    expect(period({ period: "day" }, "2026-06-10T23:59:59.999Z")[1]).toBe(
      "2026-06-11T00:00:00.000Z",
    );
    expect(period({ period: "day" }, "2026-12-31T23:00:00Z")[1]).toBe("2027-01-01T00:00:00.000Z");
  });

  it("a month runs from the 1st by default, across the year's end", () => {
    expect(period({ period: "month" }, "2026-06-10T12:00:00Z")).toEqual([
      "2026-06-01T00:00:00.000Z",
      "2026-07-01T00:00:00.000Z",
    ]);
    expect(period({ period: "month" }, "2026-12-31T23:59:59.999Z")).toEqual([
      "2026-12-01T00:00:00.000Z",
      "2027-01-01T00:00:00.000Z",
    ]);
    expect(period({ period: "month" }, "2027-01-01T00:00:00.000Z")[0]).toBe(
      "2027-01-01T00:00:00.000Z",
    );
  });

  it("a refill day moves the start: before it in a month, the period began last month", () => {
    expect(period({ period: "month", refillDay: 15 }, "2026-06-14T23:59:59.999Z")).toEqual([
      "2026-05-15T00:00:00.000Z",
      "2026-06-15T00:00:00.000Z",
    ]);
    expect(period({ period: "month", refillDay: 15 }, "2026-06-15T00:00:00.000Z")).toEqual([
      "2026-06-15T00:00:00.000Z",
      "2026-07-15T00:00:00.000Z",
    ]);
    expect(period({ period: "month", refillDay: 15 }, "2026-01-03T00:00:00Z")).toEqual([
      "2025-12-15T00:00:00.000Z",
      "2026-01-15T00:00:00.000Z",
    ]);
  });

  it("clamps a refill day past a month's end to its last day, leap years included", () => {
    // 31: January 31st, February 28th (2026) or 29th (2028), March 31st, April 30th.
    expect(period({ period: "month", refillDay: 31 }, "2026-02-10T00:00:00Z")).toEqual([
      "2026-01-31T00:00:00.000Z",
      "2026-02-28T00:00:00.000Z",
    ]);
    expect(period({ period: "month", refillDay: 31 }, "2026-02-28T00:00:00Z")).toEqual([
      "2026-02-28T00:00:00.000Z",
      "2026-03-31T00:00:00.000Z",
    ]);
    expect(period({ period: "month", refillDay: 31 }, "2028-02-28T12:00:00Z")).toEqual([
      "2028-01-31T00:00:00.000Z",
      "2028-02-29T00:00:00.000Z",
    ]);
    expect(period({ period: "month", refillDay: 30 }, "2028-02-29T00:00:00Z")).toEqual([
      "2028-02-29T00:00:00.000Z",
      "2028-03-30T00:00:00.000Z",
    ]);
    expect(period({ period: "month", refillDay: 29 }, "2100-02-28T00:00:00Z")[0]).toBe(
      "2100-02-28T00:00:00.000Z",
    ); // 2100 is no leap year
    expect(period({ period: "month", refillDay: 31 }, "2026-04-30T00:00:00Z")).toEqual([
      "2026-04-30T00:00:00.000Z",
      "2026-05-31T00:00:00.000Z",
    ]);
    expect(period({ period: "month", refillDay: 31 }, "2026-04-29T23:59:59.999Z")).toEqual([
      "2026-03-31T00:00:00.000Z",
      "2026-04-30T00:00:00.000Z",
    ]);
  });

  it("consecutive periods meet exactly, over years of refill days", () => {
    for (const day of [1, 15, 28, 29, 30, 31]) {
      let now = at("2027-11-20T00:00:00Z");
      let prev = quotaPeriod({ period: "month", refillDay: day }, now);
      for (let i = 0; i < 30; i++) {
        now = prev.endMs;
        const next = quotaPeriod({ period: "month", refillDay: day }, now);
        expect(next.startMs).toBe(prev.endMs);
        expect(next.endMs).toBeGreaterThan(next.startMs);
        expect(quotaPeriod({ period: "month", refillDay: day }, now - 1).startMs).toBe(
          prev.startMs,
        );
        prev = next;
      }
    }
  });

  it("keeps the period's window on the plan until it ends", () => {
    const plan = quotaPlan({ limit: 10, period: "day", refillDay: null });
    if (plan === null) throw new Error("no plan");
    const w = quotaWindow(7, plan, at("2026-06-10T05:00:00Z"));
    expect(w).toMatchObject({ bucket: `quota:7:${at("2026-06-10T00:00:00Z")}`, warnAt: 8 });
    expect(quotaWindow(7, plan, at("2026-06-10T23:59:59.999Z"))).toBe(w);
    const next = quotaWindow(7, plan, at("2026-06-11T00:00:00Z"));
    expect(next).not.toBe(w);
    expect(next.startMs).toBe(at("2026-06-11T00:00:00Z"));
    // A clock set back is a period of its own too.
    expect(quotaWindow(7, plan, at("2026-06-09T00:00:00Z")).startMs).toBe(
      at("2026-06-09T00:00:00Z"),
    );
  });
});

describe("reading a quota", () => {
  it("takes a quota or null, refill_day for months only", () => {
    expect(parseQuota(null)).toEqual({ ok: true, quota: null });
    expect(parseQuota({ limit: 5, period: "day" })).toEqual({
      ok: true,
      quota: { limit: 5, period: "day", refillDay: null },
    });
    expect(parseQuota({ limit: 5, period: "month", refill_day: 31 })).toEqual({
      ok: true,
      quota: { limit: 5, period: "month", refillDay: 31 },
    });
    expect(parseQuota({ limit: 5, period: "day", refill_day: null })).toMatchObject({ ok: true });
  });

  it("names each problem and what to send", () => {
    const r = parseQuota({ limit: -1, period: "year", refill_day: 40, x: 1 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.field)).toEqual([
      "quota.x",
      "quota.limit",
      "quota.period",
      "quota.refill_day",
    ]);
    expect(parseQuota([1])).toMatchObject({ ok: false });
    expect(parseQuota({ limit: 1_000_000_001, period: "day" })).toMatchObject({ ok: false });
  });
});
