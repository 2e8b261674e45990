// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { fakeApi, me, reply, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { type UsageCounts, type UsageReport, UsageCharts, usagePath } from "./UsageCharts";

const zero: UsageCounts = {
  calls: 0,
  admitted: 0,
  by_status: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 },
  by_error: {},
  latency_ms: null,
};

function report(from: string, hours: number, counts: Partial<UsageCounts>[]): UsageReport {
  const start = Date.parse(from);
  const buckets = Array.from({ length: hours }, (_, i) => ({
    ...zero,
    ...counts[i],
    start: new Date(start + i * 3_600_000).toISOString(),
  }));
  const sum = (f: (b: UsageCounts) => number) => buckets.reduce((n, b) => n + f(b), 0);
  return {
    from,
    to: new Date(start + hours * 3_600_000).toISOString(),
    bucket: "hour",
    environment: null,
    api_key_id: 7,
    totals: {
      calls: sum((b) => b.calls),
      admitted: sum((b) => b.admitted),
      by_status: {
        "2xx": sum((b) => b.by_status["2xx"]),
        "3xx": 0,
        "4xx": sum((b) => b.by_status["4xx"]),
        "5xx": sum((b) => b.by_status["5xx"]),
      },
      by_error: { NOT_FOUND: 3, RATE_LIMIT_EXCEEDED: 1 },
      latency_ms: { p50: 4.2, p95: 38, p99: 120 },
    },
    buckets,
    top_routes: [
      { route: "GET /api/v1/external/subscribers/:id", calls: 9 },
      { route: "GET /api/v1/external/whoami", calls: 3 },
    ],
    top_ips: [{ ip: "203.0.113.9", calls: 12 }],
  };
}

const busy = report("2026-05-11T12:00:00.000Z", 24, [
  {
    calls: 8,
    admitted: 7,
    by_status: { "2xx": 5, "3xx": 0, "4xx": 3, "5xx": 0 },
    latency_ms: { p50: 4, p95: 30, p99: 90 },
  },
  {
    calls: 4,
    admitted: 3,
    by_status: { "2xx": 3, "3xx": 0, "4xx": 0, "5xx": 1 },
    latency_ms: { p50: 5, p95: 40, p99: 120 },
  },
]);

afterEach(() => {
  cleanup();
  resetApi();
});

describe("usagePath", () => {
  it("asks for the range in its bucket, for a key or for every key", () => {
    const now = Date.parse("2026-05-12T12:00:00.000Z");
    const day = new URL(usagePath("24h", now, { keyId: 7 }), "http://x");
    expect(day.pathname).toBe("/api/api-keys/7/usage");
    expect(Object.fromEntries(day.searchParams)).toEqual({
      from: "2026-05-11T12:00:00.000Z",
      to: "2026-05-12T12:00:00.000Z",
      bucket: "hour",
    });
    const week = new URL(usagePath("7d", now, { environment: "test" }), "http://x");
    expect(week.pathname).toBe("/api/usage");
    expect(week.searchParams.get("from")).toBe("2026-05-05T12:00:00.000Z");
    expect(week.searchParams.get("bucket")).toBe("hour");
    expect(week.searchParams.get("environment")).toBe("test");
    const month = new URL(usagePath("30d", now), "http://x");
    expect(month.searchParams.get("from")).toBe("2026-04-12T12:00:00.000Z");
    expect(month.searchParams.get("bucket")).toBe("day");
  });
});

describe("UsageCharts", () => {
  it("shows the totals, both charts and the busiest routes and addresses", async () => {
    const server = fakeApi(me(), (req) =>
      req.path === "/api/api-keys/7/usage" ? busy : undefined,
    );
    renderSignedIn(<UsageCharts keyId={7} />);
    const totals = await screen.findByTestId("usage-totals");
    expect(totals.textContent).toContain("12");
    expect(totals.textContent).toContain("10 admitted");
    // 3 4xx and 1 5xx of 12 calls.
    expect(totals.textContent).toContain("33.3 %");
    expect(totals.textContent).toContain("NOT_FOUND 3");
    expect(totals.textContent).toContain("4.20 ms");
    expect(totals.textContent).toContain("38 ms");
    expect(totals.textContent).toContain("p99 120 ms");
    expect(
      screen
        .getByRole("img", { name: /calls per hour by status class over the last 24 hours/ })
        .getAttribute("aria-label"),
    ).toContain("8 2xx, 0 3xx, 3 4xx, 1 5xx");
    expect(screen.getByRole("img", { name: /latency per hour/ })).toBeTruthy();
    const routes = screen.getByRole("list", { name: "Busiest routes" });
    expect(
      within(routes)
        .getAllByRole("listitem")
        .map((r) => r.textContent),
    ).toEqual(["GET /api/v1/external/subscribers/:id9", "GET /api/v1/external/whoami3"]);
    expect(screen.getByRole("list", { name: "Busiest addresses" }).textContent).toContain(
      "203.0.113.9",
    );
    const asked = server.to("/api/api-keys/7/usage");
    expect(asked).toHaveLength(1);
    expect(asked[0]?.url.searchParams.get("bucket")).toBe("hour");
  });

  it("asks again for the range chosen: 7 days by hour, 30 days by day", async () => {
    const server = fakeApi(me(), (req) => (req.path === "/api/usage" ? busy : undefined));
    renderSignedIn(<UsageCharts environment="live" />);
    await screen.findByTestId("usage-totals");
    const span = (i: number) => {
      const u = server.to("/api/usage")[i]?.url;
      return u
        ? {
            hours:
              (Date.parse(u.searchParams.get("to") ?? "") -
                Date.parse(u.searchParams.get("from") ?? "")) /
              3_600_000,
            bucket: u.searchParams.get("bucket"),
            environment: u.searchParams.get("environment"),
          }
        : undefined;
    };
    expect(span(0)).toEqual({ hours: 24, bucket: "hour", environment: "live" });
    fireEvent.click(screen.getByRole("radio", { name: "7 d" }));
    await waitFor(() => expect(server.to("/api/usage")).toHaveLength(2));
    expect(span(1)).toEqual({ hours: 168, bucket: "hour", environment: "live" });
    fireEvent.click(screen.getByRole("radio", { name: "30 d" }));
    await waitFor(() => expect(server.to("/api/usage")).toHaveLength(3));
    expect(span(2)).toEqual({ hours: 720, bucket: "day", environment: "live" });
  });

  it("says so when there were no calls", async () => {
    fakeApi(me(), (req) =>
      req.path === "/api/api-keys/7/usage" ? report("2026-05-11T12:00:00.000Z", 24, []) : undefined,
    );
    renderSignedIn(<UsageCharts keyId={7} />);
    await screen.findByText("No calls in the last 24 hours");
    expect(screen.queryByTestId("usage-totals")).toBeNull();
    expect(screen.queryByRole("img")).toBeNull();
  });

  it("shows the server's error and tries again", async () => {
    let fail = true;
    fakeApi(me(), (req) => {
      if (req.path !== "/api/api-keys/7/usage") return undefined;
      if (!fail) return busy;
      return reply(400, {
        success: false,
        code: "VALIDATION_ERROR",
        message: "from must be before to",
        details: [{ field: "from", message: "must be before to" }],
      });
    });
    renderSignedIn(<UsageCharts keyId={7} />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Usage not loaded");
    expect(alert.textContent).toContain("from must be before to");
    fail = false;
    fireEvent.click(within(alert).getByRole("button", { name: "Try again" }));
    await screen.findByTestId("usage-totals");
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
