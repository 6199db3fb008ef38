import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const bytesApply = vi.fn();
vi.mock("../../lib/ipc", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../lib/ipc")>();
  return { ...real, commands: { ...real.commands, bytesApply: (...a: unknown[]) => bytesApply(...a) } };
});

import { OpsPanel } from "./OpsPanel";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let host: HTMLDivElement | null = null;
const applied = vi.fn();
beforeEach(() => {
  bytesApply.mockReset();
  applied.mockReset();
});
afterEach(() => {
  host?.remove();
  host = null;
});

function mount() {
  host = document.createElement("div");
  document.body.appendChild(host);
  const root = createRoot(host);
  act(() => root.render(<OpsPanel shard={0} size={1000} selStart={16} selLen={4} onRange={() => {}} onApplied={applied} />));
  return host;
}

const q = <T extends Element>(id: string) => host!.querySelector<T>(`[data-testid="${id}"]`)!;

function type(el: HTMLInputElement | HTMLSelectElement, value: string) {
  const proto = el instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
  const setter = Object.getOwnPropertyDescriptor(proto, "value")!.set!;
  act(() => {
    setter.call(el, value);
    el.dispatchEvent(new Event(el instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }));
  });
}

async function apply() {
  await act(async () => {
    q<HTMLButtonElement>("op-apply").click();
  });
}

describe("OpsPanel", () => {
  it("starts on the selection", () => {
    mount();
    expect(q<HTMLInputElement>("op-offset").value).toBe("0x00000010");
    expect(q<HTMLInputElement>("op-length").value).toBe("4");
  });

  it("refuses bad hex inline without calling the backend", async () => {
    mount();
    type(q("op-hex"), "de zz");
    await apply();
    expect(q("op-error").textContent).toBe('bytes: "z" is not a hex digit');
    expect(bytesApply).not.toHaveBeenCalled();
  });

  it("refuses a length that is not a number, and a bit rotation out of range", async () => {
    mount();
    type(q("op-select"), "fill");
    type(q("op-hex"), "00");
    type(q("op-length"), "abc");
    await apply();
    expect(q("op-error").textContent).toContain('"abc" is not a number');
    type(q("op-length"), "4");
    type(q("op-select"), "rotateBits");
    type(q("op-count"), "9");
    await apply();
    expect(q("op-error").textContent).toBe("bits 9 is not in -7..7");
    expect(bytesApply).not.toHaveBeenCalled();
  });

  it("sends the operation on the range and shows the outcome", async () => {
    bytesApply.mockResolvedValue({ status: "ok", data: { bytesChanged: 3, change: 7, message: "xor 4 bytes at 0x10: 3 changed" } });
    mount();
    type(q("op-select"), "xor");
    type(q("op-hex"), "ff 0f");
    await apply();
    expect(bytesApply).toHaveBeenCalledWith(0, { op: "xor", offset: 16, len: 4, hex: "ff 0f" });
    expect(q("op-result").textContent).toBe("xor 4 bytes at 0x10: 3 changed");
    expect(applied).toHaveBeenCalledTimes(1);
  });

  it("shows the backend's refusal next to the control", async () => {
    bytesApply.mockResolvedValue({
      status: "error",
      error: { code: "Refused", message: "write of 4 bytes at offset 16 (0x10) refused: bytes 16..32 are protected (read-only)" },
    });
    mount();
    type(q("op-select"), "reverseElements");
    type(q("op-width"), "2");
    await apply();
    expect(bytesApply).toHaveBeenCalledWith(0, { op: "reverseElements", offset: 16, len: 4, width: 2 });
    expect(q("op-error").textContent).toContain("are protected (read-only)");
    expect(applied).not.toHaveBeenCalled();
  });
});
