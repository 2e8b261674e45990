import { Button, Checkbox, Code, Fieldset, Group, Stack, Table, Text } from "@mantine/core";
import {
  ACTIONS,
  allows,
  beyond,
  effective,
  FULL,
  grants,
  type Levels,
  levelsOf,
  normalise,
  type Resource,
  RESOURCE_LABEL,
  RESOURCES,
  samePermissions,
  summarise,
  tick,
  toPermissions,
} from "../lib/permissions";
import type { PermissionPreset } from "../lib/types";

const ACTION_LABEL = { read: "Read", write: "Write", delete: "Delete" } as const;

/**
 * A key's permissions: the server's presets, a resource × action grid (ticking an action
 * ticks the ones it implies; unticking one unticks those that imply it) and what the choice
 * allows, in words. Boxes beyond the owner's role are greyed out and their rows explained.
 */
export function PermissionPicker({
  id,
  value,
  onChange,
  ownerRole,
  limits = FULL,
  presets,
  presetsError,
  error,
}: {
  id: string;
  value: Levels;
  onChange: (next: Levels) => void;
  /** The role of the key's owner, once known, and the most its keys may do. */
  ownerRole?: string;
  limits?: Levels;
  presets?: PermissionPreset[];
  presetsError?: string | null;
  error?: string;
}) {
  const current = toPermissions(value, limits);
  const shown = effective(value, limits);
  const active = presets?.find((p) => samePermissions(normalise(p.permissions, limits), current));
  const beyondRole = (p: PermissionPreset) => beyond(p.permissions, limits).length > 0;
  const limited = RESOURCES.some((r) => limits[r] < 3);
  const rowNote = (r: Resource) =>
    limits[r] === 0
      ? `not for a ${ownerRole}'s key`
      : limits[r] === 1
        ? `read only for a ${ownerRole}'s key`
        : limits[r] === 2
          ? `no delete for a ${ownerRole}'s key`
          : null;

  return (
    <Fieldset
      legend="Permissions"
      variant="unstyled"
      id={id}
      tabIndex={-1}
      aria-describedby={`${id}-summary`}
    >
      <Stack gap="xs">
        <Text size="xs" c="dimmed">
          What the key may do, resource by resource. Choose the narrowest that works: start from a
          preset, then tick or untick.
        </Text>
        {presets && presets.length > 0 && (
          <Group gap="xs" role="group" aria-label="Presets">
            {presets.map((p) => (
              <Button
                key={p.name}
                size="compact-sm"
                variant={active?.name === p.name ? "filled" : "default"}
                aria-pressed={active?.name === p.name}
                title={
                  beyondRole(p) ? `${p.description} Not for a ${ownerRole}'s key.` : p.description
                }
                disabled={beyondRole(p)}
                onClick={() => onChange(levelsOf(p.permissions))}
              >
                {p.label}
              </Button>
            ))}
          </Group>
        )}
        {active && (
          <Text size="xs" c="dimmed">
            {active.label}: {active.description}
          </Text>
        )}
        {presetsError && (
          <Text size="xs" c="dimmed">
            Presets did not load ({presetsError}); tick the permissions below.
          </Text>
        )}
        <Table
          withTableBorder
          verticalSpacing={4}
          horizontalSpacing="sm"
          data-testid="permission-grid"
          maw={440}
        >
          <Table.Caption style={{ captionSide: "top", textAlign: "left", marginTop: 0 }}>
            <Text span size="xs" c="dimmed">
              Write includes read; delete includes write.
            </Text>
          </Table.Caption>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Resource</Table.Th>
              {ACTIONS.map((a) => (
                <Table.Th key={a} scope="col" ta="center">
                  {ACTION_LABEL[a]}
                </Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {RESOURCES.map((r) => {
              const note = rowNote(r);
              const noteId = `${id}-${r}-limit`;
              return (
                <Table.Tr key={r} data-testid={`permission-row-${r}`}>
                  <Table.Th scope="row" fw={500}>
                    <Text size="sm" c={limits[r] === 0 ? "dimmed" : undefined} inherit>
                      {RESOURCE_LABEL[r]}
                    </Text>
                    {note && (
                      <Text size="xs" c="dimmed" id={noteId} fw={400}>
                        {note}
                      </Text>
                    )}
                  </Table.Th>
                  {ACTIONS.map((a) => {
                    const blocked = !allows(limits, r, a);
                    return (
                      <Table.Td key={a}>
                        <Checkbox
                          aria-label={`${RESOURCE_LABEL[r]}: ${a}`}
                          aria-describedby={blocked ? noteId : undefined}
                          checked={grants(shown, r, a)}
                          disabled={blocked}
                          onChange={(e) => onChange(tick(shown, r, a, e.currentTarget.checked))}
                          styles={{ body: { justifyContent: "center" } }}
                        />
                      </Table.Td>
                    );
                  })}
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
        {limited && (
          <Text size="xs" c="dimmed">
            A key never exceeds its owner&apos;s role: Keygate refuses the greyed-out permissions on
            a {ownerRole}&apos;s key.
          </Text>
        )}
        <Text
          size="sm"
          fw={500}
          id={`${id}-summary`}
          aria-live="polite"
          data-testid="permission-summary"
        >
          {summarise(value, { limits, role: ownerRole })}
        </Text>
        <Text size="xs" c="dimmed">
          Sent as{" "}
          {current.length > 0 ? (
            current.map((p) => (
              <Code key={p} mr={4}>
                {p}
              </Code>
            ))
          ) : (
            <>no permission</>
          )}
        </Text>
        {error && (
          <Text size="sm" c="red" role="alert" data-testid="permissions-error">
            {error}
          </Text>
        )}
      </Stack>
    </Fieldset>
  );
}
