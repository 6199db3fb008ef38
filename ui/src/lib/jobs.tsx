/**
 * Long work and its progress, in a context of its own: the status bar is the one view that shows
 * every progress message, so only it (and whoever asks with {@link useJobs}) re-renders on one.
 *
 * - `runJob(label, work, opts)`: long work with a progress bar and a Cancel button in the status
 *   bar. `work(jobId, channel)` passes both to the command; Cancel calls `cancel_job(jobId)`. With
 *   `opts.quietMs` the bar shows only once the job has run that long: a job that finishes sooner
 *   (a small tensor's statistics) neither flashes the bar nor replaces the last note;
 * - `note`: the last finished job's outcome (its last progress line, e.g. "opened demo.gguf");
 *   `say(text)` replaces it (or clears it with `null`) and makes late progress of older jobs
 *   leave it alone.
 *
 * Two contexts: the actions (`runJob`, `cancelJob`, `say`, stable for the window's life) and the
 * state (`job`, `note`). The session and the screens take the actions only.
 */
import { Channel } from "@tauri-apps/api/core";
import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import { commands, describeFailure, type Progress } from "./ipc";

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

/** The last finished job's outcome line and how many progress messages it streamed. */
export interface Note {
  text: string;
  messages: number;
}

export type RunJob = <T>(label: string, work: (job: number, channel: Channel<Progress>) => Promise<T>, opts?: JobOptions) => Promise<T>;

/** What starts, cancels and describes jobs; the same object for the window's life. */
export interface JobActions {
  runJob: RunJob;
  /** Cancels the job the status bar shows. */
  cancelJob: () => void;
  /** Replaces the outcome line (`null` clears it); later progress of older jobs leaves it alone. */
  say: (text: string | null) => void;
}

export interface Jobs extends JobActions {
  job: JobState | null;
  note: Note | null;
}

const ActionsContext = createContext<JobActions | null>(null);
const JobsContext = createContext<Jobs | null>(null);

/** The job actions; throws outside a {@link JobsProvider} (a programming error). */
export function useJobActions(): JobActions {
  const a = useContext(ActionsContext);
  if (!a) throw new Error("useJobActions() outside <JobsProvider>");
  return a;
}

/** The running job and the last outcome, with the actions; re-renders on every progress message. */
export function useJobs(): Jobs {
  const j = useContext(JobsContext);
  if (!j) throw new Error("useJobs() outside <JobsProvider>");
  return j;
}

let nextJob = 1;
/** A fresh job id (unique within the window). */
export function newJobId(): number {
  return nextJob++;
}

export function JobsProvider({ children }: { children: ReactNode }) {
  const [job, setJob] = useState<JobState | null>(null);
  const [note, setNote] = useState<Note | null>(null);
  const jobRef = useRef<JobState | null>(null);
  /** The id of the job that started last (its late progress may still update the note). */
  const lastJob = useRef(0);

  const runJob = useCallback<RunJob>(async (label, work, opts) => {
    const id = newJobId();
    const channel = new Channel<Progress>();
    const seen: { last: Progress | null; messages: number; finished: boolean; shown: boolean } = {
      last: null,
      messages: 0,
      finished: false,
      shown: false,
    };
    const show = () => {
      // A newer job showed while this one was quiet (another model opened while the old
      // one's statistics were starting): this one is no longer what the user is waiting for.
      if (lastJob.current > id) return;
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
      if (seen.shown && lastJob.current === id) setNote({ text: seen.last?.message ?? `${label}: done`, messages: seen.messages });
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
  }, []);

  const cancelJob = useCallback(() => {
    const j = jobRef.current;
    if (!j) return;
    setJob((cur) => (cur && cur.id === j.id ? { ...cur, canceling: true } : cur));
    void commands.cancelJob(j.id);
  }, []);

  const say = useCallback((text: string | null) => {
    lastJob.current = 0;
    setNote(text == null ? null : { text, messages: 0 });
  }, []);

  const actions = useMemo<JobActions>(() => ({ runJob, cancelJob, say }), [runJob, cancelJob, say]);
  const jobs = useMemo<Jobs>(() => ({ ...actions, job, note }), [actions, job, note]);
  return (
    <ActionsContext.Provider value={actions}>
      <JobsContext.Provider value={jobs}>{children}</JobsContext.Provider>
    </ActionsContext.Provider>
  );
}
