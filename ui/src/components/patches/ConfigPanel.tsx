/** Export the session's changes as a configuration; import one (preview first). */
import { useState } from "react";
import type { ExportSummary_Serialize as ExportSummary, ImportPreview_Serialize as ImportPreview } from "../../bindings";
import { JSON_FILTER, pickOpenFile, pickSaveFile } from "../../lib/dialog";
import { formatBytes } from "../../lib/format";
import { commands, unwrap } from "../../lib/ipc";
import { InlineError } from "../InlineError";

const FILTERS = [JSON_FILTER];

export function ConfigPanel({ onPreview, modelName }: { onPreview: (p: ImportPreview) => void; modelName: string | null }) {
  const [exportPath, setExportPath] = useState("");
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [exported, setExported] = useState<ExportSummary | null>(null);
  const [exportError, setExportError] = useState<unknown>(null);
  const [importPath, setImportPath] = useState("");
  const [importError, setImportError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const defaultName = `${(modelName ?? "model").replace(/\.gguf$/i, "")}.hotpatch.json`;

  async function doExport() {
    setExportError(null);
    setExported(null);
    setBusy(true);
    try {
      setExported(unwrap(await commands.exportConfiguration(exportPath, name || null, description || null)));
    } catch (e) {
      setExportError(e);
    } finally {
      setBusy(false);
    }
  }

  async function doPreview() {
    setImportError(null);
    setBusy(true);
    try {
      onPreview(unwrap(await commands.previewConfiguration(importPath)));
    } catch (e) {
      setImportError(e);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card config-panel">
      <header className="card-head">
        <h3>Configuration</h3>
        <span className="muted">tensor edits, byte patches, metadata edits, protections and proxy settings as one JSON file</span>
      </header>
      <div className="subsection">
        <h4>Export</h4>
        <div className="row">
          <input
            className="grow"
            placeholder="/path/to/changes.hotpatch.json"
            value={exportPath}
            onChange={(e) => setExportPath(e.target.value)}
            data-testid="export-path"
            spellCheck={false}
            aria-label="Export to"
          />
          <button
            className="ghost"
            onClick={async () => {
              const p = await pickSaveFile(defaultName, FILTERS);
              if (p) setExportPath(p);
            }}
          >
            Browse…
          </button>
        </div>
        <div className="row">
          <input className="grow" placeholder="Name (optional)" value={name} onChange={(e) => setName(e.target.value)} aria-label="Name" />
          <input className="grow2" placeholder="Description (optional)" value={description} onChange={(e) => setDescription(e.target.value)} aria-label="Description" />
          <button className="primary" onClick={doExport} disabled={busy || exportPath.trim() === ""} data-testid="export-run">
            Export
          </button>
        </div>
        <InlineError error={exportError} testId="export-error" />
        {exported && (
          <p className="note ok" data-testid="export-result">
            Wrote {exported.path} ({formatBytes(exported.bytes)}): {exported.tensorPatches} tensor edit{exported.tensorPatches === 1 ? "" : "s"},{" "}
            {exported.bytePatches} byte patch{exported.bytePatches === 1 ? "" : "es"}, {exported.metadataEdits} metadata edit
            {exported.metadataEdits === 1 ? "" : "s"}, {exported.protections} protection
            {exported.protections === 1 ? "" : "s"}
            {exported.serverRules != null ? `, proxy settings with ${exported.serverRules} rule${exported.serverRules === 1 ? "" : "s"}` : ""}.
          </p>
        )}
      </div>
      <div className="subsection">
        <h4>Import</h4>
        <div className="row">
          <input
            className="grow"
            placeholder="/path/to/changes.hotpatch.json"
            value={importPath}
            onChange={(e) => setImportPath(e.target.value)}
            data-testid="import-path"
            spellCheck={false}
            aria-label="Import from"
          />
          <button
            className="ghost"
            onClick={async () => {
              const p = await pickOpenFile(FILTERS);
              if (p) setImportPath(p);
            }}
          >
            Browse…
          </button>
          <button className="primary" onClick={doPreview} disabled={busy || importPath.trim() === ""} data-testid="import-preview-run">
            Preview
          </button>
        </div>
        <InlineError error={importError} testId="import-error" />
      </div>
    </section>
  );
}
