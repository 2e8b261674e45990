// @vitest-environment happy-dom
import { cleanup, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { renderUi } from "../test/render";
import { type Column, DataTable, ListTable } from "./DataTable";

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

afterEach(cleanup);

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
});
