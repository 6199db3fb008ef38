import { describe, expect, it, vi } from "vitest";
import { keepTextUndo } from "./editState";

function ev(key: string, mods: { ctrl?: boolean; meta?: boolean } = {}) {
  return { key, ctrlKey: !!mods.ctrl, metaKey: !!mods.meta, stopPropagation: vi.fn() };
}

describe("keepTextUndo", () => {
  it("keeps undo/redo chords inside the text field", () => {
    for (const e of [ev("z", { ctrl: true }), ev("Z", { ctrl: true }), ev("y", { ctrl: true }), ev("z", { meta: true })]) {
      keepTextUndo(e);
      expect(e.stopPropagation).toHaveBeenCalledOnce();
    }
  });
  it("lets every other key reach the global shortcuts", () => {
    for (const e of [ev("s", { ctrl: true }), ev("z"), ev("y"), ev("Enter", { ctrl: true })]) {
      keepTextUndo(e);
      expect(e.stopPropagation).not.toHaveBeenCalled();
    }
  });
});
