import {
  Card,
  type MantineSpacing,
  Table,
  type TableProps,
  type TableTdProps,
  VisuallyHidden,
} from "@mantine/core";
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

/** A list page's table: framed in a card, with the list pages' spacing. */
export function ListTable<T>({ mt, ...props }: DataTableProps<T> & { mt?: MantineSpacing }) {
  return (
    <Card withBorder radius="md" padding={0} mt={mt}>
      <DataTable verticalSpacing="sm" horizontalSpacing="md" {...props} />
    </Card>
  );
}

/** The header of a column of row buttons: announced, not shown. */
export const ACTIONS_HEADER = <VisuallyHidden>Actions</VisuallyHidden>;
