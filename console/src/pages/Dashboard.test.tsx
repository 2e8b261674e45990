// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setEnvironment } from "../lib/environment";
import { navigate } from "../lib/router";
import type { Me } from "../lib/types";
import { apiKey, fakeApi, type Handler, keysServer, me, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { Dashboard } from "./Dashboard";

const admin = me({ id: 1, role: "admin" });
const keys = [
  apiKey({ id: 1, name: "billing" }),
  apiKey({ id: 2, name: "helpdesk" }),
  apiKey({ id: 3, name: "old", status: "revoked" }),
  apiKey({ id: 4, name: "sandbox", environment: "test" }),
  apiKey({ id: 5, name: "sandbox-2", environment: "test", status: "expired" }),
];

const quiet = (req: { path: string }) => {
  if (req.path === "/api/api-keys/activity")
    return {
      from: "2026-05-11T11:00:00.000Z",
      to: "2026-05-12T11:00:00.000Z",
      hourly: [],
      busiest: [],
      recent_refusals: [],
    };
  if (req.path === "/api/system/stats")
    return {
      subscribers: { total: 12, active: 10, suspended: 2, expired: 0 },
      services: 3,
      transactions_30d: [],
    };
  return undefined;
};

function show(user: Me, opts: Parameters<typeof keysServer>[1] = {}) {
  const fake = keysServer(user, { keys, calls24h: { live: 40, test: 7 }, ...opts });
  const routes: Handler = (req) => quiet(req) ?? fake.routes(req);
  const server = fakeApi(user, routes);
  renderSignedIn(<Dashboard />);
  return { server, state: fake.state };
}

/** The number on a stat card, found by its label. */
async function stat(label: string) {
  const link = await screen.findByRole("link", { name: label });
  const card = link.closest(".mantine-Card-root") as HTMLElement;
  await waitFor(() => expect(within(card).queryByText("–")).toBeNull());
  return card.textContent?.replace(label, "") ?? "";
}

beforeEach(() => navigate("/", { replace: true }));
afterEach(() => {
  cleanup();
  resetApi();
});

describe("the dashboard keeps live and test apart", () => {
  it("shows live counts in live mode, with a line on the test data", async () => {
    show(admin);
    expect(await stat("Active keys")).toBe("2");
    expect(await stat("Revoked")).toBe("1");
    expect(await stat("Subscribers")).toMatch(/^12/);
    expect((await screen.findByTestId("other-environment")).textContent).toBe(
      "Test data, not shown here: 2 keys (1 active), 7 calls in the last 24 hours. Turn on Test data in the header to see them.",
    );
    expect(screen.queryByRole("button", { name: "Reset test data" })).toBeNull();
  });

  it("shows test counts in test mode, with a line on the live data", async () => {
    setEnvironment("test");
    const { server } = show(admin);
    expect(await screen.findByRole("heading", { name: "Dashboard: test data" })).toBeTruthy();
    expect(await stat("Active keys")).toBe("1");
    expect(await stat("Expired")).toBe("1");
    expect(await stat("Test subscribers")).toMatch(/^12/);
    expect((await screen.findByTestId("other-environment")).textContent).toBe(
      "Live data, not shown here: 3 keys (2 active), 40 calls in the last 24 hours. Turn off Test data in the header to see them.",
    );
    expect(server.calls.every((c) => c.environment === "test")).toBe(true);
  });

  it("counts a reseller's keys of the other environment by asking for them", async () => {
    setEnvironment("test");
    const reseller = me({ id: 7, role: "reseller" });
    const { server } = show(reseller, {
      keys: keys.map((k) => ({ ...k, owner_id: 7 })),
    });
    expect(await stat("Active keys")).toBe("1");
    expect((await screen.findByTestId("other-environment")).textContent).toMatch(
      /^Live data, not shown here: 3 keys \(2 active\)\. Turn off Test data/,
    );
    const lists = server.to("/api/api-keys").map((c) => c.environment);
    expect(lists.sort()).toEqual(["live", "test"]);
    expect(screen.queryByRole("button", { name: "Reset test data" })).toBeNull();
  });
});

describe("resetting the test data", () => {
  it("is offered to an admin in test mode only, asks first, and shows what was deleted", async () => {
    setEnvironment("test");
    const { server, state } = show(admin, {
      reset: { subscribers: 12, transactions: 30, usage: 1 },
    });
    fireEvent.click(await screen.findByRole("button", { name: "Reset test data" }));
    const dialog = await screen.findByRole("dialog", { name: "Reset test data?" });
    for (const what of [
      "every test subscriber,",
      "every test transaction,",
      "every test usage record.",
    ])
      expect(within(dialog).getByText(what)).toBeTruthy();
    expect(within(dialog).getByText(/Live data is never touched/)).toBeTruthy();
    expect(state.resets).toBe(0);

    const statsBefore = server.to("/api/api-keys/stats").length;
    fireEvent.click(within(dialog).getByRole("button", { name: "Delete test data" }));
    const done = await screen.findByTestId("reset-result");
    expect(done.textContent).toBe(
      "Test data resetDeleted 12 test subscribers, 30 test transactions and 1 test usage record. Live data was not touched.",
    );
    expect(state.resets).toBe(1);
    const reset = server.to("/api/test-data/reset");
    expect(reset).toHaveLength(1);
    expect(reset[0]?.method).toBe("POST");
    expect(reset[0]?.environment).toBe("test");
    // Both environments' counts are read again, each by its own query.
    await waitFor(() => expect(server.to("/api/api-keys/stats").length).toBe(statsBefore + 2));
    const asked = server
      .to("/api/api-keys/stats")
      .map((c) => c.url.searchParams.get("environment"));
    expect(new Set(asked)).toEqual(new Set(["test", "live"]));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });

  it("does nothing when the admin cancels", async () => {
    setEnvironment("test");
    const { server } = show(admin);
    fireEvent.click(await screen.findByRole("button", { name: "Reset test data" }));
    const dialog = await screen.findByRole("dialog", { name: "Reset test data?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(server.to("/api/test-data/reset")).toHaveLength(0);
    expect(screen.queryByTestId("reset-result")).toBeNull();
  });

  it("shows the server's refusal in the dialog", async () => {
    setEnvironment("test");
    const { routes } = keysServer(admin, { keys });
    fakeApi(admin, (req) =>
      req.path === "/api/test-data/reset"
        ? new Response(
            JSON.stringify({
              success: false,
              code: "FORBIDDEN",
              message: "only an admin can reset test data",
            }),
            { status: 403, headers: { "content-type": "application/json" } },
          )
        : (quiet(req) ?? routes(req)),
    );
    renderSignedIn(<Dashboard />);
    fireEvent.click(await screen.findByRole("button", { name: "Reset test data" }));
    const dialog = await screen.findByRole("dialog", { name: "Reset test data?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Delete test data" }));
    expect(await within(dialog).findByText("only an admin can reset test data")).toBeTruthy();
    expect(screen.queryByTestId("reset-result")).toBeNull();
  });
});
