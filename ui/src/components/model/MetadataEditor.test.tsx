// The metadata editor in happy-dom with the backend mocked: a bad value shows the inline error
// naming key and type and sends nothing; a good one sends exactly the typed text; delete and
// add send the right commands.
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { MetaEditRow } from "../../lib/editState";

const calls: unknown[][] = [];
const okState = { status: "ok", data: { path: "/m.gguf", mode: "staged", canUndo: true, canRedo: false, modified: true, dirtyBytes: 0, pendingMetadata: 1, history: [] } };
vi.mock("../../lib/ipc", async (orig) => {
  const real = await orig<typeof import("../../lib/ipc")>();
  return {
    ...real,
    commands: {
      metadataText: vi.fn(async (key: string) => ({ status: "ok", data: key === "llama.context_length" ? "512" : "x" })),
      setMetadata: vi.fn(async (...args: unknown[]) => {
        calls.push(["set", ...args]);
        return okState;
      }),
      removeMetadata: vi.fn(async (...args: unknown[]) => {
        calls.push(["remove", ...args]);
        return okState;
      }),
    },
  };
});

const { MetadataEditor } = await import("./MetadataEditor");

const rows: MetaEditRow[] = [
  { key: "general.name", valueType: "STRING", elementType: null, value: { kind: "str", text: "demo", lossy: false }, status: "unchanged", offset: 24, editable: true },
  { key: "llama.context_length", valueType: "UINT32", elementType: null, value: { kind: "int", text: "512" }, status: "unchanged", offset: 90, editable: true },
];

let host: HTMLDivElement;
let root: Root;
const onChanged = vi.fn();
// React's act() needs this flag outside a test renderer.
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

beforeEach(async () => {
  calls.length = 0;
  onChanged.mockReset();
  host = document.createElement("div");
  document.body.appendChild(host);
  root = createRoot(host);
  await act(async () => root.render(<MetadataEditor rows={rows} onChanged={onChanged} />));
});
afterEach(() => {
  act(() => root.unmount());
  host.remove();
});

const q = (sel: string) => host.querySelector(sel) as HTMLElement;
async function type(el: HTMLInputElement, text: string) {
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!;
  await act(async () => {
    setter.call(el, text);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
}
async function click(el: HTMLElement) {
  await act(async () => {
    el.click();
  });
}

describe("MetadataEditor", () => {
  it("refuses 'abc' for a UINT32 inline and stages a valid value as typed", async () => {
    await click(q('[data-key="llama.context_length"] [data-testid="meta-edit"]'));
    const input = q('[data-testid="meta-input"]') as HTMLInputElement;
    expect(input.value).toBe("512");
    await type(input, "abc");
    await click(q('[data-testid="meta-apply"]'));
    expect(q('[data-testid="meta-error"]').textContent).toBe("llama.context_length (UINT32): 'abc' is not a whole number");
    expect(calls).toEqual([]);
    await type(input, "4294967296");
    expect(q('[data-testid="meta-error"]').textContent).toMatch(/out of range 0..=4294967295/);
    await type(input, "4096");
    expect(host.querySelector('[data-testid="meta-error"]')).toBeNull();
    await click(q('[data-testid="meta-apply"]'));
    expect(calls).toEqual([["set", "llama.context_length", "UINT32", null, "4096"]]);
    expect(onChanged).toHaveBeenCalledWith(okState.data);
    expect(host.querySelector('[data-testid="meta-input"]')).toBeNull();
  });

  it("deletes a key and adds a typed one", async () => {
    await click(q('[data-key="general.name"] [data-testid="meta-delete"]'));
    expect(calls).toEqual([["remove", "general.name"]]);
    await click(q('[data-testid="meta-add"]'));
    await type(q('[data-testid="meta-add-key"]') as HTMLInputElement, "bad key");
    await click(q('[data-testid="meta-add-apply"]'));
    expect(q('[data-testid="meta-add-error"]').textContent).toMatch(/printable ASCII/);
    await type(q('[data-testid="meta-add-key"]') as HTMLInputElement, "hotpatch.note");
    await type(q('[data-testid="meta-add-value"]') as HTMLInputElement, "hello");
    await click(q('[data-testid="meta-add-apply"]'));
    expect(calls[1]).toEqual(["set", "hotpatch.note", "STRING", null, "hello"]);
  });
});
