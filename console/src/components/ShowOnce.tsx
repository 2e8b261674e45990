import { Alert, Button, Checkbox, Group, Stack, Text } from "@mantine/core";
import { useEffect, useState } from "react";
import type { Environment } from "../lib/environment";
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

/**
 * A secret the server returns once (a new key, a generated password). It cannot be shown
 * again, so the dialog closes only through its button, after saying so.
 */
export function ShowOnceDialog({
  opened,
  onClose,
  title,
  secret,
  secretLabel,
  intro,
  curl,
  environment,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  secret: string;
  secretLabel: string;
  intro?: string;
  curl?: boolean;
  /** A key's environment, named before anything else. */
  environment?: Environment;
}) {
  const [stored, setStored] = useState(false);
  useEffect(() => {
    if (opened) setStored(false);
  }, [opened, secret]);
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
        <Alert color="orange" title="Copy it now: it will not be shown again" role="alert">
          Keygate keeps only a hash of it. If it is lost,{" "}
          {curl ? "roll or revoke the key and mint a new one" : "set a new one"}.
        </Alert>
        <CopyField label={secretLabel} value={secret} testId="show-once-secret" />
        {curl && (
          <CopyField
            label="Try it"
            description="Answers with the key's name, scope and owner, and the address Keygate sees you calling from."
            value={curlLine(secret)}
            testId="show-once-curl"
          />
        )}
        <Checkbox
          label="I have stored it somewhere safe"
          checked={stored}
          onChange={(e) => setStored(e.currentTarget.checked)}
        />
        <Group justify="flex-end">
          <Button onClick={onClose} disabled={!stored}>
            Done
          </Button>
        </Group>
      </Stack>
    </Dialog>
  );
}
