/**
 * Patches: the live patch-event log (undo back to any entry), configurations (export; import
 * with a preview, then apply as one undo group), presets, and the safety scan / boost tools.
 */
import { useCallback, useEffect, useMemo, useState } from "react";
import type { ApplyView_Serialize as ApplyView, ImportPreview_Serialize as ImportPreview, PatchEventView_Serialize as PatchEventView } from "../bindings";
import { ConfigPanel } from "../components/patches/ConfigPanel";
import { EventLog } from "../components/patches/EventLog";
import { PresetsPanel } from "../components/patches/PresetsPanel";
import { ApplyResult, PreviewPanel } from "../components/patches/PreviewPanel";
import { ToolsPanel } from "../components/patches/ToolsPanel";
import { InlineError } from "../components/InlineError";
import { coalesce } from "../lib/coalesce";
import { commands, unwrap } from "../lib/ipc";
import { refreshEditState, useEditState } from "../lib/editState";
import { useSession } from "../lib/session";
import "./ops.css";
import "./patches.css";

/** Events the screen keeps (the backend keeps as many). */
const LOG_LIMIT = 1000;

export function PatchesScreen() {
  const { summary, reload, onPatchEvent, revision } = useSession();
  const editState = useEditState(revision, summary?.path ?? null);
  const [events, setEvents] = useState<PatchEventView[]>([]);
  const [undoable, setUndoable] = useState<number[]>([]);
  const [redoable, setRedoable] = useState<number[]>([]);
  const [pending, setPending] = useState<ImportPreview | null>(null);
  const [result, setResult] = useState<ApplyView | null>(null);
  const [applyError, setApplyError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const refreshUndoable = useCallback(async () => {
    const v = await commands.patchLog();
    setUndoable(v.undoable);
    setRedoable(v.redoable);
  }, []);
  const refreshSoon = useMemo(() => coalesce(refreshUndoable), [refreshUndoable]);

  // The log as the backend has it, then every event the session's subscription hands on.
  // Events that arrive before the snapshot are kept and merged by id (newest first).
  useEffect(() => {
    let live = true;
    let early: PatchEventView[] | null = [];
    const off = onPatchEvent((ev) => {
      if (early) early.unshift(ev);
      else setEvents((l) => [ev, ...l].slice(0, LOG_LIMIT));
      refreshSoon();
    });
    void commands.patchLog().then((v) => {
      if (!live) return;
      const newest = v.events[0]?.id ?? -1;
      const later = (early ?? []).filter((e) => e.id > newest);
      early = null;
      setEvents([...later, ...v.events].slice(0, LOG_LIMIT));
      setUndoable(v.undoable);
      setRedoable(v.redoable);
    });
    return () => {
      live = false;
      off();
    };
  }, [onPatchEvent, refreshSoon]);

  const showPreview = (p: ImportPreview) => {
    setPending(p);
    setResult(null);
    setApplyError(null);
  };

  async function allowOtherModel() {
    if (!pending) return;
    setApplyError(null);
    try {
      setPending(unwrap(await commands.allowOtherModel(pending.token)));
    } catch (e) {
      setApplyError(e);
    }
  }

  async function apply() {
    if (!pending) return;
    setBusy(true);
    setApplyError(null);
    try {
      const r = unwrap(await commands.applyPending(pending.token));
      setResult(r);
      setPending(null);
      await reload();
      // Metadata edits staged by the import show as pending in the top bar and Model screen.
      await refreshEditState();
    } catch (e) {
      setApplyError(e);
    } finally {
      setBusy(false);
    }
  }

  if (!summary) {
    return (
      <div className="screen ops patches-screen" data-testid="screen-patches">
        <div className="empty-state">
          <h2>No model open</h2>
          <p>Open a model on the Model screen: its patch log, configurations and presets appear here.</p>
        </div>
      </div>
    );
  }

  return (
    <div className="screen ops patches-screen" data-testid="screen-patches">
      <div className="patches-grid">
        <EventLog
          events={events}
          undoable={undoable}
          redoable={redoable}
          metadata={editState?.history.filter((h) => h.kind === "metadata") ?? []}
          onChanged={() => void refreshUndoable().then(reload).then(refreshEditState)}
        />
        <div className="patches-col">
          <ConfigPanel onPreview={showPreview} modelName={summary.fileName} />
          {(pending || result || applyError != null) && (
            <section className="card">
              <header className="card-head">
                <h3>{pending ? "Import preview" : "Applied"}</h3>
              </header>
              {pending && (
                <PreviewPanel
                  preview={pending}
                  busy={busy}
                  onApply={apply}
                  onDiscard={() => setPending(null)}
                  onAllowOtherModel={() => void allowOtherModel()}
                  applyLabel={pending.source.startsWith("preset ") ? "Optimize with this preset" : "Apply"}
                />
              )}
              <InlineError error={applyError} testId="apply-error" />
              {result && <ApplyResult result={result} />}
            </section>
          )}
          <PresetsPanel onPreview={showPreview} />
          <ToolsPanel onChanged={() => void reload()} />
        </div>
      </div>
    </div>
  );
}
