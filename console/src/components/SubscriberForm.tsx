import { FormFooter } from "./ui";
import {
  Alert,
  Anchor,
  PasswordInput,
  Select,
  SimpleGrid,
  Stack,
  Switch,
  TextInput,
} from "@mantine/core";
import { useCallback, useState } from "react";
import { useForm } from "../lib/form";
import { Link } from "../lib/router";
import type { Service, Subscriber, UserRow } from "../lib/types";
import { type SubscriberFormValues, validateSubscriberForm } from "../lib/validation";

export type SubscriberBody = Partial<{
  username: string;
  password: string;
  service_id: number;
  full_name: string | null;
  email: string | null;
  phone: string | null;
  status: string;
  expiry_date: string | null;
  owner_id: number;
}>;

function valuesOf(s: Subscriber | undefined): SubscriberFormValues {
  return {
    username: s?.username ?? "",
    password: "",
    service_id: s ? String(s.service_id) : "",
    full_name: s?.full_name ?? "",
    email: s?.email ?? "",
    phone: s?.phone ?? "",
    status: s?.status ?? "active",
    expiry_date: s?.expiry_date ?? "",
    owner_id: s ? String(s.owner_id) : "",
  };
}

const nullable = (v: string) => (v.trim() === "" ? null : v.trim());

export function subscriberBody(
  v: SubscriberFormValues,
  initial: SubscriberFormValues,
  editing: boolean,
): SubscriberBody {
  if (!editing) {
    const body: SubscriberBody = {
      username: v.username.trim(),
      password: v.password,
      service_id: Number(v.service_id),
      status: v.status,
    };
    if (v.full_name.trim()) body.full_name = v.full_name.trim();
    if (v.email.trim()) body.email = v.email.trim();
    if (v.phone.trim()) body.phone = v.phone.trim();
    if (v.expiry_date.trim()) body.expiry_date = v.expiry_date.trim();
    if (v.owner_id) body.owner_id = Number(v.owner_id);
    return body;
  }
  const body: SubscriberBody = {};
  const changed = (k: keyof SubscriberFormValues) => v[k] !== initial[k];
  if (changed("username")) body.username = v.username.trim();
  if (v.password !== "") body.password = v.password;
  if (changed("service_id")) body.service_id = Number(v.service_id);
  if (changed("full_name")) body.full_name = nullable(v.full_name);
  if (changed("email")) body.email = nullable(v.email);
  if (changed("phone")) body.phone = nullable(v.phone);
  if (changed("status")) body.status = v.status;
  if (changed("expiry_date")) body.expiry_date = nullable(v.expiry_date);
  return body;
}

/** Creates a subscriber, or changes one (`existing`). */
export function SubscriberForm({
  existing,
  services,
  isAdmin,
  users,
  onSubmit,
  onCancel,
}: {
  existing?: Subscriber;
  services: Service[];
  isAdmin: boolean;
  users?: UserRow[];
  onSubmit: (body: SubscriberBody) => Promise<void>;
  onCancel?: () => void;
}) {
  const editing = existing !== undefined;
  const initial = valuesOf(existing);
  const [generate, setGenerate] = useState(!editing);
  const validate = useCallback(
    (v: SubscriberFormValues) => validateSubscriberForm(v, { editing }),
    [editing],
  );
  const form = useForm<SubscriberFormValues>({
    initial: { ...initial, password: editing ? "" : "auto-generate" },
    validate,
    live: ["expiry_date"],
    idPrefix: editing ? "sub-edit" : "sub-new",
  });
  const { values, set, field, text } = form;
  const serviceChoices = services
    .filter((s) => s.is_active || String(s.id) === values.service_id)
    .map((s) => ({ value: String(s.id), label: s.is_active ? s.name : `${s.name} (inactive)` }));

  return (
    <form
      noValidate
      aria-label={editing ? "Edit subscriber" : "New subscriber"}
      onSubmit={(e) => {
        e.preventDefault();
        void form.submit((v) => onSubmit(subscriberBody(v, initial, editing)));
      }}
    >
      <Stack gap="md">
        {services.length === 0 && (
          <Alert color="yellow" title="No service yet">
            A subscriber needs a service.{" "}
            {isAdmin ? (
              <Anchor component={Link} href="/services?new=1">
                Create a service first
              </Anchor>
            ) : (
              "Ask an admin to add one to the catalogue."
            )}
          </Alert>
        )}
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput
            label="Username"
            description="3-64 letters, digits and @ . _ -; the network login."
            required
            autoCapitalize="off"
            spellCheck={false}
            data-autofocus
            {...text("username")}
          />
          <Select
            label="Service"
            required
            placeholder="Choose a service"
            data={serviceChoices}
            value={values.service_id || null}
            onChange={(v) => set("service_id", v ?? "")}
            searchable
            nothingFoundMessage="No service by that name"
            {...field("service_id")}
          />
        </SimpleGrid>
        <Stack gap={6}>
          <Switch
            label={editing ? "Generate a new password" : "Generate a strong password"}
            description={
              editing
                ? "Otherwise type a new one below, or leave it empty to keep the current one."
                : "Shown once after creating; or type one yourself."
            }
            checked={generate}
            onChange={(e) => {
              const on = e.currentTarget.checked;
              setGenerate(on);
              set("password", on ? "auto-generate" : "");
            }}
          />
          {!generate && (
            <PasswordInput
              label={editing ? "New password" : "Password"}
              description="4-128 characters."
              required={!editing}
              autoComplete="new-password"
              {...text("password")}
            />
          )}
          {generate && field("password").error && (
            <Alert color="red">{field("password").error}</Alert>
          )}
        </Stack>
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          <TextInput label="Full name" autoComplete="off" {...text("full_name")} />
          <TextInput label="Email" type="email" autoComplete="off" {...text("email")} />
          <TextInput label="Phone" type="tel" autoComplete="off" {...text("phone")} />
          <TextInput
            label="Expiry date"
            type="date"
            description="Optional: when the subscription ends."
            {...text("expiry_date")}
          />
          <Select
            label="Status"
            data={[
              { value: "active", label: "Active" },
              { value: "suspended", label: "Suspended" },
              { value: "expired", label: "Expired" },
            ]}
            value={values.status}
            onChange={(v) => set("status", v ?? "active")}
            allowDeselect={false}
            {...field("status")}
          />
          {isAdmin && !editing && users && (
            <Select
              label="Owner"
              description="The reseller it belongs to; empty: you."
              placeholder="You"
              data={users
                .filter((u) => !u.disabled)
                .map((u) => ({ value: String(u.id), label: `${u.username} (${u.role})` }))}
              value={values.owner_id || null}
              onChange={(v) => set("owner_id", v ?? "")}
              clearable
              searchable
              {...field("owner_id")}
            />
          )}
        </SimpleGrid>
        <FormFooter
          error={form.formError}
          errorTitle={editing ? "Not saved" : "Subscriber not created"}
          busy={form.busy}
          submitLabel={editing ? "Save changes" : "Create subscriber"}
          onCancel={onCancel}
        />
      </Stack>
    </form>
  );
}
