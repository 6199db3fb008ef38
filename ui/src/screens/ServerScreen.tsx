/**
 * Server: the request/response proxy in front of an OpenAI-compatible LLM server. Start/stop,
 * rules (with hit counters), response cache, and the live request log streamed from Rust.
 */
import { useCallback, useEffect, useMemo, useState } from "react";
import { Channel } from "@tauri-apps/api/core";
import type { RequestLogEntry_Serialize as RequestLogEntry, ServerView_Serialize as ServerView } from "../bindings";
import { CachePanel } from "../components/server/CachePanel";
import { InlineError } from "../components/InlineError";
import { ProxyPanel } from "../components/server/ProxyPanel";
import { RequestLog } from "../components/server/RequestLog";
import { RulesPanel } from "../components/server/RulesPanel";
import { coalesce } from "../lib/coalesce";
import { commands } from "../lib/ipc";
import "./ops.css";
import "./server.css";

/** Requests the screen keeps (the backend keeps as many). */
const LOG_LIMIT = 500;

export function ServerScreen() {
  const [view, setView] = useState<ServerView | null>(null);
  const [log, setLog] = useState<RequestLogEntry[]>([]);
  const [error, setError] = useState<unknown>(null);

  const refresh = useCallback(async () => {
    try {
      setView(await commands.serverState());
    } catch (e) {
      setError(e);
    }
  }, []);

  const refreshSoon = useMemo(() => coalesce(refresh), [refresh]);

  useEffect(() => {
    void refresh();
    const channel = new Channel<RequestLogEntry>();
    let live = true;
    channel.onmessage = (entry) => {
      if (!live) return;
      setLog((l) => [entry, ...l].slice(0, LOG_LIMIT));
      // Hit counters and cache counters changed with this request.
      refreshSoon();
    };
    commands
      // specta types a channel argument by the message's Deserialize shape; messages arrive
      // in the Serialize shape (optional fields present as null), which is what we declare.
      .watchProxyLog(channel as unknown as Parameters<typeof commands.watchProxyLog>[0])
      .then((entries) => live && setLog(entries))
      .catch(setError);
    return () => {
      live = false;
    };
  }, [refresh, refreshSoon]);

  return (
    <div className="screen ops server-screen" data-testid="screen-server">
      <InlineError error={error} />
      {view && (
        <div className="server-grid">
          <div className="server-col">
            <ProxyPanel view={view} onView={setView} />
            <CachePanel view={view} onView={setView} />
          </div>
          <RulesPanel view={view} onView={setView} />
          <RequestLog
            entries={log}
            onClear={() => {
              setLog([]);
              void commands.clearProxyLog();
            }}
          />
        </div>
      )}
    </div>
  );
}
