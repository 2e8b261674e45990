// @vitest-environment happy-dom
import { cleanup, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { fakeApi, me, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { type Filters, pagedPath, pageOf, pageRange, usePagedList } from "./paging";
import { navigate } from "./router";

afterEach(() => {
  cleanup();
  resetApi();
});

describe("the page in the address", () => {
  it("is 1 when absent, empty, not a number or not positive", () => {
    for (const q of ["", "page=", "page=abc", "page=0", "page=-3"])
      expect(pageOf(new URLSearchParams(q)), q).toBe(1);
    expect(pageOf(new URLSearchParams("page=4"))).toBe(4);
  });
});

describe("a page's range", () => {
  it("counts rows from 1 and stops at the total on the last page", () => {
    expect(pageRange(1, 50, 120)).toEqual({ first: 1, last: 50, pages: 3 });
    expect(pageRange(3, 50, 120)).toEqual({ first: 101, last: 120, pages: 3 });
    expect(pageRange(2, 25, 50)).toEqual({ first: 26, last: 50, pages: 2 });
  });

  it("has one page even when there is nothing", () => {
    expect(pageRange(1, 50, 0).pages).toBe(1);
  });
});

describe("a page's path", () => {
  it("asks for the page and its size, then each filter with a value, in order", () => {
    expect(pagedPath("/api/audit", 2, 50, { action: "key.revoke", target_type: "api_key" })).toBe(
      "/api/audit?page=2&per_page=50&action=key.revoke&target_type=api_key",
    );
  });

  it("leaves out empty, null and undefined filters", () => {
    const filters: Filters = { status: "", service_id: null, search: undefined, q: "al ice" };
    expect(pagedPath("/api/subscribers", 1, 25, filters)).toBe(
      "/api/subscribers?page=1&per_page=25&q=al+ice",
    );
  });
});

function Audit() {
  const list = usePagedList<{ id: number }>("/api/audit", 50, { action: "key.revoke" });
  return <p>{list.data ? `page ${list.page} of ${list.pages}, ${list.total} rows` : "loading"}</p>;
}

describe("loading a page", () => {
  it("fetches the page the address asks for and keeps the server's total", async () => {
    navigate("/audit?page=3", { replace: true });
    const server = fakeApi(
      me({ role: "admin" }),
      (req) =>
        req.path === "/api/audit" &&
        new Response(
          JSON.stringify({
            success: true,
            data: [{ id: 1 }],
            meta: { page: 3, per_page: 50, total: 120 },
          }),
          { status: 200, headers: { "content-type": "application/json" } },
        ),
    );
    renderSignedIn(<Audit />);
    expect(await screen.findByText("page 3 of 3, 120 rows")).toBeTruthy();
    expect(server.to("/api/audit").map((c) => c.url.search)).toEqual([
      "?page=3&per_page=50&action=key.revoke",
    ]);
  });
});
