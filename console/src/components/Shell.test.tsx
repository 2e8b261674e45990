// @vitest-environment happy-dom
import { act, cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { App } from "../App";
import { currentEnvironment } from "../lib/environment";
import { navigate, useLocation } from "../lib/router";
import { apiKey, fakeApi, keysServer, me, resetApi } from "../test/fakeApi";
import { renderUi } from "../test/render";
import { themeFor } from "../theme";
import { TEST_DATA_BANNER } from "./Shell";

const keys = [
  apiKey({ id: 3, name: "billing-live" }),
  apiKey({ id: 4, name: "billing-sandbox", environment: "test" }),
];

function Where() {
  return <span data-testid="path">{useLocation().path}</span>;
}

function start() {
  const { routes } = keysServer(me({ id: 1, role: "admin" }), { keys });
  const server = fakeApi(me({ id: 1, role: "admin" }), routes);
  renderUi(
    <>
      <App />
      <Where />
    </>,
  );
  return server;
}

const testSwitch = () => screen.getByRole("switch", { name: "Test data" }) as HTMLInputElement;

beforeEach(() => {
  localStorage.clear();
  navigate("/keys", { replace: true });
});
afterEach(() => {
  cleanup();
  resetApi();
});

describe("the Test data switch", () => {
  it("is off at first: live keys, live requests, no banner", async () => {
    const server = start();
    expect(await screen.findByRole("link", { name: "billing-live" })).toBeTruthy();
    expect(testSwitch().checked).toBe(false);
    expect(screen.queryByText(TEST_DATA_BANNER)).toBeNull();
    expect(screen.queryByRole("link", { name: "billing-sandbox" })).toBeNull();
    expect(server.calls.every((c) => c.headers["keygate-environment"] === "live")).toBe(true);
  });

  it("when on, shows the banner, sends test on every request and reloads the page's data", async () => {
    const server = start();
    await screen.findByRole("link", { name: "billing-live" });
    const before = server.to("/api/api-keys").length;
    fireEvent.click(testSwitch());

    const banner = await screen.findByText(TEST_DATA_BANNER);
    expect(banner.closest('[role="status"]')).toBeTruthy();
    expect(testSwitch().checked).toBe(true);
    expect(await screen.findByRole("link", { name: "billing-sandbox" })).toBeTruthy();
    expect(screen.queryByRole("link", { name: "billing-live" })).toBeNull();
    const lists = server.to("/api/api-keys");
    expect(lists.length).toBe(before + 1);
    expect(lists.at(-1)?.headers["keygate-environment"]).toBe("test");
    expect(localStorage.getItem("keygate-environment")).toBe("test");
    expect(document.title).toBe("Test data · Keygate");
    // Its own accent: the header says which data it shows, and the theme turns orange.
    expect(document.querySelector("header")?.getAttribute("data-environment")).toBe("test");
    expect(themeFor("test").primaryColor).toBe("orange");
    expect(themeFor("live").primaryColor).toBe("blue");

    fireEvent.click(testSwitch());
    await waitFor(() => expect(screen.queryByText(TEST_DATA_BANNER)).toBeNull());
    expect(await screen.findByRole("link", { name: "billing-live" })).toBeTruthy();
    expect(server.to("/api/api-keys").at(-1)?.headers["keygate-environment"]).toBe("live");
    expect(localStorage.getItem("keygate-environment")).toBe("live");
  });

  it("follows a switch flipped in another tab", async () => {
    start();
    await screen.findByRole("link", { name: "billing-live" });
    act(() => {
      localStorage.setItem("keygate-environment", "test");
      window.dispatchEvent(new StorageEvent("storage", { key: "keygate-environment" }));
    });
    expect(await screen.findByText(TEST_DATA_BANNER)).toBeTruthy();
    expect(currentEnvironment()).toBe("test");
    expect(await screen.findByRole("link", { name: "billing-sandbox" })).toBeTruthy();
  });

  it("leaves a key's page for the list, since the key belongs to the other environment", async () => {
    navigate("/keys/3", { replace: true });
    start();
    expect(await screen.findByRole("heading", { level: 1, name: /billing-live/ })).toBeTruthy();
    fireEvent.click(testSwitch());
    await waitFor(() => expect(screen.getByTestId("path").textContent).toBe("/keys"));
    expect(await screen.findByRole("link", { name: "billing-sandbox" })).toBeTruthy();
  });
});
