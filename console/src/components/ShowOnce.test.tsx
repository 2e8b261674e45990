// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { renderUi } from "../test/render";
import { ShowOnceDialog, SIGNING_SECRET_USE } from "./ShowOnce";

const KEY = `pk_live_${"0123456789abcdef".repeat(2)}`;
const SECRET = `pks_live_${"89abcdef01234567".repeat(4)}`;

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  Reflect.deleteProperty(navigator, "clipboard");
});

function clipboard() {
  const writeText = vi.fn(async (_text: string) => undefined);
  vi.stubGlobal("isSecureContext", true);
  Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
  return writeText;
}

const dialog = () => screen.getByRole("dialog");
const done = () => within(dialog()).getByRole("button", { name: "Done" }) as HTMLButtonElement;
const inputs = () =>
  within(dialog())
    .getAllByRole("textbox")
    .map((i) => (i as HTMLInputElement).value);

describe("the show-once dialog of a signed key", () => {
  it("shows the key and the signing secret once each, labelled, with what the secret is for", () => {
    renderUi(
      <ShowOnceDialog
        opened
        onClose={() => undefined}
        title="Key “billing” minted"
        environment="live"
        secret={KEY}
        signingSecret={SECRET}
        signing="optional"
        curl
      />,
    );
    expect((screen.getByLabelText("API key") as HTMLInputElement).value).toBe(KEY);
    expect((screen.getByLabelText(/^Signing secret/) as HTMLInputElement).value).toBe(SECRET);
    expect((screen.getByTestId("show-once-signing-secret") as HTMLInputElement).value).toBe(SECRET);
    // Each once: the secret is in its own field and nowhere else (the curl line has the key).
    expect(inputs().filter((v) => v === SECRET)).toHaveLength(1);
    expect(inputs().filter((v) => v === KEY)).toHaveLength(1);
    expect(dialog().textContent?.split(SECRET)).toHaveLength(1);
    expect(screen.getByTestId("show-once-signing-use").textContent).toBe(SIGNING_SECRET_USE);
    expect(SIGNING_SECRET_USE).toMatch(/never sent over the wire/);
    const warning = within(dialog()).getByRole("alert");
    expect(warning.textContent).toMatch(/^Copy both now: neither will be shown again/);
    expect(warning.textContent).toContain("roll the key");
    // Optional signing: an unsigned call still works.
    expect((screen.getByTestId("show-once-curl") as HTMLInputElement).value).toContain(KEY);
  });

  it("gives each its own copy button, copying its own value", async () => {
    const writeText = clipboard();
    renderUi(
      <ShowOnceDialog
        opened
        onClose={() => undefined}
        title="Key minted"
        secret={KEY}
        signingSecret={SECRET}
        curl
      />,
    );
    fireEvent.click(within(dialog()).getByRole("button", { name: "Copy signing secret" }));
    await waitFor(() => expect(writeText).toHaveBeenCalledWith(SECRET));
    expect(await within(dialog()).findByRole("button", { name: "Copied" })).toBeTruthy();
    // The key's button is still there, under its own name.
    fireEvent.click(within(dialog()).getByRole("button", { name: "Copy API key" }));
    await waitFor(() => expect(writeText).toHaveBeenLastCalledWith(KEY));
    expect(writeText).toHaveBeenCalledTimes(2);
  });

  it("closes only once both are confirmed stored", () => {
    const onClose = vi.fn();
    renderUi(
      <ShowOnceDialog
        opened
        onClose={onClose}
        title="Key minted"
        secret={KEY}
        signingSecret={SECRET}
        curl
      />,
    );
    expect(screen.queryByLabelText("I have stored it somewhere safe")).toBeNull();
    expect(done().disabled).toBe(true);
    fireEvent.click(screen.getByLabelText("I have stored the API key somewhere safe"));
    expect(done().disabled).toBe(true);
    fireEvent.click(screen.getByLabelText("I have stored the signing secret somewhere safe"));
    expect(done().disabled).toBe(false);
    fireEvent.click(screen.getByLabelText("I have stored the API key somewhere safe"));
    expect(done().disabled).toBe(true);
    fireEvent.click(screen.getByLabelText("I have stored the API key somewhere safe"));
    fireEvent.click(done());
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it("offers no bare curl line for a key that requires signatures", () => {
    renderUi(
      <ShowOnceDialog
        opened
        onClose={() => undefined}
        title="Key minted"
        secret={KEY}
        signingSecret={SECRET}
        signing="required"
        curl
      />,
    );
    expect(screen.queryByTestId("show-once-curl")).toBeNull();
    expect(screen.getByTestId("show-once-signed-only").textContent).toContain(
      "refused with SIGNATURE_REQUIRED",
    );
  });

  it("shows a signing secret alone, when an edit turned signing on", () => {
    const onClose = vi.fn();
    renderUi(
      <ShowOnceDialog
        opened
        onClose={onClose}
        title="Request signing turned on"
        signingSecret={SECRET}
      />,
    );
    expect(inputs()).toEqual([SECRET]);
    expect(screen.queryByTestId("show-once-secret")).toBeNull();
    expect(within(dialog()).getByRole("alert").textContent).toMatch(
      /^Copy it now: it will not be shown again.*turn signing off and on again/,
    );
    expect(within(dialog()).getByRole("button", { name: "Copy signing secret" })).toBeTruthy();
    expect(done().disabled).toBe(true);
    fireEvent.click(screen.getByLabelText("I have stored it somewhere safe"));
    fireEvent.click(done());
    expect(onClose).toHaveBeenCalledTimes(1);
  });

  it("is as before for a key without signing: one secret, one confirmation", () => {
    renderUi(
      <ShowOnceDialog opened onClose={() => undefined} title="Key minted" secret={KEY} curl />,
    );
    expect(screen.queryByTestId("show-once-signing-secret")).toBeNull();
    expect(within(dialog()).getByRole("alert").textContent).toMatch(
      /^Copy it now: it will not be shown again.*roll or revoke the key/,
    );
    expect(within(dialog()).getAllByRole("button", { name: "Copy" })).toHaveLength(2);
    expect(within(dialog()).getAllByRole("checkbox")).toHaveLength(1);
    expect(done().disabled).toBe(true);
    fireEvent.click(screen.getByLabelText("I have stored it somewhere safe"));
    expect(done().disabled).toBe(false);
  });
});
