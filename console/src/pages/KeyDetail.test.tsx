// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { onPhone } from "../test/media";
import { setEnvironment } from "../lib/environment";
import { navigate } from "../lib/router";
import type { ApiKey, CallLog, Me } from "../lib/types";
import { fakeApi, me, type Request, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { KeyDetail } from "./KeyDetail";

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
  last_used_at: "2026-05-12T10:59:00.000Z",
  last_used_ip: "203.0.113.7",
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

/** `n` calls, newest first, one second apart, ending before `before` (or at 11:00). */
function calls(n: number, before = "2026-05-12T11:00:00.000Z", status = 200): CallLog[] {
  const end = Date.parse(before);
  return Array.from({ length: n }, (_, i) => ({
    id: 100_000 + Math.floor(end / 1000) - (i + 1),
    timestamp: new Date(end - (i + 1) * 1000).toISOString(),
    method: "GET",
    path: `/api/v1/external/call-${new Date(end - (i + 1) * 1000).toISOString()}`,
    status_code: status,
    ip: "203.0.113.7",
    latency_ms: 1.5,
    user_agent: "curl/8",
    error_code: status === 401 ? "API_KEY_REVOKED" : null,
    request_id: `req-${end - (i + 1) * 1000}`,
    message: status === 401 ? "This API key was revoked" : null,
    environment: "live" as const,
    credential: "key" as const,
  }));
}

/** A key with `total` calls: the log answers like the server, honouring limit, status and before_id. */
function keyApi(total: CallLog[], k: ApiKey = key) {
  return (req: Request) => {
    if (req.method === "GET" && req.path === `/api/api-keys/${k.id}`) return k;
    if (req.method === "GET" && req.path === "/api/users") return [];
    if (req.method === "GET" && req.path === `/api/api-keys/${k.id}/logs`) {
      const q = req.url.searchParams;
      const status = q.get("status");
      const beforeId = q.get("before_id");
      const requestId = q.get("request_id");
      if (requestId !== null && !/^[\w.:@/+=-]{1,128}$/.test(requestId))
        return new Response(
          JSON.stringify({ success: false, code: "VALIDATION_ERROR", message: "bad request_id" }),
          { status: 400, headers: { "content-type": "application/json" } },
        );
      return total
        .filter((r) => requestId === null || r.request_id === requestId)
        .filter((r) => !beforeId || r.id < Number(beforeId))
        .filter(
          (r) =>
            !status ||
            (status === "refused"
              ? [401, 403, 429].includes(r.status_code)
              : /^[2-5]xx$/.test(status)
                ? Math.floor(r.status_code / 100) === Number(status[0])
                : r.error_code === status),
        )
        .slice(0, Number(q.get("limit") ?? 200));
    }
    return undefined;
  };
}

const logRequests = (server: ReturnType<typeof fakeApi>) =>
  server.to(`/api/api-keys/${key.id}/logs`).map((c) => Object.fromEntries(c.url.searchParams));

function show(user: Me, total: CallLog[], k: ApiKey = key) {
  const server = fakeApi(user, keyApi(total, k));
  renderSignedIn(<KeyDetail id={k.id} />);
  return server;
}

const logRows = () => within(screen.getByTestId("call-log")).getAllByRole("row").length - 1;

beforeEach(() => navigate(`/keys/${key.id}`, { replace: true }));
afterEach(() => {
  cleanup();
  resetApi();
});

describe("a key's page", () => {
  it("shows the server's default rate limit when the key has none of its own", async () => {
    show(me(), calls(1));
    expect(await screen.findByText("600 / min (server default)")).toBeTruthy();

    cleanup();
    resetApi();
    show(me(), calls(1), { ...key, rate_limit_per_minute: 120 });
    expect(await screen.findByText("120 / min")).toBeTruthy();
    expect(screen.queryByText(/server default/)).toBeNull();
  });

  it("offers edit, roll and revoke only to a user who may manage keys", async () => {
    show(me({ manage_keys: false }), calls(1));
    expect(await screen.findByText(/Ask an admin to change, roll or revoke this key/)).toBeTruthy();
    for (const name of ["Edit", "Roll", "Revoke"])
      expect(screen.queryByRole("button", { name })).toBeNull();

    cleanup();
    resetApi();
    show(me({ manage_keys: true }), calls(1));
    for (const name of ["Edit", "Roll", "Revoke"])
      expect(await screen.findByRole("button", { name })).toBeTruthy();
    expect(screen.queryByText(/Ask an admin/)).toBeNull();
  });

  it("filters the call log on the server: the status goes out as status=", async () => {
    const total = [
      ...calls(2, "2026-05-12T11:00:00.000Z", 401),
      ...calls(3, "2026-05-12T10:00:00.000Z"),
    ];
    const server = show(me(), total);
    await waitFor(() => expect(logRows()).toBe(5));
    expect(logRequests(server)).toEqual([{ limit: "200" }]);

    fireEvent.click(screen.getByRole("combobox", { name: "Status" }));
    fireEvent.click(await screen.findByRole("option", { name: "Refused (401, 403, 429)" }));
    await waitFor(() =>
      expect(logRequests(server).at(-1)).toEqual({ limit: "200", status: "refused" }),
    );
    await waitFor(() => expect(logRows()).toBe(2));

    fireEvent.click(screen.getByRole("combobox", { name: "Status" }));
    fireEvent.click(await screen.findByRole("option", { name: "Succeeded (2xx)" }));
    await waitFor(() =>
      expect(logRequests(server).at(-1)).toEqual({ limit: "200", status: "2xx" }),
    );
    await waitFor(() => expect(logRows()).toBe(3));

    fireEvent.click(screen.getByRole("combobox", { name: "Status" }));
    fireEvent.click(await screen.findByRole("option", { name: "API_KEY_REVOKED" }));
    await waitFor(() =>
      expect(logRequests(server).at(-1)).toEqual({ limit: "200", status: "API_KEY_REVOKED" }),
    );
    await waitFor(() => expect(logRows()).toBe(2));
  });

  it("says when no call matches the filter, and clears it", async () => {
    const server = show(me(), calls(3));
    await waitFor(() => expect(logRows()).toBe(3));
    fireEvent.click(screen.getByRole("combobox", { name: "Status" }));
    fireEvent.click(await screen.findByRole("option", { name: "Server errors (5xx)" }));
    expect(await screen.findByText("No call matches")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Show every status" }));
    await waitFor(() => expect(logRows()).toBe(3));
    expect(logRequests(server).at(-1)).toEqual({ limit: "200" });
  });

  it("pages to older calls with before_id= the last row's id, keeping the filter", async () => {
    const total = calls(120);
    const server = show(me(), total);
    await waitFor(() => expect(logRows()).toBe(120));
    expect(screen.getByText("120 calls shown, newest first; that is every call.")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Load older calls" })).toBeNull();

    fireEvent.click(screen.getByRole("combobox", { name: "Show" }));
    fireEvent.click(await screen.findByRole("option", { name: "50 at a time" }));
    await waitFor(() => expect(logRows()).toBe(50));
    expect(logRequests(server).at(-1)).toEqual({ limit: "50" });
    expect(screen.getByText("50 calls shown, newest first.")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Load older calls" }));
    await waitFor(() => expect(logRows()).toBe(100));
    expect(logRequests(server).at(-1)).toEqual({ limit: "50", before_id: String(total[49]?.id) });

    fireEvent.click(screen.getByRole("button", { name: "Load older calls" }));
    await waitFor(() => expect(logRows()).toBe(120));
    expect(logRequests(server).at(-1)).toEqual({ limit: "50", before_id: String(total[99]?.id) });
    // A short page is the last: nothing older to ask for.
    expect(screen.getByText("120 calls shown, newest first; that is every call.")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Load older calls" })).toBeNull();
    const shown = within(screen.getByTestId("call-log")).getAllByRole("row").slice(1);
    expect(shown.map((r) => r.textContent)).toEqual(
      total.map((c) => expect.stringContaining(c.path) as unknown as string),
    );

    // A new filter starts again from the newest call, and pages within the filter.
    fireEvent.click(screen.getByRole("combobox", { name: "Status" }));
    fireEvent.click(await screen.findByRole("option", { name: "Succeeded (2xx)" }));
    await waitFor(() => expect(logRequests(server).at(-1)).toEqual({ limit: "50", status: "2xx" }));
    await waitFor(() => expect(logRows()).toBe(50));
    fireEvent.click(screen.getByRole("button", { name: "Load older calls" }));
    await waitFor(() => expect(logRows()).toBe(100));
    expect(logRequests(server).at(-1)).toEqual({
      limit: "50",
      status: "2xx",
      before_id: String(total[49]?.id),
    });
  });
});

describe("a key that cannot work, and its attempts", () => {
  const button = (name: string) => screen.getByRole("button", { name }) as HTMLButtonElement;

  it("says why a key whose owner is disabled is refused, offers no roll, and still offers revoking", async () => {
    show(me({ id: 1, role: "admin" }), calls(1), { ...key, status: "owner_disabled" });
    const alert = await screen.findByTestId("owner-down");
    expect(alert.textContent).toContain("Owner disabled");
    expect(alert.textContent).toContain("(user 7) is disabled");
    expect(alert.textContent).toContain("refused with INVALID_USER");
    expect(within(alert).getByRole("link", { name: "the user is enabled again" })).toBeTruthy();
    expect(screen.getByText("owner disabled")).toBeTruthy();
    expect(screen.queryByText("active")).toBeNull();
    expect(button("Roll").disabled).toBe(true);
    expect(button("Edit").disabled).toBe(false);
    expect(button("Revoke").disabled).toBe(false);
  });

  it("says a key whose owner was deleted can never work: no edit, no roll, revoking still offered", async () => {
    show(me({ id: 1, role: "admin" }), calls(1), {
      ...key,
      status: "owner_deleted",
      expires_at: "2026-01-01T00:00:00.000Z",
    });
    const alert = await screen.findByTestId("owner-down");
    expect(alert.textContent).toContain("Owner deleted");
    expect(alert.textContent).toContain("was deleted");
    expect(alert.textContent).toContain("It has also expired");
    expect(screen.getByText("owner deleted")).toBeTruthy();
    expect(button("Edit").disabled).toBe(true);
    expect(button("Roll").disabled).toBe(true);
    expect(button("Revoke").disabled).toBe(false);
  });

  it("explains nothing of the kind for a working key", async () => {
    show(me({ id: 1, role: "admin" }), calls(1));
    expect(await screen.findByRole("button", { name: "Roll" })).toBeTruthy();
    expect(screen.queryByTestId("owner-down")).toBeNull();
    expect(button("Roll").disabled).toBe(false);
  });

  it("shows the last refused attempt apart from the last use: time, IP and code", async () => {
    show(me(), calls(1), {
      ...key,
      last_refused_at: "2026-05-12T11:00:00.000Z",
      last_refused_ip: "127.0.0.3",
      last_refused_code: "IP_NOT_ALLOWED",
    });
    const refused = await screen.findByTestId("last-refused");
    expect(refused.textContent).toContain("from 127.0.0.3: IP_NOT_ALLOWED");
    // Last use keeps the accepted call's address.
    expect(screen.getByText("203.0.113.7", { selector: "dd" })).toBeTruthy();
    expect(screen.getByText(/is an attempt, not a use/)).toBeTruthy();

    cleanup();
    resetApi();
    show(me(), calls(1));
    expect(await screen.findByText("Last refused")).toBeTruthy();
    expect(screen.queryByTestId("last-refused")).toBeNull();
  });
});

/** A refused call with every field set, among ordinary ones. */
const refusal: CallLog = {
  id: 200_001,
  timestamp: "2026-05-12T11:30:05.123Z",
  method: "POST",
  path: "/api/v1/external/subscribers",
  status_code: 401,
  ip: "198.51.100.23",
  latency_ms: 2.375,
  user_agent: "billing-sync/4.2 (+https://billing.example)",
  error_code: "API_KEY_REVOKED",
  request_id: "billing-7f3a:run/42",
  message: "This API key was revoked on 2026-05-12 at 10:00 UTC; mint a new one",
  environment: "live",
  credential: "key",
};

const dialog = () => screen.getByRole("dialog");
const detail = () => within(dialog()).getByTestId("call-detail");

/** Every field of `c` is in the open call's details. */
function expectEveryField(c: CallLog) {
  const text = detail().textContent ?? "";
  expect(within(dialog()).getByTestId("call-request-id").textContent).toBe(c.request_id);
  expect(text).toContain(c.timestamp); // UTC, to the millisecond
  expect(text).toMatch(/Local time.*\b05\.123\b/); // local, to the millisecond
  expect(text).toContain(c.method);
  expect(text).toContain(c.path);
  expect(text).toContain(String(c.status_code));
  expect(text).toContain(c.error_code);
  expect(within(dialog()).getByTestId("call-message").textContent).toBe(c.message);
  expect(text).toContain(c.ip);
  expect(text).toContain(c.user_agent);
  expect(text).toContain("2.375 ms");
}

describe("a call's details", () => {
  const total = [refusal, ...calls(3)];
  const callButton = () =>
    screen.getByRole("button", {
      name: /^POST \/api\/v1\/external\/subscribers, 401 API_KEY_REVOKED, .*: show details$/,
    });

  it("opens from a click on the row, with every field, and closes", async () => {
    show(me(), total);
    await waitFor(() => expect(logRows()).toBe(4));
    // Anywhere on the row: here its IP cell.
    fireEvent.click(within(screen.getByTestId("call-log")).getByText("198.51.100.23"));
    expect(await screen.findByRole("dialog")).toBeTruthy();
    expect(dialog().textContent).toContain("Call POST /api/v1/external/subscribers");
    expectEveryField(refusal);
    fireEvent.click(within(dialog()).getByRole("button", { name: "Close" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });

  it("opens from the keyboard: each row's call is a button named after the call", async () => {
    show(me(), total);
    await waitFor(() => expect(logRows()).toBe(4));
    const button = callButton();
    expect(button.tagName).toBe("BUTTON");
    button.focus();
    expect(document.activeElement).toBe(button);
    // A native button, which browsers click on Enter and Space (happy-dom does not: the
    // browser test presses Enter on it).
    expect(button.getAttribute("type")).toBe("button");
    expect(button.tabIndex).toBe(0);
    fireEvent.click(button);
    expect(await screen.findByRole("dialog")).toBeTruthy();
    expectEveryField(refusal);
  });

  it("says when a call succeeded or its request id was not kept", async () => {
    const old: CallLog = { ...refusal, id: 5, request_id: null, message: null };
    show(me(), [calls(1)[0] as CallLog, old]);
    await waitFor(() => expect(logRows()).toBe(2));
    fireEvent.click(screen.getAllByRole("button", { name: /show details$/ })[0] as HTMLElement);
    await screen.findByRole("dialog");
    expect(detail().textContent).toContain("Messagenone (no error)");
    fireEvent.click(within(dialog()).getByRole("button", { name: "Close" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());

    fireEvent.click(screen.getAllByRole("button", { name: /show details$/ })[1] as HTMLElement);
    await screen.findByRole("dialog");
    expect(detail().textContent).toContain("not kept (logged before request ids were)");
    expect(detail().textContent).toContain("not kept (logged before messages were)");
    expect(within(dialog()).queryByRole("button", { name: "Copy request id" })).toBeNull();
  });

  it("copies the request id", async () => {
    const writeText = vi.fn(async () => undefined);
    vi.stubGlobal("isSecureContext", true);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    show(me(), total);
    await waitFor(() => expect(logRows()).toBe(4));
    fireEvent.click(callButton());
    await screen.findByRole("dialog");
    fireEvent.click(within(dialog()).getByRole("button", { name: "Copy request id" }));
    expect(await within(dialog()).findByRole("button", { name: "Copied" })).toBeTruthy();
    expect(writeText).toHaveBeenCalledWith("billing-7f3a:run/42");
    Reflect.deleteProperty(navigator, "clipboard");
  });

  it("opens from a card on a phone", async () => {
    onPhone();
    show(me(), total);
    const cards = await screen.findByTestId("call-cards");
    expect(screen.queryByTestId("call-log")).toBeNull();
    expect(within(cards).getAllByRole("listitem")).toHaveLength(4);
    // A tap anywhere on the card.
    fireEvent.click(within(cards).getByText("API_KEY_REVOKED"));
    expect(await screen.findByRole("dialog")).toBeTruthy();
    expectEveryField(refusal);
    fireEvent.click(within(dialog()).getByRole("button", { name: "Close" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    // And its button, which the keyboard reaches.
    fireEvent.click(within(cards).getByRole("button", { name: /^POST .*show details$/ }));
    expect(await screen.findByRole("dialog")).toBeTruthy();
  });
});

describe("searching the call log by request id", () => {
  const total = [...calls(2), refusal, ...calls(3, "2026-05-12T10:00:00.000Z")];
  const box = () => screen.getByRole("searchbox", { name: "Request id" }) as HTMLInputElement;

  it("asks the server for that call only, keeps it in the address, and clearing returns to the log", async () => {
    const server = show(me(), total);
    await waitFor(() => expect(logRows()).toBe(6));
    expect(box().placeholder).toBe("paste an X-Request-Id");
    fireEvent.change(box(), { target: { value: "  billing-7f3a:run/42 " } });
    await waitFor(() =>
      expect(logRequests(server).at(-1)).toEqual({
        limit: "200",
        request_id: "billing-7f3a:run/42",
      }),
    );
    await waitFor(() => expect(logRows()).toBe(1));
    expect(new URLSearchParams(window.location.search).get("request_id")).toBe(
      "billing-7f3a:run/42",
    );
    expect(screen.getByText("1 call shown with request id billing-7f3a:run/42.")).toBeTruthy();
    // The status filter does not apply to a search by id.
    expect((screen.getByRole("combobox", { name: "Status" }) as HTMLInputElement).disabled).toBe(
      true,
    );
    fireEvent.click(callButtonOf(refusal));
    await screen.findByRole("dialog");
    expectEveryField(refusal);
    fireEvent.click(within(dialog()).getByRole("button", { name: "Close" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());

    fireEvent.change(box(), { target: { value: "" } });
    await waitFor(() => expect(logRows()).toBe(6));
    expect(logRequests(server).at(-1)).toEqual({ limit: "200" });
    expect(window.location.search).toBe("");
  });

  it("searches at once on Enter, and from a link with ?request_id=", async () => {
    navigate(`/keys/${key.id}?request_id=billing-7f3a:run/42`, { replace: true });
    const server = show(me(), total);
    await waitFor(() => expect(logRows()).toBe(1));
    expect(box().value).toBe("billing-7f3a:run/42");
    expect(logRequests(server)).toEqual([{ limit: "200", request_id: "billing-7f3a:run/42" }]);

    fireEvent.change(box(), { target: { value: `req-${Date.parse("2026-05-12T10:59:59.000Z")}` } });
    fireEvent.keyDown(box(), { key: "Enter" });
    // At once, without waiting for the typing to settle.
    await waitFor(
      () =>
        expect(logRequests(server).at(-1)?.request_id).toBe(
          `req-${Date.parse("2026-05-12T10:59:59.000Z")}`,
        ),
      { timeout: 150 },
    );
    await waitFor(() => expect(logRows()).toBe(1));
    expect(
      within(screen.getByTestId("call-log")).getByText(/call-2026-05-12T10:59:59/),
    ).toBeTruthy();
  });

  it("refuses an id the server would refuse, inline, and sends nothing", async () => {
    const server = show(me(), total);
    await waitFor(() => expect(logRows()).toBe(6));
    fireEvent.change(box(), { target: { value: "req 42!" } });
    expect(
      await screen.findByText(
        "A request id holds only letters, digits and _ . : @ / + = -; this one has a space and “!”.",
      ),
    ).toBeTruthy();
    expect(box().getAttribute("aria-invalid")).toBe("true");
    fireEvent.keyDown(box(), { key: "Enter" });
    await new Promise((r) => setTimeout(r, 400));
    expect(logRequests(server)).toEqual([{ limit: "200" }]);
    expect(logRows()).toBe(6);

    fireEvent.change(box(), { target: { value: "x".repeat(129) } });
    expect(
      await screen.findByText("A request id has at most 128 characters; this has 129."),
    ).toBeTruthy();
    await new Promise((r) => setTimeout(r, 400));
    expect(logRequests(server)).toEqual([{ limit: "200" }]);
  });

  it("says when no call of this key has the id, and that other keys' calls are not here", async () => {
    const server = show(me(), total);
    await waitFor(() => expect(logRows()).toBe(6));
    fireEvent.change(box(), { target: { value: "0196c3f0-7d1e-7abc-9def-0123456789ab" } });
    expect(
      await screen.findByText(
        "No call with request id 0196c3f0-7d1e-7abc-9def-0123456789ab in this key's log",
      ),
    ).toBeTruthy();
    expect(screen.getByText(/request ids of other keys' calls.*are not here/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Show the whole log" }));
    await waitFor(() => expect(logRows()).toBe(6));
    expect(box().value).toBe("");
    expect(logRequests(server).at(-1)).toEqual({ limit: "200" });
  });
});

const callButtonOf = (c: CallLog) =>
  within(screen.getByTestId("call-log")).getByRole("button", {
    name: new RegExp(`^${c.method} ${c.path.replace(/[/.]/g, "\\$&")}, `),
  });

describe("a key's permissions and environment", () => {
  const billingTest: ApiKey = {
    ...key,
    key_prefix: "pk_test_a8f3",
    environment: "test",
    scopes: "custom",
    permissions: ["subscribers:read", "transactions:write", "usage:read"],
  };

  it("shows the permissions as a summary and a list, and the environment", async () => {
    setEnvironment("test");
    show(me(), calls(1), billingTest);
    const summary = await screen.findByTestId("key-permissions-summary");
    expect(summary.textContent).toBe(
      "Can read subscribers and usage and post transactions; cannot delete anything. No access to services or stats.",
    );
    const list = screen.getByLabelText("Permission list");
    expect(
      within(list)
        .getAllByText(/:/)
        .map((c) => c.textContent),
    ).toEqual(["subscribers:read", "transactions:write", "usage:read"]);
    expect(screen.getByTestId("key-environment").textContent).toBe("test works only on test data");
    expect(screen.getByText("custom: the permissions above, resource by resource")).toBeTruthy();
    expect(screen.queryByTestId("other-environment")).toBeNull();
  });

  it("says so when the key belongs to the other environment than the one shown", async () => {
    show(me(), calls(1), billingTest);
    const note = await screen.findByTestId("other-environment");
    expect(note.textContent).toContain("A test key, shown with live data");
    expect(note.textContent).toContain("Turn on Test data in the header");
  });

  it("names the environment of a rolled key's replacement when it is shown once", async () => {
    setEnvironment("test");
    const server = fakeApi(me({ manage_keys: true }), (req) => {
      if (req.method === "POST" && req.path === `/api/api-keys/${key.id}/roll`)
        return new Response(
          JSON.stringify({
            success: true,
            data: { ...billingTest, id: 9, key_prefix: "pk_test_0123" },
            key: `pk_test_${"0123456789abcdef".repeat(2)}`,
          }),
          { status: 201, headers: { "content-type": "application/json" } },
        );
      return keyApi(calls(1), billingTest)(req);
    });
    renderSignedIn(<KeyDetail id={key.id} />);
    fireEvent.click(await screen.findByRole("button", { name: "Roll" }));
    fireEvent.click(await screen.findByRole("button", { name: "Roll key" }));
    const shown = await screen.findByTestId("show-once-environment");
    expect(shown.textContent).toMatch(/^Test key — works only on test data/);
    expect(server.to(`/api/api-keys/${key.id}/roll`)[0]?.environment).toBe("test");
  });
});

describe("a key's request signing and access tokens", () => {
  const SECRET = `pks_live_${"0123456789abcdef".repeat(4)}`;
  const answer = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });

  it("shows the signing mode, the tokens issued and when the last was, and the token endpoint", async () => {
    show(me(), calls(1), {
      ...key,
      signing: "required",
      tokens_issued: 3,
      last_token_at: "2026-05-12T10:58:00.000Z",
    });
    const signing = await screen.findByTestId("key-signing");
    expect(within(signing).getByTestId("signing-badge").textContent).toBe("Required");
    expect(signing.textContent).toContain(
      "Every call must carry an RFC 9421 signature made with the signing secret.",
    );
    expect(screen.getByTestId("key-tokens").textContent).toBe("3 tokens issued");
    const last = screen.getByText("Last token").nextElementSibling as HTMLElement;
    expect(last.textContent).not.toBe("never");
    expect(last.textContent).toMatch(/ \([^()]+\)$/);
    expect(screen.getByTestId("token-endpoint").textContent).toContain(
      "POST /api/v1/external/oauth/token",
    );
  });

  it("says never for a key no token was issued for, and Off for a key without signing", async () => {
    show(me(), calls(1), { ...key, signing: "off", tokens_issued: 0, last_token_at: null });
    const signing = await screen.findByTestId("key-signing");
    expect(within(signing).getByTestId("signing-badge").textContent).toBe("Off");
    expect(signing.textContent).toContain("Calls carry the key alone");
    expect(screen.getByTestId("key-tokens").textContent).toBe("0 tokens issued");
    expect((screen.getByText("Last token").nextElementSibling as HTMLElement).textContent).toBe(
      "never",
    );

    cleanup();
    resetApi();
    show(me(), calls(1), {
      ...key,
      signing: "optional",
      tokens_issued: 1,
      last_token_at: "2026-05-12T10:58:00.000Z",
    });
    expect(
      within(await screen.findByTestId("key-signing")).getByTestId("signing-badge").textContent,
    ).toBe("Optional");
    expect(screen.getByTestId("key-tokens").textContent).toBe("1 token issued");
  });

  it("shows the signing secret once when an edit turns signing on", async () => {
    const signedKey: ApiKey = { ...key, signing: "required" };
    const server = fakeApi(me({ manage_keys: true }), (req) => {
      if (req.method === "PUT" && req.path === `/api/api-keys/${key.id}`)
        return answer(200, { success: true, data: signedKey, signing_secret: SECRET });
      return keyApi(calls(1), { ...key, signing: "off" })(req);
    });
    renderSignedIn(<KeyDetail id={key.id} />);
    fireEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = await screen.findByRole("form", { name: "Edit API key" });
    fireEvent.click(within(form).getByRole("radio", { name: "Required" }));
    fireEvent.click(within(form).getByRole("button", { name: "Save changes" }));

    const shown = await screen.findByRole("dialog", {
      name: "Request signing is on for “billing”",
    });
    expect(server.to(`/api/api-keys/${key.id}`).find((c) => c.method === "PUT")?.body).toEqual({
      signing: "required",
    });
    expect((within(shown).getByTestId("show-once-signing-secret") as HTMLInputElement).value).toBe(
      SECRET,
    );
    expect(within(shown).queryByTestId("show-once-secret")).toBeNull();
    expect(within(shown).getByText(/must now be signed with this secret/)).toBeTruthy();
    const done = within(shown).getByRole("button", { name: "Done" }) as HTMLButtonElement;
    expect(done.disabled).toBe(true);
    fireEvent.click(within(shown).getByLabelText("I have stored it somewhere safe"));
    fireEvent.click(done);
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
  });

  it("shows no secret when an edit keeps signing on", async () => {
    fakeApi(me({ manage_keys: true }), (req) => {
      if (req.method === "PUT" && req.path === `/api/api-keys/${key.id}`)
        return { ...key, signing: "required" };
      return keyApi(calls(1), { ...key, signing: "optional" })(req);
    });
    renderSignedIn(<KeyDetail id={key.id} />);
    fireEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = await screen.findByRole("form", { name: "Edit API key" });
    fireEvent.click(within(form).getByRole("radio", { name: "Required" }));
    fireEvent.click(within(form).getByRole("button", { name: "Save changes" }));
    await waitFor(() => expect(screen.queryByRole("form", { name: "Edit API key" })).toBeNull());
    expect(screen.queryByTestId("show-once-signing-secret")).toBeNull();
  });

  it("shows a rolled signed key's new key and new secret, each once", async () => {
    const signedKey: ApiKey = { ...key, signing: "optional" };
    fakeApi(me({ manage_keys: true }), (req) => {
      if (req.method === "POST" && req.path === `/api/api-keys/${key.id}/roll`)
        return answer(201, {
          success: true,
          data: { ...signedKey, id: 9, key_prefix: "pk_live_0123" },
          key: `pk_live_${"0123456789abcdef".repeat(2)}`,
          signing_secret: SECRET,
        });
      return keyApi(calls(1), signedKey)(req);
    });
    renderSignedIn(<KeyDetail id={key.id} />);
    fireEvent.click(await screen.findByRole("button", { name: "Roll" }));
    const roll = await screen.findByRole("dialog", { name: "Roll “billing”" });
    expect(roll.textContent).toContain("the same request signing with a new signing secret");
    fireEvent.click(within(roll).getByRole("button", { name: "Roll key" }));
    const shown = await screen.findByRole("dialog", { name: "Key rolled" });
    expect((within(shown).getByLabelText("API key") as HTMLInputElement).value).toMatch(
      /^pk_live_0123/,
    );
    expect((within(shown).getByTestId("show-once-signing-secret") as HTMLInputElement).value).toBe(
      SECRET,
    );
    expect(within(shown).getByText(/its own, new signing secret/)).toBeTruthy();
    expect(within(shown).getByRole("button", { name: "Copy signing secret" })).toBeTruthy();
    expect(
      within(shown).getByLabelText("I have stored the signing secret somewhere safe"),
    ).toBeTruthy();
  });
});

describe("how each call authenticated", () => {
  const [signedCall, tokenCall, keyCall] = calls(3).map((c, i) => ({
    ...c,
    credential: (["signature", "token", "key"] as const)[i],
  })) as CallLog[];
  const total = [signedCall, tokenCall, keyCall, refusal] as CallLog[];

  it("shows the credential of each row as a badge in its own column", async () => {
    show(me(), total);
    await waitFor(() => expect(logRows()).toBe(4));
    const table = screen.getByTestId("call-log");
    expect(within(table).getByRole("columnheader", { name: "Credential" })).toBeTruthy();
    const badges = within(table)
      .getAllByRole("row")
      .slice(1)
      .map((r) => within(r).getByTestId("call-credential").textContent);
    expect(badges).toEqual(["signature", "token", "key", "key"]);
    expect(within(table).getAllByTestId("call-credential")[1]?.getAttribute("title")).toMatch(
      /^Authenticated with an OAuth access token/,
    );
  });

  it("says in the call's details how it authenticated", async () => {
    show(me(), total);
    await waitFor(() => expect(logRows()).toBe(4));
    fireEvent.click(callButtonOf(signedCall as CallLog));
    await screen.findByRole("dialog");
    expect(within(dialog()).getByTestId("call-detail-credential").textContent).toBe(
      "signature: the API key and an RFC 9421 signature made with its signing secret",
    );
    fireEvent.click(within(dialog()).getByRole("button", { name: "Close" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());

    fireEvent.click(callButtonOf(tokenCall as CallLog));
    await screen.findByRole("dialog");
    expect(within(dialog()).getByTestId("call-detail-credential").textContent).toMatch(
      /^token: an OAuth access token \(Authorization: Bearer\)/,
    );
    fireEvent.click(within(dialog()).getByRole("button", { name: "Close" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());

    fireEvent.click(callButtonOf(refusal));
    await screen.findByRole("dialog");
    expect(within(dialog()).getByTestId("call-detail-credential").textContent).toBe(
      "key: the API key alone (X-API-Key)",
    );
  });

  it("offers the signature and token refusals in the status filter", async () => {
    show(me(), total);
    await waitFor(() => expect(logRows()).toBe(4));
    fireEvent.click(screen.getByRole("combobox", { name: "Status" }));
    for (const code of [
      "SIGNATURE_REQUIRED",
      "SIGNATURE_INVALID",
      "INVALID_TOKEN",
      "TOKEN_EXPIRED",
    ])
      expect(await screen.findByRole("option", { name: code })).toBeTruthy();
  });

  it("shows the credential on a phone's cards", async () => {
    onPhone();
    show(me(), total);
    const cards = await screen.findByTestId("call-cards");
    expect(
      within(cards)
        .getAllByRole("listitem")
        .map((c) => within(c).getByTestId("call-credential").textContent),
    ).toEqual(["signature", "token", "key", "key"]);
  });
});
