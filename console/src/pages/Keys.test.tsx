// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { setEnvironment } from "../lib/environment";
import { navigate } from "../lib/router";
import type { ApiKey } from "../lib/types";
import { apiKey, fakeApi, keysServer, me, PRESETS, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { Keys, MINT_OFF } from "./Keys";

const key: ApiKey = {
  id: 3,
  name: "billing",
  description: null,
  key_prefix: "pk_live_a8f3",
  scopes: "write",
  permissions: ["*:write"],
  environment: "live",
  owner_id: 7,
  allowed_ips: null,
  rate_limit_per_minute: null,
  quota: null,
  signing: "off",
  tokens_issued: 0,
  last_token_at: null,
  last_used_at: null,
  last_used_ip: null,
  last_refused_at: null,
  last_refused_ip: null,
  last_refused_code: null,
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

describe("key statuses and attempts in the list", () => {
  const keys: ApiKey[] = [
    { ...key, id: 3, name: "billing" },
    { ...key, id: 4, name: "helpdesk", status: "owner_disabled" },
    { ...key, id: 5, name: "monitor", status: "owner_deleted" },
  ];

  it("shows a key whose owner is disabled or deleted as such, with why, and filters by it", async () => {
    fakeApi(me({ id: 1, role: "admin" }), keysApi(keys));
    show();
    const row = await screen.findByTestId("key-row-4");
    expect(within(row).getByText("owner disabled")).toBeTruthy();
    expect(within(row).queryByText("active")).toBeNull();
    const status = within(row).getByText("owner disabled").closest("td") as HTMLElement;
    expect(status.title).toContain("refused with INVALID_USER");
    expect(within(screen.getByTestId("key-row-5")).getByText("owner deleted")).toBeTruthy();
    expect(within(screen.getByTestId("key-row-3")).getByText("active")).toBeTruthy();

    navigate("/keys?status=owner_disabled");
    await waitFor(() => expect(screen.queryByTestId("key-row-3")).toBeNull());
    expect(screen.getByTestId("key-row-4")).toBeTruthy();
    expect(screen.queryByTestId("key-row-5")).toBeNull();
  });

  it("shows the last refused attempt under the last use", async () => {
    fakeApi(
      me({ id: 1, role: "admin" }),
      keysApi([
        {
          ...key,
          last_used_at: "2026-05-12T10:00:00.000Z",
          last_used_ip: "127.0.0.1",
          last_refused_at: "2026-05-12T11:00:00.000Z",
          last_refused_ip: "127.0.0.3",
          last_refused_code: "IP_NOT_ALLOWED",
        },
        { ...key, id: 4, name: "helpdesk" },
      ]),
    );
    show();
    const refused = await screen.findByTestId("key-refused-3");
    expect(refused.textContent).toMatch(/^refused .+: IP_NOT_ALLOWED$/);
    const title = (refused.closest("td") as HTMLElement).title;
    expect(title).toMatch(/^Last used .+; last refused .+ from 127\.0\.0\.3: IP_NOT_ALLOWED$/);
    expect(screen.queryByTestId("key-refused-4")).toBeNull();
  });
});

describe("keys and environments", () => {
  const admin = me({ id: 1, role: "admin" });
  const both = [
    apiKey({ id: 3, name: "billing" }),
    apiKey({ id: 4, name: "billing-sandbox", environment: "test" }),
    apiKey({ id: 5, name: "helpdesk-sandbox", environment: "test", scopes: "custom" }),
  ];

  it("lists the keys of the environment shown, each with its environment badge", async () => {
    const { routes } = keysServer(admin, { keys: both });
    fakeApi(admin, routes);
    show();
    const live = await screen.findByTestId("key-row-3");
    expect(within(live).getByText("live")).toBeTruthy();
    expect(screen.queryByTestId("key-row-4")).toBeNull();

    cleanup();
    resetApi();
    setEnvironment("test");
    const server = fakeApi(admin, keysServer(admin, { keys: both }).routes);
    show();
    expect(await screen.findByRole("heading", { name: "Test API keys" })).toBeTruthy();
    for (const id of [4, 5]) {
      const row = await screen.findByTestId(`key-row-${id}`);
      expect(within(row).getByText("test")).toBeTruthy();
      expect(within(row).getByText(/^pk_test_a8f3/)).toBeTruthy();
    }
    expect(screen.queryByTestId("key-row-3")).toBeNull();
    expect(server.to("/api/api-keys")[0]?.environment).toBe("test");
  });

  it("mints in the environment shown, and the dialog names it first", async () => {
    setEnvironment("test");
    navigate("/keys?new=1", { replace: true });
    const { routes, state } = keysServer(admin);
    const server = fakeApi(admin, routes);
    show();
    const form = await screen.findByRole("form", { name: "New API key" });
    expect(within(form).getByText("This key will be a test key (pk_test_…)")).toBeTruthy();
    fireEvent.change(within(form).getByLabelText("Name"), { target: { value: "sandbox" } });
    fireEvent.click(await within(form).findByRole("button", { name: "Billing" }));
    fireEvent.click(within(form).getByRole("button", { name: "Mint key" }));

    const dialog = await screen.findByRole("dialog", { name: "Key “sandbox” minted" });
    expect(within(dialog).getByTestId("show-once-environment").textContent).toMatch(
      /^Test key — works only on test data/,
    );
    expect(
      within(dialog).getByText(/^Can read subscribers and usage and post transactions/),
    ).toBeTruthy();
    expect((within(dialog).getByTestId("show-once-secret") as HTMLInputElement).value).toMatch(
      /^pk_test_/,
    );
    const post = server.calls.find((c) => c.method === "POST" && c.path === "/api/api-keys");
    expect(post?.environment).toBe("test");
    expect(post?.body).toEqual({
      name: "sandbox",
      permissions: ["subscribers:read", "transactions:write", "usage:read"],
      environment: "test",
      owner_id: 1,
    });
    expect(state.keys[0]).toMatchObject({ environment: "test", scopes: "custom" });
  });

  it("names a live key as such when it is shown once", async () => {
    navigate("/keys?new=1", { replace: true });
    fakeApi(admin, keysServer(admin).routes);
    show();
    const form = await screen.findByRole("form", { name: "New API key" });
    expect(within(form).getByText("This key will be a live key (pk_live_…)")).toBeTruthy();
    fireEvent.click(within(form).getByRole("button", { name: "Mint key" }));
    const dialog = await screen.findByRole("dialog", { name: /minted$/ });
    expect(within(dialog).getByTestId("show-once-environment").textContent).toMatch(
      /^Live key — works on live data/,
    );
    expect((within(dialog).getByTestId("show-once-secret") as HTMLInputElement).value).toMatch(
      /^pk_live_/,
    );
  });

  it("shows a reseller the server's refusal of a permission beyond its role", async () => {
    navigate("/keys?new=1", { replace: true });
    const reseller = me({ role: "reseller", manage_keys: true });
    const server = fakeApi(
      reseller,
      // A server whose limits let the picker offer NAS, and that refuses it all the same.
      (req) =>
        req.path === "/api/api-keys/presets"
          ? { ...PRESETS, role_limits: { reseller: ["*:delete"] } }
          : keysServer(reseller).routes(req),
    );
    show();
    const form = await screen.findByRole("form", { name: "New API key" });
    await waitFor(() =>
      expect(
        (within(form).getByRole("checkbox", { name: "NAS devices: read" }) as HTMLInputElement)
          .disabled,
      ).toBe(false),
    );
    fireEvent.click(within(form).getByRole("button", { name: "Monitoring" }));
    fireEvent.click(within(form).getByRole("checkbox", { name: "NAS devices: read" }));
    fireEvent.click(within(form).getByRole("button", { name: "Mint key" }));
    expect((await within(form).findByTestId("permissions-error")).textContent).toMatch(
      /^nas:read is beyond what the key's owner, a reseller, may do/,
    );
    expect(within(form).getByText("Key not minted")).toBeTruthy();
    expect(
      server.calls.find((c) => c.method === "POST" && c.path === "/api/api-keys")?.body,
    ).toMatchObject({ permissions: ["nas:read", "stats:read"] });
  });
});

describe("signed keys in the list and at minting", () => {
  const admin = me({ id: 1, role: "admin" });

  it("marks a key with signing on as signed, and no other", async () => {
    fakeApi(
      admin,
      keysApi([
        { ...key, id: 3, name: "billing", signing: "required" },
        { ...key, id: 4, name: "helpdesk", signing: "optional" },
        { ...key, id: 5, name: "monitor", signing: "off" },
      ]),
    );
    show();
    const required = within(await screen.findByTestId("key-row-3")).getByText("signed");
    expect(required.closest("[title]")?.getAttribute("title")).toMatch(/required/);
    expect(within(screen.getByTestId("key-row-4")).getByText("signed")).toBeTruthy();
    expect(within(screen.getByTestId("key-row-5")).queryByText("signed")).toBeNull();
  });

  it("mints a key that requires signing, and shows its key and its secret once each", async () => {
    navigate("/keys?new=1", { replace: true });
    const server = fakeApi(admin, keysServer(admin).routes);
    show();
    const form = await screen.findByRole("form", { name: "New API key" });
    fireEvent.change(within(form).getByLabelText("Name"), { target: { value: "billing" } });
    fireEvent.click(within(form).getByRole("radio", { name: "Required" }));
    fireEvent.click(within(form).getByRole("button", { name: "Mint key" }));

    const dialog = await screen.findByRole("dialog", { name: "Key “billing” minted" });
    const post = server.calls.find((c) => c.method === "POST" && c.path === "/api/api-keys");
    expect(post?.body).toMatchObject({ name: "billing", signing: "required" });
    expect((within(dialog).getByLabelText("API key") as HTMLInputElement).value).toMatch(
      /^pk_live_/,
    );
    const secret = within(dialog).getByLabelText(/^Signing secret/) as HTMLInputElement;
    expect(secret.value).toMatch(/^pks_live_[0-9a-f]{64}$/);
    expect(
      within(dialog)
        .getAllByRole("textbox")
        .filter((i) => (i as HTMLInputElement).value === secret.value),
    ).toHaveLength(1);
    expect(within(dialog).getByRole("button", { name: "Copy signing secret" })).toBeTruthy();
    expect(within(dialog).getByRole("button", { name: "Copy API key" })).toBeTruthy();
    // A key that requires signing: no bare curl line that would be refused.
    expect(within(dialog).queryByTestId("show-once-curl")).toBeNull();
    const done = within(dialog).getByRole("button", { name: "Done" }) as HTMLButtonElement;
    fireEvent.click(within(dialog).getByLabelText("I have stored the API key somewhere safe"));
    expect(done.disabled).toBe(true);
    fireEvent.click(
      within(dialog).getByLabelText("I have stored the signing secret somewhere safe"),
    );
    expect(done.disabled).toBe(false);
  });

  it("mints a key without signing as before: no signing sent, no secret shown", async () => {
    navigate("/keys?new=1", { replace: true });
    const server = fakeApi(admin, keysServer(admin).routes);
    show();
    const form = await screen.findByRole("form", { name: "New API key" });
    fireEvent.click(within(form).getByRole("button", { name: "Mint key" }));
    const dialog = await screen.findByRole("dialog", { name: /minted$/ });
    const post = server.calls.find((c) => c.method === "POST" && c.path === "/api/api-keys");
    expect(post?.body).not.toHaveProperty("signing");
    expect(within(dialog).queryByTestId("show-once-signing-secret")).toBeNull();
    expect(within(dialog).getByLabelText("I have stored it somewhere safe")).toBeTruthy();
  });
});
