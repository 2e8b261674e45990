import {
  ActionIcon,
  Anchor,
  Badge,
  Button,
  Group,
  Indicator,
  Popover,
  ScrollArea,
  Stack,
  Text,
} from "@mantine/core";
import { useEffect, useState } from "react";
import { api, messageOf } from "../lib/api";
import type { components } from "../lib/api-types";
import { Link } from "../lib/router";
import { useResource } from "../lib/useResource";

export type AlertItem = components["schemas"]["Alert"];

/** How often the bell asks again while the console is open. */
const REFRESH_MS = 60_000;

const COLOR: Record<AlertItem["severity"], string> = {
  critical: "red",
  warning: "orange",
  info: "blue",
};

function Bell() {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true">
      <path
        d="M12 3a6 6 0 0 0-6 6v3.6L4.3 15.4A1 1 0 0 0 5.2 17h13.6a1 1 0 0 0 .9-1.6L18 12.6V9a6 6 0 0 0-6-6Zm-2.2 15.5a2.3 2.3 0 0 0 4.4 0"
        fill="none"
        stroke="currentColor"
        strokeWidth="1.8"
        strokeLinejoin="round"
      />
    </svg>
  );
}

/**
 * The header's notifications: leaked keys, keys about to expire (and later spikes, new IPs,
 * failing webhooks), each linking to its record and dismissable, for this person.
 */
export function Notifications() {
  const { data, reload } = useResource<AlertItem[]>("/api/alerts");
  const [opened, setOpened] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const alerts = data ?? [];
  useEffect(() => {
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);

  const dismiss = async (id: string) => {
    setProblem(null);
    try {
      await api.post(`/api/alerts/${encodeURIComponent(id)}/dismiss`);
      reload();
    } catch (err) {
      setProblem(messageOf(err));
    }
  };
  const label =
    alerts.length === 0
      ? "Notifications: none"
      : `Notifications: ${alerts.length} alert${alerts.length === 1 ? "" : "s"}`;

  return (
    <Popover opened={opened} onChange={setOpened} width={380} position="bottom-end" shadow="md">
      <Popover.Target>
        <Indicator
          label={alerts.length}
          size={16}
          color="red"
          disabled={alerts.length === 0}
          data-testid="alert-count"
        >
          <ActionIcon
            variant="subtle"
            color="gray"
            aria-label={label}
            aria-expanded={opened}
            onClick={() => setOpened((o) => !o)}
          >
            <Bell />
          </ActionIcon>
        </Indicator>
      </Popover.Target>
      <Popover.Dropdown p="xs">
        <Text fw={700} size="sm" mb="xs">
          Notifications
        </Text>
        {problem && (
          <Text size="sm" c="red" role="alert" mb="xs">
            {problem}
          </Text>
        )}
        {alerts.length === 0 ? (
          <Text size="sm" c="dimmed">
            Nothing needs your attention.
          </Text>
        ) : (
          <ScrollArea.Autosize mah={420}>
            <Stack gap="xs" component="ul" style={{ listStyle: "none", margin: 0, padding: 0 }}>
              {alerts.map((a) => (
                <li key={a.id} data-testid="alert">
                  <Group justify="space-between" wrap="nowrap" align="flex-start" gap="xs">
                    <Stack gap={2} style={{ minWidth: 0 }}>
                      <Group gap={6} wrap="nowrap">
                        <Badge size="xs" color={COLOR[a.severity]} variant="light">
                          {a.severity}
                        </Badge>
                        <Text size="sm" fw={600}>
                          {a.title}
                        </Text>
                      </Group>
                      <Text size="xs" style={{ overflowWrap: "anywhere" }}>
                        {a.message}
                      </Text>
                      {a.link && (
                        <Anchor
                          component={Link}
                          href={a.link}
                          size="xs"
                          onClick={() => setOpened(false)}
                        >
                          {a.target?.type === "api_key" ? "Open the key" : "Open"}
                        </Anchor>
                      )}
                    </Stack>
                    <Button
                      size="compact-xs"
                      variant="default"
                      onClick={() => void dismiss(a.id)}
                      aria-label={`Dismiss: ${a.title}`}
                    >
                      Dismiss
                    </Button>
                  </Group>
                </li>
              ))}
            </Stack>
          </ScrollArea.Autosize>
        )}
      </Popover.Dropdown>
    </Popover>
  );
}
