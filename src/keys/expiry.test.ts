import { describe, expect, it } from "vitest";
import { type ExpiryResult, isRealDate, parseDateOnly, parseExpiry } from "./expiry.js";

const NOW = new Date("2026-03-10T12:00:00.000Z");

function at(result: ExpiryResult): string {
  if (!result.ok) throw new Error(`expected ok, got "${result.message}"`);
  return result.at.toISOString();
}

function refusal(result: ExpiryResult): string {
  if (result.ok) throw new Error(`expected a refusal, got ${result.at.toISOString()}`);
  return result.message;
}

const SHAPE = /must be a date \(YYYY-MM-DD\) or an ISO-8601 timestamp/;
const PAST = /must lie in the future \(it is now 2026-03-10T12:00:00.000Z\)/;

describe("parseExpiry: date only", () => {
  it("means the end of that day in UTC", () => {
    expect(at(parseExpiry("2026-04-01", NOW))).toBe("2026-04-01T23:59:59.999Z");
  });

  it("accepts today, valid until the end of the day", () => {
    expect(at(parseExpiry("2026-03-10", NOW))).toBe("2026-03-10T23:59:59.999Z");
    const lastMs = new Date("2026-03-10T23:59:59.998Z");
    expect(at(parseExpiry("2026-03-10", lastMs))).toBe("2026-03-10T23:59:59.999Z");
  });

  it("refuses today once the last millisecond of the day has come", () => {
    const endOfDay = new Date("2026-03-10T23:59:59.999Z");
    expect(refusal(parseExpiry("2026-03-10", endOfDay))).toMatch(/must lie in the future/);
  });

  it("refuses yesterday", () => {
    expect(refusal(parseExpiry("2026-03-09", NOW))).toMatch(PAST);
  });

  it("accepts 29 February in a leap year only", () => {
    expect(at(parseExpiry("2028-02-29", NOW))).toBe("2028-02-29T23:59:59.999Z");
    expect(refusal(parseExpiry("2027-02-29", NOW))).toMatch(SHAPE);
  });

  it.each(["2026-02-30", "2026-04-31", "2026-13-01", "2026-00-10", "2026-05-00", "2026-05-32"])(
    "refuses the impossible date %s",
    (value) => {
      expect(refusal(parseExpiry(value, new Date("2020-01-01T00:00:00Z")))).toMatch(SHAPE);
    },
  );

  it("refuses 2025-02-29 (not a leap year) but not as being in the past", () => {
    const early = new Date("2020-01-01T00:00:00Z");
    expect(refusal(parseExpiry("2025-02-29", early))).toMatch(SHAPE);
    expect(at(parseExpiry("2028-02-29", early))).toBe("2028-02-29T23:59:59.999Z");
  });
});

describe("parseExpiry: timestamps", () => {
  it("reads a Z timestamp as given", () => {
    expect(at(parseExpiry("2026-03-11T08:30:00Z", NOW))).toBe("2026-03-11T08:30:00.000Z");
    expect(at(parseExpiry("2026-03-11T08:30:00z", NOW))).toBe("2026-03-11T08:30:00.000Z");
  });

  it("reads a timestamp without an offset as UTC", () => {
    expect(at(parseExpiry("2026-03-11T08:30:00", NOW))).toBe("2026-03-11T08:30:00.000Z");
    expect(at(parseExpiry("2026-03-11T08:30", NOW))).toBe("2026-03-11T08:30:00.000Z");
    expect(at(parseExpiry("2026-03-11 08:30:00", NOW))).toBe("2026-03-11T08:30:00.000Z");
  });

  it("applies a +hh:mm offset", () => {
    expect(at(parseExpiry("2026-03-11T00:00:00+02:00", NOW))).toBe("2026-03-10T22:00:00.000Z");
  });

  it("applies a -hhmm offset without a colon", () => {
    expect(at(parseExpiry("2026-03-11T00:00:00-0530", NOW))).toBe("2026-03-11T05:30:00.000Z");
    expect(at(parseExpiry("2026-03-11T00:00:00+0200", NOW))).toBe("2026-03-10T22:00:00.000Z");
  });

  it("keeps milliseconds and drops digits past them", () => {
    expect(at(parseExpiry("2026-03-11T00:00:00.5Z", NOW))).toBe("2026-03-11T00:00:00.500Z");
    expect(at(parseExpiry("2026-03-11T00:00:00.123456789Z", NOW))).toBe("2026-03-11T00:00:00.123Z");
  });

  it("refuses a timestamp equal to now, accepts one millisecond later", () => {
    expect(refusal(parseExpiry("2026-03-10T12:00:00Z", NOW))).toMatch(PAST);
    expect(refusal(parseExpiry("2026-03-10T14:00:00+02:00", NOW))).toMatch(PAST);
    expect(at(parseExpiry("2026-03-10T12:00:00.001Z", NOW))).toBe("2026-03-10T12:00:00.001Z");
  });

  it("refuses past timestamps, judging by the offset-adjusted instant", () => {
    expect(refusal(parseExpiry("2026-03-10T11:59:59Z", NOW))).toMatch(PAST);
    // 13:00 local at +02:00 is 11:00Z: already past even though 13:00 > 12:00.
    expect(refusal(parseExpiry("2026-03-10T13:00:00+02:00", NOW))).toMatch(PAST);
    // 08:00 local at -05:00 is 13:00Z: still ahead.
    expect(at(parseExpiry("2026-03-10T08:00:00-05:00", NOW))).toBe("2026-03-10T13:00:00.000Z");
  });

  it.each([
    "2026-02-30T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2027-02-29T10:00:00Z",
    "2026-03-11T24:00:00Z",
    "2026-03-11T23:60:00Z",
    "2026-03-11T23:59:60Z",
    "2026-03-11T00:00:00+24:00",
    "2026-03-11T00:00:00+02:60",
  ])("refuses the impossible moment %s", (value) => {
    expect(refusal(parseExpiry(value, NOW))).toMatch(SHAPE);
  });
});

describe("parseExpiry: garbage", () => {
  it.each([
    "",
    "tomorrow",
    "2026-3-11",
    "11/03/2026",
    "2026/03/11",
    "20260311",
    " 2026-03-11",
    "2026-03-11 ",
    "2026-03-11\n",
    "+02026-03-11",
    "2026-03-11T",
    "2026-03-11T10",
    "2026-03-11T10:00:00+02",
    "2026-03-11T10:00:00 Z",
    "2026-03-11T10:00:00.Z",
    "1741600000000",
    "1969-12-31",
  ])("refuses %j", (value) => {
    expect(refusal(parseExpiry(value, new Date("1960-01-01T00:00:00Z")))).toMatch(SHAPE);
  });
});

describe("isRealDate", () => {
  it("accepts real calendar dates", () => {
    expect(isRealDate(2026, 1, 31)).toBe(true);
    expect(isRealDate(2026, 2, 28)).toBe(true);
    expect(isRealDate(2026, 4, 30)).toBe(true);
    expect(isRealDate(2026, 12, 31)).toBe(true);
    expect(isRealDate(1970, 1, 1)).toBe(true);
    expect(isRealDate(9999, 12, 31)).toBe(true);
  });

  it("handles leap years including the century rules", () => {
    expect(isRealDate(2028, 2, 29)).toBe(true);
    expect(isRealDate(2025, 2, 29)).toBe(false);
    expect(isRealDate(2000, 2, 29)).toBe(true);
    expect(isRealDate(2100, 2, 29)).toBe(false);
  });

  it("refuses days past the end of the month and out-of-range parts", () => {
    expect(isRealDate(2026, 2, 29)).toBe(false);
    expect(isRealDate(2026, 2, 30)).toBe(false);
    expect(isRealDate(2026, 4, 31)).toBe(false);
    expect(isRealDate(2026, 13, 1)).toBe(false);
    expect(isRealDate(2026, 0, 1)).toBe(false);
    expect(isRealDate(2026, 1, 0)).toBe(false);
    expect(isRealDate(2026, 1, 32)).toBe(false);
  });

  it("refuses years before 1970 and after 9999", () => {
    expect(isRealDate(1969, 12, 31)).toBe(false);
    expect(isRealDate(10000, 1, 1)).toBe(false);
  });
});

describe("parseDateOnly", () => {
  it("returns the numeric parts of a real date", () => {
    expect(parseDateOnly("2026-03-09")).toEqual({ y: 2026, m: 3, d: 9 });
    expect(parseDateOnly("2028-02-29")).toEqual({ y: 2028, m: 2, d: 29 });
  });

  it("returns null for impossible dates and other shapes", () => {
    expect(parseDateOnly("2025-02-29")).toBeNull();
    expect(parseDateOnly("2026-02-30")).toBeNull();
    expect(parseDateOnly("2026-13-01")).toBeNull();
    expect(parseDateOnly("2026-03-09T00:00:00Z")).toBeNull();
    expect(parseDateOnly("2026-3-9")).toBeNull();
    expect(parseDateOnly("")).toBeNull();
  });
});
