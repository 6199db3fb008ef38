/**
 * The studio's shared state, one React context for every screen:
 *
 * - the open model (`summary`, `tensors`, `metadata`) and `open(path)` / `reload()`;
 * - `revision`: the backend's count of patch events (edits, undo, redo, save…). The session
 *   subscribes once to the patch-event channel (`watch_patch_events`) and re-reads the count when
 *   an event arrives (edits made by any screen, a configuration import, the proxy), and right
 *   after `bumpRevision()`; views that show tensor values or bytes put it in their fetch
 *   dependencies so staged edits made anywhere show everywhere. `onPatchEvent(listener)` hands
 *   the same events on (the Patches log);
 * - the selected tensor and the current screen;
 * - `runJob(label, work, opts)`: long work with progress in the status bar — the job state lives in
 *   its own context (`./jobs`), so progress messages re-render the status bar, not every screen;
 * - `reportError(where, e)`: the fallback banner for failures that have no control to sit
 *   next to (screens show their own errors inline where the user acted).
 */
import { Channel } from "@tauri-apps/api/core";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import type { PatchEventView_Serialize as PatchEventView } from "../bindings";
import { coalesce } from "./coalesce";
import { commands, describeFailure, unwrap, type ErrorCode, type MetaRow, type ModelSummary, type TensorRow } from "./ipc";
import { JobsProvider, useJobActions, type RunJob } from "./jobs";

export { newJobId, type JobOptions, type JobState } from "./jobs";

export type ScreenName = "model" | "tensors" | "diff" | "bytes" | "server" | "patches" | "run" | "surgery";

export interface Loaded {
  summary: ModelSummary;
  tensors: TensorRow[];
  metadata: MetaRow[];
}

/** A failure shown in the banner: where it happened and the backend's words. */
export interface Failure {
  where: string;
  title: string;
  detail: string;
  code: ErrorCode | null;
}

export interface Session {
  model: Loaded | null;
  summary: ModelSummary | null;
  tensors: TensorRow[];
  metadata: MetaRow[];
  opening: boolean;
  open: (path: string) => Promise<boolean>;
  reload: () => Promise<void>;
  revision: number;
  bumpRevision: () => Promise<void>;
  selected: string | null;
  setSelected: (name: string | null) => void;
  screen: ScreenName;
  setScreen: (s: ScreenName) => void;
  runJob: RunJob;
  /** Calls `listener` with every patch event from now on; returns the unsubscribe function. */
  onPatchEvent: (listener: (e: PatchEventView) => void) => () => void;
  failure: Failure | null;
  reportError: (where: string, e: unknown) => void;
  clearError: () => void;
}

const SessionContext = createContext<Session | null>(null);

/** The session; throws outside a {@link SessionProvider} (a programming error). */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession() outside <SessionProvider>");
  return s;
}

/** The session, inside the jobs context it starts its work in. */
export function SessionProvider({ children }: { children: ReactNode }) {
  return (
    <JobsProvider>
      <SessionState>{children}</SessionState>
    </JobsProvider>
  );
}

function SessionState({ children }: { children: ReactNode }) {
  const { runJob, say } = useJobActions();
  const [model, setModel] = useState<Loaded | null>(null);
  const [opening, setOpening] = useState(false);
  const [revision, setRevision] = useState(0);
  const [selected, setSelected] = useState<string | null>(null);
  const [screen, setScreen] = useState<ScreenName>("tensors");
  const [failure, setFailure] = useState<Failure | null>(null);
  const listeners = useRef(new Set<(e: PatchEventView) => void>());

  const reportError = useCallback((where: string, e: unknown) => {
    const d = describeFailure(e);
    setFailure({ where, ...d });
  }, []);

  const bumpRevision = useCallback(async () => {
    setRevision(await commands.sessionRevision());
  }, []);

  const load = useCallback(async (summary: ModelSummary) => {
    const [tensors, metadata] = await Promise.all([commands.listTensors(), commands.readMetadata()]);
    const rows = unwrap(tensors);
    setModel({ summary, tensors: rows, metadata: unwrap(metadata) });
    setSelected((cur) => (cur && rows.some((t) => t.name === cur) ? cur : (rows[0]?.name ?? null)));
  }, []);

  const open = useCallback(
    async (path: string): Promise<boolean> => {
      setOpening(true);
      setFailure(null);
      // The last job's line belongs to the model being replaced.
      say(null);
      try {
        const summary = await runJob(`open ${path.split(/[\\/]/).pop() ?? path}`, async (jobId, channel) =>
          unwrap(await commands.openModel(path, jobId, channel)),
        );
        await load(summary);
        await bumpRevision();
        return true;
      } catch (e) {
        reportError(`open ${path}`, e);
        say(`could not open ${path}`);
        return false;
      } finally {
        setOpening(false);
      }
    },
    [runJob, say, load, bumpRevision, reportError],
  );

  const reload = useCallback(async () => {
    try {
      await load(unwrap(await commands.modelSummary()));
      await bumpRevision();
    } catch (e) {
      reportError("reload the model", e);
    }
  }, [load, bumpRevision, reportError]);

  // One subscription to the patch events for the window's life: each event re-reads the
  // revision (coalesced: a burst of events costs one read after the one running) and goes to
  // the listeners. The backend keeps one watcher, so nothing else subscribes.
  useEffect(() => {
    const channel = new Channel<PatchEventView>();
    let live = true;
    const refresh = coalesce(async () => {
      const r = await commands.sessionRevision();
      if (live) setRevision((cur) => (cur === r ? cur : r));
    });
    channel.onmessage = (e) => {
      if (!live) return;
      refresh();
      for (const l of listeners.current) l(e);
    };
    // specta types a channel argument by the Deserialize shape; messages arrive in the
    // Serialize shape (optional fields present as null), which is what we declare.
    void commands.watchPatchEvents(channel as unknown as Parameters<typeof commands.watchPatchEvents>[0]);
    return () => {
      live = false;
    };
  }, []);

  const onPatchEvent = useCallback((listener: (e: PatchEventView) => void) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  const value = useMemo<Session>(
    () => ({
      model,
      summary: model?.summary ?? null,
      tensors: model?.tensors ?? [],
      metadata: model?.metadata ?? [],
      opening,
      open,
      reload,
      revision,
      bumpRevision,
      selected,
      setSelected,
      screen,
      setScreen,
      runJob,
      onPatchEvent,
      failure,
      reportError,
      clearError: () => setFailure(null),
    }),
    [model, opening, open, reload, revision, bumpRevision, selected, screen, runJob, onPatchEvent, failure, reportError],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
