/**
 * The Model screen: open (path, dialog, demo, recent files), the file overview and shards,
 * the audit (can this file be trusted?), metadata with editing (chat template included), the
 * staged/live mode with what a running llama.cpp sees live (and what default llama.cpp copies at
 * load, measured), and the undo history.
 */
import { useCallback, useEffect, useState } from "react";
import { ModelOverview } from "../components/ModelOverview";
import { AuditCard } from "../components/model/AuditCard";
import { MetadataEditor } from "../components/model/MetadataEditor";
import { ChatTemplate, CHAT_TEMPLATE_KEY } from "../components/model/ChatTemplate";
import { LoadBuffersCard } from "../components/model/LoadBuffersCard";
import { ModePanel } from "../components/model/ModePanel";
import { OpenPanel } from "../components/model/OpenPanel";
import { HistoryCard, ShardsCard } from "../components/model/SidePanels";
import { commands } from "../lib/ipc";
import type { EditState, MetaEditRow } from "../lib/editState";
import { setEditState, useEditState } from "../lib/editState";
import { useSession } from "../lib/session";
import "./model.css";
import { InlineError } from "../components/InlineError";

export function ModelScreen() {
  const { summary, revision, opening } = useSession();
  const state = useEditState(revision, summary?.path ?? null);
  const [rows, setRows] = useState<MetaEditRow[]>([]);
  const [error, setError] = useState<string | null>(null);

  const loadMeta = useCallback(async () => {
    const r = await commands.sessionMetadata();
    if (r.status === "ok") {
      setRows(r.data);
      setError(null);
    } else if (r.error.code !== "NoModel") setError(r.error.message);
  }, []);

  // Metadata follows the edit state: every staged edit, undo, redo or save changes it.
  useEffect(() => {
    if (summary) void loadMeta();
  }, [summary, state, loadMeta]);

  const changed = useCallback((s: EditState) => setEditState(s), []);

  return (
    <div className="screen screen-scroll model-screen" data-testid="screen-model">
      <div className="model-grid">
        <div className="model-main">
          {summary ? (
            <>
              <ModelOverview summary={summary} />
              <AuditCard summary={summary} />
              <ShardsCard path={summary.path} />
              <InlineError error={error} />
              <MetadataEditor rows={rows} onChanged={changed} />
              <ChatTemplate row={rows.find((r) => r.key === CHAT_TEMPLATE_KEY)} onChanged={changed} />
            </>
          ) : (
            <section className="card empty-card">
              <h2>{opening ? "Opening model…" : "No model open"}</h2>
              <p className="muted">Open a .gguf file, pick a recent one, or open the demo model.</p>
            </section>
          )}
        </div>
        <div className="model-side">
          <OpenPanel />
          {summary && <ModePanel state={state} onChanged={changed} />}
          {summary && <LoadBuffersCard path={summary.path} fileSize={summary.fileSize} />}
          {summary && <HistoryCard state={state} />}
        </div>
      </div>
    </div>
  );
}
