// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { fakeApi, me, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { type AlertItem, Notifications } from "./Notifications";

const leaked: AlertItem = {
  id: "7",
  kind: "key.leaked",
  severity: "critical",
  title: "Leaked key revoked",
  message: 'Key "billing" (pk_live_a8f3…) was found exposed at https://github.com/o/r and revoked',
  target: { type: "api_key", id: 12 },
  link: "/keys/12",
  environment: "live",
  details: null,
  created_at: "2026-12-01T20:00:00.000Z",
};
const expiring: AlertItem = {
  ...leaked,
  id: "expiring:3:1764892800000",
  kind: "key.expiring",
  severity: "warning",
  title: "Key expiring soon",
  message: 'Key "crm" (pk_live_0b1c…) expires in 3 days',
  target: { type: "api_key", id: 3 },
  link: "/keys/3",
};

afterEach(() => {
  cleanup();
  resetApi();
});

describe("the notifications bell", () => {
  it("counts the alerts, links each to its key, and dismisses one through the server", async () => {
    let alerts = [leaked, expiring];
    const server = fakeApi(me({ role: "admin" }), (req) => {
      if (req.method === "GET" && req.path === "/api/alerts") return alerts;
      if (
        req.method === "POST" &&
        req.path === `/api/alerts/${encodeURIComponent(expiring.id)}/dismiss`
      ) {
        alerts = alerts.filter((a) => a.id !== expiring.id);
        return new Response(JSON.stringify({ success: true, message: "dismissed" }), {
          status: 200,
          headers: { "content-type": "application/json" },
        });
      }
      return undefined;
    });
    renderSignedIn(<Notifications />);
    fireEvent.click(await screen.findByRole("button", { name: "Notifications: 2 alerts" }));
    expect((await screen.findAllByTestId("alert")).length).toBe(2);
    const links = screen.getAllByRole("link", { name: "Open the key" });
    expect(links.map((l) => l.getAttribute("href"))).toEqual(["/keys/12", "/keys/3"]);

    fireEvent.click(screen.getByRole("button", { name: "Dismiss: Key expiring soon" }));
    await screen.findByRole("button", { name: "Notifications: 1 alert" });
    expect(server.to(`/api/alerts/${encodeURIComponent(expiring.id)}/dismiss`)).toHaveLength(1);
  });

  it("says when nothing needs attention", async () => {
    fakeApi(me(), (req) => (req.path === "/api/alerts" ? [] : undefined));
    renderSignedIn(<Notifications />);
    fireEvent.click(await screen.findByRole("button", { name: "Notifications: none" }));
    await waitFor(() => expect(screen.getByText("Nothing needs your attention.")).toBeTruthy());
  });
});
