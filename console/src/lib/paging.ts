import { useLocation } from "./router";
import { type Resource, useResource } from "./useResource";

/** The page the address asks for (`?page=`): 1 when it is absent or not a positive number. */
export function pageOf(query: URLSearchParams): number {
  return Math.max(1, Number(query.get("page") ?? "1") || 1);
}

/** The rows page `page` holds, first and last counted from 1, and how many pages `total` fills. */
export function pageRange(page: number, perPage: number, total: number) {
  return {
    first: (page - 1) * perPage + 1,
    last: Math.min(page * perPage, total),
    pages: Math.max(1, Math.ceil(total / perPage)),
  };
}

/** Filters by query parameter; an empty, null or undefined value leaves that filter out. */
export type Filters = Record<string, string | null | undefined>;

/** `path?page=…&per_page=…` followed by every filter that has a value, in the order given. */
export function pagedPath(path: string, page: number, perPage: number, filters: Filters): string {
  const params = new URLSearchParams({ page: String(page), per_page: String(perPage) });
  for (const [name, value] of Object.entries(filters)) if (value) params.set(name, value);
  return `${path}?${params}`;
}

export type PagedList<T> = Resource<T[]> & {
  page: number;
  perPage: number;
  /** Rows on every page together, as the server counts them (0 until it has answered). */
  total: number;
  pages: number;
};

/** Loads the page of `path` the address asks for, `perPage` rows a page, with `filters`. */
export function usePagedList<T>(path: string, perPage: number, filters: Filters): PagedList<T> {
  const { query } = useLocation();
  const page = pageOf(query);
  const list = useResource<T[]>(pagedPath(path, page, perPage, filters));
  const total = list.meta?.total ?? 0;
  return { ...list, page, perPage, total, pages: pageRange(page, perPage, total).pages };
}
