import {
  Card,
  Group,
  type MantineSpacing,
  Stack,
  Table,
  type TableProps,
  type TableTdProps,
  Text,
  VisuallyHidden,
} from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import type { Key, ReactNode } from "react";

/** One column: its header, and what each row shows in it. */
export type Column<T> = {
  header: ReactNode;
  /** Numbers and amounts line up on the right, header included. */
  align?: "right";
  cell: (row: T) => ReactNode;
  /** Further props of the row's cell (a tooltip, a colour). */
  td?: (row: T) => Omit<TableTdProps, "children">;
};

export type DataTableProps<T> = Omit<TableProps, "children" | "caption"> & {
  /** `false` leaves a column out (one only some users see). */
  columns: (Column<T> | false)[];
  rows: T[];
  rowKey: (row: T, index: number) => Key;
  /** Attributes of a row, e.g. a test id. */
  rowProps?: (row: T) => Record<`data-${string}`, string>;
  /** Read by screen readers, not shown. */
  caption?: ReactNode;
  /** Below this width the table scrolls inside its own container instead of the page. */
  minWidth: number;
};

/** A table that scrolls sideways on narrow screens, with a header row and a row per item. */
export function DataTable<T>({
  columns,
  rows,
  rowKey,
  rowProps,
  caption,
  minWidth,
  ...table
}: DataTableProps<T>) {
  const cols = columns.filter((c): c is Column<T> => c !== false);
  return (
    <Table.ScrollContainer minWidth={minWidth} type="native">
      <Table {...table}>
        {caption !== undefined && <VisuallyHidden component="caption">{caption}</VisuallyHidden>}
        <Table.Thead>
          <Table.Tr>
            {cols.map((c, i) => (
              <Table.Th key={i} ta={c.align}>
                {c.header}
              </Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {rows.map((row, r) => (
            <Table.Tr key={rowKey(row, r)} {...rowProps?.(row)}>
              {cols.map((c, i) => (
                <Table.Td key={i} ta={c.align} {...c.td?.(row)}>
                  {c.cell(row)}
                </Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** Where a list page stops being a table and becomes a list of cards. */
export const PHONE_QUERY = "(max-width: 40em)";

/**
 * A list page's table: framed in a card, with the list pages' spacing. On a phone the rows
 * become cards instead — every column shown, labelled by its header, and the row's buttons
 * at the bottom — rather than a table scrolling sideways with columns out of sight.
 */
export function ListTable<T>({ mt, ...props }: DataTableProps<T> & { mt?: MantineSpacing }) {
  const phone = useMediaQuery(PHONE_QUERY);
  if (phone) return <CardList mt={mt} {...props} />;
  return (
    <Card withBorder radius="md" padding={0} mt={mt}>
      <DataTable verticalSpacing="sm" horizontalSpacing="md" {...props} />
    </Card>
  );
}

/**
 * A table inside something framed already (a dashboard card): on a phone its rows become
 * cards, as a list page's do; otherwise the plain table.
 */
export function AdaptiveTable<T>(props: DataTableProps<T>) {
  const phone = useMediaQuery(PHONE_QUERY);
  if (!phone) return <DataTable {...props} />;
  const { columns, rows, rowKey, rowProps, caption, minWidth } = props;
  return <CardList {...{ columns, rows, rowKey, rowProps, caption, minWidth }} />;
}

/** The header of a column of row buttons: announced, not shown. */
export const ACTIONS_HEADER = <VisuallyHidden>Actions</VisuallyHidden>;

/** The rows as a list of cards: the first column as the card's title, the others labelled. */
export function CardList<T>({
  columns,
  rows,
  rowKey,
  rowProps,
  caption,
  mt,
}: DataTableProps<T> & { mt?: MantineSpacing }) {
  const cols = columns.filter((c): c is Column<T> => c !== false);
  const actions = cols.filter((c) => c.header === ACTIONS_HEADER);
  const fields = cols.filter((c) => c.header !== ACTIONS_HEADER);
  const [title, ...rest] = fields;
  return (
    <Stack
      component="ul"
      gap="xs"
      p={0}
      m={0}
      mt={mt}
      style={{ listStyle: "none" }}
      aria-label={typeof caption === "string" ? caption : undefined}
      data-testid="card-list"
    >
      {rows.map((row, r) => (
        <Card
          key={rowKey(row, r)}
          component="li"
          withBorder
          radius="md"
          padding="sm"
          {...rowProps?.(row)}
        >
          {title && (
            <Text fw={600} style={{ overflowWrap: "anywhere" }}>
              {title.cell(row)}
            </Text>
          )}
          <Stack gap={4} mt={title ? 6 : 0}>
            {rest.map((c, i) => (
              <Group key={i} justify="space-between" wrap="nowrap" gap="sm" align="flex-start">
                <Text size="sm" c="dimmed" style={{ flexShrink: 0 }}>
                  {c.header}
                </Text>
                <Text
                  component="div"
                  size="sm"
                  ta="right"
                  style={{ overflowWrap: "anywhere", minWidth: 0 }}
                  title={c.td?.(row).title}
                  c={c.td?.(row).c}
                >
                  {c.cell(row)}
                </Text>
              </Group>
            ))}
          </Stack>
          {actions.length > 0 && (
            <Group gap="xs" mt="sm" justify="flex-end">
              {actions.map((c, i) => (
                <div key={i}>{c.cell(row)}</div>
              ))}
            </Group>
          )}
        </Card>
      ))}
    </Stack>
  );
}
