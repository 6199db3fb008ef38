/**
 * The top bar's edit controls: mode, modified indicator, Undo / Redo / Save / Save As, and
 * their shortcuts (Ctrl+Z, Ctrl+Shift+Z and Ctrl+Y, Ctrl+S, Ctrl+Shift+S). Save and Save As run
 * as jobs (progress bar + Cancel in the status bar); failures show right here.
 */
import { useCallback, useState, type FormEvent } from "react";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import { useSession } from "../../lib/session";
import { useShortcut } from "../../lib/shortcuts";
import { pickSaveFile } from "../../lib/dialog";
import { refreshEditState, setEditState, useEditState } from "../../lib/editState";
import "../../screens/model.css";
import { InlineError } from "../InlineError";

/** The actions, shared by the buttons and the shortcuts (and the Model screen). */
export function useEditActions() {
  const { summary, runJob, reload, bumpRevision } = useSession();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const step = useCallback(
    async (undo: boolean) => {
      setError(null);
      try {
        const s = unwrap(await (undo ? commands.undo() : commands.redo()));
        setEditState(s);
        await bumpRevision();
      } catch (e) {
        setError(describeFailure(e).detail);
      }
    },
    [bumpRevision],
  );

  const save = useCallback(
    async (dest: string | null): Promise<boolean> => {
      if (!summary || busy) return false;
      setError(null);
      setBusy(true);
      try {
        const name = dest ? (dest.split(/[\\/]/).pop() ?? dest) : summary.fileName;
        const out = await runJob(`save ${name}`, async (job, channel) =>
          unwrap(dest ? await commands.saveModelAs(dest, job, channel) : await commands.saveModel(job, channel)),
        );
        if (out.reattached) await reload();
        else await bumpRevision();
        await refreshEditState();
        return true;
      } catch (e) {
        const d = describeFailure(e);
        setError(d.code === "Canceled" ? "Save canceled: the file was left as it was." : d.detail);
        await refreshEditState().catch(() => undefined);
        return false;
      } finally {
        setBusy(false);
      }
    },
    [summary, busy, runJob, reload, bumpRevision],
  );

  return { step, save, error, setError, busy };
}

export function EditControls() {
  const { summary, revision } = useSession();
  const state = useEditState(revision, summary?.path ?? null);
  const { step, save, error, setError, busy } = useEditActions();
  const [asOpen, setAsOpen] = useState(false);
  const [asPath, setAsPath] = useState("");

  const open = !!summary && !!state?.path;
  const canUndo = open && !!state?.canUndo && !busy;
  const canRedo = open && !!state?.canRedo && !busy;

  const showSaveAs = useCallback(() => {
    if (!summary) return;
    setError(null);
    setAsPath((cur) => cur || summary.path.replace(/\.gguf$/i, "") + "-edited.gguf");
    setAsOpen(true);
  }, [summary, setError]);

  useShortcut("mod+z", () => canUndo && void step(true));
  useShortcut("mod+shift+z", () => canRedo && void step(false));
  useShortcut("mod+y", () => canRedo && void step(false));
  useShortcut("mod+s", () => open && void save(null));
  useShortcut("mod+shift+s", showSaveAs);

  const submitAs = async (e: FormEvent) => {
    e.preventDefault();
    if (!asPath.trim()) {
      setError("Give the path of the new .gguf file.");
      return;
    }
    if (await save(asPath.trim())) setAsOpen(false);
  };

  const browse = async () => {
    try {
      const picked = await pickSaveFile(summary?.fileName.replace(/\.gguf$/i, "-edited.gguf") ?? "model.gguf");
      if (picked) setAsPath(picked);
    } catch (e) {
      setError(describeFailure(e).detail);
    }
  };

  const mode = state?.mode ?? null;
  return (
    <div className="edit-controls" data-testid="edit-controls">
      {open && mode && (
        <span className={`chip mode-chip ${mode}`} data-testid="mode-chip" title={mode === "live" ? "Edits reach the file at once" : "Edits stay in memory until Save"}>
          {mode === "live" ? "● LIVE" : mode === "staged" ? "Staged" : "Read-only"}
        </span>
      )}
      {open && (
        <span
          className={`modified ${state?.modified ? "yes" : "no"}`}
          data-testid="modified-indicator"
          data-modified={state?.modified ? "true" : "false"}
          title={
            state?.modified
              ? `${state.pendingMetadata} metadata edit(s) and ${state.dirtyBytes} staged byte(s) not saved`
              : "Everything is saved"
          }
        >
          {state?.modified ? "● Modified" : "Saved"}
        </span>
      )}
      <div className="btn-group">
        <button className="tool" data-testid="undo-button" disabled={!canUndo} onClick={() => void step(true)} title="Undo (Ctrl+Z)" aria-label="Undo">
          ↶
        </button>
        <button className="tool" data-testid="redo-button" disabled={!canRedo} onClick={() => void step(false)} title="Redo (Ctrl+Shift+Z)" aria-label="Redo">
          ↷
        </button>
      </div>
      <div className="btn-group">
        <button className="tool primary" data-testid="save-button" disabled={!open || busy} onClick={() => void save(null)} title="Save (Ctrl+S)">
          Save
        </button>
        <button className="tool" data-testid="save-as-button" disabled={!open || busy} onClick={showSaveAs} title="Save As (Ctrl+Shift+S)">
          Save As…
        </button>
      </div>
      {error && !asOpen && (
        <div className="edit-error" data-testid="edit-error" role="alert">
          <span>{error}</span>
          <button className="link" onClick={() => setError(null)} aria-label="Dismiss">
            ✕
          </button>
        </div>
      )}
      {asOpen && (
        <form className="save-as-panel" data-testid="save-as-panel" onSubmit={(e) => void submitAs(e)}>
          <label htmlFor="save-as-path">Save a copy as, and continue in it</label>
          <div className="row">
            <input
              id="save-as-path"
              data-testid="save-as-path"
              type="text"
              spellCheck={false}
              value={asPath}
              onChange={(e) => setAsPath(e.target.value)}
              autoFocus
              onKeyDown={(e) => e.key === "Escape" && setAsOpen(false)}
            />
            <button type="button" className="ghost" onClick={() => void browse()}>
              Browse…
            </button>
          </div>
          <InlineError error={error} testId="save-as-error" />
          <div className="row end">
            <button type="button" className="ghost" onClick={() => setAsOpen(false)}>
              Close
            </button>
            <button type="submit" className="tool primary" data-testid="save-as-confirm" disabled={busy}>
              Save As
            </button>
          </div>
        </form>
      )}
    </div>
  );
}
