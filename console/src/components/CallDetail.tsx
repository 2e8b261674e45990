import { Badge, Button, Card, Code, Group, Stack, Text, UnstyledButton } from "@mantine/core";
import { CREDENTIAL_HELP } from "../lib/callLog";
import type { CallLog, Credential } from "../lib/types";
import { CopyButton, Dialog, Facts, HttpStatus } from "./ui";

const localFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  fractionalSecondDigits: 3,
  timeZoneName: "short",
});
const secondsFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** The call's time as UTC ISO-8601 to the millisecond, and in the browser's time zone. */
export function callTimes(iso: string): { utc: string; local: string } {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return { utc: iso, local: iso };
  return { utc: d.toISOString(), local: localFmt.format(d) };
}

/** The call's time to the second, in the browser's time zone. */
function callWhen(r: CallLog): string {
  const d = new Date(r.timestamp);
  return Number.isNaN(d.getTime()) ? r.timestamp : secondsFmt.format(d);
}

const CREDENTIAL_COLOR: Record<Credential, string> = {
  key: "gray",
  signature: "teal",
  token: "violet",
};

/** How a call authenticated: key, signature or token. */
export function CredentialBadge({ call }: { call: CallLog }) {
  const c = call.credential;
  return (
    <Badge
      component="span"
      size="xs"
      variant="light"
      radius="sm"
      color={CREDENTIAL_COLOR[c]}
      title={`Authenticated with ${CREDENTIAL_HELP[c]}`}
      data-testid="call-credential"
    >
      {c}
    </Badge>
  );
}

/** What a row's button is called: the call itself, its outcome and when. */
export function callLabel(r: CallLog): string {
  const when = callWhen(r);
  const outcome = r.error_code ? `${r.status_code} ${r.error_code}` : String(r.status_code);
  return `${r.method} ${r.path}, ${outcome}, ${when}: show details`;
}

/** Opens a call's details: the method and path, as a button the keyboard reaches. */
export function CallButton({ call, onOpen }: { call: CallLog; onOpen: (c: CallLog) => void }) {
  return (
    <UnstyledButton
      onClick={() => onOpen(call)}
      aria-label={callLabel(call)}
      fz="xs"
      ff="monospace"
      ta="left"
      style={{ overflowWrap: "anywhere" }}
    >
      <Badge component="span" size="xs" variant="default" radius="sm" mr={4}>
        {call.method}
      </Badge>
      <Text component="span" inherit c="var(--mantine-color-anchor)">
        {call.path}
      </Text>
    </UnstyledButton>
  );
}

/** The call log as cards, one under another, on a phone: a tap (or Enter) opens the call. */
export function CallCards({
  label,
  rows,
  onOpen,
}: {
  label: string;
  rows: CallLog[];
  onOpen: (c: CallLog) => void;
}) {
  return (
    <Stack
      gap="xs"
      component="ul"
      p={0}
      m={0}
      style={{ listStyle: "none" }}
      aria-label={label}
      data-testid="call-cards"
    >
      {rows.map((r) => (
        <Card
          key={r.id}
          component="li"
          withBorder
          radius="md"
          padding="xs"
          onClick={() => onOpen(r)}
          style={{ cursor: "pointer" }}
        >
          <Group justify="space-between" wrap="nowrap" gap="xs" align="flex-start">
            <CallButton call={r} onOpen={onOpen} />
            <Group gap={4} wrap="nowrap">
              <CredentialBadge call={r} />
              <HttpStatus code={r.status_code} />
            </Group>
          </Group>
          <Text size="xs" c="dimmed" mt={4}>
            {callWhen(r)} · {r.latency_ms.toFixed(1)} ms · {r.ip}
          </Text>
          {r.error_code && (
            <Text size="xs" ff="monospace" c="red.8" mt={2}>
              {r.error_code}
            </Text>
          )}
        </Card>
      ))}
    </Stack>
  );
}

/** One call's details: request id (to copy), exact time, the request, the outcome and the client. */
export function CallDetail({ call, onClose }: { call: CallLog | null; onClose: () => void }) {
  return (
    <Dialog
      opened={call !== null}
      onClose={onClose}
      title={call ? `Call ${call.method} ${call.path}` : "Call"}
    >
      {call && <CallFacts call={call} />}
      <Group justify="flex-end" mt="lg">
        <Button variant="default" onClick={onClose}>
          Close
        </Button>
      </Group>
    </Dialog>
  );
}

function CallFacts({ call: c }: { call: CallLog }) {
  const { utc, local } = callTimes(c.timestamp);
  const failed = c.status_code >= 400;
  return (
    <div data-testid="call-detail">
      <Facts
        items={[
          [
            "Request id",
            c.request_id ? (
              <Group gap="xs" align="center">
                <Code data-testid="call-request-id" style={{ overflowWrap: "anywhere" }}>
                  {c.request_id}
                </Code>
                <CopyButton value={c.request_id} label="Copy request id" />
              </Group>
            ) : (
              <Text component="span" size="sm" c="dimmed">
                not kept (logged before request ids were)
              </Text>
            ),
          ],
          ["Time (UTC)", <Code key="utc">{utc}</Code>],
          ["Local time", local],
          ["Method", <Code key="method">{c.method}</Code>],
          ["Path", <Code key="path">{c.path}</Code>],
          ["Status", <HttpStatus key="status" code={c.status_code} />],
          ["Error code", c.error_code ? <Code key="code">{c.error_code}</Code> : "none"],
          [
            "Message",
            c.message !== null ? (
              <Code block data-testid="call-message" style={{ whiteSpace: "pre-wrap" }}>
                {c.message}
              </Code>
            ) : failed ? (
              <Text component="span" size="sm" c="dimmed">
                not kept (logged before messages were)
              </Text>
            ) : (
              "none (no error)"
            ),
          ],
          [
            "Credential",
            <span key="credential" data-testid="call-detail-credential">
              <Code>{c.credential}</Code>: {CREDENTIAL_HELP[c.credential]}
            </span>,
          ],
          ["IP", c.ip],
          ["User agent", c.user_agent ?? "none sent"],
          ["Latency", `${Math.round(c.latency_ms * 1000) / 1000} ms`],
        ]}
      />
    </div>
  );
}
