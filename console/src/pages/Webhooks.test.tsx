// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
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

afterEach(() => {
  cleanup();
  resetApi();
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
});
