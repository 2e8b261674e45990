import { Anchor, Badge, Code, Select, Text, TextInput } from "@mantine/core";
import { ListTable } from "../components/DataTable";
import { FilterBar, ListView, Paging } from "../components/ListPage";
import { Empty, PageHeader } from "../components/ui";
import { formatDateTime } from "../lib/format";
import { usePagedList } from "../lib/paging";
import { rangeOf } from "../lib/range";
import { Link, setQuery, useLocation } from "../lib/router";
import type { AuditEntry } from "../lib/types";

const PER_PAGE = 50;

const ACTIONS = [
  "auth.login",
  "auth.login_failed",
  "auth.logout",
  "auth.2fa_enrol",
  "auth.2fa_confirm",
  "auth.2fa_disable",
  "auth.2fa_recovery_code_used",
  "auth.2fa_recovery_codes_regenerate",
  "auth.2fa_reset",
  "key.create",
  "key.update",
  "key.revoke",
  "key.roll",
  "key.leaked",
  "user.create",
  "user.update",
  "user.delete",
  "subscriber.create",
  "subscriber.update",
  "subscriber.suspend",
  "subscriber.activate",
  "subscriber.delete",
  "service.create",
  "service.update",
  "service.delete",
  "nas.create",
  "nas.update",
  "nas.delete",
  "test_data.reset",
  "master_key.rotate",
];

/** The trail's orders (`sort=`), newest first by default. */
const SORTS = [
  { value: "newest", label: "Newest first" },
  { value: "oldest", label: "Oldest first" },
  { value: "actor", label: "By who (A–Z)" },
  { value: "action", label: "By action (A–Z)" },
];

const TARGETS = [
  { value: "api_key", label: "API keys" },
  { value: "user", label: "Users" },
  { value: "subscriber", label: "Subscribers" },
  { value: "service", label: "Services" },
  { value: "nas", label: "NAS devices" },
];

function actionColor(action: string): string {
  if (action.endsWith("revoke") || action.endsWith("delete") || action.endsWith("failed"))
    return "red";
  if (action.endsWith("create") || action.endsWith("roll")) return "teal";
  if (action.startsWith("auth.")) return "gray";
  return "blue";
}

function targetHref(e: AuditEntry): string | null {
  if (!e.target_id) return null;
  if (e.target_type === "api_key") return `/keys/${e.target_id}`;
  if (e.target_type === "subscriber" && e.action !== "subscriber.delete")
    return `/subscribers/${e.target_id}`;
  return null;
}

/** The record an entry concerns, linked where the console has a page for it. */
function Target({ entry: e }: { entry: AuditEntry }) {
  const href = targetHref(e);
  return href ? (
    <Anchor component={Link} href={href} size="sm" style={{ whiteSpace: "nowrap" }}>
      {e.target_type} {e.target_id}
    </Anchor>
  ) : (
    <Text size="sm" style={{ whiteSpace: "nowrap" }}>
      {e.target_type} {e.target_id ?? ""}
    </Text>
  );
}

function detailsText(d: Record<string, unknown> | null): string {
  if (!d) return "";
  return Object.entries(d)
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" · ");
}

export function Audit() {
  const { query } = useLocation();
  const action = query.get("action") ?? "";
  const target = query.get("target") ?? "";
  const sort = query.get("sort") ?? "";
  // The range is kept in the address as typed (local time) and sent as UTC.
  const fromText = query.get("from") ?? "";
  const toText = query.get("to") ?? "";
  const range = rangeOf(fromText, toText);
  const list = usePagedList<AuditEntry>("/api/audit", PER_PAGE, {
    action,
    target_type: target,
    sort: sort === "newest" ? "" : sort,
    from: range.problem ? null : range.from,
    to: range.problem ? null : range.to,
  });
  const order = SORTS.find((o) => o.value === (sort || "newest"))?.label.toLowerCase();
  const filtered = action || target || fromText || toText;

  return (
    <>
      <PageHeader
        title="Audit trail"
        description="Who did what to which key, user or record, when, and from which address."
      />
      <FilterBar cols={{ base: 1, xs: 2, md: 5 }}>
        <Select
          label="Action"
          placeholder="Any action"
          data={ACTIONS}
          value={action || null}
          onChange={(v) => setQuery({ action: v, page: null })}
          clearable
          searchable
        />
        <Select
          label="Concerning"
          placeholder="Anything"
          data={TARGETS}
          value={target || null}
          onChange={(v) => setQuery({ target: v, page: null })}
          clearable
        />
        <Select
          label="Order"
          data={SORTS}
          value={sort || "newest"}
          onChange={(v) => setQuery({ sort: v === "newest" ? null : v, page: null })}
          allowDeselect={false}
        />
        <TextInput
          label="From"
          type="datetime-local"
          value={fromText}
          onChange={(e) => setQuery({ from: e.currentTarget.value || null, page: null })}
          error={range.problem && fromText ? range.problem : undefined}
        />
        <TextInput
          label="To (before)"
          type="datetime-local"
          value={toText}
          onChange={(e) => setQuery({ to: e.currentTarget.value || null, page: null })}
          error={range.problem && toText && !fromText ? range.problem : undefined}
        />
      </FilterBar>
      <ListView
        list={list}
        empty={
          <Empty
            title="Nothing recorded"
            description={
              filtered
                ? "No entry matches these filters; clear them to see everything."
                : "Sign-ins, key changes and changes to users and records appear here as they happen."
            }
          />
        }
      >
        {(rows) => (
          <ListTable
            minWidth={760}
            striped
            caption={`Audit trail, ${order}`}
            rows={rows}
            rowKey={(e) => e.id}
            columns={[
              {
                header: "When",
                cell: (e) => (
                  <Text size="sm" style={{ whiteSpace: "nowrap" }}>
                    {formatDateTime(e.created_at)}
                  </Text>
                ),
              },
              {
                header: "Who",
                cell: (e) => (
                  <>
                    <Text size="sm" style={{ whiteSpace: "nowrap" }}>
                      {e.actor_username ?? "—"}
                    </Text>
                    {e.via !== "jwt" && (
                      <Text size="xs" c="dimmed">
                        via {e.via}
                      </Text>
                    )}
                  </>
                ),
              },
              {
                header: "Action",
                cell: (e) => (
                  <Badge variant="light" radius="sm" color={actionColor(e.action)} tt="none">
                    {e.action}
                  </Badge>
                ),
              },
              { header: "Target", cell: (e) => <Target entry={e} /> },
              {
                header: "Details",
                cell: (e) => (
                  <Text size="xs" c="dimmed" maw={320} style={{ overflowWrap: "anywhere" }}>
                    {detailsText(e.details)}
                  </Text>
                ),
              },
              {
                header: "From",
                cell: (e) => (e.ip ? <Code>{e.ip}</Code> : <Text size="sm">—</Text>),
              },
            ]}
          />
        )}
      </ListView>
      <Paging list={list} />
    </>
  );
}
