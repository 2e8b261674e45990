// @vitest-environment happy-dom
import { act, cleanup, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthProvider, useAuth, useUser } from "./auth";
import { ApiClient } from "./lib/api";
import { fakeApi, me, resetApi } from "./test/fakeApi";
import { renderUi } from "./test/render";

function Probe() {
  const auth = useAuth();
  if (auth.status !== "signed-in") return <p>{auth.status}</p>;
  return <Signed />;
}

function Signed() {
  const u = useUser();
  return (
    <p data-testid="probe">
      {u.username} manage={String(u.canManageKeys)} default={String(u.defaultKeyRateLimit)}
    </p>
  );
}

function setup() {
  const timers: (() => void)[] = [];
  const client = new ApiClient({
    setTimer: (fn) => timers.push(fn),
    clearTimer: () => undefined,
    withLock: (fn) => fn(),
  });
  renderUi(
    <AuthProvider client={client}>
      <Probe />
    </AuthProvider>,
  );
  return { client, timers };
}

const probe = () => screen.getByTestId("probe").textContent;

afterEach(() => {
  cleanup();
  resetApi();
});

describe("the session's profile", () => {
  it("asks /api/auth/me once per session, not on every token refresh", async () => {
    const server = fakeApi(me({ role: "reseller", manage_keys: false }));
    const { client, timers } = setup();
    await waitFor(() => expect(probe()).toBe("acme manage=false default=600"));
    expect(server.to("/api/auth/me")).toHaveLength(1);

    // The access token is refreshed before it expires: same user, no new question.
    await act(async () => {
      timers.at(-1)?.();
      await vi.waitFor(() => expect(server.to("/api/auth/refresh")).toHaveLength(2));
    });
    expect(probe()).toBe("acme manage=false default=600");
    expect(server.to("/api/auth/me")).toHaveLength(1);

    // Signed out and in again: asked again.
    await act(() => client.logout());
    expect(screen.getByText("signed-out")).toBeTruthy();
    await act(async () => {
      await client.login("acme", "pw");
    });
    await waitFor(() => expect(probe()).toBe("acme manage=false default=600"));
    expect(server.to("/api/auth/me")).toHaveLength(2);
  });

  it("lets an admin manage keys, with the server's default rate limit", async () => {
    fakeApi(me({ id: 1, role: "admin", defaults: { key_rate_limit_per_minute: 90 } }));
    setup();
    await waitFor(() => expect(probe()).toBe("admin manage=true default=90"));
  });

  it("leaves the decision to the server when /api/auth/me cannot be read", async () => {
    const server = fakeApi(me({ role: "reseller", manage_keys: false }));
    server.failMe();
    setup();
    await waitFor(() => expect(probe()).toBe("acme manage=true default=null"));
  });
});
