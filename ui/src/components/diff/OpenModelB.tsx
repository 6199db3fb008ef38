/**
 * Model B of the diff: a typed path field (WebDriver and people who paste paths use it), a
 * Browse… button (native dialog), Open, and what is open now. Errors show under the field
 * with the backend's message.
 */
import { useState } from "react";
import { GGUF_FILTER, pickOpenFile } from "../../lib/dialog";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import { formatBytes, formatCount } from "../../lib/format";
import type { DiffModelInfo } from "../../lib/diff/types";
import { InlineError } from "../InlineError";

export interface OpenModelBProps {
  info: DiffModelInfo | null;
  /** Called with the newly opened model B. */
  onOpened: (info: DiffModelInfo) => void;
  onClosed: () => void;
  /** The open model's path (A), to show side by side. */
  pathA: string;
}

export function OpenModelB({ info, onOpened, onClosed, pathA }: OpenModelBProps) {
  const [path, setPath] = useState(info?.path ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const open = async (p: string) => {
    const chosen = p.trim();
    if (!chosen) {
      setError("Enter the path of the model to compare with (model B).");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const got = unwrap(await commands.openDiffModel(chosen));
      setPath(got.path);
      onOpened(got);
    } catch (e) {
      const d = describeFailure(e);
      setError(`${d.title}: ${d.detail}`);
    } finally {
      setBusy(false);
    }
  };

  const browse = async () => {
    try {
      const picked = await pickOpenFile([GGUF_FILTER]);
      if (picked) {
        setPath(picked);
        await open(picked);
      }
    } catch (e) {
      setError(describeFailure(e).detail);
    }
  };

  const fileA = pathA.split(/[\\/]/).pop() ?? pathA;
  return (
    <div className="diff-models">
      <div className="diff-side-label" title={pathA}>
        <span className="side-tag side-a">A</span>
        <span className="diff-file mono">{fileA}</span>
        <span className="muted">open model (staged edits included)</span>
      </div>
      <form
        className="diff-open"
        onSubmit={(e) => {
          e.preventDefault();
          void open(path);
        }}
      >
        <span className="side-tag side-b">B</span>
        <input
          className="diff-path mono"
          data-testid="diff-path"
          placeholder="/path/to/other-model.gguf"
          value={path}
          spellCheck={false}
          onChange={(e) => setPath(e.target.value)}
          aria-label="Path of model B"
          aria-invalid={error !== null}
        />
        <button type="button" className="ghost" onClick={() => void browse()} disabled={busy} data-testid="diff-browse">
          Browse…
        </button>
        <button type="submit" className="primary" disabled={busy} data-testid="diff-open">
          {busy ? "Opening…" : info ? "Open other" : "Open B"}
        </button>
        {info && (
          <button
            type="button"
            className="ghost"
            onClick={() => {
              void commands.closeDiffModel().then(onClosed);
            }}
            title="Close model B"
          >
            Close
          </button>
        )}
      </form>
      {info && !error && (
        <div className="diff-b-info muted" data-testid="diff-b-info">
          <span className="mono">{info.fileName}</span> · {formatCount(info.tensorCount)} tensors · {formatBytes(info.tensorBytes)}
          {info.shards > 1 ? ` · ${info.shards} shards` : ""} · read-only
        </div>
      )}
      <InlineError error={error} testId="diff-open-error" />
    </div>
  );
}
