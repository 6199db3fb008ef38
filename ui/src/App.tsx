/**
 * The studio window: top bar (model, open, theme), a nav rail of screens, the current screen,
 * and the status bar (job progress with Cancel, model facts). Shared state lives in
 * {@link SessionProvider}; each screen reads it with `useSession()`.
 */
import { useEffect, useRef } from "react";
import { commands } from "./lib/ipc";
import { SessionProvider, useSession, type ScreenName } from "./lib/session";
import { useTheme } from "./lib/theme";
import { TopBar } from "./components/TopBar";
import { NavRail, SCREENS } from "./components/NavRail";
import { StatusBar } from "./components/StatusBar";
import { ErrorBanner } from "./components/ErrorBanner";
import { ModelScreen } from "./screens/ModelScreen";
import { TensorsScreen } from "./screens/TensorsScreen";
import { DiffScreen } from "./screens/DiffScreen";
import { BytesScreen } from "./screens/BytesScreen";
import { ServerScreen } from "./screens/ServerScreen";
import { PatchesScreen } from "./screens/PatchesScreen";
import { RunScreen } from "./screens/RunScreen";
import { SurgeryScreen } from "./screens/SurgeryScreen";

const VIEWS: Record<ScreenName, () => React.JSX.Element> = {
  model: ModelScreen,
  tensors: TensorsScreen,
  diff: DiffScreen,
  bytes: BytesScreen,
  server: ServerScreen,
  patches: PatchesScreen,
  run: RunScreen,
  surgery: SurgeryScreen,
};

function Studio() {
  const session = useSession();
  const { open, screen, setScreen, failure, clearError } = session;
  const [theme, cycleTheme] = useTheme();
  const started = useRef(false);

  useEffect(() => {
    // StrictMode runs effects twice in development; open the startup model once.
    if (started.current) return;
    started.current = true;
    void commands.startupModel().then((path) => {
      if (path) void open(path);
    });
  }, [open]);

  // Alt+1…8 switch screens.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
      const target = SCREENS[Number(e.key) - 1];
      if (!target) return;
      e.preventDefault();
      setScreen(target.name);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [setScreen]);

  const View = VIEWS[screen];
  return (
    <div className="app" data-theme={theme}>
      <TopBar theme={theme} onCycleTheme={cycleTheme} />
      {failure && <ErrorBanner failure={failure} onDismiss={clearError} />}
      <div className="workspace">
        <NavRail current={screen} onSelect={setScreen} />
        <main className="screen-host">
          <View />
        </main>
      </div>
      <StatusBar />
    </div>
  );
}

export function App() {
  return (
    <SessionProvider>
      <Studio />
    </SessionProvider>
  );
}
