import {
  Alert,
  Badge,
  Box,
  Button,
  Center,
  EmptyState,
  Group,
  Loader,
  Modal,
  Stack,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import { type ReactNode, useEffect, useRef, useState } from "react";
import { ApiError, messageOf } from "../lib/api";
import type { Environment } from "../lib/environment";
import { SIGNING_LABEL, statusColor, statusLabel } from "../lib/format";
import type { KeySigning } from "../lib/types";
import { Link } from "../lib/router";

/** The page's heading (focused on navigation, so screen readers announce the new page). */
export function PageHeader({
  title,
  description,
  actions,
}: {
  title: ReactNode;
  description?: ReactNode;
  actions?: ReactNode;
}) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    ref.current?.focus({ preventScroll: true });
  }, []);
  return (
    <Group justify="space-between" align="flex-start" mb="lg" gap="sm">
      <Box style={{ minWidth: 0, flex: "1 1 16rem" }}>
        <Title order={1} size="h2" ref={ref} tabIndex={-1} style={{ outline: "none" }}>
          {title}
        </Title>
        {description && (
          <Text c="dimmed" size="sm" mt={4}>
            {description}
          </Text>
        )}
      </Box>
      {actions && <Group gap="xs">{actions}</Group>}
    </Group>
  );
}

/** A detail page whose record did not load: the server's reason, Try again, and the way back. */
export function RecordError({
  title,
  error,
  onRetry,
  backHref,
  backLabel,
}: {
  title: string;
  error: unknown;
  onRetry: () => void;
  backHref: string;
  backLabel: string;
}) {
  return (
    <>
      <PageHeader title={title} />
      <ErrorAlert error={error} onRetry={onRetry} />
      <Button component={Link} href={backHref} variant="default">
        {backLabel}
      </Button>
    </>
  );
}

/** A table row's Edit and remove buttons, labelled with the record's name for screen readers. */
export function RowActions({
  name,
  onEdit,
  onRemove,
  removeLabel,
}: {
  name: string;
  onEdit: () => void;
  onRemove: () => void;
  removeLabel: string;
}) {
  return (
    <Group gap="xs" justify="flex-end" wrap="nowrap">
      <Button size="compact-sm" variant="default" onClick={onEdit} aria-label={`Edit ${name}`}>
        Edit
      </Button>
      <Button
        size="compact-sm"
        variant="subtle"
        color="red"
        onClick={onRemove}
        aria-label={`${removeLabel} ${name}`}
      >
        {removeLabel}
      </Button>
    </Group>
  );
}

/** The end of every form: the server's refusal (if any), Cancel, and the submit button. */
export function FormFooter({
  error,
  errorTitle,
  busy,
  submitLabel,
  onCancel,
}: {
  error: string | null | undefined;
  errorTitle: string;
  busy: boolean;
  submitLabel: ReactNode;
  onCancel?: () => void;
}) {
  return (
    <>
      {error && (
        <Alert color="red" title={errorTitle} role="alert">
          {error}
        </Alert>
      )}
      <Group justify="flex-end">
        {onCancel && (
          <Button variant="default" onClick={onCancel}>
            Cancel
          </Button>
        )}
        <Button type="submit" loading={busy}>
          {submitLabel}
        </Button>
      </Group>
    </>
  );
}

/** A server (or network) error in the server's own words. */
export function ErrorAlert({
  error,
  title,
  onRetry,
}: {
  error: unknown;
  title?: string;
  onRetry?: () => void;
}) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : undefined;
  const details = error instanceof ApiError ? error.details : [];
  return (
    <Alert color="red" title={title ?? "Something went wrong"} role="alert" mb="md">
      <Stack gap={6}>
        <Text size="sm">{messageOf(error)}</Text>
        {details.length > 1 && (
          <Box component="ul" m={0} pl="md">
            {details.map((d) => (
              <li key={d.field + d.message}>
                <Text size="sm" span>
                  <b>{d.field}</b> {d.message}
                </Text>
              </li>
            ))}
          </Box>
        )}
        <Group gap="xs">
          {code && code !== "NETWORK_ERROR" && (
            <Text size="xs" c="dimmed">
              code {code}
            </Text>
          )}
          {onRetry && (
            <Button size="compact-xs" variant="light" color="red" onClick={onRetry}>
              Try again
            </Button>
          )}
        </Group>
      </Stack>
    </Alert>
  );
}

/** What to do when a list is empty. */
export function Empty({
  title,
  description,
  action,
}: {
  title: string;
  description: ReactNode;
  action?: ReactNode;
}) {
  return (
    <EmptyState title={title} description={description} py="xl" size="sm">
      {action && <EmptyState.Actions>{action}</EmptyState.Actions>}
    </EmptyState>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <Center py="xl" role="status" aria-live="polite">
      <Group gap="xs">
        <Loader size="sm" />
        <Text size="sm" c="dimmed">
          {label}
        </Text>
      </Group>
    </Center>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return (
    <Badge color={statusColor(status)} variant="light" radius="sm">
      {statusLabel(status)}
    </Badge>
  );
}

/** A key's request signing: Off stays quiet, Required stands out. */
export function SigningBadge({ signing }: { signing: KeySigning }) {
  return (
    <Badge
      color={signing === "required" ? "teal" : signing === "optional" ? "blue" : "gray"}
      variant={signing === "off" ? "outline" : "light"}
      radius="sm"
      data-testid="signing-badge"
    >
      {SIGNING_LABEL[signing]}
    </Badge>
  );
}

/** "signed", for a key whose calls are (or may be) signed; nothing for one without signing. */
export function SignedBadge({ signing }: { signing: KeySigning }) {
  if (signing === "off") return null;
  return (
    <Badge
      color="teal"
      variant="light"
      radius="sm"
      size="sm"
      title={
        signing === "required"
          ? "Request signing required: every call must be signed with the key's signing secret"
          : "Request signing optional: signed calls are verified, unsigned ones accepted"
      }
    >
      signed
    </Badge>
  );
}

/** Which data a key (or record) belongs to: test stands out, live stays quiet. */
export function EnvironmentBadge({ environment }: { environment: Environment }) {
  return (
    <Badge
      color={environment === "test" ? "orange" : "gray"}
      variant={environment === "test" ? "filled" : "outline"}
      radius="sm"
      title={environment === "test" ? "Test: works only on test data" : "Live: works on live data"}
    >
      {environment}
    </Badge>
  );
}

export function HttpStatus({ code }: { code: number }) {
  return (
    <Badge color={statusColor(code)} variant="light" radius="sm" ff="monospace">
      {code}
    </Badge>
  );
}

/** Modal that is full-screen on a phone. */
export function Dialog({
  opened,
  onClose,
  title,
  children,
  size = "lg",
  dismissable = true,
}: {
  opened: boolean;
  onClose: () => void;
  title: ReactNode;
  children: ReactNode;
  size?: string;
  dismissable?: boolean;
}) {
  const phone = useMediaQuery("(max-width: 36em)");
  return (
    <Modal
      opened={opened}
      onClose={onClose}
      title={<Text fw={600}>{title}</Text>}
      size={size}
      fullScreen={Boolean(phone)}
      closeOnClickOutside={dismissable}
      closeOnEscape={dismissable}
      withCloseButton={dismissable}
      closeButtonProps={{ "aria-label": "Close dialog" }}
    >
      {children}
    </Modal>
  );
}

/**
 * The edit dialog and the removal confirmation of a list page's rows (NAS devices, services):
 * `form` renders the row's form with a `close` to call on cancel or once saved.
 */
export function EditAndRemove<T extends { name: string }>({
  editing,
  onEditClose,
  removing,
  onRemoveClose,
  form,
  editSize,
  removeVerb,
  noun,
  onRemove,
  children,
}: {
  editing: T | null;
  onEditClose: () => void;
  removing: T | null;
  onRemoveClose: () => void;
  form: (row: T, close: () => void) => ReactNode;
  editSize?: string;
  /** "Remove" or "Delete": the dialog's title and button say it. */
  removeVerb: string;
  /** What a row is, in lower case: "device", "service". */
  noun: string;
  onRemove: (row: T) => Promise<void>;
  /** What removing means, under the question. */
  children: ReactNode;
}) {
  return (
    <>
      <Dialog
        opened={editing !== null}
        onClose={onEditClose}
        title={`Edit ${editing?.name ?? ""}`}
        size={editSize}
      >
        {editing && form(editing, onEditClose)}
      </Dialog>
      <ConfirmDialog
        opened={removing !== null}
        onClose={onRemoveClose}
        title={`${removeVerb} ${removing?.name ?? ""}?`}
        confirmLabel={`${removeVerb} ${noun}`}
        onConfirm={async () => {
          if (removing) await onRemove(removing);
        }}
      >
        {children}
      </ConfirmDialog>
    </>
  );
}

/** Asks before doing something that cannot be undone; shows the server's refusal in place. */
export function ConfirmDialog({
  opened,
  onClose,
  title,
  children,
  confirmLabel,
  color = "red",
  onConfirm,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  color?: string;
  onConfirm: () => Promise<void>;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (opened) setError(null);
  }, [opened]);
  const go = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog opened={opened} onClose={onClose} title={title} size="md">
      <Stack>
        <Box>{children}</Box>
        <ErrorAlert error={error} title="Not done" />
        <Group justify="flex-end">
          <Button variant="default" onClick={onClose}>
            Cancel
          </Button>
          <Button color={color} onClick={go} loading={busy}>
            {confirmLabel}
          </Button>
        </Group>
      </Stack>
    </Dialog>
  );
}

/** Copies text; falls back to a selection copy where the Clipboard API is unavailable (plain HTTP). */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection copy
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  let ok: boolean;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

/**
 * Copies `value`. `name`, when given, is what the button is called until it has copied
 * (e.g. "Copy signing secret" while it shows "Copy"): for a dialog with more than one.
 */
export function CopyButton({
  value,
  label = "Copy",
  name,
}: {
  value: string;
  label?: string;
  name?: string;
}) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  useEffect(() => {
    if (state === "idle") return;
    const t = setTimeout(() => setState("idle"), 2000);
    return () => clearTimeout(t);
  }, [state]);
  return (
    <Button
      size="xs"
      variant={state === "copied" ? "filled" : "light"}
      color={state === "copied" ? "teal" : state === "failed" ? "red" : undefined}
      onClick={async () => setState((await copyText(value)) ? "copied" : "failed")}
      aria-label={state === "idle" ? name : undefined}
      aria-live="polite"
    >
      {state === "copied" ? "Copied" : state === "failed" ? "Select and copy by hand" : label}
    </Button>
  );
}

/** A read-only value with a copy button, easy to select by hand too. */
export function CopyField({
  label,
  value,
  description,
  testId,
  copyName,
}: {
  label: string;
  value: string;
  description?: ReactNode;
  testId?: string;
  /** What its copy button is called (see CopyButton's `name`). */
  copyName?: string;
}) {
  return (
    <TextInput
      label={label}
      description={description}
      value={value}
      readOnly
      onFocus={(e) => e.currentTarget.select()}
      styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
      rightSectionWidth={90}
      rightSection={<CopyButton value={value} name={copyName} />}
      data-testid={testId}
    />
  );
}

/** Label/value pairs for detail pages. */
export function Facts({ items }: { items: [string, ReactNode][] }) {
  return (
    <Box
      component="dl"
      m={0}
      style={{
        display: "grid",
        gridTemplateColumns: "minmax(8rem, max-content) 1fr",
        gap: "0.5rem 1rem",
      }}
    >
      {items.map(([k, v]) => (
        <Box key={k} style={{ display: "contents" }}>
          <Text component="dt" size="sm" c="dimmed">
            {k}
          </Text>
          <Text component="dd" size="sm" m={0} style={{ overflowWrap: "anywhere" }}>
            {v}
          </Text>
        </Box>
      ))}
    </Box>
  );
}
