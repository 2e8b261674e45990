// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { onPhone } from "../test/media";
import { ToastProvider } from "../components/Toasts";
import { navigate } from "../lib/router";
import { apiKey, fakeApi, me, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { type BulkRevoked, bulkRevokeSummary, Keys } from "./Keys";

const keys = [
  apiKey({ id: 1, name: "billing", key_prefix: "pk_live_a1a1" }),
  apiKey({ id: 2, name: "helpdesk", key_prefix: "pk_live_b2b2" }),
  apiKey({ id: 3, name: "old", key_prefix: "pk_live_c3c3", status: "revoked" }),
];

function server(answer: (ids: number[]) => BulkRevoked[]) {
  return fakeApi(me({ id: 1, role: "admin" }), (req) => {
    if (req.method === "GET" && req.path === "/api/api-keys") return keys;
    if (req.method === "GET" && req.path === "/api/users") return [];
    if (req.method === "POST" && req.path === "/api/api-keys/revoke")
      return answer((req.body as { ids: number[] }).ids);
    return undefined;
  });
}

const show = () =>
  renderSignedIn(
    <ToastProvider>
      <Keys />
    </ToastProvider>,
  );

beforeEach(() => navigate("/keys", { replace: true }));
afterEach(() => {
  cleanup();
  resetApi();
});

describe("revoking several keys from the list", () => {
  it("selects rows, asks naming the count, sends the ids and says what happened", async () => {
    const api = server((ids) => ids.map((id) => ({ id, revoked: true as const })));
    show();
    await screen.findByRole("link", { name: "billing" });
    // A revoked key cannot be chosen.
    expect(screen.queryByRole("checkbox", { name: /^Select old/ })).toBeNull();
    expect(screen.queryByTestId("bulk-bar")).toBeNull();
    fireEvent.click(screen.getByRole("checkbox", { name: "Select billing (pk_live_a1a1…)" }));
    fireEvent.click(screen.getByRole("checkbox", { name: "Select helpdesk (pk_live_b2b2…)" }));
    const bar = screen.getByTestId("bulk-bar");
    expect(bar.textContent).toContain("2 keys selected");
    fireEvent.click(within(bar).getByRole("button", { name: "Revoke selected" }));

    const dialog = await screen.findByRole("dialog", { name: "Revoke 2 keys?" });
    expect(within(dialog).getByTestId("bulk-revoke-list").textContent).toContain("billing");
    expect(within(dialog).getByTestId("bulk-revoke-list").textContent).toContain("helpdesk");
    fireEvent.click(within(dialog).getByRole("button", { name: "Revoke 2 keys" }));

    await screen.findByText("2 keys revoked");
    const sent = api.calls.filter((c) => c.method === "POST" && c.path === "/api/api-keys/revoke");
    expect(sent.map((c) => c.body)).toEqual([{ ids: [1, 2] }]);
    // The list is read again and the selection is gone.
    await waitFor(() => expect(api.to("/api/api-keys").length).toBeGreaterThanOrEqual(2));
    expect(screen.queryByTestId("bulk-bar")).toBeNull();
  });

  it("selects every key shown that is not revoked, and reports the keys that were not", async () => {
    server(([first, second]) => [
      { id: first as number, revoked: true },
      {
        id: second as number,
        error: { code: "CONFLICT", message: `key ${second} is already revoked` },
      },
    ]);
    show();
    await screen.findByRole("link", { name: "billing" });
    fireEvent.click(
      screen.getByRole("checkbox", { name: "Select every key shown that is not revoked" }),
    );
    expect(screen.getByTestId("bulk-bar").textContent).toContain("2 keys selected");
    fireEvent.click(screen.getByRole("button", { name: "Revoke selected" }));
    const dialog = await screen.findByRole("dialog", { name: "Revoke 2 keys?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Revoke 2 keys" }));
    await screen.findByText("1 key revoked, 1 not (key 2: key 2 is already revoked)");
  });

  it("offers the checkboxes on a phone's cards too", async () => {
    onPhone();
    server((ids) => ids.map((id) => ({ id, revoked: true as const })));
    show();
    const cards = await screen.findByRole("list", { name: "API keys" });
    expect(within(cards).getAllByRole("checkbox")).toHaveLength(2);
    fireEvent.click(
      within(cards).getByRole("checkbox", { name: "Select helpdesk (pk_live_b2b2…)" }),
    );
    fireEvent.click(screen.getByRole("button", { name: "Revoke selected" }));
    const dialog = await screen.findByRole("dialog", { name: "Revoke 1 key?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Revoke 1 key" }));
    await screen.findByText("1 key revoked");
  });

  it("offers no selection to a user who may not revoke", async () => {
    fakeApi(me({ role: "reseller", manage_keys: false }), (req) =>
      req.method === "GET" && req.path === "/api/api-keys" ? keys : undefined,
    );
    show();
    await screen.findByRole("link", { name: "billing" });
    expect(screen.queryAllByRole("checkbox")).toHaveLength(0);
  });
});

describe("bulkRevokeSummary", () => {
  it("counts what was revoked and names why the rest was not", () => {
    expect(bulkRevokeSummary([{ id: 1, revoked: true }])).toEqual({
      message: "1 key revoked",
      failed: false,
    });
    expect(
      bulkRevokeSummary([
        { id: 1, error: { code: "NOT_FOUND", message: "API key 1 not found" } },
        { id: 2, error: { code: "CONFLICT", message: "key 2 is already revoked" } },
      ]),
    ).toEqual({
      message:
        "0 keys revoked, 2 not (key 1: API key 1 not found; key 2: key 2 is already revoked)",
      failed: true,
    });
  });
});
