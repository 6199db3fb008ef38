/**
 * Opening another model discards the unsaved edits of the open one: ask first. `request(path)`
 * opens at once when nothing is unsaved, else shows the returned `prompt` until the user
 * confirms or cancels.
 */
import { useState } from "react";
import { refreshEditState } from "../../lib/editState";
import { useSession } from "../../lib/session";

export function useGuardedOpen(onOpened?: (ok: boolean) => void) {
  const { open } = useSession();
  const [pending, setPending] = useState<string | null>(null);

  const go = async (path: string) => {
    setPending(null);
    const ok = await open(path);
    onOpened?.(ok);
  };
  const request = async (path: string) => {
    const s = await refreshEditState().catch(() => null);
    if (s?.modified) setPending(path);
    else await go(path);
  };
  const prompt = pending ? (
    <div className="confirm discard" data-testid="discard-confirm" role="alertdialog" aria-label="Discard unsaved changes">
      <strong>Discard unsaved changes?</strong>
      <p>The open model has edits that are not saved. Opening {pending.split(/[\\/]/).pop()} drops them.</p>
      <div className="editor-buttons">
        <button className="tool danger" data-testid="discard-open" onClick={() => void go(pending)}>
          Discard and open
        </button>
        <button className="ghost" onClick={() => setPending(null)}>
          Keep editing
        </button>
      </div>
    </div>
  ) : null;
  return { request, prompt };
}
