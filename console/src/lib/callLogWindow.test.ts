import { describe, expect, it } from "vitest";
import { logWindowOf, NEWEST_FIRST } from "../components/CallLogWindow";
import { callLogCsvPath, callLogPath } from "./callLog";
import { localToIso } from "./range";

const params = (path: string) => Object.fromEntries(new URL(path, "http://x").searchParams);

describe("the call log's order and range", () => {
  it("sends nothing more for newest first, the server's default", () => {
    expect(callLogPath(3, { limit: 50, ...logWindowOf(NEWEST_FIRST).window })).toBe(
      "/api/api-keys/3/logs?limit=50",
    );
  });

  it("asks oldest first with the range, and pages with after_id", () => {
    const { window, problem } = logWindowOf({
      order: "asc",
      from: "2026-05-11T10:00",
      before: "2026-05-11T12:00",
    });
    expect(problem).toBeNull();
    expect(params(callLogPath(3, { limit: 50, ...window, afterId: 99 }))).toEqual({
      limit: "50",
      order: "asc",
      from: localToIso("2026-05-11T10:00"),
      before: localToIso("2026-05-11T12:00"),
      after_id: "99",
    });
    expect(params(callLogCsvPath(3, { status: "4xx", ...window }))).toMatchObject({
      status: "4xx",
      order: "asc",
      from: localToIso("2026-05-11T10:00"),
    });
  });

  it("leaves out a range that cannot be sent, and says why", () => {
    const { window, problem } = logWindowOf({
      order: "desc",
      from: "2026-05-11T12:00",
      before: "2026-05-11T10:00",
    });
    expect(problem).toBe("The end must be later than the start.");
    expect(params(callLogPath(3, { limit: 50, ...window }))).toEqual({ limit: "50" });
  });
});
