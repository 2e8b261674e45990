import {
  Alert,
  Badge,
  Button,
  Code,
  Group,
  Stack,
  Switch,
  Text,
  Textarea,
  TextInput,
} from "@mantine/core";
import { useState } from "react";
import { ACTIONS_HEADER, ListTable } from "../components/DataTable";
import { ListView } from "../components/ListPage";
import { ShowOnceDialog } from "../components/ShowOnce";
import { useNotify } from "../components/Toasts";
import { Dialog, Empty, ErrorAlert, PageHeader } from "../components/ui";
import { api } from "../lib/api";
import { formatDateTime } from "../lib/format";
import { setQuery, useLocation } from "../lib/router";
import type { components } from "../lib/api-types";
import { useResource } from "../lib/useResource";

type Endpoint = components["schemas"]["WebhookEndpoint"];
type Delivery = components["schemas"]["WebhookDelivery"];
type Attempt = components["schemas"]["WebhookAttempt"];

const STATUS_COLOR: Record<string, string> = {
  succeeded: "teal",
  pending: "yellow",
  failed: "red",
};

function NewEndpoint({ onCreated }: { onCreated: (secret: string) => void }) {
  const [opened, setOpened] = useState(false);
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState("*");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const list = events
        .split(",")
        .map((e) => e.trim())
        .filter(Boolean);
      const res = await api.post<Endpoint>("/api/webhooks", {
        url: url.trim(),
        events: list.length ? list : ["*"],
        ...(description.trim() ? { description: description.trim() } : {}),
      });
      setOpened(false);
      setUrl("");
      setDescription("");
      onCreated((res as unknown as { secret: string }).secret);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <Button onClick={() => setOpened(true)}>Add an endpoint</Button>
      <Dialog opened={opened} onClose={() => setOpened(false)} title="Add a webhook endpoint">
        <form
          noValidate
          aria-label="New webhook endpoint"
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <Stack>
            <TextInput
              label="URL"
              required
              data-autofocus
              placeholder="https://example.com/keygate"
              value={url}
              onChange={(e) => setUrl(e.currentTarget.value)}
            />
            <TextInput
              label="Events"
              description="Comma-separated event types (key.created, subscriber.updated, …), or * for every event."
              value={events}
              onChange={(e) => setEvents(e.currentTarget.value)}
            />
            <Textarea
              label="Description"
              autosize
              minRows={2}
              value={description}
              onChange={(e) => setDescription(e.currentTarget.value)}
            />
            <ErrorAlert error={error} title="Not saved" />
            <Group justify="flex-end">
              <Button variant="default" onClick={() => setOpened(false)}>
                Cancel
              </Button>
              <Button type="submit" loading={busy}>
                Add endpoint
              </Button>
            </Group>
          </Stack>
        </form>
      </Dialog>
    </>
  );
}

/** What an attempt got: its HTTP status, or why none came. */
function attemptResult(a: Attempt): string {
  if (a.response_status !== null)
    return a.error && a.error !== `answered ${a.response_status}`
      ? `${a.response_status} · ${a.error}`
      : String(a.response_status);
  return a.error ?? "no answer";
}

/** Every attempt of one delivery, oldest first: a table, or cards on a phone. */
function Attempts({ endpoint, delivery }: { endpoint: Endpoint; delivery: Delivery }) {
  const attempts = useResource<Attempt[]>(
    `/api/webhooks/${endpoint.id}/deliveries/${delivery.id}/attempts?limit=200`,
  );
  return (
    <ListView
      list={attempts}
      loadingLabel="Loading attempts"
      empty={
        <Empty
          title="Not attempted yet"
          description={
            delivery.next_attempt_at
              ? `The first attempt is due ${formatDateTime(delivery.next_attempt_at)}.`
              : "Attempts will show here."
          }
        />
      }
    >
      {(rows) => (
        <ListTable
          minWidth={600}
          caption={`Attempts of ${delivery.message_id}`}
          rows={rows}
          rowKey={(a) => a.attempt}
          rowProps={(a) => ({ "data-attempt": String(a.attempt) })}
          columns={[
            {
              header: "Attempt",
              cell: (a) => (
                // Inline only: on a phone this is the card's title, a paragraph.
                <Text span size="sm" fw={500}>
                  Attempt {a.attempt}
                  {a.manual && (
                    <Badge component="span" size="xs" variant="outline" color="gray" ml={6}>
                      by hand
                    </Badge>
                  )}
                </Text>
              ),
            },
            { header: "Sent", cell: (a) => formatDateTime(a.attempted_at) },
            {
              header: "Result",
              cell: (a) => (
                <>
                  <Badge
                    component="span"
                    color={STATUS_COLOR[a.outcome] ?? "gray"}
                    variant="light"
                    mr={6}
                  >
                    {a.outcome}
                  </Badge>
                  <Text span size="sm" c={a.outcome === "failed" ? "red" : undefined}>
                    {attemptResult(a)}
                  </Text>
                </>
              ),
            },
            { header: "Latency", align: "right", cell: (a) => `${a.latency_ms} ms` },
            {
              header: "Answer",
              cell: (a) =>
                a.response_body ? (
                  <Code block style={{ whiteSpace: "pre-wrap", wordBreak: "break-all" }}>
                    {a.response_body}
                  </Code>
                ) : (
                  "—"
                ),
            },
          ]}
        />
      )}
    </ListView>
  );
}

function Deliveries({ endpoint, onClose }: { endpoint: Endpoint; onClose: () => void }) {
  const log = useResource<Delivery[]>(`/api/webhooks/${endpoint.id}/deliveries`);
  const [opened, setOpened] = useState<Delivery | null>(null);
  const notify = useNotify();
  const [error, setError] = useState<unknown>(null);
  const redeliver = async (d: Delivery) => {
    setError(null);
    try {
      await api.post(`/api/webhooks/${endpoint.id}/deliveries/${d.id}/redeliver`);
      notify(`Message ${d.message_id} queued again`);
      log.reload();
    } catch (err) {
      setError(err);
    }
  };
  if (opened)
    return (
      <Dialog opened onClose={onClose} title={`Deliveries to ${endpoint.url}`} size="xl">
        <Stack gap="sm">
          <Group justify="space-between" align="flex-start">
            <div style={{ minWidth: 0 }}>
              <Text fw={600}>Attempts of {opened.event_type}</Text>
              <Text size="xs" c="dimmed" style={{ overflowWrap: "anywhere" }}>
                {opened.message_id}
              </Text>
            </div>
            <Button size="compact-sm" variant="default" onClick={() => setOpened(null)}>
              Back to deliveries
            </Button>
          </Group>
          <Attempts endpoint={endpoint} delivery={opened} />
        </Stack>
      </Dialog>
    );
  return (
    <Dialog opened onClose={onClose} title={`Deliveries to ${endpoint.url}`} size="xl">
      <ErrorAlert error={error} title="Not redelivered" />
      <ListView
        list={log}
        empty={
          <Empty title="No deliveries yet" description="Events it subscribed to will show here." />
        }
      >
        {(rows) => (
          <ListTable
            minWidth={640}
            caption="Deliveries"
            rows={rows}
            rowKey={(d) => d.id}
            columns={[
              {
                header: "Event",
                cell: (d) => (
                  <>
                    <Text size="sm" fw={500}>
                      {d.event_type}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {d.message_id}
                    </Text>
                  </>
                ),
              },
              {
                header: "Status",
                cell: (d) => (
                  <Badge color={STATUS_COLOR[d.status] ?? "gray"} variant="light">
                    {d.status}
                  </Badge>
                ),
              },
              {
                header: "Last attempt",
                cell: (d) => (
                  <>
                    <Text size="sm">
                      {d.last_attempt_at ? formatDateTime(d.last_attempt_at) : "—"}
                      {d.response_status !== null && ` · ${d.response_status}`}
                      {d.latency_ms !== null && ` · ${d.latency_ms} ms`}
                      {` · ${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`}
                    </Text>
                    {d.error && (
                      <Text size="xs" c="red" lineClamp={2}>
                        {d.error}
                      </Text>
                    )}
                    {d.response_body && <Code block>{d.response_body.slice(0, 200)}</Code>}
                  </>
                ),
              },
              {
                header: ACTIONS_HEADER,
                cell: (d) => (
                  <Group gap="xs" justify="flex-end" wrap="nowrap">
                    <Button
                      size="compact-sm"
                      variant="default"
                      disabled={d.attempts === 0}
                      onClick={() => setOpened(d)}
                      aria-label={`Attempts of ${d.message_id}`}
                    >
                      Attempts
                    </Button>
                    <Button
                      size="compact-sm"
                      variant="default"
                      disabled={!endpoint.enabled}
                      onClick={() => void redeliver(d)}
                      aria-label={`Redeliver ${d.message_id}`}
                    >
                      Redeliver
                    </Button>
                  </Group>
                ),
              },
            ]}
          />
        )}
      </ListView>
    </Dialog>
  );
}

/** Webhook endpoints: add one (its secret shown once), turn it on and off, read its deliveries. */
export function Webhooks() {
  const list = useResource<Endpoint[]>("/api/webhooks");
  const notify = useNotify();
  const [secret, setSecret] = useState<string | null>(null);
  const [chosen, setViewing] = useState<Endpoint | null>(null);
  // `?deliveries=<id>` (where an alert about the endpoint links) opens its delivery log.
  const asked = Number(useLocation().query.get("deliveries") ?? Number.NaN);
  const linked = Number.isInteger(asked) ? (list.data?.find((w) => w.id === asked) ?? null) : null;
  const viewing = chosen ?? linked;
  const close = () => {
    setViewing(null);
    if (linked !== null) setQuery({ deliveries: null });
  };
  const [error, setError] = useState<unknown>(null);
  const act = async (what: () => Promise<unknown>, done: string) => {
    setError(null);
    try {
      await what();
      notify(done);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const rotate = async (w: Endpoint) => {
    setError(null);
    try {
      const res = await api.post(`/api/webhooks/${w.id}/rotate-secret`);
      setSecret((res as unknown as { secret: string }).secret);
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <PageHeader
        title="Webhooks"
        description="Endpoints Keygate POSTs its events to, signed as Standard Webhooks specifies."
        actions={
          <NewEndpoint
            onCreated={(s) => {
              setSecret(s);
              list.reload();
            }}
          />
        }
      />
      <ErrorAlert error={error} />
      <ListView
        list={list}
        empty={
          <Empty
            title="No webhook endpoints yet"
            description="Add one to be told when keys, subscribers and transactions change."
          />
        }
      >
        {(rows) => (
          <ListTable
            minWidth={700}
            caption="Webhook endpoints"
            rows={rows}
            rowKey={(w) => w.id}
            columns={[
              {
                header: "URL",
                cell: (w) => (
                  <>
                    <Text size="sm" fw={500} style={{ wordBreak: "break-all" }}>
                      {w.url}
                    </Text>
                    <Text size="xs" c="dimmed">
                      {w.events.join(", ")}
                      {w.description ? ` — ${w.description}` : ""}
                    </Text>
                    {w.disabled_reason && (
                      <Alert color="red" p="xs" mt={4} role="note">
                        {w.disabled_reason}
                      </Alert>
                    )}
                  </>
                ),
              },
              {
                header: "Enabled",
                cell: (w) => (
                  <Switch
                    checked={w.enabled}
                    aria-label={`${w.enabled ? "Disable" : "Enable"} ${w.url}`}
                    onChange={() =>
                      void act(
                        () => api.put(`/api/webhooks/${w.id}`, { enabled: !w.enabled }),
                        w.enabled ? "Endpoint disabled" : "Endpoint enabled",
                      )
                    }
                  />
                ),
              },
              {
                header: "Failing since",
                cell: (w) => (
                  <Text size="sm">{w.failing_since ? formatDateTime(w.failing_since) : "—"}</Text>
                ),
              },
              {
                header: ACTIONS_HEADER,
                cell: (w) => (
                  <Group gap="xs" justify="flex-end" wrap="nowrap">
                    <Button size="compact-sm" variant="default" onClick={() => setViewing(w)}>
                      Deliveries
                    </Button>
                    <Button
                      size="compact-sm"
                      variant="default"
                      disabled={!w.enabled}
                      onClick={() =>
                        void act(
                          () => api.post(`/api/webhooks/${w.id}/test`),
                          "Test message queued",
                        )
                      }
                    >
                      Test
                    </Button>
                    <Button size="compact-sm" variant="default" onClick={() => void rotate(w)}>
                      New secret
                    </Button>
                    <Button
                      size="compact-sm"
                      variant="subtle"
                      color="red"
                      aria-label={`Remove ${w.url}`}
                      onClick={() =>
                        void act(() => api.del(`/api/webhooks/${w.id}`), "Endpoint removed")
                      }
                    >
                      Remove
                    </Button>
                  </Group>
                ),
              },
            ]}
          />
        )}
      </ListView>
      {viewing && <Deliveries endpoint={viewing} onClose={close} />}
      <ShowOnceDialog
        opened={secret !== null}
        onClose={() => setSecret(null)}
        title="The endpoint's signing secret"
        secret={secret ?? ""}
        secretLabel="Signing secret"
        intro="Verify each delivery's webhook-signature with it (any Standard Webhooks library)."
      />
    </>
  );
}
