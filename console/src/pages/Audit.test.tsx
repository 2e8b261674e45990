// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { localToIso } from "../lib/range";
import { navigate } from "../lib/router";
import type { AuditEntry } from "../lib/types";
import { fakeApi, me, reply, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { Audit } from "./Audit";

const entry: AuditEntry = {
  id: 1,
  actor_id: 1,
  actor_username: "admin",
  via: "jwt",
  action: "key.revoke",
  target_type: "api_key",
  target_id: "7",
  details: { prefix: "pk_live_a1a1" },
  ip: "127.0.0.1",
  created_at: "2026-05-11T10:00:00.000Z",
};

function server() {
  return fakeApi(me({ id: 1, role: "admin" }), (req) =>
    req.path === "/api/audit"
      ? reply(200, { success: true, data: [entry], meta: { page: 1, per_page: 50, total: 1 } })
      : undefined,
  );
}

const last = (s: ReturnType<typeof server>) =>
  Object.fromEntries(s.to("/api/audit").at(-1)?.url.searchParams ?? []);

beforeEach(() => navigate("/audit", { replace: true }));
afterEach(() => {
  cleanup();
  resetApi();
});

describe("the audit trail's order and range", () => {
  it("sends the order and the range, kept in the address", async () => {
    const s = server();
    renderSignedIn(<Audit />);
    await screen.findByText("key.revoke");
    expect(last(s)).toEqual({ page: "1", per_page: "50" });

    fireEvent.click(screen.getByRole("combobox", { name: "Order" }));
    fireEvent.click(await screen.findByRole("option", { name: "Oldest first" }));
    await waitFor(() => expect(last(s).sort).toBe("oldest"));
    expect(window.location.search).toContain("sort=oldest");

    fireEvent.change(screen.getByLabelText("From"), { target: { value: "2026-05-11T09:00" } });
    await waitFor(() => expect(last(s).from).toBe(localToIso("2026-05-11T09:00")));
    fireEvent.change(screen.getByLabelText("To (before)"), {
      target: { value: "2026-05-11T11:00" },
    });
    await waitFor(() => expect(last(s).to).toBe(localToIso("2026-05-11T11:00")));
    expect(last(s)).toMatchObject({ sort: "oldest", page: "1" });
    expect(screen.getByText("Audit trail, oldest first")).toBeTruthy();
  });

  it("says when the end is not later than the start, and does not send it", async () => {
    navigate("/audit?from=2026-05-11T12:00&to=2026-05-11T10:00", { replace: true });
    const s = server();
    renderSignedIn(<Audit />);
    await screen.findByText("The end must be later than the start.");
    expect(last(s).from).toBeUndefined();
    expect(last(s).to).toBeUndefined();
  });
});
