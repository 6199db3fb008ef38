/**
 * Patches: the live patch-event log (undo back to any entry), configurations (export; import
 * with a preview, then apply as one undo group), presets, and the safety scan / boost tools.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { Channel } from "@tauri-apps/api/core";
import type { ApplyView, ImportPreview, PatchEventView } from "../bindings";
import { ConfigPanel } from "../components/patches/ConfigPanel";
import { EventLog } from "../components/patches/EventLog";
import { PresetsPanel } from "../components/patches/PresetsPanel";
import { ApplyResult, PreviewPanel } from "../components/patches/PreviewPanel";
import { ToolsPanel } from "../components/patches/ToolsPanel";
import { InlineError } from "../components/server/InlineError";
import { commands, unwrap } from "../lib/ipc";
import { useSession } from "../lib/session";
import "./ops.css";
import "./patches.css";

/** Events the screen keeps (the backend keeps as many). */
const LOG_LIMIT = 1000;

export function PatchesScreen() {
  const { summary, reload } = useSession();
  const [events, setEvents] = useState<PatchEventView[]>([]);
  const [undoable, setUndoable] = useState<number[]>([]);
  const [pending, setPending] = useState<ImportPreview | null>(null);
  const [result, setResult] = useState<ApplyView | null>(null);
  const [applyError, setApplyError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const timer = useRef<number | null>(null);

  const refreshUndoable = useCallback(async () => {
    const v = await commands.patchLog();
    setUndoable(v.undoable);
  }, []);

  useEffect(() => {
    const channel = new Channel<PatchEventView>();
    let live = true;
    channel.onmessage = (ev) => {
      if (!live) return;
      setEvents((l) => [ev, ...l].slice(0, LOG_LIMIT));
      if (timer.current === null) {
        timer.current = window.setTimeout(() => {
          timer.current = null;
          void refreshUndoable();
        }, 100);
      }
    };
    void commands.watchPatchEvents(channel).then((v) => {
      if (!live) return;
      setEvents(v.events);
      setUndoable(v.undoable);
    });
    return () => {
      live = false;
      if (timer.current !== null) window.clearTimeout(timer.current);
    };
  }, [refreshUndoable]);

  const showPreview = (p: ImportPreview) => {
    setPending(p);
    setResult(null);
    setApplyError(null);
  };

  async function apply() {
    if (!pending) return;
    setBusy(true);
    setApplyError(null);
    try {
      const r = unwrap(await commands.applyPending(pending.token));
      setResult(r);
      setPending(null);
      await reload();
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
        <EventLog events={events} undoable={undoable} onChanged={() => void refreshUndoable().then(reload)} />
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
