// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { qrPath } from "../components/QrCode";
import { ToastProvider } from "../components/Toasts";
import type { TwoFactorStatus } from "../lib/types";
import { fakeApi, me, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { TwoFactorSection } from "./Account";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const URL_ = `otpauth://totp/Keygate:admin?issuer=Keygate&secret=${SECRET}&algorithm=SHA1&digits=6&period=30`;
const CODES = Array.from({ length: 10 }, (_, i) => `abcd-efgh-jkmn-pq${i}${i}`.slice(0, 19));

function twoFactorApi(status: TwoFactorStatus) {
  let current = status;
  return (req: { method: string; path: string; body?: unknown }) => {
    if (req.method === "GET" && req.path === "/api/auth/2fa") return current;
    if (req.method === "POST" && req.path === "/api/auth/2fa/enrol")
      return {
        secret: SECRET,
        otpauth_url: URL_,
        qr_svg: "<svg></svg>",
        issuer: "Keygate",
        account: "admin",
        algorithm: "SHA1",
        digits: 6,
        period: 30,
      };
    if (req.method === "POST" && req.path === "/api/auth/2fa/confirm") {
      current = { ...current, enabled: true, enabled_at: "2026-06-01T12:00:00.000Z" };
      return { enabled_at: current.enabled_at, recovery_codes: CODES };
    }
    if (req.method === "POST" && req.path === "/api/auth/2fa/disable") {
      current = { ...current, enabled: false, enabled_at: null };
      return {};
    }
    return undefined;
  };
}

const off: TwoFactorStatus = {
  enabled: false,
  enabled_at: null,
  pending: false,
  recovery_codes_left: 0,
  required: true,
};

afterEach(() => {
  cleanup();
  resetApi();
});

describe("the two-factor section", () => {
  it("enrols: password, QR code and key, a first code, then the recovery codes once", async () => {
    const server = fakeApi(me({ role: "admin" }), twoFactorApi(off));
    renderSignedIn(
      <ToastProvider>
        <TwoFactorSection />
      </ToastProvider>,
    );
    expect(await screen.findByText("Required for your account")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Turn on two-factor sign-in" }));

    fireEvent.change(await screen.findByLabelText(/Your password/), {
      target: { value: "admin-password-1" },
    });
    fireEvent.click(screen.getByRole("button", { name: "Continue" }));

    const qr = await screen.findByRole("img", { name: /QR code for Keygate \(admin\)/ });
    expect(qr.getAttribute("style")).toBeNull();
    expect(qr.querySelector("path")?.getAttribute("d")).toBe(qrPath(URL_).d);
    const key = screen.getByTestId("two-factor-secret") as HTMLInputElement;
    expect(key.value.replace(/ /g, "")).toBe(SECRET);
    expect(server.to("/api/auth/2fa/enrol")[0]?.body).toEqual({ password: "admin-password-1" });

    fireEvent.change(screen.getByLabelText(/Enter the code the app shows/), {
      target: { value: "123 456" },
    });
    fireEvent.click(screen.getByRole("button", { name: "Turn on" }));

    const list = await screen.findByTestId("recovery-codes");
    expect(within(list).getAllByText(/^abcd-/)).toHaveLength(10);
    expect(server.to("/api/auth/2fa/confirm")[0]?.body).toEqual({ code: "123456" });
    expect(screen.getByRole("button", { name: "Copy all codes" })).toBeTruthy();
    const done = screen.getByRole("button", { name: "Done" }) as HTMLButtonElement;
    expect(done.disabled).toBe(true);
    fireEvent.click(screen.getByLabelText(/I have stored the recovery codes/));
    expect(done.disabled).toBe(false);
    fireEvent.click(done);

    await waitFor(() => expect(screen.queryByTestId("recovery-codes")).toBeNull());
    expect(await screen.findByRole("button", { name: "Turn off" })).toBeTruthy();
    // The profile is asked again, so the "required" banner can go.
    expect(server.to("/api/auth/me").length).toBeGreaterThanOrEqual(2);
  });

  it("turns off with a code from the app instead of the password", async () => {
    const server = fakeApi(
      me({ role: "admin" }),
      twoFactorApi({
        ...off,
        required: false,
        enabled: true,
        enabled_at: "2026-06-01T12:00:00.000Z",
        recovery_codes_left: 2,
      }),
    );
    renderSignedIn(
      <ToastProvider>
        <TwoFactorSection />
      </ToastProvider>,
    );
    expect(await screen.findByText(/2 unused recovery codes left/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Turn off" }));
    fireEvent.click(await screen.findByRole("button", { name: "Use a code from the app instead" }));
    fireEvent.change(screen.getByLabelText(/Code from the authenticator app/), {
      target: { value: "654321" },
    });
    const dialog = screen.getByRole("form", { name: "Turn off two-factor sign-in?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Turn off" }));
    await waitFor(() => expect(server.to("/api/auth/2fa/disable")).toHaveLength(1));
    expect(server.to("/api/auth/2fa/disable")[0]?.body).toEqual({ code: "654321" });
    expect(await screen.findByRole("button", { name: "Turn on two-factor sign-in" })).toBeTruthy();
  });
});
