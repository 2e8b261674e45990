// @vitest-environment happy-dom
import { cleanup, fireEvent, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthProvider, useAuth } from "../auth";
import { ApiClient } from "../lib/api";
import { renderUi } from "../test/render";
import { SignIn } from "./SignIn";

type Body = { username: string; password: string; otp?: string; recovery_code?: string };

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/**
 * A Keygate whose "alice" (password "pw") has two-factor sign-in with the current code
 * "123456" and the recovery code "abcd-efgh-jkmn-pqrs"; "bob" has none.
 */
function server() {
  const logins: Body[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = new URL(String(input), "http://console.test").pathname;
    if (path === "/api/auth/refresh")
      return json(401, { success: false, code: "UNAUTHORIZED", message: "no session" });
    if (path === "/api/auth/me")
      return json(503, { success: false, code: "SERVICE_UNAVAILABLE", message: "not here" });
    if (path !== "/api/auth/login") return json(404, { success: false, code: "NOT_FOUND" });
    const body = JSON.parse(String(init?.body)) as Body;
    logins.push(body);
    const ok = (id: number) =>
      json(200, {
        success: true,
        data: {
          access_token: "token",
          token_type: "Bearer",
          expires_in: 900,
          user: { id, username: body.username, role: "admin" },
        },
      });
    if (body.password !== "pw")
      return json(401, {
        success: false,
        code: "INVALID_CREDENTIALS",
        message: "username or password is incorrect",
      });
    if (body.username === "bob") return ok(2);
    if (body.otp === undefined && body.recovery_code === undefined)
      return json(401, {
        success: false,
        code: "TWO_FACTOR_REQUIRED",
        message: "this account has two-factor sign-in: send the code as otp",
        details: [{ field: "otp", message: "is required for this account" }],
      });
    if (body.otp === "123456" || body.recovery_code === "abcd-efgh-jkmn-pqrs") return ok(1);
    return json(401, {
      success: false,
      code: "INVALID_TWO_FACTOR_CODE",
      message: "the code is not valid; enter the current 6-digit code",
    });
  });
  vi.stubGlobal("fetch", fetch);
  return { logins };
}

function Screen() {
  const auth = useAuth();
  if (auth.status === "signed-in") return <p>signed in as {auth.user.username}</p>;
  if (auth.status === "restoring") return <p>restoring</p>;
  return <SignIn end={null} />;
}

function show() {
  const client = new ApiClient({
    setTimer: () => undefined,
    clearTimer: () => undefined,
    withLock: (fn) => fn(),
  });
  renderUi(
    <AuthProvider client={client}>
      <Screen />
    </AuthProvider>,
  );
}

const type = (label: RegExp | string, value: string) =>
  fireEvent.change(screen.getByLabelText(label), { target: { value } });

async function password(username: string) {
  await screen.findByRole("form", { name: "Sign in" });
  type(/Username/, username);
  type(/Password/, "pw");
  fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("sign-in with two-factor", () => {
  it("asks for the code after the password, then sends both", async () => {
    const { logins } = server();
    show();
    await password("alice");
    const code = await screen.findByLabelText(/Authentication code/);
    expect(screen.getByText(/Two-factor sign-in is on for alice/)).toBeTruthy();
    expect(code.getAttribute("autocomplete")).toBe("one-time-code");
    expect(code.getAttribute("inputmode")).toBe("numeric");
    // The refusal that asked for the code is no error to show.
    expect(screen.queryByRole("alert")).toBeNull();
    expect(logins).toEqual([{ username: "alice", password: "pw", session: "cookie" }]);

    // As some apps show it, with a space.
    type(/Authentication code/, "123 456");
    fireEvent.click(screen.getByRole("button", { name: "Verify and sign in" }));
    expect(await screen.findByText("signed in as alice")).toBeTruthy();
    expect(logins[1]).toEqual({
      username: "alice",
      password: "pw",
      otp: "123456",
      session: "cookie",
    });
  });

  it("checks the code's shape first, and shows the server's refusal of a wrong one", async () => {
    const { logins } = server();
    show();
    await password("alice");
    await screen.findByLabelText(/Authentication code/);

    type(/Authentication code/, "12");
    fireEvent.click(screen.getByRole("button", { name: "Verify and sign in" }));
    expect(await screen.findByText("Enter the 6 digits the authenticator app shows.")).toBeTruthy();
    expect(logins).toHaveLength(1);

    type(/Authentication code/, "654321");
    fireEvent.click(screen.getByRole("button", { name: "Verify and sign in" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("the code is not valid");
    // Still on the code step, with the field emptied for the next try.
    expect((screen.getByLabelText(/Authentication code/) as HTMLInputElement).value).toBe("");
    expect(logins).toHaveLength(2);
  });

  it("takes a recovery code instead", async () => {
    const { logins } = server();
    show();
    await password("alice");
    fireEvent.click(await screen.findByRole("button", { name: "Use a recovery code instead" }));
    type(/Recovery code/, " abcd-efgh-jkmn-pqrs ");
    fireEvent.click(screen.getByRole("button", { name: "Verify and sign in" }));
    expect(await screen.findByText("signed in as alice")).toBeTruthy();
    expect(logins[1]).toMatchObject({ recovery_code: "abcd-efgh-jkmn-pqrs" });
    expect(logins[1]?.otp).toBeUndefined();
  });

  it("goes back to the password with Start over", async () => {
    server();
    show();
    await password("alice");
    fireEvent.click(await screen.findByRole("button", { name: "Start over" }));
    expect(await screen.findByRole("form", { name: "Sign in" })).toBeTruthy();
    expect((screen.getByLabelText(/Password/) as HTMLInputElement).value).toBe("");
    expect((screen.getByLabelText(/Username/) as HTMLInputElement).value).toBe("alice");
  });

  it("signs a user without two-factor in with the password alone", async () => {
    const { logins } = server();
    show();
    await password("bob");
    expect(await screen.findByText("signed in as bob")).toBeTruthy();
    expect(logins).toHaveLength(1);
  });
});
