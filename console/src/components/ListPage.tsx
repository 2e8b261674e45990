import {
  Anchor,
  Button,
  Card,
  Group,
  type MantineSpacing,
  Pagination,
  type PaginationProps,
  Select,
  type SelectProps,
  SimpleGrid,
  type SimpleGridProps,
  Stack,
  Text,
} from "@mantine/core";
import type { ReactNode } from "react";
import { type PagedList, pageRange } from "../lib/paging";
import { Link, setQuery, useLocation } from "../lib/router";
import { Dialog, Empty, ErrorAlert, Loading, StatusBadge } from "./ui";

/** A list being fetched: what `useResource` (or a paged loader) keeps. */
export type ListSource<T> = {
  data: T[] | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
};

/**
 * A list's states, in this order: the server's refusal (with Try again), a spinner until the
 * first answer, `empty` when the answer is an empty list, and otherwise `children` with the
 * rows. A reload keeps the rows shown until the new answer replaces them.
 */
export function ListView<T>({
  list,
  empty,
  loadingLabel,
  children,
}: {
  list: ListSource<T>;
  empty: ReactNode;
  loadingLabel?: string;
  children: (rows: T[]) => ReactNode;
}) {
  return (
    <>
      <ErrorAlert error={list.error} onRetry={list.reload} />
      {list.loading && !list.data && <Loading label={loadingLabel} />}
      {list.data && list.data.length === 0 && empty}
      {list.data && list.data.length > 0 && children(list.data)}
    </>
  );
}

/** Nothing passes the filters: says so, and offers to clear them. */
export function NoMatch({
  title,
  description,
  onClear,
}: {
  title: string;
  description: ReactNode;
  onClear: () => void;
}) {
  return (
    <Empty
      title={title}
      description={description}
      action={
        <Button variant="default" onClick={onClear}>
          Clear filters
        </Button>
      }
    />
  );
}

/**
 * Under a paged list: which rows are shown of how many, and the page buttons when there is
 * more than one page. The page is kept in the address (`?page=`), left out for page 1.
 */
export function Paging({
  list,
  gap,
  pagination,
}: {
  list: PagedList<unknown>;
  gap?: MantineSpacing;
  /** Further props of the page buttons (labels). */
  pagination?: Partial<PaginationProps>;
}) {
  if (!list.data || list.total === 0) return null;
  const { first, last, pages } = pageRange(list.page, list.perPage, list.total);
  return (
    <Group justify="space-between" mt="md" gap={gap}>
      <Text size="sm" c="dimmed">
        {first}–{last} of {list.total}
      </Text>
      {pages > 1 && (
        <Pagination
          total={pages}
          value={Math.min(list.page, pages)}
          onChange={(p) => setQuery({ page: p === 1 ? null : p })}
          size="sm"
          {...pagination}
        />
      )}
    </Group>
  );
}

/** Opens the page's NewDialog. */
export function openNew(): void {
  setQuery({ new: "1" });
}

/** Closes the page's NewDialog. */
export function closeNew(): void {
  setQuery({ new: null });
}

/**
 * The page's dialog for adding a record. It is open while the address says `?new=1`, so a
 * link such as `/services?new=1` opens it too; `allowed={false}` keeps it shut for a user who
 * may not add.
 */
export function NewDialog({
  title,
  size,
  allowed = true,
  children,
}: {
  title: string;
  size?: string;
  allowed?: boolean;
  children: ReactNode;
}) {
  const { query } = useLocation();
  return (
    <Dialog
      opened={allowed && query.get("new") === "1"}
      onClose={closeNew}
      title={title}
      size={size}
    >
      {children}
    </Dialog>
  );
}

/** The filters above a list, in a card. */
export function FilterBar({
  cols,
  children,
}: {
  cols: SimpleGridProps["cols"];
  children: ReactNode;
}) {
  return (
    <Card withBorder radius="md" padding="sm" mb="md">
      <SimpleGrid cols={cols} spacing="sm">
        {children}
      </SimpleGrid>
    </Card>
  );
}

/**
 * A filter kept in the address (`?param=`), so a link or a reload keeps it: the first option,
 * `any`, is no filter. On a paged list (`paged`) a new choice goes back to the first page.
 */
export function QuerySelect({
  param,
  any,
  data,
  paged = false,
  ...select
}: Omit<SelectProps, "data" | "value" | "onChange"> & {
  param: string;
  any: string;
  data: { value: string; label: string }[];
  paged?: boolean;
}) {
  const { query } = useLocation();
  return (
    <Select
      data={[{ value: "", label: any }, ...data]}
      value={query.get(param) ?? ""}
      onChange={(v) => setQuery(paged ? { [param]: v, page: null } : { [param]: v })}
      allowDeselect={false}
      {...select}
    />
  );
}

/** What a row's card shows: a link to the record, its status, and the rest below them. */
export type RowCard = { href: string; title: ReactNode; status: string; body: ReactNode };

/** A list's rows as cards, one under another, where a table would not fit (phones). */
export function CardList<T extends { id: number }>({
  label,
  rows,
  card,
}: {
  label: string;
  rows: T[];
  card: (row: T) => RowCard;
}) {
  return (
    <Stack gap="sm" component="ul" p={0} m={0} style={{ listStyle: "none" }} aria-label={label}>
      {rows.map((row) => {
        const c = card(row);
        return (
          <Card key={row.id} component="li" withBorder radius="md" padding="sm">
            <Group justify="space-between" wrap="nowrap" gap="xs">
              <Anchor component={Link} href={c.href} fw={600}>
                {c.title}
              </Anchor>
              <StatusBadge status={c.status} />
            </Group>
            {c.body}
          </Card>
        );
      })}
    </Stack>
  );
}
