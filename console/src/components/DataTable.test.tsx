// @vitest-environment happy-dom
import { cleanup, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { renderUi } from "../test/render";
import {
  ACTIONS_HEADER,
  AdaptiveTable,
  type Column,
  DataTable,
  ListTable,
  PHONE_QUERY,
} from "./DataTable";

type Row = { id: number; name: string; calls: number };
const rows: Row[] = [
  { id: 1, name: "billing", calls: 5 },
  { id: 2, name: "helpdesk", calls: 0 },
];
const name: Column<Row> = { header: "Name", cell: (r) => r.name };
const calls: Column<Row> = {
  header: "Calls",
  align: "right",
  cell: (r) => r.calls,
  td: (r) => ({ title: `${r.calls} calls` }),
};

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

/** A screen as narrow as a phone's, as far as media queries go. */
function phoneWidth() {
  const real = window.matchMedia.bind(window);
  vi.stubGlobal("matchMedia", (query: string) =>
    query === PHONE_QUERY
      ? {
          ...real(query),
          matches: true,
          media: query,
          addEventListener: () => undefined,
          removeEventListener: () => undefined,
        }
      : real(query),
  );
}

const cells = (row: HTMLElement) =>
  within(row)
    .getAllByRole("cell")
    .map((c) => c.textContent);

describe("the data table", () => {
  it("has a header row and a row per item, cell by column", () => {
    renderUi(
      <DataTable
        minWidth={300}
        caption="Keys"
        columns={[name, calls]}
        rows={rows}
        rowKey={(r) => r.id}
        rowProps={(r) => ({ "data-testid": `row-${r.id}` })}
      />,
    );
    const table = screen.getByRole("table", { name: "Keys" });
    const headers = within(table).getAllByRole("columnheader");
    expect(headers.map((h) => h.textContent)).toEqual(["Name", "Calls"]);
    expect(cells(screen.getByTestId("row-1"))).toEqual(["billing", "5"]);
    expect(cells(screen.getByTestId("row-2"))).toEqual(["helpdesk", "0"]);
    expect(screen.getByTestId("row-2").querySelectorAll("td")[1]?.getAttribute("title")).toBe(
      "0 calls",
    );
  });

  it("leaves out a column given as false, header and cells alike", () => {
    const admin = false;
    renderUi(
      <DataTable
        minWidth={300}
        columns={[name, admin && calls]}
        rows={rows}
        rowKey={(r) => r.id}
      />,
    );
    expect(screen.getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Name"]);
    expect(screen.getAllByRole("cell").map((c) => c.textContent)).toEqual(["billing", "helpdesk"]);
    expect(screen.getByRole("table").querySelector("caption")).toBeNull();
  });

  it("frames a list page's table in a card", () => {
    const { container } = renderUi(
      <ListTable minWidth={300} caption="Keys" columns={[name]} rows={rows} rowKey={(r) => r.id} />,
    );
    expect(container.querySelector(".mantine-Card-root table")).not.toBeNull();
    expect(screen.getByRole("table", { name: "Keys" })).toBeTruthy();
  });

  it("turns into a list of cards on a phone: every column labelled, the row's buttons at the bottom", async () => {
    phoneWidth();
    const remove: Column<Row> = {
      header: ACTIONS_HEADER,
      cell: (r) => <button type="button">Remove {r.name}</button>,
    };
    renderUi(
      <ListTable
        minWidth={600}
        caption="Keys"
        columns={[name, calls, remove]}
        rows={rows}
        rowKey={(r) => r.id}
        rowProps={(r) => ({ "data-testid": `row-${r.id}` })}
      />,
    );
    const list = await screen.findByRole("list", { name: "Keys" });
    expect(screen.queryByRole("table")).toBeNull();
    const items = within(list).getAllByRole("listitem");
    expect(items).toHaveLength(2);
    const first = screen.getByTestId("row-1");
    expect(first.textContent).toContain("billing");
    // The other columns are labelled by their headers, values kept with their tooltips.
    expect(within(first).getByText("Calls")).toBeTruthy();
    expect(within(first).getByTitle("5 calls").textContent).toBe("5");
    // The actions column has no label of its own, only its buttons.
    expect(within(first).getByRole("button", { name: "Remove billing" })).toBeTruthy();
    expect(within(first).queryByText("Actions")).toBeNull();
  });

  it("inside a card already (the dashboard's), is a table on a wide screen and cards on a phone", async () => {
    const table = (
      <AdaptiveTable
        minWidth={320}
        caption="Busiest keys"
        columns={[name, calls]}
        rows={rows}
        rowKey={(r) => r.id}
      />
    );
    const wide = renderUi(table);
    expect(screen.getByRole("table", { name: "Busiest keys" })).toBeTruthy();
    expect(wide.container.querySelector(".mantine-Card-root")).toBeNull();
    cleanup();
    phoneWidth();
    renderUi(table);
    const list = await screen.findByRole("list", { name: "Busiest keys" });
    expect(screen.queryByRole("table")).toBeNull();
    expect(
      within(list)
        .getAllByRole("listitem")
        .map((i) => i.textContent),
    ).toEqual(["billingCalls5", "helpdeskCalls0"]);
  });
});
