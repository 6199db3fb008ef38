/**
 * The studio window: top bar (model, open), tensor tree on the left, details on the right,
 * status bar at the bottom. State lives here; the components are presentational.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  commands,
  describeFailure,
  openModel,
  unwrap,
  type MetaRow,
  type ModelSummary,
  type Progress,
  type TensorRow,
} from "./lib/ipc";
import { TopBar } from "./components/TopBar";
import { TensorTree } from "./components/TensorTree";
import { TensorDetails } from "./components/TensorDetails";
import { ModelOverview } from "./components/ModelOverview";
import { MetadataTable } from "./components/MetadataTable";
import { StatusBar } from "./components/StatusBar";
import { ErrorBanner, type Failure } from "./components/ErrorBanner";
import { useTheme } from "./lib/theme";

interface Loaded {
  summary: ModelSummary;
  tensors: TensorRow[];
  metadata: MetaRow[];
}

export function App() {
  const [model, setModel] = useState<Loaded | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [progressCount, setProgressCount] = useState(0);
  const [theme, cycleTheme] = useTheme();
  const started = useRef(false);

  const open = useCallback(async (path: string) => {
    setBusy(true);
    setFailure(null);
    try {
      const summary = await openModel(path, (p) => {
        setProgress(p);
        setProgressCount((n) => n + 1);
      });
      const [tensors, metadata] = await Promise.all([commands.listTensors(), commands.readMetadata()]);
      const rows = unwrap(tensors);
      setModel({ summary, tensors: rows, metadata: unwrap(metadata) });
      setSelected(rows[0]?.name ?? null);
    } catch (e) {
      setFailure({ ...describeFailure(e), path });
    } finally {
      setBusy(false);
    }
  }, []);

  useEffect(() => {
    // StrictMode runs effects twice in development; open the startup model once.
    if (started.current) return;
    started.current = true;
    void commands.startupModel().then((path) => {
      if (path) void open(path);
    });
  }, [open]);

  const tensor = useMemo(
    () => model?.tensors.find((t) => t.name === selected) ?? null,
    [model, selected],
  );

  return (
    <div className="app" data-theme={theme}>
      <TopBar summary={model?.summary ?? null} busy={busy} onOpen={open} theme={theme} onCycleTheme={cycleTheme} />
      {failure && <ErrorBanner failure={failure} onDismiss={() => setFailure(null)} />}
      <div className="workspace">
        <aside className="sidebar">
          <TensorTree tensors={model?.tensors ?? []} selected={selected} onSelect={setSelected} />
        </aside>
        <main className="content">
          {model ? (
            <>
              <TensorDetails tensor={tensor} summary={model.summary} />
              <ModelOverview summary={model.summary} />
              <MetadataTable rows={model.metadata} />
            </>
          ) : (
            <div className="empty-state">
              <h2>{busy ? "Opening model…" : "No model open"}</h2>
              <p>Enter the path of a .gguf file above, or start the app with a path argument.</p>
            </div>
          )}
        </main>
      </div>
      <StatusBar
        summary={model?.summary ?? null}
        progress={progress}
        progressCount={progressCount}
        note={failure ? `could not open ${failure.path}` : null}
        busy={busy}
      />
    </div>
  );
}
