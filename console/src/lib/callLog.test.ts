import { describe, expect, it } from "vitest";
import { callLogPath, REQUEST_ID_RE, requestIdProblem } from "./callLog";

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

describe("searching by request id", () => {
  it("sends request_id, encoded, beside the other filters", () => {
    expect(callLogPath(3, { limit: 200, requestId: "" })).toBe("/api/api-keys/3/logs?limit=200");
    expect(callLogPath(3, { limit: 200, requestId: "0196c3f0-7d1e-7abc-9def-0123456789ab" })).toBe(
      "/api/api-keys/3/logs?limit=200&request_id=0196c3f0-7d1e-7abc-9def-0123456789ab",
    );
    const path = callLogPath(3, { limit: 50, requestId: "run:42/a+b=c@x", beforeId: 9 });
    expect(path).toBe(
      "/api/api-keys/3/logs?limit=50&before_id=9&request_id=run%3A42%2Fa%2Bb%3Dc%40x",
    );
    expect(new URL(path, "http://x").searchParams.get("request_id")).toBe("run:42/a+b=c@x");
  });

  it("accepts what the server accepts: 1 to 128 of A-Z a-z 0-9 _ . : @ / + = -", () => {
    for (const ok of [
      "a",
      "req_1.2:3@4/5+6=7-8",
      "x".repeat(128),
      "0196c3f0-7d1e-7abc-9def-0123456789ab",
    ]) {
      expect(REQUEST_ID_RE.test(ok), ok).toBe(true);
      expect(requestIdProblem(ok), ok).toBeNull();
    }
    expect(requestIdProblem("")).toBeNull(); // no search
    expect(requestIdProblem("x".repeat(129))).toBe(
      "A request id has at most 128 characters; this has 129.",
    );
    expect(requestIdProblem("req 42")).toBe(
      "A request id holds only letters, digits and _ . : @ / + = -; this one has a space.",
    );
    expect(requestIdProblem("a!b?c!")).toBe(
      "A request id holds only letters, digits and _ . : @ / + = -; this one has “!” and “?”.",
    );
    expect(requestIdProblem("é#%")).toBe(
      "A request id holds only letters, digits and _ . : @ / + = -; this one has “é”, “#” and “%”.",
    );
  });
});
