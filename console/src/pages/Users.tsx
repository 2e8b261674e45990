import { Badge, Button, Group, PasswordInput, Select, Stack, Text, TextInput } from "@mantine/core";
import { useState } from "react";
import { useUser } from "../auth";
import { ACTIONS_HEADER, ListTable } from "../components/DataTable";
import { closeNew, NewDialog, openNew } from "../components/ListPage";
import { useNotify } from "../components/Toasts";
import {
  ConfirmDialog,
  Dialog,
  Empty,
  ErrorAlert,
  FormFooter,
  Loading,
  PageHeader,
} from "../components/ui";
import { api } from "../lib/api";
import { useForm } from "../lib/form";
import { formatDateTime } from "../lib/format";
import type { UserRow } from "../lib/types";
import { useResource } from "../lib/useResource";
import { type UserFormValues, userPassword, validateUserForm } from "../lib/validation";

function UserForm({
  onSubmit,
  onCancel,
}: {
  onSubmit: (body: UserFormValues) => Promise<void>;
  onCancel: () => void;
}) {
  const form = useForm<UserFormValues>({
    initial: { username: "", password: "", role: "reseller" },
    validate: validateUserForm,
    idPrefix: "user-new",
  });
  const { values, set, field, text } = form;
  return (
    <form
      noValidate
      aria-label="New user"
      onSubmit={(e) => {
        e.preventDefault();
        void form.submit((v) => onSubmit({ ...v, username: v.username.trim() }));
      }}
    >
      <Stack>
        <TextInput
          label="Username"
          required
          autoCapitalize="off"
          spellCheck={false}
          autoComplete="off"
          data-autofocus
          {...text("username")}
        />
        <PasswordInput
          label="Password"
          required
          description="At least 8 characters. Share it with the person safely; they sign in with it."
          autoComplete="new-password"
          {...text("password")}
        />
        <Select
          label="Role"
          data={[
            { value: "reseller", label: "Reseller: sees only its own subscribers and keys" },
            { value: "admin", label: "Admin: sees and changes everything" },
          ]}
          value={values.role}
          onChange={(v) => set("role", v ?? "reseller")}
          allowDeselect={false}
          {...field("role")}
        />
        <FormFooter
          error={form.formError}
          errorTitle="User not created"
          busy={form.busy}
          submitLabel="Create user"
          onCancel={onCancel}
        />
      </Stack>
    </form>
  );
}

function PasswordDialog({ user, onClose }: { user: UserRow | null; onClose: () => void }) {
  const notify = useNotify();
  const form = useForm<{ password: string }>({
    initial: { password: "" },
    validate: (v) => {
      const p = userPassword(v.password);
      return p ? { password: p } : {};
    },
    idPrefix: "user-pw",
  });
  return (
    <Dialog
      opened={user !== null}
      onClose={onClose}
      title={`New password for ${user?.username ?? ""}`}
      size="md"
    >
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void form
            .submit(async (v) => {
              await api.put(`/api/users/${user?.id}`, { password: v.password });
            })
            .then((ok) => {
              if (ok) {
                notify(`Password changed; ${user?.username} must sign in again`);
                form.reset();
                onClose();
              }
            });
        }}
      >
        <Stack>
          <PasswordInput
            label="New password"
            required
            autoComplete="new-password"
            data-autofocus
            {...form.text("password")}
          />
          <Text size="xs" c="dimmed">
            Changing the password ends every session of this user.
          </Text>
          <FormFooter
            error={form.formError}
            errorTitle="Not changed"
            busy={form.busy}
            submitLabel="Set password"
            onCancel={onClose}
          />
        </Stack>
      </form>
    </Dialog>
  );
}

export function Users() {
  const me = useUser();
  const notify = useNotify();
  const list = useResource<UserRow[]>("/api/users");
  const [deleting, setDeleting] = useState<UserRow | null>(null);
  const [passwordFor, setPasswordFor] = useState<UserRow | null>(null);
  const [error, setError] = useState<unknown>(null);

  const toggle = async (u: UserRow) => {
    setError(null);
    try {
      await api.put(`/api/users/${u.id}`, { disabled: !u.disabled });
      notify(
        u.disabled ? `${u.username} enabled` : `${u.username} disabled; their keys stop working`,
      );
      list.reload();
    } catch (err) {
      setError(err);
    }
  };

  return (
    <>
      <PageHeader
        title="Users"
        description="The people who sign in: admins, and resellers who each manage their own subscribers."
        actions={<Button onClick={openNew}>Add a user</Button>}
      />
      {/* Not ListView: the signed-in admin is always listed, so with no one else the
          table stays under the invitation; and a refused enable or disable shows here too. */}
      <ErrorAlert error={list.error ?? error} onRetry={list.error ? list.reload : undefined} />
      {list.loading && !list.data && <Loading />}
      {list.data && list.data.length <= 1 && (
        <Empty
          title="Only you so far"
          description="Add a reseller for each partner who sells your services; they see only their own subscribers and keys."
          action={<Button onClick={openNew}>Add a reseller</Button>}
        />
      )}
      {list.data && list.data.length > 0 && (
        <ListTable
          mt={list.data.length <= 1 ? "md" : 0}
          minWidth={600}
          highlightOnHover
          caption="Users"
          rows={list.data}
          rowKey={(u) => u.id}
          columns={[
            {
              header: "Username",
              cell: (u) => (
                <Text size="sm" fw={500} style={{ whiteSpace: "nowrap" }}>
                  {u.username}
                  {u.id === me.id && (
                    <Text span c="dimmed" size="xs">
                      {" "}
                      (you)
                    </Text>
                  )}
                </Text>
              ),
            },
            {
              header: "Role",
              cell: (u) => (
                <Badge variant="light" color={u.role === "admin" ? "blue" : "grape"}>
                  {u.role}
                </Badge>
              ),
            },
            {
              header: "State",
              cell: (u) => (
                <Badge variant="light" color={u.disabled ? "red" : "teal"}>
                  {u.disabled ? "disabled" : "active"}
                </Badge>
              ),
            },
            {
              header: "Two-factor",
              cell: (u) => (
                <Badge variant="light" color={u.two_factor_enabled ? "teal" : "gray"}>
                  {u.two_factor_enabled ? "on" : "off"}
                </Badge>
              ),
            },
            {
              header: "Created",
              cell: (u) => (
                <Text size="sm" style={{ whiteSpace: "nowrap" }}>
                  {formatDateTime(u.created_at)}
                </Text>
              ),
            },
            {
              header: ACTIONS_HEADER,
              cell: (u) => (
                <Group gap="xs" justify="flex-end" wrap="nowrap">
                  <Button size="compact-sm" variant="default" onClick={() => setPasswordFor(u)}>
                    Password
                  </Button>
                  {u.id !== me.id && (
                    <>
                      <Button
                        size="compact-sm"
                        variant="light"
                        color={u.disabled ? "teal" : "orange"}
                        onClick={() => void toggle(u)}
                        aria-label={`${u.disabled ? "Enable" : "Disable"} ${u.username}`}
                      >
                        {u.disabled ? "Enable" : "Disable"}
                      </Button>
                      <Button
                        size="compact-sm"
                        variant="subtle"
                        color="red"
                        onClick={() => setDeleting(u)}
                        aria-label={`Delete ${u.username}`}
                      >
                        Delete
                      </Button>
                    </>
                  )}
                </Group>
              ),
            },
          ]}
        />
      )}
      <NewDialog title="Add a user" size="md">
        <UserForm
          onCancel={closeNew}
          onSubmit={async (body) => {
            await api.post("/api/users", body);
            closeNew();
            notify(`User ${body.username} created`);
            list.reload();
          }}
        />
      </NewDialog>
      <PasswordDialog user={passwordFor} onClose={() => setPasswordFor(null)} />
      <ConfirmDialog
        opened={deleting !== null}
        onClose={() => setDeleting(null)}
        title={`Delete ${deleting?.username ?? ""}?`}
        confirmLabel="Delete user"
        onConfirm={async () => {
          if (!deleting) return;
          await api.del(`/api/users/${deleting.id}`);
          notify(`User ${deleting.username} deleted`, "red");
          list.reload();
        }}
      >
        <Text size="sm">
          They can no longer sign in, and every API key they own stops working at once. Their
          subscribers stay.
        </Text>
      </ConfirmDialog>
    </>
  );
}
