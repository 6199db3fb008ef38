import { useState, type FormEvent } from "react";
import { pickOpenFile } from "../lib/dialog";
import { auditBadge, useAudit } from "../lib/model/audit";
import { useSession } from "../lib/session";
import type { ThemeChoice } from "../lib/theme";
import { EditControls } from "./model/EditControls";
import { useGuardedOpen } from "./model/GuardedOpen";

interface Props {
  theme: ThemeChoice;
  onCycleTheme: () => void;
}

const THEME_LABEL: Record<ThemeChoice, string> = { system: "◐ Auto", light: "☀ Light", dark: "☾ Dark" };

export function TopBar({ theme, onCycleTheme }: Props) {
  const { summary, opening: busy, reportError, setScreen } = useSession();
  const audit = useAudit(summary);
  const badge = audit?.ok ? auditBadge(audit.view) : null;
  const showAudit = () => {
    setScreen("model");
    // The card is on the Model screen, which renders on the next frame.
    requestAnimationFrame(() => document.getElementById("audit-card")?.scrollIntoView({ block: "start" }));
  };
  const [path, setPath] = useState("");
  // Opening another model drops the open one's unsaved edits: ask first (as the Model screen does).
  const guard = useGuardedOpen();
  const onOpen = (p: string) => void guard.request(p);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (path.trim()) onOpen(path.trim());
  };
  const browse = async () => {
    try {
      const picked = await pickOpenFile();
      if (picked) {
        setPath(picked);
        onOpen(picked);
      }
    } catch (e) {
      reportError("open file dialog", e);
    }
  };
  return (
    <header className="topbar">
      <div className="brand">
        <span className="logo" aria-hidden>
          H
        </span>
        <span className="brand-name">Hotpatch Studio</span>
      </div>
      <div className="model-title" data-testid="model-title">
        {summary ? (
          <>
            <span className="model-name" title={`${summary.name ?? summary.fileName} — ${summary.path}`}>
              {summary.name ?? summary.fileName}
            </span>
            {badge && (
              <button type="button" className={`sev sev-${badge.tone}`} data-testid="audit-badge" title={badge.title} onClick={showAudit}>
                {badge.label}
              </button>
            )}
            {summary.architecture && <span className="chip">{summary.architecture}</span>}
            <span className="chip subtle">GGUF v{summary.version}</span>
            {summary.shards > 1 && (
              <span className="chip subtle" data-testid="model-files" title="a split model: every file is open">
                {summary.shards} files
              </span>
            )}
            <span className="model-path" title={summary.path}>
              {/* The container is right-to-left so long paths lose their start, not the file
                  name; the marks keep the path itself left-to-right. */}
              {`\u200E${summary.path}\u200E`}
            </span>
          </>
        ) : (
          <span className="model-path">no model</span>
        )}
      </div>
      <EditControls />
      <form className="open-form" onSubmit={submit}>
        <input
          data-testid="open-path"
          type="text"
          spellCheck={false}
          placeholder="/path/to/model.gguf"
          value={path}
          onChange={(e) => setPath(e.target.value)}
          aria-label="Model path"
        />
        <button data-testid="open-button" type="submit" disabled={busy || !path.trim()}>
          Open
        </button>
        <button type="button" className="ghost" data-testid="open-dialog" onClick={() => void browse()} disabled={busy} title="Choose a .gguf file">
          Browse…
        </button>
      </form>
      <button className="ghost" onClick={onCycleTheme} title="Theme" data-testid="theme-toggle">
        {THEME_LABEL[theme]}
      </button>
      {guard.prompt && <div className="topbar-confirm">{guard.prompt}</div>}
    </header>
  );
}
