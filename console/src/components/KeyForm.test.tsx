// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../lib/api";
import { apiKey as apiKeyOf, fakeApi, me, PRESETS, resetApi } from "../test/fakeApi";
import { renderUi } from "../test/render";
import type { ApiKey } from "../lib/types";
import { type KeyBody, KeyForm } from "./KeyForm";

const NOW = new Date("2026-05-12T11:00:00Z");
const wrap = renderUi;

/** The form as the keys page shows it: live, with the server's presets. */
type Props = Parameters<typeof KeyForm>[0];
const form = (props: Omit<Props, "environment"> & Partial<Pick<Props, "environment">>) => (
  <KeyForm environment="live" presets={PRESETS} {...props} />
);

afterEach(cleanup);

function type(label: RegExp | string, value: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
}

describe("the key form", () => {
  it("refuses a bad IP line before sending, naming the line", async () => {
    const onSubmit = vi.fn(async () => undefined);
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    type("Allowed IPs", "203.0.113.7\n10.0.0.300");
    // Checked as typed, before any submit.
    expect(
      await screen.findByText(/Line 2 \(10\.0\.0\.300\): not an IPv4 or IPv6 address/),
    ).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    await new Promise((r) => setTimeout(r, 20));
    expect(onSubmit).not.toHaveBeenCalled();
    type("Allowed IPs", "10.0.0.1/8");
    expect(await screen.findByText(/did you mean 10\.0\.0\.0\/8\?/)).toBeTruthy();
  });

  it("refuses an expiry date in the past before sending", async () => {
    const onSubmit = vi.fn(async () => undefined);
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    type("Expires", "2026-05-11");
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByText(/The expiry date has passed/)).toBeTruthy();
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("sends a clean body when everything is right", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    type("Name", "billing");
    fireEvent.click(screen.getByRole("button", { name: "Billing" }));
    type("Allowed IPs", " 203.0.113.7 \n\n2001:db8::/32\n");
    type(/Rate limit/, "120");
    type("Expires", "2026-05-12");
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0]?.[0]).toEqual({
      name: "billing",
      permissions: ["subscribers:read", "transactions:write", "usage:read"],
      environment: "live",
      allowed_ips: ["203.0.113.7", "2001:db8::/32"],
      rate_limit_per_minute: 120,
      expires_at: "2026-05-12",
      owner_id: 2,
    });
  });

  it("shows the server's refusal, and its field problems under the field", async () => {
    const onSubmit = vi.fn(async () => {
      throw new ApiError(
        403,
        "FORBIDDEN",
        "only an admin can mint keys; you are a reseller — ask an admin, or have the operator set KEYGATE_SELF_SERVICE_KEYS=true",
      );
    });
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByText(/KEYGATE_SELF_SERVICE_KEYS=true/)).toBeTruthy();

    cleanup();
    const invalid = vi.fn(async () => {
      throw new ApiError(400, "VALIDATION_ERROR", "invalid body: rate_limit_per_minute too high", [
        { field: "rate_limit_per_minute", message: "must be from 1 to 1000000" },
      ]);
    });
    wrap(form({ isAdmin: false, selfId: 2, onSubmit: invalid, now: NOW }));
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByText("must be from 1 to 1000000")).toBeTruthy();
    expect(screen.getByLabelText(/Rate limit/).getAttribute("aria-invalid")).toBe("true");
  });

  it("lets an admin choose the owner", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    const users = [
      {
        id: 1,
        username: "admin",
        role: "admin" as const,
        disabled: false,
        two_factor_enabled: false,
        created_at: "",
        updated_at: "",
      },
      {
        id: 7,
        username: "acme",
        role: "reseller" as const,
        disabled: false,
        two_factor_enabled: false,
        created_at: "",
        updated_at: "",
      },
    ];
    wrap(form({ isAdmin: true, selfId: 1, users, onSubmit, now: NOW }));
    expect(
      screen.getByText("The key acts for its owner and sees exactly what the owner sees."),
    ).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalled());
    expect(onSubmit.mock.calls[0]?.[0]).toMatchObject({
      owner_id: 1,
      permissions: ["*:read"],
      environment: "live",
    });
  });

  it("on edit sends only what changed, and keeps a past expiry it did not touch", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    const existing: ApiKey = {
      id: 3,
      name: "old",
      description: null,
      key_prefix: "pk_live_a8f3",
      scopes: "read",
      permissions: ["*:read"],
      environment: "live",
      owner_id: 2,
      allowed_ips: ["10.0.0.0/8"],
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
      expires_at: "2026-05-01T23:59:59.999Z",
      created_at: "2026-04-01T00:00:00Z",
      updated_at: "2026-04-01T00:00:00Z",
      revoked_at: null,
      is_active: true,
      status: "expired",
      rolled_from_id: null,
      replaced_by_id: null,
    };
    wrap(form({ existing, isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    type("Name", "renamed");
    fireEvent.click(screen.getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalled());
    expect(onSubmit.mock.calls[0]?.[0]).toEqual({ name: "renamed" });
  });
});

const box = (name: string) => screen.getByRole("checkbox", { name }) as HTMLInputElement;
const ticked = () =>
  screen
    .getAllByRole("checkbox")
    .filter((c) => (c as HTMLInputElement).checked && c.closest("[data-testid=permission-grid]"))
    .map((c) => c.getAttribute("aria-label"));
const summary = () => screen.getByTestId("permission-summary").textContent;

async function submitted(onSubmit: ReturnType<typeof vi.fn>, button = "Mint key") {
  fireEvent.click(screen.getByRole("button", { name: button }));
  await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
  return onSubmit.mock.calls[0]?.[0] as KeyBody;
}

describe("the permission picker", () => {
  it("fills the grid from a preset, marks it chosen, and says what it allows", () => {
    wrap(form({ isAdmin: true, selfId: 1, onSubmit: async () => undefined, now: NOW }));
    // A new key reads everything, as before.
    expect(screen.getByRole("button", { name: "Read only" }).getAttribute("aria-pressed")).toBe(
      "true",
    );
    expect(ticked()).toHaveLength(6);
    expect(summary()).toBe("Can read everything; cannot change or delete anything.");

    fireEvent.click(screen.getByRole("button", { name: "Billing" }));
    expect(ticked()).toEqual([
      "Subscribers: read",
      "Transactions: read",
      "Transactions: write",
      "Usage: read",
    ]);
    expect(screen.getByRole("button", { name: "Billing" }).getAttribute("aria-pressed")).toBe(
      "true",
    );
    expect(screen.getByRole("button", { name: "Read only" }).getAttribute("aria-pressed")).toBe(
      "false",
    );
    expect(screen.getByText(/^Billing: Reads subscribers and usage/)).toBeTruthy();
    expect(summary()).toBe(
      "Can read subscribers and usage and post transactions; cannot delete anything. No access to services, NAS devices or stats.",
    );

    fireEvent.click(screen.getByRole("button", { name: "Provisioning" }));
    expect(ticked()).toEqual([
      "Subscribers: read",
      "Subscribers: write",
      "Subscribers: delete",
      "Services: read",
    ]);

    fireEvent.click(screen.getByRole("button", { name: "Full access" }));
    expect(ticked()).toHaveLength(18);
    expect(summary()).toBe("Can read, change and delete everything.");
    // The summary describes the picker, for screen readers too.
    const group = screen.getByRole("group", { name: "Permissions" });
    expect(group.getAttribute("aria-describedby")).toBe(
      screen.getByTestId("permission-summary").id,
    );
  });

  it("ticks what an action implies, and unticks what implies it", () => {
    wrap(form({ isAdmin: true, selfId: 1, onSubmit: async () => undefined, now: NOW }));
    fireEvent.click(screen.getByRole("button", { name: "Monitoring" }));
    expect(ticked()).toEqual(["Stats: read"]);

    fireEvent.click(box("Services: delete"));
    expect(box("Services: write").checked).toBe(true);
    expect(box("Services: read").checked).toBe(true);
    fireEvent.click(box("Services: delete"));
    expect(box("Services: write").checked).toBe(true);
    expect(box("Services: delete").checked).toBe(false);
    fireEvent.click(box("Services: read"));
    expect(box("Services: write").checked).toBe(false);
    expect(ticked()).toEqual(["Stats: read"]);

    fireEvent.click(box("Transactions: write"));
    expect(box("Transactions: read").checked).toBe(true);
    // No preset matches any more: none is marked chosen.
    for (const p of PRESETS.presets)
      expect(screen.getByRole("button", { name: p.label }).getAttribute("aria-pressed")).toBe(
        "false",
      );
    expect(summary()).toBe(
      "Can read stats and post transactions; cannot delete anything. No access to subscribers, usage, services or NAS devices.",
    );
  });

  it("sends the permissions normalised, and nothing sendable when none is ticked", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ isAdmin: true, selfId: 1, onSubmit, now: NOW }));
    fireEvent.click(screen.getByRole("button", { name: "Read only" }));
    fireEvent.click(box("Transactions: write"));
    fireEvent.click(box("Subscribers: delete"));
    fireEvent.click(box("Subscribers: read"));
    fireEvent.click(box("Subscribers: read"));
    expect(screen.getByText("transactions:write")).toBeTruthy();
    const body = await submitted(onSubmit);
    // Every resource reads (*:read); transactions also write; implied reads are not repeated.
    expect(body.permissions).toEqual(["*:read", "transactions:write"]);
    expect(body).not.toHaveProperty("scopes");

    cleanup();
    const never = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ isAdmin: true, selfId: 1, onSubmit: never, now: NOW }));
    for (const r of ["Subscribers", "Transactions", "Usage", "Services", "NAS devices", "Stats"])
      fireEvent.click(box(`${r}: read`));
    expect(summary()).toMatch(/^No permissions/);
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    expect(
      await screen.findByText("Tick at least one permission, or choose a preset."),
    ).toBeTruthy();
    expect(never).not.toHaveBeenCalled();
  });

  it("greys out NAS for a reseller's key, and shows the server's refusal under the picker", async () => {
    const refuse = vi.fn(async (_body: unknown) => {
      throw new ApiError(
        400,
        "VALIDATION_ERROR",
        "invalid body: nas:read is beyond the owner's role",
        [
          {
            field: "permissions",
            message: "nas:read is beyond what the owner's role (reseller) may reach",
          },
        ],
      );
    });
    wrap(form({ isAdmin: false, selfId: 2, onSubmit: refuse, now: NOW }));
    for (const a of ["read", "write", "delete"]) {
      expect(box(`NAS devices: ${a}`).disabled).toBe(true);
      expect(box(`NAS devices: ${a}`).checked).toBe(false);
    }
    // The catalogue and the stats are read only for a reseller, as its owner's role says.
    expect(box("Services: read").disabled).toBe(false);
    expect(box("Services: write").disabled).toBe(true);
    expect(box("Stats: delete").disabled).toBe(true);
    expect(box("Subscribers: delete").disabled).toBe(false);
    expect(screen.getByText("not for a reseller's key")).toBeTruthy();
    expect(screen.getAllByText("read only for a reseller's key")).toHaveLength(2);
    expect(screen.getByText(/refuses the greyed-out permissions on a reseller's key/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Full access" }));
    expect(ticked()).toEqual([
      "Subscribers: read",
      "Subscribers: write",
      "Subscribers: delete",
      "Transactions: read",
      "Transactions: write",
      "Transactions: delete",
      "Usage: read",
      "Usage: write",
      "Usage: delete",
      "Services: read",
      "Stats: read",
    ]);
    expect(summary()).toBe(
      "Can read, change and delete everything. Its owner is a reseller, so NAS devices stay out of reach and services and stats can only be read.",
    );
    const body = await submitted(refuse);
    expect(body.permissions).toEqual(["*:delete"]);
    expect((await screen.findByTestId("permissions-error")).textContent).toBe(
      "nas:read is beyond what the owner's role (reseller) may reach",
    );
  });

  it("follows the owner an admin chooses", async () => {
    const users = [
      {
        id: 1,
        username: "admin",
        role: "admin" as const,
        disabled: false,
        two_factor_enabled: false,
        created_at: "",
        updated_at: "",
      },
      {
        id: 7,
        username: "acme",
        role: "reseller" as const,
        disabled: false,
        two_factor_enabled: false,
        created_at: "",
        updated_at: "",
      },
    ];
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ isAdmin: true, selfId: 1, users, onSubmit, now: NOW }));
    fireEvent.click(box("NAS devices: write"));
    expect(box("NAS devices: write").disabled).toBe(false);
    fireEvent.click(screen.getByRole("combobox", { name: /^Owner/ }));
    fireEvent.click(await screen.findByRole("option", { name: "acme (reseller)" }));
    await waitFor(() => expect(box("NAS devices: write").disabled).toBe(true));
    const body = await submitted(onSubmit);
    expect(body).toMatchObject({ owner_id: 7, permissions: ["*:read"] });
  });

  it("says which environment a new key is minted in, and sends it", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW, environment: "test" }));
    expect(screen.getByText("This key will be a test key (pk_test_…)")).toBeTruthy();
    expect(screen.getByText(/It sees and changes only test data/)).toBeTruthy();
    expect((await submitted(onSubmit)).environment).toBe("test");

    cleanup();
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    expect(screen.getByText("This key will be a live key (pk_live_…)")).toBeTruthy();
  });

  it("on edit sends only the permissions when only they changed, and keeps the environment", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    const existing = apiKeyOf({
      permissions: ["subscribers:read", "transactions:write", "usage:read"],
      scopes: "custom",
      environment: "test",
      key_prefix: "pk_test_a8f3",
    });
    wrap(form({ existing, isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    expect(screen.getByTestId("key-environment").textContent).toMatch(
      /A test key \(pk_test_…\).+cannot be changed/,
    );
    expect(screen.getByRole("button", { name: "Billing" }).getAttribute("aria-pressed")).toBe(
      "true",
    );
    fireEvent.click(box("Usage: write"));
    const body = await submitted(onSubmit, "Save changes");
    expect(body).toEqual({
      permissions: ["subscribers:read", "transactions:write", "usage:write"],
    });
  });

  it("asks the server for the presets when it is not handed them", async () => {
    const server = fakeApi(me({ role: "reseller", manage_keys: true }));
    try {
      wrap(
        <KeyForm isAdmin={false} selfId={7} environment="live" onSubmit={async () => undefined} />,
      );
      expect(await screen.findByRole("button", { name: "Provisioning" })).toBeTruthy();
      expect(server.to("/api/api-keys/presets")).toHaveLength(1);
    } finally {
      resetApi();
    }
  });
});

describe("request signing in the key form", () => {
  const radio = (name: string) => screen.getByRole("radio", { name }) as HTMLInputElement;

  it("is off for a new key, says what each choice does, and sends nothing while off", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    expect(screen.getByRole("radiogroup", { name: /^Request signing/ })).toBeTruthy();
    expect(radio("Off").checked).toBe(true);
    expect(radio("Optional").checked).toBe(false);
    expect(radio("Required").checked).toBe(false);
    expect(
      screen.getByText("Every call must carry an RFC 9421 signature made with the signing secret."),
    ).toBeTruthy();
    expect(
      screen.getByText("Signed calls are verified; unsigned ones are still accepted."),
    ).toBeTruthy();
    expect(screen.queryByTestId("key-signing-note")).toBeNull();
    expect(await submitted(onSubmit)).not.toHaveProperty("signing");
  });

  it("sends the signing chosen when minting, and says the secret comes with the key", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ isAdmin: false, selfId: 2, onSubmit, now: NOW }));
    fireEvent.click(radio("Required"));
    expect(radio("Required").checked).toBe(true);
    expect(screen.getByTestId("key-signing-note").textContent).toBe(
      "A signing secret is minted with the key and shown once, beside it.",
    );
    expect(await submitted(onSubmit)).toEqual({
      permissions: ["*:read"],
      environment: "live",
      owner_id: 2,
      signing: "required",
    });
  });

  it("on edit shows the key's signing, and sends it only when changed", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(form({ existing: apiKeyOf({ signing: "off" }), isAdmin: false, selfId: 7, onSubmit }));
    expect(radio("Off").checked).toBe(true);
    fireEvent.click(radio("Optional"));
    expect(screen.getByTestId("key-signing-note").textContent).toBe(
      "Saving mints a signing secret, shown once.",
    );
    expect(await submitted(onSubmit, "Save changes")).toEqual({ signing: "optional" });

    cleanup();
    const later = vi.fn(async (_body: unknown) => undefined);
    wrap(
      form({
        existing: apiKeyOf({ signing: "optional" }),
        isAdmin: false,
        selfId: 7,
        onSubmit: later,
      }),
    );
    expect(radio("Optional").checked).toBe(true);
    fireEvent.click(radio("Required"));
    expect(screen.getByTestId("key-signing-note").textContent).toMatch(
      /^The signing secret stays the same\. From the next request every unsigned call is refused with SIGNATURE_REQUIRED/,
    );
    fireEvent.click(radio("Off"));
    expect(screen.getByTestId("key-signing-note").textContent).toMatch(
      /^Saving deletes the signing secret for good/,
    );
    fireEvent.click(radio("Optional"));
    expect(screen.queryByTestId("key-signing-note")).toBeNull();
    type("Name", "renamed");
    expect(await submitted(later, "Save changes")).toEqual({ name: "renamed" });
  });

  it("shows the server's refusal of signing under the choice", async () => {
    const refuse = vi.fn(async (_body: unknown) => {
      throw new ApiError(400, "VALIDATION_ERROR", "invalid body: signing needs a master key", [
        {
          field: "signing",
          message:
            "request signing needs a master key: set KEYGATE_MASTER_KEY or KEYGATE_MASTER_KEY_FILE",
        },
      ]);
    });
    wrap(form({ isAdmin: false, selfId: 2, onSubmit: refuse, now: NOW }));
    fireEvent.click(radio("Optional"));
    await submitted(refuse);
    const group = screen.getByRole("radiogroup", { name: /^Request signing/ });
    // Under the choice, and what the choice is described by.
    const error = await screen.findByText(/set KEYGATE_MASTER_KEY or KEYGATE_MASTER_KEY_FILE$/);
    expect(group.getAttribute("aria-describedby")?.split(/\s+/)).toContain(error.id);
    expect(screen.getByText("Key not minted")).toBeTruthy();
  });
});
