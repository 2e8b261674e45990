import {
  Anchor,
  Badge,
  Button,
  Checkbox,
  Code,
  Group,
  Paper,
  Text,
  TextInput,
} from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import { useMemo, useState } from "react";
import { useUser } from "../auth";
import { ListTable } from "../components/DataTable";
import { type KeyBody, KeyForm } from "../components/KeyForm";
import {
  CardList,
  closeNew,
  FilterBar,
  ListView,
  NewDialog,
  NoMatch,
  openNew,
  QuerySelect,
} from "../components/ListPage";
import { ShowOnceDialog } from "../components/ShowOnce";
import { useNotify } from "../components/Toasts";
import {
  ConfirmDialog,
  Empty,
  EnvironmentBadge,
  PageHeader,
  SignedBadge,
  StatusBadge,
} from "../components/ui";
import { api } from "../lib/api";
import { useEnvironment } from "../lib/environment";
import { formatDate, formatDateTime, KEY_STATUS_HELP, lastRefusal, relative } from "../lib/format";
import { describePermissions } from "../lib/permissions";
import { Link, navigate, setQuery, useLocation } from "../lib/router";
import type { ApiKey, UserRow } from "../lib/types";
import { useResource } from "../lib/useResource";

/** A key just minted or rolled, and its signing secret when it has one: shown this once. */
export type Minted = { key: string; data: ApiKey; signingSecret?: string };

/** Shown to a reseller instead of the mint button when self-service keys are off. */
export const MINT_OFF =
  "Ask an admin to mint keys for you — self-service keys are off on this server.";

/** `POST /api/api-keys/revoke`: each key's outcome, in the order asked. */
export type BulkRevoked =
  { id: number; revoked: true } | { id: number; error: { code: string; message: string } };

/** The toast after a bulk revocation: how many were revoked, and why the others were not. */
export function bulkRevokeSummary(results: BulkRevoked[]): { message: string; failed: boolean } {
  const done = results.filter((r) => "revoked" in r).length;
  const failed = results.flatMap((r) => ("error" in r ? [r] : []));
  const keys = (n: number) => `${n} key${n === 1 ? "" : "s"}`;
  if (failed.length === 0) return { message: `${keys(done)} revoked`, failed: false };
  const why = failed.map((r) => `key ${r.id}: ${r.error.message}`).join("; ");
  return { message: `${keys(done)} revoked, ${failed.length} not (${why})`, failed: true };
}

/** Owner names for admins (from the user list); everyone else sees only their own keys. */
export function useOwners(isAdmin: boolean) {
  const users = useResource<UserRow[]>(isAdmin ? "/api/users" : null);
  const byId = useMemo(() => new Map((users.data ?? []).map((u) => [u.id, u])), [users.data]);
  return { users: users.data, byId };
}

export function Keys() {
  const user = useUser();
  const notify = useNotify();
  const { query } = useLocation();
  const keys = useResource<ApiKey[]>("/api/api-keys");
  const { users, byId } = useOwners(user.isAdmin);
  const [minted, setMinted] = useState<Minted | null>(null);
  const [selected, setSelected] = useState<ReadonlySet<number>>(new Set());
  const [confirmBulk, setConfirmBulk] = useState(false);
  const phone = useMediaQuery("(max-width: 40em)");
  // The server lists the keys of this environment only (Keygate-Environment).
  const env = useEnvironment();
  const test = env === "test";

  const status = query.get("status") ?? "";
  const scope = query.get("scope") ?? "";
  const owner = query.get("owner") ?? "";
  const search = query.get("q") ?? "";

  const ownerName = (id: number) =>
    id === user.id ? "you" : (byId.get(id)?.username ?? `user ${id}`);
  const says = (k: ApiKey) =>
    describePermissions(
      k.permissions,
      k.owner_id === user.id ? user.role : byId.get(k.owner_id)?.role,
    );

  const rows = useMemo(() => {
    const q = search.trim().toLowerCase();
    return (keys.data ?? []).filter(
      (k) =>
        (!status || k.status === status) &&
        (!scope || k.scopes === scope) &&
        (!owner || String(k.owner_id) === owner) &&
        (!q ||
          k.name.toLowerCase().includes(q) ||
          k.key_prefix.toLowerCase().includes(q) ||
          (k.description ?? "").toLowerCase().includes(q)),
    );
  }, [keys.data, status, scope, owner, search]);

  const mint = async (body: KeyBody) => {
    const res = await api.post<ApiKey>("/api/api-keys", body);
    closeNew();
    setMinted({ key: res.key as string, data: res.data, signingSecret: res.signing_secret });
    keys.reload();
  };

  const filtered = status || scope || owner || search;

  // Only keys shown and not yet revoked can be chosen; a filter hides what it leaves out.
  const selectable = user.canManageKeys === true;
  const revocable = rows.filter((k) => k.status !== "revoked");
  const chosen = revocable.filter((k) => selected.has(k.id));
  const allChosen = revocable.length > 0 && chosen.length === revocable.length;
  const toggle = (id: number, on: boolean) =>
    setSelected((s) => {
      const next = new Set(s);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  const pick = (k: ApiKey) =>
    selectable && k.status !== "revoked" ? (
      <Checkbox
        aria-label={`Select ${k.name} (${k.key_prefix}…)`}
        checked={selected.has(k.id)}
        onChange={(e) => toggle(k.id, e.currentTarget.checked)}
      />
    ) : null;
  const bulkRevoke = async () => {
    const ids = chosen.map((k) => k.id);
    const res = await api.post<BulkRevoked[]>("/api/api-keys/revoke", { ids });
    const summary = bulkRevokeSummary(res.data);
    notify(summary.message, summary.failed ? "orange" : "red");
    setSelected(new Set());
    keys.reload();
  };

  return (
    <>
      <PageHeader
        title={test ? "Test API keys" : "API keys"}
        description={
          test
            ? "Test keys (pk_test_…) see and change only test data. Live keys are hidden while Test data is on."
            : "Keys let billing systems, helpdesks and monitoring call the external surface. Each acts for its owner."
        }
        actions={
          user.canManageKeys === false ? (
            <Text size="sm" c="dimmed" maw={340} data-testid="manage-keys-off">
              {MINT_OFF}
            </Text>
          ) : user.canManageKeys ? (
            <Button onClick={openNew}>Mint a key</Button>
          ) : undefined
        }
      />
      <FilterBar cols={{ base: 1, xs: 2, md: user.isAdmin ? 4 : 3 }}>
        <TextInput
          label="Search"
          placeholder="Name, prefix or description"
          value={search}
          onChange={(e) => setQuery({ q: e.currentTarget.value })}
          type="search"
        />
        <QuerySelect
          label="Status"
          param="status"
          any="Any status"
          data={[
            { value: "active", label: "Active" },
            { value: "revoked", label: "Revoked" },
            { value: "expired", label: "Expired" },
            { value: "owner_disabled", label: "Owner disabled" },
            { value: "owner_deleted", label: "Owner deleted" },
          ]}
        />
        <QuerySelect
          label="Scope"
          param="scope"
          any="Any scope"
          data={[
            { value: "read", label: "read (GET)" },
            { value: "write", label: "write (GET, POST, PUT)" },
            { value: "delete", label: "delete (all verbs)" },
            { value: "custom", label: "custom (by resource)" },
          ]}
        />
        {user.isAdmin && (
          <QuerySelect
            label="Owner"
            param="owner"
            any="Any owner"
            data={(users ?? []).map((u) => ({ value: String(u.id), label: u.username }))}
            searchable
          />
        )}
      </FilterBar>

      {selectable && chosen.length > 0 && (
        <Paper withBorder radius="md" p="xs" mb="sm" data-testid="bulk-bar">
          <Group justify="space-between" gap="xs">
            <Text size="sm" aria-live="polite">
              {chosen.length} key{chosen.length === 1 ? "" : "s"} selected
            </Text>
            <Group gap="xs">
              <Button size="xs" variant="default" onClick={() => setSelected(new Set())}>
                Clear selection
              </Button>
              <Button size="xs" color="red" variant="light" onClick={() => setConfirmBulk(true)}>
                Revoke selected
              </Button>
            </Group>
          </Group>
        </Paper>
      )}
      <ListView
        list={keys}
        empty={
          <Empty
            title={test ? "No test keys yet" : "No keys yet"}
            description={
              user.canManageKeys === false
                ? "Keys an admin mints for you appear here, with their call logs."
                : test
                  ? "Mint a test key for each system you try Keygate with: it sees only test data. The full key is shown once, at minting."
                  : "Mint a key for each system that calls Keygate, with the narrowest permissions it needs. The full key is shown once, at minting."
            }
            action={
              user.canManageKeys ? (
                <Button onClick={openNew}>Mint your first key</Button>
              ) : undefined
            }
          />
        }
      >
        {/* Every key is fetched; the filters pick among them here. */}
        {() =>
          rows.length === 0 ? (
            <NoMatch
              title="No key matches"
              description="Change the search or the filters to see more keys."
              onClear={() => setQuery({ q: null, status: null, scope: null, owner: null })}
            />
          ) : phone ? (
            <CardList
              label="API keys"
              rows={rows}
              card={(k) => ({
                href: `/keys/${k.id}`,
                title: k.name,
                status: k.status,
                body: (
                  <>
                    {selectable && k.status !== "revoked" && (
                      <Checkbox
                        mt={6}
                        size="sm"
                        label="Select"
                        aria-label={`Select ${k.name} (${k.key_prefix}…)`}
                        checked={selected.has(k.id)}
                        onChange={(e) => toggle(k.id, e.currentTarget.checked)}
                      />
                    )}
                    <Group gap={6} mt={4}>
                      <Code>{k.key_prefix}…</Code>
                      <EnvironmentBadge environment={k.environment} />
                      <SignedBadge signing={k.signing} />
                      <Badge variant="outline" radius="sm" color="gray">
                        {k.scopes}
                      </Badge>
                      <Text size="xs" c="dimmed">
                        {ownerName(k.owner_id)}
                      </Text>
                    </Group>
                    <Text size="xs" c="dimmed" mt={4}>
                      Last used {relative(k.last_used_at)} · expires{" "}
                      {k.expires_at ? formatDate(k.expires_at) : "never"}
                    </Text>
                    {k.last_refused_at && (
                      <Text size="xs" c="red" mt={2}>
                        Last refused {lastRefusal(k)}
                      </Text>
                    )}
                  </>
                ),
              })}
            />
          ) : (
            <ListTable
              minWidth={820}
              highlightOnHover
              caption={
                filtered
                  ? `API keys matching the filters: ${rows.length}`
                  : `API keys: ${rows.length}`
              }
              rows={rows}
              rowKey={(k) => k.id}
              rowProps={(k) => ({ "data-testid": `key-row-${k.id}` })}
              columns={[
                selectable && {
                  header: (
                    <Checkbox
                      aria-label="Select every key shown that is not revoked"
                      checked={allChosen}
                      indeterminate={chosen.length > 0 && !allChosen}
                      disabled={revocable.length === 0}
                      onChange={(e) =>
                        setSelected(
                          new Set(e.currentTarget.checked ? revocable.map((k) => k.id) : []),
                        )
                      }
                    />
                  ),
                  td: () => ({ w: 36 }),
                  cell: pick,
                },
                {
                  header: "Name",
                  cell: (k) => (
                    <>
                      <Anchor component={Link} href={`/keys/${k.id}`} fw={500} size="sm">
                        {k.name}
                      </Anchor>
                      {k.description && (
                        <Text size="xs" c="dimmed" lineClamp={1} maw={260}>
                          {k.description}
                        </Text>
                      )}
                      {(k.replaced_by_id || k.rolled_from_id) && (
                        <Text size="xs" c="dimmed">
                          {k.replaced_by_id
                            ? `rolled: replaced by key ${k.replaced_by_id}`
                            : `replaces key ${k.rolled_from_id}`}
                        </Text>
                      )}
                    </>
                  ),
                },
                {
                  header: "Prefix",
                  cell: (k) => (
                    <Group gap={6} wrap="nowrap">
                      <Code>{k.key_prefix}…</Code>
                      <EnvironmentBadge environment={k.environment} />
                      <SignedBadge signing={k.signing} />
                    </Group>
                  ),
                },
                {
                  header: "Scope",
                  td: (k) => ({ title: says(k) }),
                  cell: (k) => (
                    <Badge variant="outline" radius="sm" color="gray">
                      {k.scopes}
                    </Badge>
                  ),
                },
                { header: "Owner", cell: (k) => <Text size="sm">{ownerName(k.owner_id)}</Text> },
                {
                  header: "Last used",
                  td: (k) => ({
                    title: k.last_refused_at
                      ? `Last used ${formatDateTime(k.last_used_at)}; last refused ${formatDateTime(k.last_refused_at)} from ${k.last_refused_ip}: ${k.last_refused_code}`
                      : formatDateTime(k.last_used_at),
                  }),
                  cell: (k) => (
                    <>
                      <Text size="sm">{relative(k.last_used_at)}</Text>
                      {k.last_refused_at && (
                        <Text size="xs" c="red" data-testid={`key-refused-${k.id}`}>
                          refused {relative(k.last_refused_at)}: {k.last_refused_code}
                        </Text>
                      )}
                    </>
                  ),
                },
                {
                  header: "Expires",
                  td: (k) => ({ title: formatDateTime(k.expires_at) }),
                  cell: (k) => (
                    <Text size="sm">{k.expires_at ? formatDate(k.expires_at) : "never"}</Text>
                  ),
                },
                {
                  header: "Status",
                  td: (k) => ({ title: KEY_STATUS_HELP[k.status] }),
                  cell: (k) => <StatusBadge status={k.status} />,
                },
              ]}
            />
          )
        }
      </ListView>

      <ConfirmDialog
        opened={confirmBulk}
        onClose={() => setConfirmBulk(false)}
        title={`Revoke ${chosen.length} key${chosen.length === 1 ? "" : "s"}?`}
        confirmLabel={`Revoke ${chosen.length} key${chosen.length === 1 ? "" : "s"}`}
        onConfirm={bulkRevoke}
      >
        <Text size="sm" mb="xs">
          Every call with {chosen.length === 1 ? "this key" : "these keys"} is refused from the very
          next request. This cannot be undone; the keys and their call logs stay for the audit
          trail.
        </Text>
        <Text component="ul" size="sm" m={0} pl="md" data-testid="bulk-revoke-list">
          {chosen.map((k) => (
            <li key={k.id}>
              {k.name} <Code>{k.key_prefix}…</Code>
            </li>
          ))}
        </Text>
      </ConfirmDialog>
      {/* Only a user who may mint gets the form; a stale ?new=1 opens nothing otherwise. */}
      <NewDialog title="Mint an API key" allowed={user.canManageKeys === true}>
        <KeyForm
          isAdmin={user.isAdmin}
          selfId={user.id}
          users={users}
          defaultRateLimit={user.defaultKeyRateLimit}
          environment={env}
          onSubmit={mint}
          onCancel={closeNew}
        />
      </NewDialog>
      {minted && (
        <ShowOnceDialog
          opened
          title={`Key “${minted.data.name}” minted`}
          environment={minted.data.environment}
          intro={`${says(minted.data)} Give it to the system that will call Keygate.`}
          secret={minted.key}
          signingSecret={minted.signingSecret}
          signing={minted.data.signing}
          curl
          onClose={() => {
            const id = minted.data.id;
            setMinted(null);
            notify(`Key ${minted.data.key_prefix}… is ready`);
            navigate(`/keys/${id}`);
          }}
        />
      )}
    </>
  );
}
