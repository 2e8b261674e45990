import {
  Button,
  Code,
  PasswordInput,
  SimpleGrid,
  Stack,
  Text,
  Textarea,
  TextInput,
} from "@mantine/core";
import { useCallback, useState } from "react";
import { ACTIONS_HEADER, ListTable } from "../components/DataTable";
import { ListView, openNew } from "../components/ListPage";
import { RecordDialogs } from "../components/RecordDialogs";
import { Empty, FormFooter, PageHeader, RowActions } from "../components/ui";
import { useForm } from "../lib/form";
import { formatDateTime } from "../lib/format";
import type { Nas } from "../lib/types";
import { useResource } from "../lib/useResource";
import { type NasFormValues, validateNasForm } from "../lib/validation";

function NasForm({
  existing,
  onSubmit,
  onCancel,
}: {
  existing?: Nas;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}) {
  const editing = existing !== undefined;
  const initial: NasFormValues = {
    name: existing?.name ?? "",
    ip_address: existing?.ip_address ?? "",
    type: existing?.type ?? "",
    description: existing?.description ?? "",
    secret: "",
  };
  const validate = useCallback((v: NasFormValues) => validateNasForm(v, { editing }), [editing]);
  const form = useForm<NasFormValues>({
    initial,
    validate,
    live: ["ip_address"],
    idPrefix: editing ? "nas-edit" : "nas-new",
  });
  const { text } = form;
  const send = (v: NasFormValues) => {
    const body: Record<string, unknown> = {};
    const changed = (k: keyof NasFormValues) => !editing || v[k] !== initial[k];
    if (changed("name")) body.name = v.name.trim();
    if (changed("ip_address")) body.ip_address = v.ip_address.trim();
    if (changed("type") && v.type.trim()) body.type = v.type.trim();
    if (changed("description")) {
      const d = v.description.trim();
      if (d) body.description = d;
      else if (editing) body.description = null;
    }
    if (v.secret !== "") body.secret = v.secret;
    return onSubmit(body);
  };
  return (
    <form
      noValidate
      aria-label={editing ? "Edit NAS device" : "New NAS device"}
      onSubmit={(e) => {
        e.preventDefault();
        void form.submit(send);
      }}
    >
      <Stack>
        <SimpleGrid cols={{ base: 1, xs: 2 }}>
          <TextInput label="Name" required data-autofocus {...text("name")} />
          <TextInput
            label="IP address"
            required
            placeholder="192.0.2.10"
            spellCheck={false}
            {...text("ip_address")}
          />
          <TextInput
            label="Type"
            placeholder="mikrotik"
            description="Vendor or kind of device."
            {...text("type")}
          />
          <PasswordInput
            label="Shared secret"
            required={!editing}
            description={
              editing
                ? "Leave empty to keep the current secret."
                : "Never shown again after saving."
            }
            autoComplete="new-password"
            {...text("secret")}
          />
        </SimpleGrid>
        <Textarea label="Description" autosize minRows={2} {...text("description")} />
        <FormFooter
          error={form.formError}
          errorTitle="Not saved"
          busy={form.busy}
          submitLabel={editing ? "Save changes" : "Add device"}
          onCancel={onCancel}
        />
      </Stack>
    </form>
  );
}

export function NasPage() {
  const list = useResource<Nas[]>("/api/nas");
  const [editing, setEditing] = useState<Nas | null>(null);
  const [deleting, setDeleting] = useState<Nas | null>(null);

  return (
    <>
      <PageHeader
        title="NAS devices"
        description="The access servers that authenticate subscribers. Their shared secrets are write-only."
        actions={<Button onClick={openNew}>Add a device</Button>}
      />
      <ListView
        list={list}
        empty={
          <Empty
            title="No NAS devices yet"
            description="Add each router or access server that should check subscribers against Keygate."
            action={<Button onClick={openNew}>Add a device</Button>}
          />
        }
      >
        {(rows) => (
          <ListTable
            minWidth={620}
            highlightOnHover
            caption="NAS devices"
            rows={rows}
            rowKey={(n) => n.id}
            columns={[
              {
                header: "Name",
                cell: (n) => (
                  <>
                    <Text size="sm" fw={500}>
                      {n.name}
                    </Text>
                    {n.description && (
                      <Text size="xs" c="dimmed" lineClamp={1}>
                        {n.description}
                      </Text>
                    )}
                  </>
                ),
              },
              { header: "IP address", cell: (n) => <Code>{n.ip_address}</Code> },
              { header: "Type", cell: (n) => <Text size="sm">{n.type}</Text> },
              {
                header: "Added",
                cell: (n) => <Text size="sm">{formatDateTime(n.created_at)}</Text>,
              },
              {
                header: ACTIONS_HEADER,
                cell: (n) => (
                  <RowActions
                    name={n.name}
                    onEdit={() => setEditing(n)}
                    onRemove={() => setDeleting(n)}
                    removeLabel="Remove"
                  />
                ),
              },
            ]}
          />
        )}
      </ListView>
      <RecordDialogs
        path="/api/nas"
        onChanged={list.reload}
        newTitle="Add a NAS device"
        form={(existing, onSubmit, onCancel) => (
          <NasForm existing={existing} onSubmit={onSubmit} onCancel={onCancel} />
        )}
        notices={{
          added: (body) => `Device ${String(body.name)} added`,
          saved: "Device saved",
          removed: (row) => `Device ${row.name} removed`,
        }}
        editing={editing}
        onEditClose={() => setEditing(null)}
        removing={deleting}
        onRemoveClose={() => setDeleting(null)}
        removeVerb="Remove"
        noun="device"
      >
        <Text size="sm">The device can no longer authenticate subscribers against Keygate.</Text>
      </RecordDialogs>
    </>
  );
}
