// @vitest-environment happy-dom
import { cleanup, fireEvent, screen, waitFor } from "@testing-library/react";
import { useState } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { navigate } from "../lib/router";
import { fakeApi, me, type Request, resetApi } from "../test/fakeApi";
import { renderSignedIn } from "../test/render";
import { RecordDialogs } from "./RecordDialogs";
import { ToastProvider } from "./Toasts";

type Thing = { id: number; name: string };
const thing: Thing = { id: 3, name: "core-1" };

function Form({
  existing,
  onSubmit,
  onCancel,
}: {
  existing?: Thing;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}) {
  const [error, setError] = useState("");
  return (
    <>
      <p>{existing ? `form for ${existing.name}` : "empty form"}</p>
      {error && <p role="alert">{error}</p>}
      <button onClick={() => onSubmit({ name: "edge" }).catch((e: Error) => setError(e.message))}>
        Save
      </button>
      <button onClick={onCancel}>Cancel</button>
    </>
  );
}

function Page({ start }: { start?: { editing?: Thing; removing?: Thing } }) {
  const [editing, setEditing] = useState<Thing | null>(start?.editing ?? null);
  const [removing, setRemoving] = useState<Thing | null>(start?.removing ?? null);
  return (
    <RecordDialogs
      path="/api/things"
      onChanged={changed}
      newTitle="Add a thing"
      form={(existing, onSubmit, onCancel) => (
        <Form existing={existing} onSubmit={onSubmit} onCancel={onCancel} />
      )}
      notices={{
        added: (body) => `Thing ${String(body.name)} added`,
        saved: "Thing saved",
        removed: (row) => `Thing ${row.name} removed`,
      }}
      editing={editing}
      onEditClose={() => setEditing(null)}
      removing={removing}
      onRemoveClose={() => setRemoving(null)}
      removeVerb="Remove"
      noun="thing"
    >
      <p>It stops working.</p>
    </RecordDialogs>
  );
}

const changed = vi.fn();
let refuse = false;
const routes = (req: Request) => {
  if (refuse)
    return new Response(
      JSON.stringify({ success: false, code: "CONFLICT", message: "still in use" }),
      { status: 409, headers: { "content-type": "application/json" } },
    );
  return req.method === "GET" ? undefined : { id: 3, name: "edge" };
};

function show(start?: { editing?: Thing; removing?: Thing }) {
  const server = fakeApi(me({ role: "admin" }), routes);
  renderSignedIn(
    <ToastProvider>
      <Page start={start} />
    </ToastProvider>,
  );
  return server;
}

const sent = (server: ReturnType<typeof fakeApi>) =>
  server.calls
    .filter((c) => c.path.startsWith("/api/things"))
    .map((c) => `${c.method} ${c.path} ${JSON.stringify(c.body ?? null)}`);

beforeEach(() => {
  navigate("/things", { replace: true });
  changed.mockClear();
  refuse = false;
});
afterEach(() => {
  cleanup();
  resetApi();
});

describe("a catalogue's dialogs", () => {
  it("adds with a POST from the dialog ?new=1 opens, then closes it and says so", async () => {
    navigate("/things?new=1", { replace: true });
    const server = show();
    expect(await screen.findByRole("dialog", { name: "Add a thing" })).toBeTruthy();
    expect(screen.getByText("empty form")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Thing edge added")).toBeTruthy();
    expect(sent(server)).toEqual(['POST /api/things {"name":"edge"}']);
    expect(window.location.search).toBe("");
    expect(changed).toHaveBeenCalledOnce();
  });

  it("saves with a PUT to the record, then closes the dialog and says so", async () => {
    const server = show({ editing: thing });
    expect(await screen.findByRole("dialog", { name: "Edit core-1" })).toBeTruthy();
    expect(screen.getByText("form for core-1")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Thing saved")).toBeTruthy();
    expect(sent(server)).toEqual(['PUT /api/things/3 {"name":"edge"}']);
    await waitFor(() => expect(screen.queryByText("form for core-1")).toBeNull());
    expect(changed).toHaveBeenCalledOnce();
  });

  it("removes with a DELETE once confirmed, then says so", async () => {
    const server = show({ removing: thing });
    expect(await screen.findByRole("dialog", { name: "Remove core-1?" })).toBeTruthy();
    expect(screen.getByText("It stops working.")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Remove thing" }));
    expect(await screen.findByText("Thing core-1 removed")).toBeTruthy();
    expect(sent(server)).toEqual(["DELETE /api/things/3 null"]);
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(changed).toHaveBeenCalledOnce();
  });

  it("keeps a refusal in the dialog, which stays open, and changes nothing", async () => {
    refuse = true;
    show({ removing: thing });
    fireEvent.click(await screen.findByRole("button", { name: "Remove thing" }));
    expect((await screen.findByRole("alert")).textContent).toContain("still in use");
    expect(screen.getByRole("dialog", { name: "Remove core-1?" })).toBeTruthy();
    expect(changed).not.toHaveBeenCalled();
  });
});
