// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../lib/api";
import { renderUi } from "../test/render";
import type { Service } from "../lib/types";
import { SubscriberForm } from "./SubscriberForm";

const wrap = renderUi;
afterEach(cleanup);

const services: Service[] = [
  {
    id: 4,
    name: "Fibre 100",
    download_kbps: 100_000,
    upload_kbps: 20_000,
    price: 30,
    currency: "USD",
    duration_days: 30,
    is_active: true,
    created_at: "",
    updated_at: "",
  },
];

describe("the subscriber form", () => {
  it("requires a username, a password and a service before sending", async () => {
    const onSubmit = vi.fn(async () => undefined);
    wrap(<SubscriberForm services={services} isAdmin={false} onSubmit={onSubmit} />);
    // Type the password yourself instead of generating one, and leave it empty.
    fireEvent.click(screen.getByRole("switch", { name: /Generate a strong password/ }));
    fireEvent.click(screen.getByRole("button", { name: "Create subscriber" }));
    expect(await screen.findByText("Enter a username.")).toBeTruthy();
    expect(screen.getByText(/Enter a password/)).toBeTruthy();
    expect(screen.getByText("Choose a service.")).toBeTruthy();
    expect(onSubmit).not.toHaveBeenCalled();
    // The first field with a problem takes the focus.
    expect(document.activeElement?.id).toBe("sub-new-username");
  });

  it("checks the username, email and phone as the server does", async () => {
    const onSubmit = vi.fn(async () => undefined);
    wrap(<SubscriberForm services={services} isAdmin={false} onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText(/^Username/), { target: { value: "no spaces" } });
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "nope" } });
    fireEvent.change(screen.getByLabelText("Phone"), { target: { value: "call me" } });
    fireEvent.click(screen.getByRole("button", { name: "Create subscriber" }));
    expect(await screen.findByText("Use only letters, digits and @ . _ -")).toBeTruthy();
    expect(screen.getByText(/Enter an email address/)).toBeTruthy();
    expect(screen.getByText(/3-32 digits/)).toBeTruthy();
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("sends auto-generate by default, and shows a clash in the server's words", async () => {
    const onSubmit = vi.fn(async (_body: unknown) => {
      throw new ApiError(409, "CONFLICT", 'username "alice" is taken', [
        { field: "username", message: "is taken" },
      ]);
    });
    wrap(<SubscriberForm services={services} isAdmin={false} onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText(/^Username/), { target: { value: "alice" } });
    // Mantine's Select: open it and pick the option.
    fireEvent.click(screen.getByRole("combobox", { name: /^Service/ }));
    fireEvent.click(await screen.findByRole("option", { name: "Fibre 100" }));
    fireEvent.click(screen.getByRole("button", { name: "Create subscriber" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalled());
    expect(onSubmit.mock.calls[0]?.[0]).toEqual({
      username: "alice",
      password: "auto-generate",
      service_id: 4,
      status: "active",
    });
    expect(await screen.findByText('username "alice" is taken')).toBeTruthy();
    expect(screen.getByText("is taken")).toBeTruthy();
  });

  it("tells where to go when there is no service yet", () => {
    wrap(<SubscriberForm services={[]} isAdmin onSubmit={async () => undefined} />);
    expect(screen.getByText("Create a service first")).toBeTruthy();
  });
});
