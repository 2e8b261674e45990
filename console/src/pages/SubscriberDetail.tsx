import { BarChart } from "@mantine/charts";
import {
  Alert,
  Anchor,
  Badge,
  Button,
  Card,
  Group,
  SimpleGrid,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useMemo, useState } from "react";
import { useUser } from "../auth";
import { DataTable } from "../components/DataTable";
import { ShowOnceDialog } from "../components/ShowOnce";
import { type SubscriberBody, SubscriberForm } from "../components/SubscriberForm";
import { useNotify } from "../components/Toasts";
import {
  ConfirmDialog,
  Dialog,
  ErrorAlert,
  Facts,
  Loading,
  PageHeader,
  RecordError,
  StatusBadge,
} from "../components/ui";
import { api } from "../lib/api";
import {
  fillDays,
  formatBytes,
  formatDate,
  formatDateTime,
  formatDuration,
  formatMoney,
  formatSpeed,
} from "../lib/format";
import { Link, navigate } from "../lib/router";
import type { Subscriber, Transaction, UsageReport, UserRow } from "../lib/types";
import { useForm } from "../lib/form";
import { useResource } from "../lib/useResource";
import { todayUtc, type UsageFormValues, validateUsageForm } from "../lib/validation";
import { useServices } from "./Subscribers";

export function SubscriberDetail({ id }: { id: number }) {
  const user = useUser();
  const notify = useNotify();
  const sub = useResource<Subscriber>(`/api/subscribers/${id}`);
  const usage = useResource<UsageReport>(sub.data ? `/api/subscribers/${id}/usage` : null);
  const txs = useResource<Transaction[]>(
    sub.data ? `/api/transactions?subscriber_id=${id}&per_page=10` : null,
  );
  const { services, byId } = useServices();
  const users = useResource<UserRow[]>(user.isAdmin ? "/api/users" : null);
  const [dialog, setDialog] = useState<"edit" | "delete" | "usage" | null>(null);
  const [password, setPassword] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);

  const chart = useMemo(() => {
    const u = usage.data;
    if (!u) return [];
    return fillDays(u.days, u.from, u.to).map((d) => ({
      day: d.date.slice(5),
      Download: d.bytes_in,
      Upload: d.bytes_out,
    }));
  }, [usage.data]);

  if (sub.error)
    return (
      <RecordError
        title={`Subscriber ${id}`}
        error={sub.error}
        onRetry={sub.reload}
        backHref="/subscribers"
        backLabel="Back to subscribers"
      />
    );
  const s = sub.data;
  if (!s) return <Loading />;
  const service = byId.get(s.service_id);
  const owner =
    s.owner_id === user.id
      ? "you"
      : (users.data?.find((u) => u.id === s.owner_id)?.username ?? `user ${s.owner_id}`);

  const setStatus = async (action: "suspend" | "activate") => {
    setBusy(true);
    setActionError(null);
    try {
      await api.post<Subscriber>(`/api/subscribers/${s.id}/${action}`);
      notify(action === "suspend" ? `${s.username} suspended` : `${s.username} activated`);
      sub.reload();
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  };

  const save = async (body: SubscriberBody) => {
    if (Object.keys(body).length === 0) {
      setDialog(null);
      return;
    }
    const res = await api.put<Subscriber>(`/api/subscribers/${s.id}`, body);
    setDialog(null);
    if (res.data.password) setPassword(res.data.password);
    else notify("Changes saved");
    sub.reload();
  };

  const totals = usage.data?.totals;

  return (
    <>
      <PageHeader
        title={
          <Group gap="sm" component="span">
            <span>{s.username}</span>
            <StatusBadge status={s.status} />
          </Group>
        }
        description={s.full_name ?? undefined}
        actions={
          <>
            <Button variant="default" onClick={() => setDialog("edit")}>
              Edit
            </Button>
            {s.status === "active" ? (
              <Button
                variant="light"
                color="orange"
                loading={busy}
                onClick={() => setStatus("suspend")}
              >
                Suspend
              </Button>
            ) : (
              <Button
                variant="light"
                color="teal"
                loading={busy}
                onClick={() => setStatus("activate")}
              >
                Activate
              </Button>
            )}
            <Button variant="light" color="red" onClick={() => setDialog("delete")}>
              Delete
            </Button>
          </>
        }
      />
      <Anchor component={Link} href="/subscribers" size="sm" mb="md" display="inline-block">
        ← All subscribers
      </Anchor>
      <ErrorAlert error={actionError} title="Not done" />

      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="lg" mb="lg">
        <Card withBorder radius="md" padding="md">
          <Title order={2} size="h4" mb="sm">
            Details
          </Title>
          <Facts
            items={[
              ["Email", s.email ?? "—"],
              ["Phone", s.phone ?? "—"],
              [
                "Service",
                service
                  ? `${service.name} · ${formatSpeed(service.download_kbps)} down / ${formatSpeed(service.upload_kbps)} up`
                  : `#${s.service_id}`,
              ],
              ["Expiry date", formatDate(s.expiry_date)],
              ["Owner", owner],
              ["Created", formatDateTime(s.created_at)],
              ["Updated", formatDateTime(s.updated_at)],
            ]}
          />
        </Card>
        <Card withBorder radius="md" padding="md">
          <Group justify="space-between" mb="sm">
            <Title order={2} size="h4">
              Transactions
            </Title>
            <Button
              size="xs"
              variant="light"
              component={Link}
              href={`/transactions?new=1&subscriber=${s.id}`}
            >
              Record a payment
            </Button>
          </Group>
          <ErrorAlert error={txs.error} />
          {txs.data && txs.data.length === 0 && (
            <Text size="sm" c="dimmed">
              No transactions yet. Record a payment here, or let the billing system post them with a
              write key.
            </Text>
          )}
          {txs.data && txs.data.length > 0 && (
            <DataTable
              minWidth={320}
              verticalSpacing={6}
              rows={txs.data}
              rowKey={(t) => t.id}
              columns={[
                {
                  header: "When",
                  cell: (t) => <Text size="xs">{formatDateTime(t.created_at)}</Text>,
                },
                {
                  header: "Type",
                  cell: (t) => (
                    <Badge size="sm" variant="light" color={t.type === "payment" ? "teal" : "gray"}>
                      {t.type}
                    </Badge>
                  ),
                },
                {
                  header: "Amount",
                  align: "right",
                  cell: (t) => <Text size="sm">{formatMoney(t.amount, t.currency)}</Text>,
                },
              ]}
            />
          )}
          {txs.meta && txs.meta.total > 10 && (
            <Anchor component={Link} href={`/transactions?subscriber=${s.id}`} size="sm">
              All {txs.meta.total} transactions
            </Anchor>
          )}
        </Card>
      </SimpleGrid>

      <Card withBorder radius="md" padding="md">
        <Group justify="space-between" mb="xs">
          <Title order={2} size="h4">
            Usage, last 30 days
          </Title>
          <Button size="xs" variant="default" onClick={() => setDialog("usage")}>
            Record usage
          </Button>
        </Group>
        {totals && (
          <Text size="sm" c="dimmed" id="usage-summary" mb="sm">
            {formatBytes(totals.bytes_in)} down · {formatBytes(totals.bytes_out)} up ·{" "}
            {formatDuration(totals.session_seconds)} online
          </Text>
        )}
        <ErrorAlert error={usage.error} />
        {usage.data && usage.data.days.length === 0 && (
          <Text size="sm" c="dimmed">
            No usage recorded in the last 30 days. Accounting normally arrives from the NAS through
            POST /api/subscribers/{s.id}/usage; you can also record it by hand.
          </Text>
        )}

        {usage.data && usage.data.days.length > 0 && (
          <BarChart
            h={220}
            data={chart}
            dataKey="day"
            series={[
              { name: "Download", color: "blue.6" },
              { name: "Upload", color: "cyan.4" },
            ]}
            valueFormatter={formatBytes}
            withLegend
            legendProps={{ verticalAlign: "bottom", height: 30 }}
            gridAxis="y"
            xAxisProps={{ interval: "preserveStartEnd", minTickGap: 16 }}
            yAxisProps={{ width: 70 }}
            role="img"
            aria-label="Bytes downloaded and uploaded per day, last 30 days"
            aria-describedby="usage-summary"
          />
        )}
      </Card>

      <Dialog
        opened={dialog === "edit"}
        onClose={() => setDialog(null)}
        title={`Edit ${s.username}`}
      >
        <SubscriberForm
          existing={s}
          services={services ?? []}
          isAdmin={user.isAdmin}
          users={users.data}
          onSubmit={save}
          onCancel={() => setDialog(null)}
        />
      </Dialog>
      <Dialog
        opened={dialog === "usage"}
        onClose={() => setDialog(null)}
        title={`Record usage for ${s.username}`}
        size="md"
      >
        <UsageForm
          onCancel={() => setDialog(null)}
          onSubmit={async (body) => {
            await api.post(`/api/subscribers/${s.id}/usage`, body);
            setDialog(null);
            notify("Usage recorded");
            usage.reload();
          }}
        />
      </Dialog>
      <ConfirmDialog
        opened={dialog === "delete"}
        onClose={() => setDialog(null)}
        title={`Delete ${s.username}?`}
        confirmLabel="Delete subscriber"
        onConfirm={async () => {
          await api.del(`/api/subscribers/${s.id}`);
          notify(`${s.username} deleted`, "red");
          navigate("/subscribers");
        }}
      >
        <Text size="sm">
          The subscriber disappears from lists and can no longer sign in; its transactions are kept.
          The username becomes free for a new subscriber.
        </Text>
      </ConfirmDialog>
      {password && (
        <ShowOnceDialog
          opened
          title="New password generated"
          intro={`Give this password to ${s.username}.`}
          secretLabel="Generated password"
          secret={password}
          onClose={() => setPassword(null)}
        />
      )}
    </>
  );
}

function UsageForm({
  onSubmit,
  onCancel,
}: {
  onSubmit: (body: Record<string, unknown>) => Promise<void>;
  onCancel: () => void;
}) {
  const form = useForm<UsageFormValues>({
    initial: { date: todayUtc(), bytes_in: "", bytes_out: "", session_seconds: "" },
    validate: validateUsageForm,
    idPrefix: "usage",
  });
  const { text } = form;
  const send = (v: UsageFormValues) => {
    const body: Record<string, unknown> = {};
    if (v.date.trim()) body.date = v.date.trim();
    for (const k of ["bytes_in", "bytes_out", "session_seconds"] as const)
      if (v[k].trim()) body[k] = Number(v[k]);
    return onSubmit(body);
  };
  return (
    <form
      noValidate
      aria-label="Record usage"
      onSubmit={(e) => {
        e.preventDefault();
        void form.submit(send);
      }}
    >
      <Stack>
        <Text size="sm" c="dimmed">
          The counters are added to that day's totals.
        </Text>
        <TextInput type="date" label="Day (UTC)" {...text("date")} />
        <SimpleGrid cols={{ base: 1, xs: 3 }}>
          <TextInput
            label="Downloaded (bytes)"
            inputMode="numeric"
            data-autofocus
            {...text("bytes_in")}
          />
          <TextInput label="Uploaded (bytes)" inputMode="numeric" {...text("bytes_out")} />
          <TextInput label="Online (seconds)" inputMode="numeric" {...text("session_seconds")} />
        </SimpleGrid>
        {form.formError && (
          <Alert color="red" title="Not recorded" role="alert">
            {form.formError}
          </Alert>
        )}
        <Group justify="flex-end">
          <Button variant="default" onClick={onCancel}>
            Cancel
          </Button>
          <Button type="submit" loading={form.busy}>
            Record usage
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
