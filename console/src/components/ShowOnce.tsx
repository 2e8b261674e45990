import { Alert, Button, Checkbox, Group, Stack, Text } from "@mantine/core";
import { useEffect, useState } from "react";
import { CopyField, Dialog } from "./ui";

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
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  secret: string;
  secretLabel: string;
  intro?: string;
  curl?: boolean;
}) {
  const [stored, setStored] = useState(false);
  useEffect(() => {
    if (opened) setStored(false);
  }, [opened, secret]);
  return (
    <Dialog opened={opened} onClose={onClose} title={title} dismissable={false}>
      <Stack>
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
