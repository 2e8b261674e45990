// @vitest-environment happy-dom
import { act, cleanup, fireEvent, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../lib/api";
import type { PagedList } from "../lib/paging";
import { navigate } from "../lib/router";
import { renderUi } from "../test/render";
import {
  CardList,
  closeNew,
  type ListSource,
  ListView,
  NewDialog,
  NoMatch,
  openNew,
  Paging,
  QuerySelect,
} from "./ListPage";

afterEach(cleanup);

function show(list: Partial<ListSource<string>>) {
  const source: ListSource<string> = {
    data: undefined,
    error: null,
    loading: false,
    reload: () => undefined,
    ...list,
  };
  return renderUi(
    <ListView list={source} empty={<p>nothing yet</p>} loadingLabel="Loading names…">
      {(rows) => <p>rows: {rows.join(", ")}</p>}
    </ListView>,
  );
}

describe("a list's states", () => {
  it("shows a spinner until the first answer", () => {
    show({ loading: true });
    expect(screen.getByRole("status").textContent).toBe("Loading names…");
    expect(screen.queryByText("nothing yet")).toBeNull();
    expect(screen.queryByText(/rows:/)).toBeNull();
  });

  it("shows `empty` for an empty answer and the rows otherwise", () => {
    show({ data: [] });
    expect(screen.getByText("nothing yet")).toBeTruthy();
    expect(screen.queryByText(/rows:/)).toBeNull();
    cleanup();
    show({ data: ["a", "b"] });
    expect(screen.getByText("rows: a, b")).toBeTruthy();
    expect(screen.queryByText("nothing yet")).toBeNull();
  });

  it("keeps the rows, without a spinner, while they are fetched again", () => {
    show({ data: ["a"], loading: true });
    expect(screen.getByText("rows: a")).toBeTruthy();
    expect(screen.queryByRole("status")).toBeNull();
  });

  it("shows the server's refusal with a Try again that fetches again", () => {
    const reload = vi.fn();
    show({ error: new ApiError(500, "INTERNAL_ERROR", "boom"), reload });
    expect(screen.getByRole("alert").textContent).toContain("boom");
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(reload).toHaveBeenCalledOnce();
  });
});

describe("no match", () => {
  it("offers to clear the filters", () => {
    const onClear = vi.fn();
    renderUi(<NoMatch title="No key matches" description="Change them." onClear={onClear} />);
    expect(screen.getByText("No key matches")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Clear filters" }));
    expect(onClear).toHaveBeenCalledOnce();
  });
});

function paged(
  page: number,
  total: number,
  over: Partial<PagedList<number>> = {},
): PagedList<number> {
  return {
    data: [1],
    meta: undefined,
    error: null,
    loading: false,
    reload: () => undefined,
    page,
    perPage: 50,
    total,
    pages: Math.max(1, Math.ceil(total / 50)),
    ...over,
  };
}

describe("paging", () => {
  it("says which rows are shown and offers no buttons for a single page", () => {
    renderUi(<Paging list={paged(1, 3)} />);
    expect(screen.getByText("1–3 of 3")).toBeTruthy();
    expect(screen.queryByRole("button")).toBeNull();
  });

  it("shows nothing before the first answer or for an empty list", () => {
    renderUi(<Paging list={paged(1, 0)} />);
    renderUi(<Paging list={paged(1, 120, { data: undefined })} />);
    expect(screen.queryByText(/ of /)).toBeNull();
    expect(screen.queryByRole("button")).toBeNull();
  });

  it("keeps the page chosen in the address, leaving page 1 out", () => {
    navigate("/audit?action=key.revoke&page=3", { replace: true });
    renderUi(
      <Paging
        list={paged(3, 120)}
        pagination={{ getItemProps: (p) => ({ "aria-label": `Page ${p}` }) }}
      />,
    );
    expect(screen.getByText("101–120 of 120")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Page 2" }));
    expect(window.location.search).toBe("?action=key.revoke&page=2");
    fireEvent.click(screen.getByRole("button", { name: "Page 1" }));
    expect(window.location.search).toBe("?action=key.revoke");
  });
});

describe("the dialog for adding a record", () => {
  it("is open while the address says ?new=1, and closing it keeps the other parameters", () => {
    navigate("/subscribers?status=active", { replace: true });
    renderUi(
      <NewDialog title="Add a subscriber">
        <p>the form</p>
      </NewDialog>,
    );
    expect(screen.queryByRole("dialog")).toBeNull();
    act(openNew);
    expect(window.location.search).toBe("?status=active&new=1");
    expect(screen.getByRole("dialog", { name: "Add a subscriber" })).toBeTruthy();
    expect(screen.getByText("the form")).toBeTruthy();
    act(closeNew);
    expect(window.location.search).toBe("?status=active");
    expect(screen.queryByText("the form")).toBeNull();
  });

  it("stays shut for a user who may not add, whatever the address says", () => {
    navigate("/keys?new=1", { replace: true });
    renderUi(
      <NewDialog title="Mint an API key" allowed={false}>
        <p>the form</p>
      </NewDialog>,
    );
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(screen.queryByText("the form")).toBeNull();
  });
});

describe("a list as cards", () => {
  it("gives each row a card linking to its record, with its status and the rest below", () => {
    const devices = [
      { id: 1, label: "core-1", state: "active" },
      { id: 2, label: "edge-2", state: "suspended" },
    ];
    renderUi(
      <CardList
        label="Devices"
        rows={devices}
        card={(d) => ({
          href: `/devices/${d.id}`,
          title: d.label,
          status: d.state,
          body: <p>about {d.label}</p>,
        })}
      />,
    );
    const cards = within(screen.getByRole("list", { name: "Devices" })).getAllByRole("listitem");
    expect(cards).toHaveLength(2);
    const second = cards[1] as HTMLElement;
    expect(within(second).getByRole("link", { name: "edge-2" }).getAttribute("href")).toBe(
      "/devices/2",
    );
    expect(within(second).getByText("suspended")).toBeTruthy();
    expect(within(second).getByText("about edge-2")).toBeTruthy();
  });
});

describe("a filter kept in the address", () => {
  const statuses = [
    { value: "active", label: "Active" },
    { value: "revoked", label: "Revoked" },
  ];
  const choose = async (option: string) => {
    fireEvent.click(screen.getByRole("combobox", { name: "Status" }));
    fireEvent.click(await screen.findByRole("option", { name: option }));
  };

  it("shows the address's choice, and `any` when there is none", () => {
    navigate("/keys?status=revoked", { replace: true });
    renderUi(<QuerySelect label="Status" param="status" any="Any status" data={statuses} />);
    expect(screen.getByRole<HTMLInputElement>("combobox", { name: "Status" }).value).toBe(
      "Revoked",
    );
    cleanup();
    navigate("/keys", { replace: true });
    renderUi(<QuerySelect label="Status" param="status" any="Any status" data={statuses} />);
    expect(screen.getByRole<HTMLInputElement>("combobox", { name: "Status" }).value).toBe(
      "Any status",
    );
  });

  it("writes a choice to the address, and `any` takes the filter away", async () => {
    navigate("/keys?scope=read", { replace: true });
    renderUi(<QuerySelect label="Status" param="status" any="Any status" data={statuses} />);
    await choose("Active");
    expect(window.location.search).toBe("?scope=read&status=active");
    await choose("Any status");
    expect(window.location.search).toBe("?scope=read");
  });

  it("goes back to the first page of a paged list", async () => {
    navigate("/subscribers?page=3", { replace: true });
    renderUi(<QuerySelect label="Status" param="status" any="Any status" data={statuses} paged />);
    await choose("Revoked");
    expect(window.location.search).toBe("?status=revoked");
  });
});
