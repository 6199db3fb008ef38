/**
 * `useQuery(fetch, deps, opts)`: the one way a view reads data from the backend.
 *
 * `fetch(signal)` runs after render whenever `deps` change (like `useEffect`; ESLint checks the
 * list, see eslint.config.js) and returns a promise, or `null` when there is nothing to read (no
 * tensor selected): then `data` is `null`. Only the latest call's outcome lands: an older one that
 * resolves late is dropped, as is everything after unmount, and `signal` aborts then (a job can
 * cancel its backend work on it). A change of `deps` clears `data`
 * first (the view shows its loading state, never the previous tensor's values) unless
 * `opts.keep`; `opts.on` lists values that refetch keeping the data shown (the session's
 * revision: an edit refreshes the numbers without a flash). `error` is the failure, for
 * {@link InlineError}; `reload()` fetches again; `set(data)` shows what a mutation returned.
 */
import { useCallback, useEffect, useRef, useState, type DependencyList } from "react";

export interface QueryOptions {
  /** Keep showing the last data while a new fetch for other `deps` runs. */
  keep?: boolean;
  /** Values that refetch when they change, keeping the data shown meanwhile. */
  on?: DependencyList;
}

export interface Query<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
  set: (data: T) => void;
}

interface State<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
}

function same(a: DependencyList | null, b: DependencyList): boolean {
  return a !== null && a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

export function useQuery<T>(fetch: (signal: AbortSignal) => Promise<T> | null, deps: DependencyList, opts: QueryOptions = {}): Query<T> {
  const [state, setState] = useState<State<T>>({ data: null, error: null, loading: false });
  const [nonce, setNonce] = useState(0);
  const lastDeps = useRef<DependencyList | null>(null);
  const keep = opts.keep ?? false;
  const on = opts.on ?? [];

  useEffect(
    () => {
      let live = true;
      const abort = new AbortController();
      const moved = !same(lastDeps.current, deps);
      lastDeps.current = deps;
      const p = fetch(abort.signal);
      if (p === null) {
        setState({ data: null, error: null, loading: false });
        return;
      }
      setState((s) => ({ data: moved && !keep ? null : s.data, error: null, loading: true }));
      p.then(
        (data) => live && setState({ data, error: null, loading: false }),
        (error: unknown) => live && setState((s) => ({ data: keep ? s.data : null, error, loading: false })),
      );
      return () => {
        live = false;
        abort.abort();
      };
    },
    // The caller's `deps` are checked at the call site (additionalHooks in eslint.config.js);
    // `fetch` is this render's closure over them, `on` and `nonce` only trigger a refetch.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [...deps, ...on, nonce],
  );

  const reload = useCallback(() => setNonce((n) => n + 1), []);
  const set = useCallback((data: T) => setState({ data, error: null, loading: false }), []);
  return { ...state, reload, set };
}
