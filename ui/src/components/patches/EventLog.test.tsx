import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it } from "vitest";
import type { PatchEventView_Serialize as PatchEventView } from "../../bindings";
import { EventLog } from "./EventLog";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let host: HTMLDivElement | null = null;
function render(node: React.ReactNode): HTMLDivElement {
  host = document.createElement("div");
  document.body.appendChild(host);
  act(() => createRoot(host!).render(node));
  return host;
}
afterEach(() => {
  host?.remove();
  host = null;
});

const ev = (id: number, target: string, file: string | null): PatchEventView => ({
  id,
  change: id,
  layer: "tensor",
  operation: "set weight",
  target,
  source: "ui",
  file,
  bytesChanged: 18,
  bytesWritten: 18,
  timeUnixMs: 0,
  undoable: true,
});

describe("EventLog", () => {
  it("names each event's file and lists the metadata edits with their state", () => {
    const el = render(
      <EventLog
        events={[ev(2, "blk.0.attn_q.weight", "smol.gguf"), ev(1, "smol.gguf", "smol.gguf")]}
        undoable={[1, 2]}
        redoable={[]}
        metadata={[
          { kind: "metadata", id: 1, label: "set tokenizer.chat_template", bytes: 0, undone: false },
          { kind: "metadata", id: 2, label: "remove general.name", bytes: 0, undone: true },
        ]}
        onChanged={() => {}}
      />,
    );
    const files = [...el.querySelectorAll('[data-testid="event-row"]')].map((r) => r.querySelector('[data-testid="event-file"]')?.textContent ?? null);
    // The file is named under the target; a target that is the file itself is not repeated.
    expect(files).toEqual(["smol.gguf", null]);
    const steps = [...el.querySelectorAll('[data-testid="meta-step"]')].map((li) => [li.querySelector(".meta-step-label")?.textContent, li.getAttribute("data-undone")]);
    expect(steps).toEqual([
      ["set tokenizer.chat_template", "false"],
      ["remove general.name", "true"],
    ]);
    expect(el.querySelector('[data-testid="meta-steps"]')?.textContent).toContain("1 pending until Save");
  });

  it("with metadata edits only, lists them instead of saying nothing changed", () => {
    const el = render(
      <EventLog events={[]} undoable={[]} redoable={[]} metadata={[{ kind: "metadata", id: 1, label: "set general.name", bytes: 0, undone: false }]} onChanged={() => {}} />,
    );
    expect(el.textContent).not.toContain("No changes yet");
    expect(el.querySelectorAll('[data-testid="meta-step"]').length).toBe(1);
  });
});
