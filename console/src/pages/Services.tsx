import { Badge, Button, SimpleGrid, Stack, Switch, Text, TextInput } from "@mantine/core";
import { useState } from "react";
import { useUser } from "../auth";
import { ACTIONS_HEADER, ListTable } from "../components/DataTable";
import { ListView, openNew } from "../components/ListPage";
import { RecordDialogs } from "../components/RecordDialogs";
import { Empty, FormFooter, PageHeader, RowActions } from "../components/ui";
import { upperCase, useForm } from "../lib/form";
import { formatMoney, formatSpeed } from "../lib/format";
import type { Service } from "../lib/types";
import { useResource } from "../lib/useResource";
import { type ServiceFormValues, validateServiceForm } from "../lib/validation";

function valuesOf(s?: Service): ServiceFormValues {
  return {
    name: s?.name ?? "",
    download_kbps: s ? String(s.download_kbps) : "",
    upload_kbps: s ? String(s.upload_kbps) : "",
    price: s ? String(s.price) : "",
    currency: s?.currency ?? "USD",
    duration_days: s ? String(s.duration_days) : "30",
    is_active: s?.is_active ?? true,
  };
}

function ServiceForm({
  existing,
  onSubmit,
  onCancel,
}: {
  existing?: Service;
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}) {
  const form = useForm<ServiceFormValues>({
    initial: valuesOf(existing),
    validate: validateServiceForm,
    idPrefix: existing ? "svc-edit" : "svc-new",
  });
  const { values, set, text } = form;
  const send = (v: ServiceFormValues) => {
    const body: Record<string, unknown> = { name: v.name.trim(), is_active: v.is_active };
    if (v.download_kbps.trim()) body.download_kbps = Number(v.download_kbps);
    if (v.upload_kbps.trim()) body.upload_kbps = Number(v.upload_kbps);
    if (v.price.trim()) body.price = v.price.trim();
    if (v.currency.trim()) body.currency = v.currency.trim();
    if (v.duration_days.trim()) body.duration_days = Number(v.duration_days);
    return onSubmit(body);
  };
  return (
    <form
      noValidate
      aria-label={existing ? "Edit service" : "New service"}
      onSubmit={(e) => {
        e.preventDefault();
        void form.submit(send);
      }}
    >
      <Stack>
        <TextInput label="Name" required data-autofocus {...text("name")} />
        <SimpleGrid cols={{ base: 1, xs: 2 }}>
          <TextInput label="Download (kbit/s)" inputMode="numeric" {...text("download_kbps")} />
          <TextInput label="Upload (kbit/s)" inputMode="numeric" {...text("upload_kbps")} />
          <TextInput label="Price" inputMode="decimal" placeholder="19.99" {...text("price")} />
          <TextInput label="Currency" maxLength={3} {...text("currency", upperCase)} />
          <TextInput label="Duration (days)" inputMode="numeric" {...text("duration_days")} />
        </SimpleGrid>
        <Switch
          label="Offered to new subscribers"
          checked={values.is_active}
          onChange={(e) => set("is_active", e.currentTarget.checked)}
        />
        <FormFooter
          error={form.formError}
          errorTitle="Not saved"
          busy={form.busy}
          submitLabel={existing ? "Save changes" : "Create service"}
          onCancel={onCancel}
        />
      </Stack>
    </form>
  );
}

export function Services() {
  const user = useUser();
  const list = useResource<Service[]>("/api/services");
  const [editing, setEditing] = useState<Service | null>(null);
  const [deleting, setDeleting] = useState<Service | null>(null);

  return (
    <>
      <PageHeader
        title="Services"
        description="The catalogue of plans a subscriber can be on."
        actions={user.isAdmin && <Button onClick={openNew}>Add a service</Button>}
      />
      <ListView
        list={list}
        empty={
          <Empty
            title="No services yet"
            description={
              user.isAdmin
                ? "Add the plans you sell (speed, price, duration); every subscriber is on one."
                : "An admin has not added any service yet; subscribers need one."
            }
            action={user.isAdmin && <Button onClick={openNew}>Add a service</Button>}
          />
        }
      >
        {(rows) => (
          <ListTable
            minWidth={640}
            highlightOnHover
            caption="Services"
            rows={rows}
            rowKey={(s) => s.id}
            columns={[
              {
                header: "Name",
                cell: (s) => (
                  <Text size="sm" fw={500} style={{ whiteSpace: "nowrap" }}>
                    {s.name}
                  </Text>
                ),
              },
              {
                header: "Speed",
                cell: (s) => (
                  <Text size="sm" style={{ whiteSpace: "nowrap" }}>
                    {formatSpeed(s.download_kbps)} down · {formatSpeed(s.upload_kbps)} up
                  </Text>
                ),
              },
              {
                header: "Price",
                align: "right",
                cell: (s) => <Text size="sm">{formatMoney(s.price, s.currency)}</Text>,
              },
              { header: "Duration", cell: (s) => <Text size="sm">{s.duration_days} days</Text> },
              {
                header: "Status",
                cell: (s) => (
                  <Badge variant="light" color={s.is_active ? "teal" : "gray"}>
                    {s.is_active ? "offered" : "inactive"}
                  </Badge>
                ),
              },
              user.isAdmin && {
                header: ACTIONS_HEADER,
                cell: (s) => (
                  <RowActions
                    name={s.name}
                    onEdit={() => setEditing(s)}
                    onRemove={() => setDeleting(s)}
                    removeLabel="Delete"
                  />
                ),
              },
            ]}
          />
        )}
      </ListView>

      <RecordDialogs
        path="/api/services"
        onChanged={list.reload}
        newTitle="Add a service"
        allowed={user.isAdmin}
        size="md"
        form={(existing, onSubmit, onCancel) => (
          <ServiceForm existing={existing} onSubmit={onSubmit} onCancel={onCancel} />
        )}
        notices={{
          added: (body) => `Service ${String(body.name)} created`,
          saved: "Service saved",
          removed: (row) => `Service ${row.name} deleted`,
        }}
        editing={editing}
        onEditClose={() => setEditing(null)}
        removing={deleting}
        onRemoveClose={() => setDeleting(null)}
        removeVerb="Delete"
        noun="service"
      >
        <Text size="sm">
          A service that subscribers are on cannot be deleted; switch it to inactive instead, so no
          new subscriber gets it.
        </Text>
      </RecordDialogs>
    </>
  );
}
