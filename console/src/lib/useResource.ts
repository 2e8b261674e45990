import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, type CallOptions, type Envelope } from "./api";

export type Resource<T> = {
  data: T | undefined;
  meta: Envelope<T>["meta"];
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
};

/**
 * GETs `path` (null: nothing yet) and keeps the answer; `reload()` fetches it again. It asks
 * in the Test data switch's environment unless `opts.environment` names another.
 */
export function useResource<T>(path: string | null, opts: CallOptions = {}): Resource<T> {
  const { environment } = opts;
  const [state, setState] = useState<{
    data?: T;
    meta?: Envelope<T>["meta"];
    error: ApiError | null;
    loading: boolean;
  }>({ error: null, loading: path !== null });
  const [tick, setTick] = useState(0);
  const latest = useRef(0);

  useEffect(() => {
    if (path === null) return;
    const n = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    api.get<T>(path, { environment }).then(
      (res) => {
        if (n === latest.current)
          setState({ data: res.data, meta: res.meta, error: null, loading: false });
      },
      (err: unknown) => {
        if (n !== latest.current) return;
        const e =
          err instanceof ApiError ? err : new ApiError(0, "ERROR", (err as Error).message ?? "");
        setState((s) => ({ ...s, error: e, loading: false }));
      },
    );
  }, [path, tick, environment]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: state.data, meta: state.meta, error: state.error, loading: state.loading, reload };
}
