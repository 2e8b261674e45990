import { BarChart } from "@mantine/charts";
import {
  Alert,
  Anchor,
  Button,
  Card,
  Code,
  Group,
  SimpleGrid,
  Stack,
  Text,
  Title,
} from "@mantine/core";
import { useEffect, useMemo, useState } from "react";
import { useUser } from "../auth";
import { AdaptiveTable } from "../components/DataTable";
import { useNotify } from "../components/Toasts";
import { UsageCharts } from "../components/UsageCharts";
import {
  ConfirmDialog,
  Empty,
  ErrorAlert,
  HttpStatus,
  Loading,
  PageHeader,
} from "../components/ui";
import { api } from "../lib/api";
import { type Environment, otherEnvironment, useEnvironment } from "../lib/environment";
import { fillHours, formatDateTime, hourLabel, relative } from "../lib/format";
import { Link } from "../lib/router";
import type {
  Activity,
  ApiKey,
  EnvironmentStats,
  KeyStats,
  SystemStats,
  TestDataReset,
} from "../lib/types";
import { useResource } from "../lib/useResource";

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Keys by status, counted from a list (for a user without the stats). */
function countKeys(keys: ApiKey[]): Partial<EnvironmentStats> {
  const by = (s: string) => keys.filter((k) => k.status === s).length;
  return {
    total: keys.length,
    active: by("active"),
    revoked: by("revoked"),
    expired: by("expired"),
  };
}

/** One line on the data of the environment not shown: how much there is, and how to see it. */
function OtherEnvironment({
  env,
  counts,
}: {
  env: Environment;
  counts: Partial<EnvironmentStats> | undefined;
}) {
  if (!counts || counts.total === undefined) return null;
  const calls = counts.calls_24h;
  return (
    <Text size="sm" c="dimmed" mb="lg" data-testid="other-environment">
      {env === "test" ? "Test data" : "Live data"}, not shown here: {plural(counts.total, "key")} (
      {counts.active ?? 0} active)
      {calls === undefined ? "" : `, ${plural(calls, "call")} in the last 24 hours`}. Turn{" "}
      {env === "test" ? "on" : "off"} Test data in the header to see{" "}
      {counts.total === 1 ? "it" : "them"}.
    </Text>
  );
}

/** Wipes the test subscribers, transactions and usage (admins, in test mode). */
function ResetTestData({ onReset }: { onReset: (removed: TestDataReset) => void }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <Button color="red" variant="light" size="sm" onClick={() => setOpen(true)}>
        Reset test data
      </Button>
      <ConfirmDialog
        opened={open}
        onClose={() => setOpen(false)}
        title="Reset test data?"
        confirmLabel="Delete test data"
        onConfirm={async () => {
          const res = await api.post<TestDataReset>("/api/test-data/reset");
          onReset(res.data);
        }}
      >
        <Stack gap="xs">
          <Text size="sm">This deletes, for good:</Text>
          <Text component="ul" size="sm" m={0} pl="md">
            <li>every test subscriber,</li>
            <li>every test transaction,</li>
            <li>every test usage record.</li>
          </Text>
          <Text size="sm">
            Live data is never touched. Keys (test keys too), call logs, services and NAS devices
            stay.
          </Text>
        </Stack>
      </ConfirmDialog>
    </>
  );
}

function Stat({
  label,
  value,
  hint,
  color,
  href,
}: {
  label: string;
  value: number | string | undefined;
  hint?: string;
  color?: string;
  href?: string;
}) {
  return (
    <Card withBorder padding="md" radius="md">
      <Text size="xs" c="dimmed" tt="uppercase" fw={600}>
        {href ? (
          <Anchor component={Link} href={href} inherit c="dimmed">
            {label}
          </Anchor>
        ) : (
          label
        )}
      </Text>
      <Text fz={28} fw={700} c={color} lh={1.3}>
        {value ?? "–"}
      </Text>
      {hint && (
        <Text size="xs" c="dimmed">
          {hint}
        </Text>
      )}
    </Card>
  );
}

export function Dashboard() {
  const user = useUser();
  const notify = useNotify();
  // Everything here is of the environment shown (Keygate-Environment), but a line on the other.
  const env = useEnvironment();
  const other = otherEnvironment(env);
  const test = env === "test";
  const stats = useResource<KeyStats>(
    user.isAdmin ? `/api/api-keys/stats?environment=${env}` : null,
  );
  const otherStats = useResource<KeyStats>(
    user.isAdmin ? `/api/api-keys/stats?environment=${other}` : null,
  );
  const keys = useResource<ApiKey[]>(user.isAdmin ? null : "/api/api-keys");
  const otherKeys = useResource<ApiKey[]>(user.isAdmin ? null : "/api/api-keys", {
    environment: other,
  });
  const activity = useResource<Activity>("/api/api-keys/activity?hours=24");
  const system = useResource<SystemStats>("/api/system/stats");
  const [removed, setRemoved] = useState<TestDataReset | null>(null);
  const reloadAll = () => {
    stats.reload();
    otherStats.reload();
    keys.reload();
    otherKeys.reload();
    activity.reload();
    system.reload();
  };
  useEffect(() => {
    const t = setInterval(() => activity.reload(), 60_000);
    return () => clearInterval(t);
  }, [activity.reload]);

  const counts = useMemo<Partial<EnvironmentStats> | undefined>(() => {
    if (user.isAdmin) return stats.data;
    return keys.data ? countKeys(keys.data) : undefined;
  }, [user.isAdmin, stats.data, keys.data]);
  const otherCounts = useMemo<Partial<EnvironmentStats> | undefined>(() => {
    if (user.isAdmin) return otherStats.data;
    return otherKeys.data ? countKeys(otherKeys.data) : undefined;
  }, [user.isAdmin, otherStats.data, otherKeys.data]);

  const a = activity.data;
  const series = useMemo(
    () =>
      a
        ? fillHours(a.hourly, a.from, a.to).map((h) => ({
            hour: hourLabel(h.hour),
            at: h.hour,
            Succeeded: h.calls - h.errors,
            Errors: h.errors,
          }))
        : [],
    [a],
  );
  const total = a?.hourly.reduce((n, h) => n + h.calls, 0) ?? 0;
  const errors = a?.hourly.reduce((n, h) => n + h.errors, 0) ?? 0;
  const peak = series.reduce<(typeof series)[number] | null>(
    (best, h) => (!best || h.Succeeded + h.Errors > best.Succeeded + best.Errors ? h : best),
    null,
  );

  return (
    <>
      <PageHeader
        title={test ? "Dashboard: test data" : "Dashboard"}
        description={
          test
            ? user.isAdmin
              ? "Every test key and every call made with one. Live data is hidden."
              : "Your test keys and the calls made with them. Live data is hidden."
            : user.isAdmin
              ? "Every live key and every call made with one."
              : "Your keys and the calls made with them."
        }
        actions={
          <>
            {test && user.isAdmin && (
              <ResetTestData
                onReset={(r) => {
                  setRemoved(r);
                  notify("Test data reset");
                  reloadAll();
                }}
              />
            )}
            <Button variant="default" size="sm" onClick={reloadAll}>
              Refresh
            </Button>
          </>
        }
      />
      {removed && (
        <Alert
          color="teal"
          title="Test data reset"
          mb="md"
          role="status"
          withCloseButton
          closeButtonLabel="Dismiss"
          onClose={() => setRemoved(null)}
          data-testid="reset-result"
        >
          Deleted {plural(removed.subscribers, "test subscriber")},{" "}
          {plural(removed.transactions, "test transaction")} and{" "}
          {plural(removed.usage, "test usage record")}. Live data was not touched.
        </Alert>
      )}
      <ErrorAlert error={stats.error ?? keys.error} onRetry={reloadAll} />
      <SimpleGrid cols={{ base: 2, sm: 4 }} mb={otherCounts ? "sm" : "lg"}>
        <Stat label="Active keys" value={counts?.active} color="teal" href="/keys?status=active" />
        <Stat label="Revoked" value={counts?.revoked} color="red" href="/keys?status=revoked" />
        <Stat label="Expired" value={counts?.expired} href="/keys?status=expired" />
        <Stat
          label="Calls, 24 h"
          value={a ? total : undefined}
          hint={a ? `${errors} with an error status` : undefined}
        />
      </SimpleGrid>
      <OtherEnvironment env={other} counts={otherCounts} />
      {system.data && (
        <SimpleGrid cols={{ base: 2, sm: 4 }} mb="lg">
          <Stat
            label={test ? "Test subscribers" : "Subscribers"}
            value={system.data.subscribers.total}
            href="/subscribers"
            hint={`${system.data.subscribers.active} active`}
          />
          <Stat
            label="Suspended"
            value={system.data.subscribers.suspended}
            href="/subscribers?status=suspended"
          />
          <Stat label="Services" value={system.data.services} href="/services" />
          <Stat
            label={test ? "Test payments, 30 d" : "Payments, 30 d"}
            value={system.data.transactions_30d.reduce((n, t) => n + t.count, 0)}
            href="/transactions"
            hint={
              system.data.transactions_30d
                .map((t) => `${t.amount.toFixed(2)} ${t.currency}`)
                .join(" · ") || undefined
            }
          />
        </SimpleGrid>
      )}

      <Card withBorder radius="md" mb="lg" padding="md">
        <Group justify="space-between" mb="xs">
          <Title order={2} size="h4">
            Calls in the last 24 hours
          </Title>
          <Text size="xs" c="dimmed">
            by hour, errors stacked on top
          </Text>
        </Group>
        <ErrorAlert error={activity.error} onRetry={activity.reload} />
        {!a && activity.loading && <Loading />}
        {a && total === 0 && (
          <Empty
            title="No calls yet"
            description={
              <>
                {user.canManageKeys === false
                  ? "Once an admin has minted a key for you, call "
                  : "Mint a key under API keys, then call "}
                <Code>/api/v1/external/whoami</Code> with it: the call appears here within a few
                seconds.
              </>
            }
            action={
              user.canManageKeys ? (
                <Button component={Link} href="/keys?new=1" size="xs">
                  Mint a key
                </Button>
              ) : undefined
            }
          />
        )}
        {a && total > 0 && (
          <>
            <Text size="sm" c="dimmed" mb="sm" id="calls-chart-summary">
              {total} call{total === 1 ? "" : "s"}, {errors} with an error status.
              {peak ? ` Busiest hour: ${peak.hour} (${peak.Succeeded + peak.Errors} calls).` : ""}
            </Text>
            <BarChart
              h={240}
              data={series}
              dataKey="hour"
              type="stacked"
              series={[
                { name: "Succeeded", color: "teal.6" },
                { name: "Errors", color: "red.6" },
              ]}
              withLegend
              legendProps={{ verticalAlign: "bottom", height: 30 }}
              tickLine="y"
              gridAxis="y"
              xAxisProps={{ interval: "preserveStartEnd", minTickGap: 12 }}
              aria-describedby="calls-chart-summary"
              role="img"
              aria-label="Calls per hour over the last 24 hours"
            />
          </>
        )}
      </Card>

      <UsageCharts
        environment={env}
        title={user.isAdmin ? "Usage of every key" : "Usage of your keys"}
      />

      <SimpleGrid cols={{ base: 1, xl: 2 }} spacing="lg">
        <Card withBorder radius="md" padding="md">
          <Title order={2} size="h4" mb="sm">
            Busiest keys
          </Title>
          {a && a.busiest.length === 0 && (
            <Text size="sm" c="dimmed">
              No key has been used in the last 24 hours.
            </Text>
          )}
          {a && a.busiest.length > 0 && (
            <AdaptiveTable
              minWidth={320}
              verticalSpacing="xs"
              striped
              rows={a.busiest}
              rowKey={(k) => k.api_key_id}
              columns={[
                {
                  header: "Key",
                  cell: (k) => (
                    <>
                      <Anchor component={Link} href={`/keys/${k.api_key_id}`} size="sm">
                        {k.name}
                      </Anchor>{" "}
                      <Code>{k.key_prefix}…</Code>
                    </>
                  ),
                },
                { header: "Calls", align: "right", cell: (k) => k.calls },
                {
                  header: "Errors",
                  align: "right",
                  td: (k) => ({ c: k.errors > 0 ? "red" : undefined }),
                  cell: (k) => k.errors,
                },
              ]}
            />
          )}
        </Card>
        <Card withBorder radius="md" padding="md">
          <Title order={2} size="h4" mb="sm">
            Recent refusals
          </Title>
          {a && a.recent_refusals.length === 0 && (
            <Text size="sm" c="dimmed">
              No call was refused (401, 403 or 429) in the last 24 hours.
            </Text>
          )}
          {a && a.recent_refusals.length > 0 && (
            <AdaptiveTable
              minWidth={460}
              verticalSpacing="xs"
              striped
              rows={a.recent_refusals.slice(0, 15)}
              rowKey={(r, i) => `${r.timestamp}-${i}`}
              columns={[
                {
                  header: "When",
                  td: (r) => ({ title: formatDateTime(r.timestamp) }),
                  cell: (r) => <Text size="xs">{relative(r.timestamp)}</Text>,
                },
                { header: "Status", cell: (r) => <HttpStatus code={r.status_code} /> },
                {
                  header: "Code",
                  cell: (r) => (
                    <Text size="xs" ff="monospace">
                      {r.error_code ?? "—"}
                    </Text>
                  ),
                },
                {
                  header: "Key",
                  cell: (r) =>
                    r.api_key_id ? (
                      <Anchor component={Link} href={`/keys/${r.api_key_id}`} size="xs">
                        {r.key_prefix}…
                      </Anchor>
                    ) : (
                      <Text size="xs" c="dimmed">
                        unknown key
                      </Text>
                    ),
                },
                {
                  header: "Call",
                  cell: (r) => (
                    <Stack gap={0}>
                      <Text size="xs" ff="monospace">
                        {r.method} {r.path}
                      </Text>
                      <Text size="xs" c="dimmed">
                        from {r.ip}
                      </Text>
                    </Stack>
                  ),
                },
              ]}
            />
          )}
        </Card>
      </SimpleGrid>
    </>
  );
}
