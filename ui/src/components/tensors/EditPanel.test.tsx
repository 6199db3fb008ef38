import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { WeightEditView } from "../../lib/tensors/api";

const previewWeight = vi.fn();
const setWeight = vi.fn();
vi.mock("../../lib/tensors/api", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../lib/tensors/api")>();
  return {
    ...real,
    readValue: () => Promise.resolve(0.5),
    previewWeight: (...a: unknown[]) => previewWeight(...a),
    setWeight: (...a: unknown[]) => setWeight(...a),
  };
});

import { EditPanel } from "./EditPanel";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const view = (stored: string, applied: boolean): WeightEditView => ({
  tensor: "t",
  index: 5,
  ty: "F32",
  previous: "0.5",
  requested: stored,
  stored,
  blockRequantized: false,
  sideEffects: [],
  blockFirst: 5,
  blockLen: 1,
  applied,
} as unknown as WeightEditView);

let host: HTMLDivElement | null = null;
beforeEach(() => {
  vi.useFakeTimers();
  previewWeight.mockReset();
  setWeight.mockReset();
});
afterEach(() => {
  vi.useRealTimers();
  host?.remove();
  host = null;
});

const q = (id: string) => host!.querySelector<HTMLElement>(`[data-testid="${id}"]`);

describe("EditPanel", () => {
  it("a preview still in flight when Apply is pressed never replaces the result", async () => {
    let answerPreview: (v: WeightEditView) => void = () => {};
    previewWeight.mockImplementation(() => new Promise<WeightEditView>((r) => (answerPreview = r)));
    setWeight.mockResolvedValue(view("3000", true));
    host = document.createElement("div");
    document.body.appendChild(host);
    const root = createRoot(host);
    await act(async () =>
      root.render(<EditPanel tensor="t" ty="F32" cols={10} selected={{ row: 0, col: 5 }} revision={0} locked={false} onApplied={() => {}} />),
    );
    const input = q("edit-value") as HTMLInputElement;
    act(() => {
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!.call(input, "3000");
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
    await act(async () => vi.advanceTimersByTime(200)); // the preview request is sent, not answered
    expect(previewWeight).toHaveBeenCalledTimes(1);
    await act(async () => (q("edit-apply") as HTMLButtonElement).click());
    expect(q("edit-stored-final")?.textContent).toBe("3000");
    await act(async () => answerPreview(view("3000", false))); // the late answer arrives
    expect(q("edit-stored-final")?.textContent).toBe("3000");
    expect(q("edit-preview")).toBeNull();
  });
});
