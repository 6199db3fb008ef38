/** What a screen that needs a model shows before one is open. */
import { useSession, type ScreenName } from "../lib/session";

export function NoModel({ screen }: { screen: ScreenName }) {
  const { opening } = useSession();
  return (
    <div className="screen empty-state" data-testid={`screen-${screen}`}>
      <h2>{opening ? "Opening model…" : "No model open"}</h2>
      <p>Enter the path of a .gguf file in the top bar, or start the app with a path argument.</p>
    </div>
  );
}
