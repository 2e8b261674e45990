// @vitest-environment happy-dom
import { cleanup, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { navigate } from "../lib/router";
import type { ApiKey } from "../lib/types";
import { fakeApi, me, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { Keys, MINT_OFF } from "./Keys";

const key: ApiKey = {
  id: 3,
  name: "billing",
  description: null,
  key_prefix: "pk_live_a8f3",
  scopes: "write",
  owner_id: 7,
  allowed_ips: null,
  rate_limit_per_minute: null,
  last_used_at: null,
  last_used_ip: null,
  expires_at: null,
  created_at: "2026-04-01T00:00:00.000Z",
  updated_at: "2026-04-01T00:00:00.000Z",
  revoked_at: null,
  is_active: true,
  status: "active",
  rolled_from_id: null,
  replaced_by_id: null,
};

const keysApi = (keys: ApiKey[]) => (req: { method: string; path: string }) => {
  if (req.method === "GET" && req.path === "/api/api-keys") return keys;
  if (req.method === "GET" && req.path === "/api/users") return [];
  return undefined;
};

const show = () => renderSignedIn(<Keys />);

beforeEach(() => navigate("/keys", { replace: true }));
afterEach(() => {
  cleanup();
  resetApi();
});

describe("the keys page", () => {
  it("explains, instead of offering to mint, to a reseller without self-service keys", async () => {
    const server = fakeApi(me({ role: "reseller", manage_keys: false }), keysApi([key]));
    show();
    expect(await screen.findByText(MINT_OFF)).toBeTruthy();
    expect(await screen.findByRole("link", { name: "billing" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Mint/ })).toBeNull();
    expect(server.to("/api/auth/me")).toHaveLength(1);
    expect(server.calls.some((c) => c.method === "POST" && c.path === "/api/api-keys")).toBe(false);
  });

  it("opens no mint form from ?new=1 for a reseller without self-service keys", async () => {
    navigate("/keys?new=1", { replace: true });
    fakeApi(me({ role: "reseller", manage_keys: false }), keysApi([]));
    show();
    expect(await screen.findByText(MINT_OFF)).toBeTruthy();
    expect(await screen.findByText("No keys yet")).toBeTruthy();
    expect(screen.getByText(/Keys an admin mints for you appear here/)).toBeTruthy();
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(screen.queryByRole("button", { name: /Mint/ })).toBeNull();
  });

  it("offers minting to a reseller with self-service keys, and to an admin", async () => {
    fakeApi(me({ role: "reseller", manage_keys: true }), keysApi([]));
    show();
    await waitFor(() =>
      expect(screen.getAllByRole("button", { name: /^Mint (a|your first) key$/ })).toHaveLength(2),
    );
    expect(screen.queryByText(MINT_OFF)).toBeNull();

    cleanup();
    resetApi();
    fakeApi(me({ id: 1, role: "admin" }), keysApi([key]));
    show();
    expect(await screen.findByRole("button", { name: "Mint a key" })).toBeTruthy();
    expect(screen.queryByText(MINT_OFF)).toBeNull();
  });

  it("shows the server's default rate limit in the mint form", async () => {
    navigate("/keys?new=1", { replace: true });
    fakeApi(me({ id: 1, role: "admin" }), keysApi([]));
    show();
    expect(
      await screen.findByText("Requests per minute. Empty: the server default, 600 / min."),
    ).toBeTruthy();
  });
});
