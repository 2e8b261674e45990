import type { ReactNode } from "react";
import { api } from "../lib/api";
import { closeNew, NewDialog } from "./ListPage";
import { useNotify } from "./Toasts";
import { EditAndRemove } from "./ui";

type Body = Record<string, unknown>;

/**
 * Adding, editing and removing the named records of a catalogue kept at `path` (NAS devices,
 * services): POST `path` to add, PUT `path/:id` to save, DELETE `path/:id` to remove; each
 * closes its dialog, says so in a notice and calls `onChanged`. A refusal stays in the dialog.
 */
export function RecordDialogs<T extends { id: number; name: string }>({
  path,
  onChanged,
  newTitle,
  allowed,
  size,
  form,
  notices,
  editing,
  onEditClose,
  removing,
  onRemoveClose,
  removeVerb,
  noun,
  children,
}: {
  path: string;
  onChanged: () => void;
  /** The title of the dialog for adding one (open while the address says `?new=1`). */
  newTitle: string;
  /** False keeps the adding dialog shut for a user who may not add. */
  allowed?: boolean;
  /** Of the adding and editing dialogs. */
  size?: string;
  /** The record's form: empty (`existing` undefined) to add one, filled in to edit it. */
  form: (
    existing: T | undefined,
    onSubmit: (body: Body) => Promise<void>,
    onCancel: () => void,
  ) => ReactNode;
  notices: { added: (body: Body) => string; saved: string; removed: (row: T) => string };
  editing: T | null;
  onEditClose: () => void;
  removing: T | null;
  onRemoveClose: () => void;
  /** "Remove" or "Delete": the confirmation's title and button say it. */
  removeVerb: string;
  /** What a record is, in lower case: "device", "service". */
  noun: string;
  /** What removing means, under the question. */
  children: ReactNode;
}) {
  const notify = useNotify();
  const add = async (body: Body) => {
    await api.post(path, body);
    closeNew();
    notify(notices.added(body));
    onChanged();
  };
  return (
    <>
      <NewDialog title={newTitle} size={size} allowed={allowed}>
        {form(undefined, add, closeNew)}
      </NewDialog>
      <EditAndRemove
        editing={editing}
        onEditClose={onEditClose}
        removing={removing}
        onRemoveClose={onRemoveClose}
        form={(row, close) =>
          form(
            row,
            async (body) => {
              await api.put(`${path}/${row.id}`, body);
              close();
              notify(notices.saved);
              onChanged();
            },
            close,
          )
        }
        editSize={size}
        removeVerb={removeVerb}
        noun={noun}
        onRemove={async (row) => {
          await api.del(`${path}/${row.id}`);
          notify(notices.removed(row), "red");
          onChanged();
        }}
      >
        {children}
      </EditAndRemove>
    </>
  );
}
