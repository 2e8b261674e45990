import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError } from "./api";
import type { CallLog, Credential } from "./types";

/** The status filters the server understands, besides an error code. */
export const STATUS_FILTERS = [
  { value: "", label: "Every status" },
  { value: "2xx", label: "Succeeded (2xx)" },
  { value: "3xx", label: "Redirected (3xx)" },
  { value: "4xx", label: "Client errors (4xx)" },
  { value: "refused", label: "Refused (401, 403, 429)" },
  { value: "5xx", label: "Server errors (5xx)" },
];

/** Error codes a call made with a key can end with (the server's catalogue, minus sign-in's). */
export const LOG_ERROR_CODES = [
  "API_KEY_REVOKED",
  "API_KEY_EXPIRED",
  "INVALID_TOKEN",
  "TOKEN_EXPIRED",
  "IP_NOT_ALLOWED",
  "SIGNATURE_REQUIRED",
  "SIGNATURE_INVALID",
  "SIGNATURE_EXPIRED",
  "SIGNATURE_REPLAYED",
  "SCOPE_REQUIRED",
  "RATE_LIMIT_EXCEEDED",
  "VALIDATION_ERROR",
  "NOT_FOUND",
  "CONFLICT",
  "FORBIDDEN",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "SERVICE_UNAVAILABLE",
  "INTERNAL_ERROR",
];

/** How a call authenticated, as the call log names it (`credential`), and what that means. */
export const CREDENTIAL_HELP: Record<Credential, string> = {
  key: "the API key alone (X-API-Key)",
  signature: "the API key and an RFC 9421 signature made with its signing secret",
  token: "an OAuth access token (Authorization: Bearer) the key was exchanged for",
};

export type CallLogQuery = {
  limit: number;
  /** 2xx, 3xx, 4xx, 5xx, "refused" or an error code; empty or absent: every call. */
  status?: string;
  /** Only calls after this row (by id) in the server's newest-first order: the next page. */
  beforeId?: number;
  /** Only the call (or calls) answered with this X-Request-Id; empty or absent: every call. */
  requestId?: string;
} & LogWindow & {
    /** Oldest first: only calls after this row (by id), the next page. */
    afterId?: number;
  };

/** Which calls of the log, in which order: ISO times, [from, before), and newest or oldest first. */
export type LogWindow = { order?: "asc" | "desc"; from?: string; before?: string };

/** The window's query parameters; newest first is the server's default and is not sent. */
function windowParams(params: URLSearchParams, w: LogWindow): void {
  if (w.order === "asc") params.set("order", "asc");
  if (w.from) params.set("from", w.from);
  if (w.before) params.set("before", w.before);
}

/** The request ids the server searches for: what it accepts in X-Request-Id. */
export const REQUEST_ID_RE = /^[A-Za-z0-9_.:@/+=-]{1,128}$/;

/** Why `value` (already trimmed) cannot be searched for as a request id; null when it can, or is empty. */
export function requestIdProblem(value: string): string | null {
  if (value === "" || REQUEST_ID_RE.test(value)) return null;
  if (value.length > 128)
    return `A request id has at most 128 characters; this has ${value.length}.`;
  const bad = [...new Set(value.replace(/[A-Za-z0-9_.:@/+=-]/g, ""))].map((c) =>
    c === " " ? "a space" : `“${c}”`,
  );
  const list = bad.length > 1 ? `${bad.slice(0, -1).join(", ")} and ${bad.at(-1)}` : bad[0];
  return `A request id holds only letters, digits and _ . : @ / + = -; this one has ${list}.`;
}

/** `GET /api/api-keys/:id/logs` with its filters; the server answers newest first unless `order` is asc. */
export function callLogPath(id: number, q: CallLogQuery): string {
  const params = new URLSearchParams({ limit: String(q.limit) });
  if (q.status) params.set("status", q.status);
  if (q.beforeId !== undefined) params.set("before_id", String(q.beforeId));
  if (q.requestId) params.set("request_id", q.requestId);
  windowParams(params, q);
  if (q.afterId !== undefined) params.set("after_id", String(q.afterId));
  return `/api/api-keys/${id}/logs?${params}`;
}

/** The CSV export of the same filter: every matching call, up to `rows`, newest first. */
export function callLogCsvPath(
  id: number,
  q: Pick<CallLogQuery, "status" | "requestId"> & LogWindow,
  rows = 100_000,
): string {
  const params = new URLSearchParams({ limit: String(rows) });
  if (q.status) params.set("status", q.status);
  if (q.requestId) params.set("request_id", q.requestId);
  windowParams(params, q);
  return `/api/api-keys/${id}/logs.csv?${params}`;
}

export type CallLogPages = {
  /** Every call fetched so far for this filter, newest first; undefined until the first page. */
  rows: CallLog[] | undefined;
  loading: boolean;
  error: ApiError | null;
  /** The last page was full, so older calls may remain. */
  more: boolean;
  loadingOlder: boolean;
  olderError: ApiError | null;
  /** Fetches the newest page again (dropping older pages). */
  reload: () => void;
  /** Fetches the page before the last call shown and appends it. */
  loadOlder: () => void;
};

type State = Omit<CallLogPages, "reload" | "loadOlder"> & { query: string };

const asApiError = (err: unknown) =>
  err instanceof ApiError ? err : new ApiError(0, "ERROR", (err as Error)?.message ?? String(err));

/**
 * A key's call log, filtered by the server and paged with `before_id` (the last row's id). Changing the filter or
 * the page size starts again from the newest call; the rows of another filter are never
 * shown under this one. A `requestId` asks for that call only.
 */
export function useCallLog(
  id: number,
  limit: number,
  status: string,
  requestId = "",
  window: LogWindow = {},
): CallLogPages {
  const { order, from, before } = window;
  const win = { order, from, before };
  const query = `${id} ${limit} ${status} ${requestId} ${order ?? ""} ${from ?? ""} ${before ?? ""}`;
  const [state, setState] = useState<State>({
    query,
    rows: undefined,
    loading: true,
    error: null,
    more: false,
    loadingOlder: false,
    olderError: null,
  });
  const [tick, setTick] = useState(0);
  // Bumped by every first-page fetch: answers to an older generation are dropped.
  const generation = useRef(0);
  const rowsRef = useRef<CallLog[] | undefined>(undefined);
  const olderBusy = useRef(false);
  rowsRef.current = state.query === query ? state.rows : undefined;

  useEffect(() => {
    const n = ++generation.current;
    olderBusy.current = false;
    setState((s) => ({
      query,
      rows: s.query === query ? s.rows : undefined,
      loading: true,
      error: null,
      more: s.query === query ? s.more : false,
      loadingOlder: false,
      olderError: null,
    }));
    api.get<CallLog[]>(callLogPath(id, { limit, status, requestId, ...win })).then(
      (res) => {
        if (n !== generation.current) return;
        setState({
          query,
          rows: res.data,
          loading: false,
          error: null,
          more: res.data.length >= limit,
          loadingOlder: false,
          olderError: null,
        });
      },
      (err: unknown) => {
        if (n !== generation.current) return;
        setState((s) => ({ ...s, loading: false, error: asApiError(err) }));
      },
    );
    // `query` names the window's three fields: `win` changes only when they do.
  }, [id, limit, status, requestId, query, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);

  const loadOlder = useCallback(() => {
    const last = rowsRef.current?.at(-1);
    if (!last || olderBusy.current) return;
    olderBusy.current = true;
    const n = generation.current;
    setState((s) => ({ ...s, loadingOlder: true, olderError: null }));
    const cursor = order === "asc" ? { afterId: last.id } : { beforeId: last.id };
    api.get<CallLog[]>(callLogPath(id, { limit, status, requestId, ...win, ...cursor })).then(
      (res) => {
        if (n !== generation.current) return;
        olderBusy.current = false;
        setState((s) => ({
          ...s,
          rows: [...(s.rows ?? []), ...res.data],
          more: res.data.length >= limit,
          loadingOlder: false,
        }));
      },
      (err: unknown) => {
        if (n !== generation.current) return;
        olderBusy.current = false;
        setState((s) => ({ ...s, loadingOlder: false, olderError: asApiError(err) }));
      },
    );
  }, [id, limit, status, requestId, query]);

  const current = state.query === query;
  return {
    rows: current ? state.rows : undefined,
    loading: current ? state.loading : true,
    error: current ? state.error : null,
    more: current && state.more,
    loadingOlder: current && state.loadingOlder,
    olderError: current ? state.olderError : null,
    reload,
    loadOlder,
  };
}
