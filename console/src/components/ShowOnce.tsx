import { Alert, Button, Checkbox, Code, Group, Stack, Text } from "@mantine/core";
import { useEffect, useState } from "react";
import type { Environment } from "../lib/environment";
import type { KeySigning } from "../lib/types";
import { CopyField, Dialog } from "./ui";

/** What a new key's dialog says first: which data the key works on. */
export const KEY_ENVIRONMENT: Record<Environment, string> = {
  test: "Test key — works only on test data",
  live: "Live key — works on live data",
};

/** The `curl` line that proves a new key works. */
export function curlLine(key: string, origin: string = window.location.origin): string {
  return `curl -H "X-API-Key: ${key}" ${origin}/api/v1/external/whoami`;
}

/** What the show-once dialog says a key's signing secret is for. */
export const SIGNING_SECRET_USE =
  "Signs each call (RFC 9421, hmac-sha256), so Keygate can tell it comes from whoever holds the key and was not changed or replayed on the way. It stays with the caller: it is never sent over the wire, only the signatures made with it.";

/** What one secret of the dialog is called, where it is, and how its receipt is confirmed. */
type Shown = { label: string; value: string; testId: string; copyName?: string; stored: string };

/** The warning above the secrets: what Keygate keeps of them, and what to do if one is lost. */
function lostWarning(
  hasKey: boolean,
  hasSigning: boolean,
  isKey: boolean,
): { title: string; body: string } {
  if (hasKey && hasSigning)
    return {
      title: "Copy both now: neither will be shown again",
      body: "Keygate keeps only a hash of the key, and the signing secret sealed under its master key: neither can be read back. If either is lost, roll the key: the replacement comes with a new key and a new signing secret.",
    };
  if (hasSigning)
    return {
      title: "Copy it now: it will not be shown again",
      body: "Keygate keeps it sealed under its master key and never shows it again. If it is lost, roll the key (a new key and a new secret), or turn signing off and on again (a new secret).",
    };
  return {
    title: "Copy it now: it will not be shown again",
    body: `Keygate keeps only a hash of it. If it is lost, ${
      isKey ? "roll or revoke the key and mint a new one" : "set a new one"
    }.`,
  };
}

/**
 * A secret the server returns once (a new key, a generated password), and a key's signing
 * secret when the answer has one (`signingSecret`; alone when an edit turned signing on). It
 * cannot be shown again, so the dialog closes only through its button, after each secret
 * has been confirmed stored.
 */
export function ShowOnceDialog({
  opened,
  onClose,
  title,
  secret,
  secretLabel = "API key",
  signingSecret,
  signing,
  intro,
  curl,
  environment,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  /** The key or password; absent when only a signing secret is shown. */
  secret?: string;
  secretLabel?: string;
  /** A key's signing secret, shown once beside the key. */
  signingSecret?: string;
  /** The key's request signing: a key that requires signatures gets no bare `curl` line. */
  signing?: KeySigning;
  intro?: string;
  curl?: boolean;
  /** A key's environment, named before anything else. */
  environment?: Environment;
}) {
  const shown: Shown[] = [];
  const both = secret !== undefined && signingSecret !== undefined;
  if (secret !== undefined)
    shown.push({
      label: secretLabel,
      value: secret,
      testId: "show-once-secret",
      copyName: both ? `Copy ${secretLabel}` : undefined,
      stored: both ? `I have stored the ${secretLabel} somewhere safe` : "",
    });
  if (signingSecret !== undefined)
    shown.push({
      label: "Signing secret",
      value: signingSecret,
      testId: "show-once-signing-secret",
      copyName: "Copy signing secret",
      stored: both ? "I have stored the signing secret somewhere safe" : "",
    });
  if (shown.length === 1 && shown[0]) shown[0].stored = "I have stored it somewhere safe";
  const [stored, setStored] = useState<Record<string, boolean>>({});
  useEffect(() => {
    if (opened) setStored({});
  }, [opened, secret, signingSecret]);
  const warning = lostWarning(secret !== undefined, signingSecret !== undefined, curl === true);
  const tryIt = curl && secret !== undefined;
  return (
    <Dialog opened={opened} onClose={onClose} title={title} dismissable={false}>
      <Stack>
        {environment && (
          <Alert
            role="note"
            variant={environment === "test" ? "filled" : "light"}
            color={environment === "test" ? "orange" : "teal"}
            title={KEY_ENVIRONMENT[environment]}
            data-testid="show-once-environment"
          >
            {environment === "test"
              ? "It starts pk_test_: it sees and changes only test subscribers, transactions and usage, never live ones."
              : "It starts pk_live_: it sees and changes live data. Keep it out of test systems."}
          </Alert>
        )}
        {intro && <Text size="sm">{intro}</Text>}
        <Alert color="orange" title={warning.title} role="alert">
          {warning.body}
        </Alert>
        {shown.map((s) => (
          <CopyField
            key={s.testId}
            label={s.label}
            value={s.value}
            testId={s.testId}
            copyName={s.copyName}
            description={
              s.testId === "show-once-signing-secret" ? (
                <span data-testid="show-once-signing-use">{SIGNING_SECRET_USE}</span>
              ) : undefined
            }
          />
        ))}
        {tryIt &&
          (signing === "required" ? (
            <Text size="sm" c="dimmed" data-testid="show-once-signed-only">
              This key requires signed calls: a plain <Code>curl</Code> with the key alone is
              refused with SIGNATURE_REQUIRED. Sign each call with the signing secret.
            </Text>
          ) : (
            <CopyField
              label="Try it"
              description="Answers with the key's name, scope and owner, and the address Keygate sees you calling from."
              value={curlLine(secret)}
              testId="show-once-curl"
            />
          ))}
        {shown.map((s) => (
          <Checkbox
            key={s.testId}
            label={s.stored}
            checked={stored[s.testId] === true}
            onChange={(e) => {
              const checked = e.currentTarget.checked;
              setStored((was) => ({ ...was, [s.testId]: checked }));
            }}
          />
        ))}
        <Group justify="flex-end">
          <Button onClick={onClose} disabled={!shown.every((s) => stored[s.testId])}>
            Done
          </Button>
        </Group>
      </Stack>
    </Dialog>
  );
}
