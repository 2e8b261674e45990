// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../lib/api";
import { renderUi } from "../test/render";
import type { ApiKey } from "../lib/types";
import { KeyForm } from "./KeyForm";

const NOW = new Date("2026-05-12T11:00:00Z");
const wrap = renderUi;

afterEach(cleanup);

function type(label: RegExp | string, value: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
}

describe("the key form", () => {
  it("refuses a bad IP line before sending, naming the line", async () => {
    const onSubmit = vi.fn(async () => undefined);
    wrap(<KeyForm isAdmin={false} selfId={2} onSubmit={onSubmit} now={NOW} />);
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
    wrap(<KeyForm isAdmin={false} selfId={2} onSubmit={onSubmit} now={NOW} />);
    type("Expires", "2026-05-11");
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByText(/The expiry date has passed/)).toBeTruthy();
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("sends a clean body when everything is right", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    wrap(<KeyForm isAdmin={false} selfId={2} onSubmit={onSubmit} now={NOW} />);
    type("Name", "billing");
    fireEvent.click(screen.getByLabelText(/^write/));
    type("Allowed IPs", " 203.0.113.7 \n\n2001:db8::/32\n");
    type(/Rate limit/, "120");
    type("Expires", "2026-05-12");
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit.mock.calls[0]?.[0]).toEqual({
      name: "billing",
      scopes: "write",
      allowed_ips: ["203.0.113.7", "2001:db8::/32"],
      rate_limit_per_minute: 120,
      expires_at: "2026-05-12",
      owner_id: 2,
    });
  });

  it("explains what each scope allows", () => {
    wrap(<KeyForm isAdmin={false} selfId={2} onSubmit={async () => undefined} now={NOW} />);
    expect(screen.getByText(/Read only: GET\./)).toBeTruthy();
    expect(screen.getByText(/Read and change: GET, POST, PUT\./)).toBeTruthy();
    expect(screen.getByText(/Everything: GET, POST, PUT, DELETE\./)).toBeTruthy();
  });

  it("shows the server's refusal, and its field problems under the field", async () => {
    const onSubmit = vi.fn(async () => {
      throw new ApiError(
        403,
        "FORBIDDEN",
        "only an admin can mint keys; you are a reseller — ask an admin, or have the operator set KEYGATE_SELF_SERVICE_KEYS=true",
      );
    });
    wrap(<KeyForm isAdmin={false} selfId={2} onSubmit={onSubmit} now={NOW} />);
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    expect(await screen.findByText(/KEYGATE_SELF_SERVICE_KEYS=true/)).toBeTruthy();

    cleanup();
    const invalid = vi.fn(async () => {
      throw new ApiError(400, "VALIDATION_ERROR", "invalid body: rate_limit_per_minute too high", [
        { field: "rate_limit_per_minute", message: "must be from 1 to 1000000" },
      ]);
    });
    wrap(<KeyForm isAdmin={false} selfId={2} onSubmit={invalid} now={NOW} />);
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
    wrap(<KeyForm isAdmin selfId={1} users={users} onSubmit={onSubmit} now={NOW} />);
    expect(
      screen.getByText("The key acts for its owner and sees exactly what the owner sees."),
    ).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Mint key" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalled());
    expect(onSubmit.mock.calls[0]?.[0]).toMatchObject({ owner_id: 1, scopes: "read" });
  });

  it("on edit sends only what changed, and keeps a past expiry it did not touch", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => undefined);
    const existing: ApiKey = {
      id: 3,
      name: "old",
      description: null,
      key_prefix: "pk_live_a8f3",
      scopes: "read",
      owner_id: 2,
      allowed_ips: ["10.0.0.0/8"],
      rate_limit_per_minute: null,
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
    wrap(<KeyForm existing={existing} isAdmin={false} selfId={2} onSubmit={onSubmit} now={NOW} />);
    type("Name", "renamed");
    fireEvent.click(screen.getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalled());
    expect(onSubmit.mock.calls[0]?.[0]).toEqual({ name: "renamed" });
  });
});
