import { LineChart } from "@mantine/charts";
import {
  Alert,
  Anchor,
  Button,
  Card,
  Code,
  Group,
  Radio,
  Select,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useDebouncedValue, useMediaQuery } from "@mantine/hooks";
import { useEffect, useMemo, useState } from "react";
import { useUser } from "../auth";
import { CallButton, CallCards, CallDetail, CredentialBadge } from "../components/CallDetail";
import {
  CallLogWindow,
  type LogWindowDraft,
  logWindowOf,
  NEWEST_FIRST,
} from "../components/CallLogWindow";
import { type Column, DataTable } from "../components/DataTable";
import { type KeyBody, KeyForm } from "../components/KeyForm";
import { ListView } from "../components/ListPage";
import { ShowOnceDialog } from "../components/ShowOnce";
import { useNotify } from "../components/Toasts";
import { UsageCharts } from "../components/UsageCharts";
import {
  ConfirmDialog,
  Dialog,
  Empty,
  EnvironmentBadge,
  ErrorAlert,
  Facts,
  HttpStatus,
  Loading,
  PageHeader,
  RecordError,
  SigningBadge,
  StatusBadge,
} from "../components/ui";
import { api, messageOf } from "../lib/api";
import {
  callLogCsvPath,
  LOG_ERROR_CODES,
  requestIdProblem,
  STATUS_FILTERS,
  useCallLog,
} from "../lib/callLog";
import { useEnvironment } from "../lib/environment";
import { formatDateTime, formatTime, relative, SCOPE_VERBS, SIGNING_CHOICES } from "../lib/format";
import { describePermissions } from "../lib/permissions";
import { Link, navigate, setQuery, useLocation } from "../lib/router";
import type { ApiKey, CallLog } from "../lib/types";
import { useResource } from "../lib/useResource";
import { graceHours } from "../lib/validation";
import { type Minted, useOwners } from "./Keys";

/** A key's quota: its cap, what is used and left in the period, and when it refills. */
function QuotaLine({ k }: { k: ApiKey }) {
  const q = k.quota;
  if (!q) return <span data-testid="key-quota">none</span>;
  const per =
    q.period === "day"
      ? "per day (UTC)"
      : `per month, from the ${ordinal(q.refill_day ?? 1)} (UTC)`;
  const u = k.quota_usage;
  return (
    <span data-testid="key-quota">
      {q.limit.toLocaleString("en")} calls {per}
      {u ? (
        <>
          {" "}
          — {u.used.toLocaleString("en")} used, {u.remaining.toLocaleString("en")} left; refills{" "}
          {formatDateTime(u.resets_at)}
          {u.remaining === 0 ? " (calls are refused QUOTA_EXCEEDED until then)" : ""}
        </>
      ) : null}
    </span>
  );
}

function ordinal(n: number): string {
  const tens = n % 100;
  const ones = n % 10;
  const suffix =
    tens >= 11 && tens <= 13
      ? "th"
      : ones === 1
        ? "st"
        : ones === 2
          ? "nd"
          : ones === 3
            ? "rd"
            : "th";
  return `${n}${suffix}`;
}

export function KeyDetail({ id }: { id: number }) {
  const user = useUser();
  const notify = useNotify();
  const env = useEnvironment();
  const key = useResource<ApiKey>(`/api/api-keys/${id}`);
  const [limit, setLimit] = useState("200");
  const [statusFilter, setStatusFilter] = useState("");
  // A request id search is kept in the address (`?request_id=`): a link or a reload keeps it.
  const { query } = useLocation();
  const addressId = (query.get("request_id") ?? "").trim();
  const requestId = requestIdProblem(addressId) === null ? addressId : "";
  const [idDraft, setIdDraft] = useState(addressId);
  const [typedId] = useDebouncedValue(idDraft.trim(), 300);
  const idProblem = requestIdProblem(idDraft.trim());
  useEffect(() => {
    if (requestIdProblem(typedId) === null) setQuery({ request_id: typedId || null });
  }, [typedId]);
  useEffect(() => {
    // The address changed from elsewhere (a link, another key): the box follows it.
    if (addressId !== typedId) setIdDraft(addressId);
  }, [addressId]);
  const clearRequestId = () => {
    setIdDraft("");
    setQuery({ request_id: null });
  };
  // Filtered and paged by the server: only the calls asked for travel. A request id finds
  // its call whatever its status.
  const [logDraft, setLogDraft] = useState<LogWindowDraft>(NEWEST_FIRST);
  const logWindow = logWindowOf(logDraft).window;
  const oldest = logWindow.order === "asc";
  const logs = useCallLog(id, Number(limit), requestId ? "" : statusFilter, requestId, logWindow);
  const [exporting, setExporting] = useState(false);
  const exportCsv = async () => {
    setExporting(true);
    try {
      const blob = await api.download(
        callLogCsvPath(id, { status: requestId ? "" : statusFilter, requestId, ...logWindow }),
      );
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `key-${id}-calls.csv`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      notify(`The export failed: ${messageOf(err)}`, "red");
    } finally {
      setExporting(false);
    }
  };
  const [opened, setOpened] = useState<CallLog | null>(null);
  const phone = useMediaQuery("(max-width: 40em)");
  const { users, byId } = useOwners(user.isAdmin);
  const [dialog, setDialog] = useState<"edit" | "roll" | "revoke" | null>(null);
  const [rolled, setRolled] = useState<(Minted & { grace: number }) | null>(null);
  /** The signing secret an edit minted (signing turned on from off), with the key it signs for. */
  const [signed, setSigned] = useState<{ secret: string; data: ApiKey } | null>(null);

  const k = key.data;
  const rows = useMemo(() => logs.rows ?? [], [logs.rows]);
  const statusOptions = useMemo(() => {
    const seen = rows.map((r) => r.error_code).filter((c): c is string => !!c);
    const codes = [...new Set([...LOG_ERROR_CODES, ...seen, statusFilter])].filter((c) =>
      /^[A-Z_]{3,40}$/.test(c),
    );
    return [
      { group: "Status", items: STATUS_FILTERS },
      { group: "Error code", items: codes.map((c) => ({ value: c, label: c })) },
    ];
  }, [rows, statusFilter]);
  const latency = useMemo(
    () =>
      [...rows].reverse().map((r) => ({
        time: formatTime(r.timestamp),
        "Latency (ms)": Math.round(r.latency_ms * 10) / 10,
      })),
    [rows],
  );

  if (key.error)
    return (
      <RecordError
        title={`API key ${id}`}
        error={key.error}
        onRetry={key.reload}
        backHref="/keys"
        backLabel="Back to API keys"
      />
    );
  if (!k) return <Loading />;

  const ownerName =
    k.owner_id === user.id
      ? `${user.username} (you)`
      : (byId.get(k.owner_id)?.username ?? `user ${k.owner_id}`);
  const ownerRole = k.owner_id === user.id ? user.role : byId.get(k.owner_id)?.role;
  const summary = describePermissions(k.permissions, ownerRole);
  const live = k.status === "active";
  // A key acts for its owner: with the owner disabled or deleted, every call is refused.
  const ownerDown = k.status === "owner_disabled" || k.status === "owner_deleted";
  const expiredToo = k.expires_at !== null && Date.parse(k.expires_at) <= Date.now();
  const { signing, tokens_issued: tokens, last_token_at: lastToken } = k;
  const reload = () => {
    key.reload();
    logs.reload();
  };

  const order = oldest ? "oldest first" : "newest first";
  const logCaption = requestId
    ? `Calls made with this key with request id ${requestId}`
    : statusFilter
      ? `Calls made with this key with status ${statusFilter}, ${order}`
      : `Calls made with this key, ${order}`;
  // A click anywhere on a row opens the call; its button in the Call column is what the
  // keyboard reaches.
  const clickable = (columns: Column<CallLog>[]) =>
    columns.map((c) => ({
      ...c,
      td: (r: CallLog) => ({ onClick: () => setOpened(r), style: { cursor: "pointer" } }),
    }));

  const save = async (body: KeyBody) => {
    if (Object.keys(body).length > 0) {
      const res = await api.put<ApiKey>(`/api/api-keys/${k.id}`, body);
      // Turning signing on mints a secret, answered this once.
      if (res.signing_secret) setSigned({ secret: res.signing_secret, data: res.data });
    }
    setDialog(null);
    notify("Changes saved; they apply from the next request");
    key.reload();
  };

  return (
    <>
      <PageHeader
        title={
          <Group gap="sm" component="span">
            <span>{k.name}</span>
            <StatusBadge status={k.status} />
          </Group>
        }
        description={
          <>
            <Code>{k.key_prefix}…</Code> <EnvironmentBadge environment={k.environment} /> · scope{" "}
            <b>{k.scopes}</b> · owned by {ownerName}
          </>
        }
        actions={
          user.canManageKeys === false ? (
            <Text size="sm" c="dimmed" maw={340} data-testid="manage-keys-off">
              Ask an admin to change, roll or revoke this key — self-service keys are off on this
              server.
            </Text>
          ) : user.canManageKeys ? (
            <>
              <Button
                variant="default"
                onClick={() => setDialog("edit")}
                disabled={k.status === "revoked" || k.status === "owner_deleted"}
                title={
                  k.status === "owner_deleted"
                    ? "Its owner was deleted: the key can never work again"
                    : undefined
                }
              >
                Edit
              </Button>
              <Button
                variant="light"
                onClick={() => setDialog("roll")}
                disabled={!live || k.replaced_by_id !== null}
                title={
                  k.replaced_by_id !== null
                    ? "Already rolled: roll its replacement"
                    : ownerDown
                      ? "A replacement would act for the same owner, and be refused too"
                      : undefined
                }
              >
                Roll
              </Button>
              <Button
                color="red"
                variant="light"
                onClick={() => setDialog("revoke")}
                disabled={k.status === "revoked"}
              >
                Revoke
              </Button>
            </>
          ) : undefined
        }
      />
      <Anchor component={Link} href="/keys" size="sm" mb="md" display="inline-block">
        ← All API keys
      </Anchor>

      {k.environment !== env && (
        <Alert
          color={k.environment === "test" ? "orange" : "blue"}
          title={
            k.environment === "test"
              ? "A test key, shown with live data"
              : "A live key, shown with test data"
          }
          mb="md"
          data-testid="other-environment"
        >
          This key works on {k.environment} data, and the console is showing {env} data: its calls
          are in the {k.environment} call log. Turn {k.environment === "test" ? "on" : "off"} Test
          data in the header to see them.
        </Alert>
      )}
      {k.status === "revoked" && (
        <Alert color="red" title="Revoked" mb="md">
          Revoked {formatDateTime(k.revoked_at)}. Every call with it is refused with
          API_KEY_REVOKED.
          {k.replaced_by_id && (
            <>
              {" "}
              Its replacement is{" "}
              <Anchor component={Link} href={`/keys/${k.replaced_by_id}`}>
                key {k.replaced_by_id}
              </Anchor>
              .
            </>
          )}
        </Alert>
      )}
      {ownerDown && (
        <Alert
          color={k.status === "owner_deleted" ? "red" : "orange"}
          title={k.status === "owner_deleted" ? "Owner deleted" : "Owner disabled"}
          mb="md"
          data-testid="owner-down"
        >
          {k.status === "owner_deleted" ? (
            <>
              The user who owns this key ({ownerName}) was deleted. A key acts for its owner, so
              every call with it is refused with INVALID_USER, and always will be. Revoke it to
              close it for good; if the system still needs access, mint a key for another user.
            </>
          ) : (
            <>
              The user who owns this key ({ownerName}) is disabled. A key acts for its owner, so
              every call with it is refused with INVALID_USER until{" "}
              {user.isAdmin ? (
                <Anchor component={Link} href="/users">
                  the user is enabled again
                </Anchor>
              ) : (
                "an admin enables the user again"
              )}
              . It cannot be rolled meanwhile; revoke it if it should not come back.
            </>
          )}
          {expiredToo && <> It has also expired ({formatDateTime(k.expires_at)}).</>}
        </Alert>
      )}
      {(k.status === "active" || k.status === "expired") && k.replaced_by_id && (
        <Alert color="yellow" title="Rolled" mb="md">
          Replaced by{" "}
          <Anchor component={Link} href={`/keys/${k.replaced_by_id}`}>
            key {k.replaced_by_id}
          </Anchor>
          . This key {k.status === "expired" ? "expired" : "keeps working until"}{" "}
          {formatDateTime(k.expires_at)}
          {k.status === "active"
            ? "; switch the caller to the new key before then, or revoke this one now."
            : "."}
        </Alert>
      )}
      {k.status === "expired" && !k.replaced_by_id && (
        <Alert color="gray" title="Expired" mb="md">
          Expired {formatDateTime(k.expires_at)}. Calls are refused with API_KEY_EXPIRED; mint a new
          key, or edit the expiry to bring it back.
        </Alert>
      )}

      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" mb="lg">
        <Card withBorder radius="md" padding="md">
          <Title order={2} size="h4" mb="sm">
            Settings
          </Title>
          <Facts
            items={[
              ["Description", k.description ?? "—"],
              [
                "Environment",
                <span key="env" data-testid="key-environment">
                  <EnvironmentBadge environment={k.environment} />{" "}
                  {k.environment === "test" ? "works only on test data" : "works on live data"}
                </span>,
              ],
              [
                "Permissions",
                <Stack key="perm" gap={4}>
                  <span data-testid="key-permissions-summary">{summary}</span>
                  <Group gap={4} component="span" aria-label="Permission list">
                    {k.permissions.map((p) => (
                      <Code key={p}>{p}</Code>
                    ))}
                  </Group>
                </Stack>,
              ],
              [
                "Scope",
                k.scopes === "custom"
                  ? "custom: the permissions above, resource by resource"
                  : `${k.scopes}: ${SCOPE_VERBS[k.scopes]} on every resource`,
              ],
              [
                "Allowed IPs",
                k.allowed_ips && k.allowed_ips.length > 0 ? (
                  <Group gap={4}>
                    {k.allowed_ips.map((ip) => (
                      <Code key={ip}>{ip}</Code>
                    ))}
                  </Group>
                ) : (
                  "any address"
                ),
              ],
              [
                "Request signing",
                <span key="signing" data-testid="key-signing">
                  <SigningBadge signing={signing} />{" "}
                  {SIGNING_CHOICES.find((c) => c.value === signing)?.help}
                </span>,
              ],
              [
                "Rate limit",
                k.rate_limit_per_minute
                  ? `${k.rate_limit_per_minute} / min`
                  : user.defaultKeyRateLimit
                    ? `${user.defaultKeyRateLimit} / min (server default)`
                    : "server default",
              ],
              ["Quota", <QuotaLine key="quota" k={k} />],
              ["Expires", k.expires_at ? formatDateTime(k.expires_at) : "never"],
              ["Created", formatDateTime(k.created_at)],
              ...(k.rolled_from_id
                ? ([
                    [
                      "Replaces",
                      <Anchor key="from" component={Link} href={`/keys/${k.rolled_from_id}`}>
                        key {k.rolled_from_id}
                      </Anchor>,
                    ],
                  ] as [string, React.ReactNode][])
                : []),
            ]}
          />
        </Card>
        <Card withBorder radius="md" padding="md">
          <Title order={2} size="h4" mb="sm">
            Last use and attempts
          </Title>
          <Facts
            items={[
              [
                "Last used",
                k.last_used_at
                  ? `${relative(k.last_used_at)} (${formatDateTime(k.last_used_at)})`
                  : "never",
              ],
              ["From", k.last_used_ip ?? "—"],
              [
                "Last refused",
                k.last_refused_at ? (
                  <span data-testid="last-refused">
                    {relative(k.last_refused_at)} ({formatDateTime(k.last_refused_at)}) from{" "}
                    {k.last_refused_ip ?? "?"}: <Code>{k.last_refused_code}</Code>
                  </span>
                ) : (
                  "never"
                ),
              ],
              [
                "Access tokens",
                <span key="tokens" data-testid="key-tokens">
                  {tokens} token{tokens === 1 ? "" : "s"} issued
                </span>,
              ],
              [
                "Last token",
                lastToken ? `${relative(lastToken)} (${formatDateTime(lastToken)})` : "never",
              ],
              ["Calls shown", logs.rows ? String(rows.length) : "…"],
              [
                "Errors shown",
                logs.rows ? String(rows.filter((r) => r.status_code >= 400).length) : "…",
              ],
            ]}
          />
          <Text size="xs" c="dimmed" mt="sm">
            Last used is the last call the key was accepted for, even when the route then answered
            with an error such as 404. A call refused for the key itself (revoked, expired, owner,
            IP, rate limit, scope or role) is an attempt, not a use.
          </Text>
          <Text size="xs" c="dimmed" mt="xs" data-testid="token-endpoint">
            A caller can exchange the key for a short-lived access token (OAuth 2.0 client
            credentials) at <Code>POST /api/v1/external/oauth/token</Code>.
          </Text>
          {!k.last_used_at &&
            live &&
            (signing === "required" ? (
              <Text size="sm" c="dimmed" mt="sm">
                Not used yet. Every call must be signed with the key&apos;s signing secret (RFC
                9421): one with the key alone is refused with SIGNATURE_REQUIRED.
              </Text>
            ) : (
              <Text size="sm" c="dimmed" mt="sm">
                Not used yet. Test it with{" "}
                <Code>
                  curl -H &quot;X-API-Key: …&quot; {window.location.origin}/api/v1/external/whoami
                </Code>
              </Text>
            ))}
        </Card>
      </SimpleGrid>

      <UsageCharts keyId={k.id} />

      <Card withBorder radius="md" padding="md" mb="lg">
        <Title order={2} size="h4" mb="sm">
          Latency
        </Title>
        {latency.length > 1 ? (
          <LineChart
            h={200}
            data={latency}
            dataKey="time"
            series={[{ name: "Latency (ms)", color: "blue.6" }]}
            curveType="monotone"
            withDots={latency.length < 40}
            valueFormatter={(v) => `${v} ms`}
            yAxisProps={{ width: 64 }}
            gridAxis="y"
            xAxisProps={{ interval: "preserveStartEnd", minTickGap: 24 }}
            role="img"
            aria-label={`Latency of the ${latency.length} calls in the log below, oldest first`}
          />
        ) : (
          <Text size="sm" c="dimmed">
            {statusFilter || requestId
              ? "The chart needs at least two calls in the log below; change its filter."
              : "The chart appears once the key has made at least two calls."}
          </Text>
        )}
      </Card>

      <Card withBorder radius="md" padding="md">
        <Group justify="space-between" align="flex-end" mb="sm" gap="sm">
          <Title order={2} size="h4">
            Call log
          </Title>
          <Group gap="sm" align="flex-end">
            <TextInput
              label="Request id"
              placeholder="paste an X-Request-Id"
              size="xs"
              w={{ base: "100%", xs: 260 }}
              type="search"
              autoComplete="off"
              spellCheck={false}
              value={idDraft}
              onChange={(e) => setIdDraft(e.currentTarget.value)}
              onKeyDown={(e) => {
                const typed = e.currentTarget.value.trim();
                if (e.key === "Enter" && requestIdProblem(typed) === null)
                  setQuery({ request_id: typed || null });
              }}
              error={idProblem ?? undefined}
              styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
            />
            <Select
              label="Status"
              size="xs"
              w={210}
              data={statusOptions}
              value={statusFilter}
              onChange={(v) => setStatusFilter(v ?? "")}
              allowDeselect={false}
              disabled={requestId !== ""}
              title={
                requestId ? "The request id search finds its call whatever its status" : undefined
              }
              searchable
              nothingFoundMessage="No such status or error code"
              maxDropdownHeight={320}
            />
            <CallLogWindow value={logDraft} onChange={setLogDraft} />
            <Select
              label="Show"
              size="xs"
              w={130}
              data={[
                { value: "50", label: "50 at a time" },
                { value: "200", label: "200 at a time" },
                { value: "1000", label: "1000 at a time" },
              ]}
              value={limit}
              onChange={(v) => setLimit(v ?? "200")}
              allowDeselect={false}
            />
            <Button size="xs" variant="default" onClick={reload} loading={logs.loading}>
              Refresh
            </Button>
            <Button
              size="xs"
              variant="default"
              loading={exporting}
              onClick={() => void exportCsv()}
              title={`Every call of this filter, ${order}, as a CSV file`}
            >
              Download CSV
            </Button>
          </Group>
        </Group>
        <ListView
          list={{ data: logs.rows, error: logs.error, loading: logs.loading, reload: logs.reload }}
          loadingLabel="Loading calls…"
          empty={
            requestId ? (
              <Empty
                title={`No call with request id ${requestId} in this key's log`}
                description="A call is in the log of the key it was made with: the request ids of other keys' calls, and of calls made without a key Keygate recognised, are not here."
                action={
                  <Button variant="default" size="xs" onClick={clearRequestId}>
                    Show the whole log
                  </Button>
                }
              />
            ) : statusFilter ? (
              <Empty
                title="No call matches"
                description="No call made with this key has this status or error code."
                action={
                  <Button variant="default" size="xs" onClick={() => setStatusFilter("")}>
                    Show every status
                  </Button>
                }
              />
            ) : (
              <Empty
                title="No calls yet"
                description="Every call made with this key appears here, newest first, whatever its outcome."
              />
            )
          }
        >
          {() => (
            <>
              {phone ? (
                <CallCards label={logCaption} rows={rows} onOpen={setOpened} />
              ) : (
                <DataTable
                  minWidth={800}
                  striped
                  highlightOnHover
                  verticalSpacing={6}
                  data-testid="call-log"
                  caption={logCaption}
                  rows={rows}
                  rowKey={(r, i) => `${r.timestamp}-${i}`}
                  columns={clickable([
                    {
                      header: "Time",
                      cell: (r) => (
                        <Text size="xs" style={{ whiteSpace: "nowrap" }}>
                          {formatDateTime(r.timestamp)}
                        </Text>
                      ),
                    },
                    {
                      header: "Call",
                      cell: (r) => <CallButton call={r} onOpen={setOpened} />,
                    },
                    { header: "Status", cell: (r) => <HttpStatus code={r.status_code} /> },
                    { header: "Credential", cell: (r) => <CredentialBadge call={r} /> },
                    {
                      header: "Error code",
                      cell: (r) => (
                        <Text size="xs" ff="monospace">
                          {r.error_code ?? ""}
                        </Text>
                      ),
                    },
                    { header: "IP", cell: (r) => <Text size="xs">{r.ip}</Text> },
                    {
                      header: "Latency",
                      align: "right",
                      cell: (r) => <Text size="xs">{r.latency_ms.toFixed(1)} ms</Text>,
                    },
                    {
                      header: "Client",
                      cell: (r) => (
                        <Text
                          size="xs"
                          c="dimmed"
                          lineClamp={1}
                          maw={220}
                          title={r.user_agent ?? undefined}
                        >
                          {r.user_agent ?? "—"}
                        </Text>
                      ),
                    },
                  ])}
                />
              )}
              <Group justify="space-between" mt="sm" gap="sm">
                <Text size="xs" c="dimmed" aria-live="polite">
                  {rows.length} call{rows.length === 1 ? "" : "s"} shown
                  {requestId ? ` with request id ${requestId}` : `, ${order}`}
                  {logs.more
                    ? "."
                    : requestId
                      ? "."
                      : statusFilter || logWindow.from || logWindow.before
                        ? `; no ${oldest ? "later" : "older"} call matches.`
                        : "; that is every call."}
                </Text>
                {logs.more && (
                  <Button
                    size="xs"
                    variant="default"
                    onClick={logs.loadOlder}
                    loading={logs.loadingOlder}
                  >
                    {oldest ? "Load later calls" : "Load older calls"}
                  </Button>
                )}
              </Group>
            </>
          )}
        </ListView>
        <ErrorAlert
          error={logs.olderError}
          title="Older calls not loaded"
          onRetry={logs.loadOlder}
        />
      </Card>

      <CallDetail call={opened} onClose={() => setOpened(null)} />
      <Dialog opened={dialog === "edit"} onClose={() => setDialog(null)} title={`Edit “${k.name}”`}>
        <KeyForm
          existing={k}
          isAdmin={user.isAdmin}
          defaultRateLimit={user.defaultKeyRateLimit}
          selfId={user.id}
          users={users}
          environment={k.environment}
          onSubmit={save}
          onCancel={() => setDialog(null)}
        />
      </Dialog>
      <RollDialog
        opened={dialog === "roll"}
        onClose={() => setDialog(null)}
        apiKey={k}
        onRolled={(m, grace) => {
          setDialog(null);
          setRolled({ ...m, grace });
          key.reload();
        }}
      />
      <ConfirmDialog
        opened={dialog === "revoke"}
        onClose={() => setDialog(null)}
        title={`Revoke “${k.name}”?`}
        confirmLabel="Revoke key"
        onConfirm={async () => {
          await api.del<ApiKey>(`/api/api-keys/${k.id}`);
          notify(`Key ${k.key_prefix}… revoked`, "red");
          reload();
        }}
      >
        <Text size="sm">
          Every call with <Code>{k.key_prefix}…</Code> is refused from the very next request. This
          cannot be undone; the key and its call log stay for the audit trail.
        </Text>
      </ConfirmDialog>
      {rolled && (
        <ShowOnceDialog
          opened
          title="Key rolled"
          intro={`The replacement has the same settings. The old key ${k.key_prefix}… ${
            rolled.grace === 0
              ? "is revoked"
              : `keeps working for ${rolled.grace} hour${rolled.grace === 1 ? "" : "s"}`
          }.${rolled.signingSecret ? " The replacement comes with its own, new signing secret: give the caller both." : ""}`}
          secret={rolled.key}
          signingSecret={rolled.signingSecret}
          signing={rolled.data.signing}
          environment={rolled.data.environment}
          curl
          onClose={() => {
            const next = rolled.data.id;
            setRolled(null);
            navigate(`/keys/${next}`);
          }}
        />
      )}
      {signed && (
        <ShowOnceDialog
          opened
          title={`Request signing is on for “${signed.data.name}”`}
          intro={`Calls with ${signed.data.key_prefix}… ${
            signed.data.signing === "required"
              ? "must now be signed with this secret: an unsigned call is refused with SIGNATURE_REQUIRED"
              : "may now be signed with this secret; unsigned calls are still accepted"
          }. Give it to the system that calls Keygate with this key.`}
          signingSecret={signed.secret}
          onClose={() => setSigned(null)}
        />
      )}
    </>
  );
}

const GRACE = [
  { value: "0", label: "Revoke the old key now" },
  { value: "1", label: "1 hour" },
  { value: "24", label: "24 hours (default)" },
  { value: "72", label: "3 days" },
  { value: "168", label: "7 days (the longest)" },
  { value: "custom", label: "Another number of hours" },
];

function RollDialog({
  opened,
  onClose,
  apiKey,
  onRolled,
}: {
  opened: boolean;
  onClose: () => void;
  apiKey: ApiKey;
  onRolled: (m: Minted, grace: number) => void;
}) {
  const [choice, setChoice] = useState("24");
  const [custom, setCustom] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const hours = choice === "custom" ? custom : choice;
  const problem = choice === "custom" ? graceHours(custom) : null;
  const [tried, setTried] = useState(false);

  const roll = async () => {
    setTried(true);
    setError(null);
    if (problem) return;
    setBusy(true);
    try {
      const res = await api.post<ApiKey>(`/api/api-keys/${apiKey.id}/roll`, {
        grace_period_hours: Number(hours),
      });
      onRolled(
        { key: res.key as string, data: res.data, signingSecret: res.signing_secret },
        Number(hours),
      );
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog opened={opened} onClose={onClose} title={`Roll “${apiKey.name}”`} size="md">
      <Stack>
        <Text size="sm">
          Rolling mints a replacement with the same name, permissions, environment, allowed IPs,
          rate limit and expiry
          {apiKey.signing !== "off"
            ? ", and the same request signing with a new signing secret. The new key and secret are shown once."
            : ". The new key is shown once."}{" "}
          How long may the old key <Code>{apiKey.key_prefix}…</Code> keep working while you switch?
        </Text>
        <Radio.Group label="Grace period" value={choice} onChange={setChoice}>
          <Stack gap={6} mt="xs">
            {GRACE.map((g) => (
              <Radio key={g.value} value={g.value} label={g.label} />
            ))}
          </Stack>
        </Radio.Group>
        {choice === "custom" && (
          <TextInput
            label="Hours (0-168)"
            inputMode="numeric"
            value={custom}
            onChange={(e) => setCustom(e.currentTarget.value)}
            error={tried || custom !== "" ? (problem ?? undefined) : undefined}
            data-autofocus
          />
        )}
        {error && (
          <Alert color="red" title="Not rolled" role="alert">
            {error}
          </Alert>
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button onClick={roll} loading={busy}>
            Roll key
          </Button>
        </Group>
      </Stack>
    </Dialog>
  );
}
