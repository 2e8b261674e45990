// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { onPhone } from "../test/media";
import { formatDateTime } from "../lib/format";
import { navigate } from "../lib/router";
import { fakeApi, me, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { Webhooks } from "./Webhooks";

const endpoint = (id: number, url: string) => ({
  id,
  url,
  description: null,
  events: ["*"],
  enabled: true,
  environment: "live",
  owner_id: 1,
  failing_since: "2026-11-30T08:00:00.000Z",
  disabled_at: null,
  disabled_reason: null,
  previous_secret_until: null,
  created_at: "2026-11-01T00:00:00.000Z",
  updated_at: "2026-11-01T00:00:00.000Z",
});

const delivery = {
  id: 9,
  message_id: "msg_2Xv1flaky",
  event_type: "key.created",
  status: "succeeded",
  attempts: 3,
  next_attempt_at: null,
  last_attempt_at: "2026-11-30T08:00:06.000Z",
  response_status: 200,
  latency_ms: 12,
  response_body: "ok",
  error: null,
  created_at: "2026-11-30T08:00:00.000Z",
};

const attempt = (n: number, over: Record<string, unknown>) => ({
  attempt: n,
  attempted_at: `2026-11-30T08:00:0${n}.000Z`,
  outcome: "failed",
  manual: false,
  response_status: null,
  latency_ms: 10 * n,
  error: null,
  response_body: null,
  ...over,
});

const attempts = [
  attempt(1, { response_status: null, error: "connect ECONNREFUSED 127.0.0.1:9" }),
  attempt(2, { response_status: 503, error: "answered 503", response_body: "warming up" }),
  attempt(3, { outcome: "succeeded", response_status: 200, response_body: "ok", manual: true }),
];

/** The page, its endpoint 4's log holding one delivery of three attempts. */
function showLog() {
  navigate("/webhooks?deliveries=4", { replace: true });
  const server = fakeApi(me({ role: "admin" }), (req) => {
    if (req.path === "/api/webhooks") return [endpoint(4, "https://ops.example/hook")];
    if (req.path === "/api/webhooks/4/deliveries") return [delivery];
    if (req.path === "/api/webhooks/4/deliveries/9/attempts") return attempts;
    return undefined;
  });
  renderSignedIn(<Webhooks />);
  return server;
}

afterEach(() => {
  cleanup();
  resetApi();
  vi.unstubAllGlobals();
});

describe("the webhooks page", () => {
  it("opens an endpoint's delivery log from ?deliveries=<id>, where an alert links, and forgets it on close", async () => {
    navigate("/webhooks?deliveries=4", { replace: true });
    const server = fakeApi(me({ role: "admin" }), (req) => {
      if (req.path === "/api/webhooks")
        return [
          endpoint(3, "https://billing.example/hook"),
          endpoint(4, "https://ops.example/hook"),
        ];
      if (req.path === "/api/webhooks/4/deliveries") return [];
      return undefined;
    });
    renderSignedIn(<Webhooks />);
    const dialog = await screen.findByRole("dialog", {
      name: "Deliveries to https://ops.example/hook",
    });
    expect(dialog).toBeTruthy();
    await waitFor(() => expect(server.to("/api/webhooks/4/deliveries")).toHaveLength(1));
    expect(server.to("/api/webhooks/3/deliveries")).toHaveLength(0);
    fireEvent.keyDown(dialog, { key: "Escape" });
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(window.location.search).toBe("");
  });

  it("shows a delivery's attempts in order, each with its time, result, latency and answer", async () => {
    const server = showLog();
    const dialog = await screen.findByRole("dialog", {
      name: "Deliveries to https://ops.example/hook",
    });
    fireEvent.click(
      await within(dialog).findByRole("button", { name: "Attempts of msg_2Xv1flaky" }),
    );
    const table = await within(dialog).findByRole("table", { name: "Attempts of msg_2Xv1flaky" });
    expect(server.to("/api/webhooks/4/deliveries/9/attempts")).toHaveLength(1);
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.getAttribute("data-attempt"))).toEqual(["1", "2", "3"]);
    const cells = rows.map((r) =>
      within(r)
        .getAllByRole("cell")
        .map((c) => c.textContent),
    );
    expect(cells[0]).toEqual([
      "Attempt 1",
      expect.any(String),
      "failedconnect ECONNREFUSED 127.0.0.1:9",
      "10 ms",
      "—",
    ]);
    // "answered 503" says nothing the status does not.
    expect(cells[1]!.slice(2)).toEqual(["failed503", "20 ms", "warming up"]);
    expect(cells[2]!.slice(0, 1)).toEqual(["Attempt 3by hand"]);
    expect(cells[2]!.slice(2)).toEqual(["succeeded200", "30 ms", "ok"]);
    expect(cells.map((c) => c[1])).toEqual(attempts.map((a) => formatDateTime(a.attempted_at)));
    // And back to the log.
    fireEvent.click(within(dialog).getByRole("button", { name: "Back to deliveries" }));
    expect(await within(dialog).findByRole("table", { name: "Deliveries" })).toBeTruthy();
  });

  it("shows them as cards on a phone, nothing scrolling sideways", async () => {
    onPhone();
    showLog();
    const dialog = await screen.findByRole("dialog", {
      name: "Deliveries to https://ops.example/hook",
    });
    // The width is known after the first render: wait for the log's cards, so the button
    // clicked is not the one of a table about to be replaced.
    const log = await within(dialog).findByRole("list", { name: "Deliveries" });
    fireEvent.click(await within(log).findByRole("button", { name: "Attempts of msg_2Xv1flaky" }));
    const cards = await within(dialog).findByRole("list", { name: "Attempts of msg_2Xv1flaky" });
    expect(within(dialog).queryByRole("table")).toBeNull();
    const items = within(cards).getAllByRole("listitem");
    expect(items).toHaveLength(3);
    expect(items[1]!.textContent).toContain("Attempt 2");
    expect(items[1]!.textContent).toContain("warming up");
    expect(within(items[0]!).getByText("Latency")).toBeTruthy();
  });
});
