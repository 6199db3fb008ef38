/**
 * The studio's shared state, one React context for every screen:
 *
 * - the open model (`summary`, `tensors`, `metadata`) and `open(path)` / `reload()`;
 * - `revision`: the backend's count of patch events (edits, undo, redo, save…). It is polled
 *   (cheap) and refreshed right after `bumpRevision()`; views that show tensor values or bytes
 *   put it in their fetch dependencies so staged edits made anywhere show everywhere;
 * - the selected tensor and the current screen;
 * - `runJob(label, work, opts)`: long work with a progress bar and a Cancel button in the status bar.
 *   `work(jobId, channel)` passes both to the command; Cancel calls `cancel_job(jobId)`. With
 *   `opts.quietMs` the bar shows only once the job has run that long: a job that finishes
 *   sooner (a small tensor's statistics) neither flashes the bar nor replaces the last note;
 * - `reportError(where, e)`: the fallback banner for failures that have no control to sit
 *   next to (screens show their own errors inline where the user acted).
 */
import { Channel } from "@tauri-apps/api/core";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { commands, describeFailure, unwrap, type ErrorCode, type MetaRow, type ModelSummary, type Progress, type TensorRow } from "./ipc";

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

/** The job the status bar shows. */
export interface JobState {
  id: number;
  label: string;
  progress: Progress | null;
  /** How many progress messages arrived (e2e tests check progress streamed). */
  messages: number;
  canceling: boolean;
}

/** How a job shows in the status bar. */
export interface JobOptions {
  /** Show the bar (and the outcome note) only if the job is still running after this long. */
  quietMs?: number;
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
  job: JobState | null;
  runJob: <T>(label: string, work: (job: number, channel: Channel<Progress>) => Promise<T>, opts?: JobOptions) => Promise<T>;
  cancelJob: () => void;
  failure: Failure | null;
  reportError: (where: string, e: unknown) => void;
  clearError: () => void;
  /** The last finished job's outcome: its last progress line (e.g. "opened demo.gguf") and
   * how many progress messages it streamed. */
  note: { text: string; messages: number } | null;
}

const SessionContext = createContext<Session | null>(null);

/** The session; throws outside a {@link SessionProvider} (a programming error). */
export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession() outside <SessionProvider>");
  return s;
}

let nextJob = 1;
/** A fresh job id (unique within the window). */
export function newJobId(): number {
  return nextJob++;
}

const REVISION_POLL_MS = 1000;

export function SessionProvider({ children }: { children: ReactNode }) {
  const [model, setModel] = useState<Loaded | null>(null);
  const [opening, setOpening] = useState(false);
  const [revision, setRevision] = useState(0);
  const [selected, setSelected] = useState<string | null>(null);
  const [screen, setScreen] = useState<ScreenName>("tensors");
  const [job, setJob] = useState<JobState | null>(null);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [note, setNote] = useState<{ text: string; messages: number } | null>(null);
  const jobRef = useRef<JobState | null>(null);
  /** The id of the job that started last (its late progress may still update the note). */
  const lastJob = useRef(0);

  const reportError = useCallback((where: string, e: unknown) => {
    const d = describeFailure(e);
    setFailure({ where, ...d });
  }, []);

  const runJob = useCallback(
    async <T,>(label: string, work: (job: number, channel: Channel<Progress>) => Promise<T>, opts?: JobOptions): Promise<T> => {
      const id = newJobId();
      const channel = new Channel<Progress>();
      const seen: { last: Progress | null; messages: number; finished: boolean; shown: boolean } = {
        last: null,
        messages: 0,
        finished: false,
        shown: false,
      };
      const show = () => {
        const start: JobState = { id, label, progress: seen.last, messages: seen.messages, canceling: false };
        seen.shown = true;
        jobRef.current = start;
        setJob(start);
        setNote(null);
        lastJob.current = id;
      };
      const quiet = opts?.quietMs ?? 0;
      const timer = quiet > 0 ? window.setTimeout(show, quiet) : undefined;
      if (quiet <= 0) show();
      channel.onmessage = (p) => {
        seen.last = p;
        seen.messages += 1;
        setJob((j) => (j && j.id === id ? { ...j, progress: p, messages: j.messages + 1 } : j));
        // Channel messages are not ordered with the command's result: the last ones may land
        // after it resolved. Keep the outcome line in step while this is still the latest job.
        if (seen.finished && lastJob.current === id) setNote({ text: p.message, messages: seen.messages });
      };
      try {
        const out = await work(id, channel);
        seen.finished = true;
        // A job that ends after a newer one showed (an old model's statistics finishing after
        // another model opened) leaves the newer job's line alone.
        if (seen.shown && lastJob.current === id)
          setNote({ text: seen.last?.message ?? `${label}: done`, messages: seen.messages });
        return out;
      } catch (e) {
        const d = describeFailure(e);
        if (seen.shown && lastJob.current === id) {
          lastJob.current = 0;
          setNote({ text: d.code === "Canceled" ? `${label}: canceled` : `${label}: failed`, messages: seen.messages });
        }
        throw e;
      } finally {
        window.clearTimeout(timer);
        setJob((j) => (j && j.id === id ? null : j));
        if (jobRef.current?.id === id) jobRef.current = null;
      }
    },
    [],
  );

  const cancelJob = useCallback(() => {
    const j = jobRef.current;
    if (!j) return;
    setJob((cur) => (cur && cur.id === j.id ? { ...cur, canceling: true } : cur));
    void commands.cancelJob(j.id);
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
      setNote(null);
      try {
        const summary = await runJob(`open ${path.split(/[\\/]/).pop() ?? path}`, async (jobId, channel) =>
          unwrap(await commands.openModel(path, jobId, channel)),
        );
        await load(summary);
        await bumpRevision();
        return true;
      } catch (e) {
        reportError(`open ${path}`, e);
        lastJob.current = 0;
        setNote({ text: `could not open ${path}`, messages: 0 });
        return false;
      } finally {
        setOpening(false);
      }
    },
    [runJob, load, bumpRevision, reportError],
  );

  const reload = useCallback(async () => {
    try {
      await load(unwrap(await commands.modelSummary()));
      await bumpRevision();
    } catch (e) {
      reportError("reload the model", e);
    }
  }, [load, bumpRevision, reportError]);

  // Poll the revision so edits made by any screen (or a configuration import) show everywhere.
  useEffect(() => {
    if (!model) return;
    const t = window.setInterval(() => {
      void commands.sessionRevision().then((r) => setRevision((cur) => (cur === r ? cur : r)));
    }, REVISION_POLL_MS);
    return () => window.clearInterval(t);
  }, [model]);

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
      job,
      runJob,
      cancelJob,
      failure,
      reportError,
      clearError: () => setFailure(null),
      note,
    }),
    [model, opening, open, reload, revision, bumpRevision, selected, screen, job, runJob, cancelJob, failure, reportError, note],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
