import { describe, expect, it } from "vitest";
import { callLogPath } from "./callLog";

describe("the call log's address", () => {
  it("sends the limit, and the status and before_id only when set", () => {
    expect(callLogPath(3, { limit: 200 })).toBe("/api/api-keys/3/logs?limit=200");
    expect(callLogPath(3, { limit: 200, status: "" })).toBe("/api/api-keys/3/logs?limit=200");
    expect(callLogPath(3, { limit: 50, status: "refused" })).toBe(
      "/api/api-keys/3/logs?limit=50&status=refused",
    );
    expect(
      callLogPath(12, {
        limit: 1000,
        status: "API_KEY_REVOKED",
        beforeId: 4711,
      }),
    ).toBe("/api/api-keys/12/logs?limit=1000&status=API_KEY_REVOKED&before_id=4711");
  });
});
