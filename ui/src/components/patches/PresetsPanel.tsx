/** Presets: the shipped and the user's; preview one (then optimize with it); save the session's changes as one. */
import { useCallback, useEffect, useState } from "react";
import type { ImportPreview_Serialize as ImportPreview, PresetInfo_Serialize as PresetInfo } from "../../bindings";
import { commands, unwrap } from "../../lib/ipc";
import { InlineError, InputError } from "../InlineError";

export function PresetsPanel({ onPreview }: { onPreview: (p: ImportPreview) => void }) {
  const [presets, setPresets] = useState<PresetInfo[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [saveName, setSaveName] = useState("");
  const [saveDescription, setSaveDescription] = useState("");
  const [saved, setSaved] = useState<string | null>(null);
  const [saveError, setSaveError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setPresets(await commands.listPresets());
    } catch (e) {
      setError(e);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  async function preview(name: string) {
    setError(null);
    try {
      onPreview(unwrap(await commands.previewPreset(name)));
    } catch (e) {
      setError(e);
    }
  }

  async function save() {
    setSaveError(null);
    setSaved(null);
    const n = saveName.trim();
    if (!/^[A-Za-z0-9_-]{1,100}$/.test(n)) {
      setSaveError(new InputError(`"${n}": a preset name uses letters, digits, "-" and "_" only.`));
      return;
    }
    try {
      const p = unwrap(await commands.savePreset(n, saveDescription || null));
      setSaved(p.name);
      await load();
    } catch (e) {
      setSaveError(e);
    }
  }

  return (
    <section className="card presets-panel">
      <header className="card-head">
        <h3>Presets</h3>
        <span className="muted">preview, then optimize the model with one</span>
      </header>
      <InlineError error={error} testId="preset-error" />
      <ul className="preset-list" data-testid="preset-list">
        {presets.map((p) => (
          <li key={p.name} data-testid={`preset-${p.name}`}>
            <div className="preset-text">
              <strong>{p.name}</strong> <span className={`badge ${p.user ? "accent" : ""}`}>{p.user ? "yours" : "shipped"}</span>
              <div className="muted small">{p.error ?? p.description ?? "no description"}</div>
            </div>
            <button className="ghost small" onClick={() => void preview(p.name)} disabled={p.error != null}>
              Preview
            </button>
          </li>
        ))}
        {presets.length === 0 && <li className="empty">No presets found.</li>}
      </ul>
      <div className="subsection">
        <h4>Save the current changes as a preset</h4>
        <div className="row">
          <input className="grow" placeholder="name" value={saveName} onChange={(e) => setSaveName(e.target.value)} data-testid="preset-save-name" aria-label="Preset name" />
          <input className="grow2" placeholder="Description (optional)" value={saveDescription} onChange={(e) => setSaveDescription(e.target.value)} aria-label="Preset description" />
          <button className="primary" onClick={save} disabled={saveName.trim() === ""} data-testid="preset-save">
            Save preset
          </button>
        </div>
        <InlineError error={saveError} testId="preset-save-error" />
        {saved && <p className="note ok">Saved preset {saved}.</p>}
      </div>
    </section>
  );
}
