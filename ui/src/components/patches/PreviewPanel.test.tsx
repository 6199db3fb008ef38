import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ImportPreview_Serialize as ImportPreview } from "../../bindings";
import { ApplyResult, PreviewPanel } from "./PreviewPanel";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let host: HTMLDivElement | null = null;
function render(node: React.ReactNode): HTMLDivElement {
  host = document.createElement("div");
  document.body.appendChild(host);
  const root = createRoot(host);
  act(() => root.render(node));
  return host;
}
afterEach(() => {
  host?.remove();
  host = null;
});

const preview: ImportPreview = {
  token: 3,
  source: "/tmp/c.json",
  name: "mine",
  description: "two edits",
  recordedOn: "a.gguf",
  sameFile: false,
  sameModel: true,
  items: [
    { item: "tensor_patches[0]", target: "blk.1.ffn_down.weight", status: "willChange", detail: "all 65536 elements (Q4_0)", from: null, to: null, fromText: null, toText: null },
    { item: "byte_patches[0]", target: "offset 0x40", status: "mismatch", detail: "expected 00ff, found 1234", from: null, to: null, fromText: null, toText: null },
    {
      item: "metadata[0]",
      target: "tokenizer.chat_template",
      status: "willChange",
      detail: 'STRING "{% for m in messages %}" → STRING "{{ messages }}"',
      from: 'STRING "{% for m in messages %}"',
      to: 'STRING "{{ messages }}"',
      fromText: null,
      toText: null,
    },
  ],
  applicable: false,
  otherModel: false,
  allowOtherModel: false,
  serverRules: 2,
  cacheEnabled: true,
};

describe("PreviewPanel", () => {
  it("lists every item with its effect and refuses to apply what does not fit", () => {
    const onApply = vi.fn();
    const el = render(<PreviewPanel preview={preview} busy={false} onApply={onApply} onDiscard={() => {}} applyLabel="Apply" />);
    const rows = [...el.querySelectorAll('[data-testid="preview-row"]')].map((r) => [
      r.getAttribute("data-target"),
      r.querySelector(".badge")?.textContent,
    ]);
    expect(rows).toEqual([
      ["blk.1.ffn_down.weight", "will change"],
      ["offset 0x40", "does not fit"],
      ["tokenizer.chat_template", "will change"],
    ]);
    // The metadata edit shows its value now and the new value on a line of its own.
    const change = el.querySelector('[data-testid="preview-change"][data-target="tokenizer.chat_template"]');
    expect(change?.querySelector('[data-testid="preview-from"]')?.textContent).toBe('STRING "{% for m in messages %}"');
    expect(change?.querySelector('[data-testid="preview-to"]')?.getAttribute("title")).toBe('STRING "{{ messages }}"');
    expect(el.querySelectorAll('[data-testid="preview-change"]').length).toBe(1);
    expect(el.textContent).toContain("2 will change");
    expect(el.textContent).toContain("1 do not fit");
    expect(el.querySelector('[data-testid="import-verdict"]')?.textContent).toBe(
      "Recorded on another quantization of this model (a.gguf): tensor edits re-encode here.",
    );
    expect(el.textContent).toContain("Sets the proxy: 2 rules, response cache on.");
    const apply = el.querySelector<HTMLButtonElement>('[data-testid="import-apply"]')!;
    expect(apply.disabled).toBe(true);
  });

  it("applies when everything fits", () => {
    const onApply = vi.fn();
    const ok = { ...preview, items: [preview.items[0]!], applicable: true };
    const el = render(<PreviewPanel preview={ok} busy={false} onApply={onApply} onDiscard={() => {}} applyLabel="Apply" />);
    act(() => el.querySelector<HTMLButtonElement>('[data-testid="import-apply"]')!.click());
    expect(onApply).toHaveBeenCalledTimes(1);
  });

  it("refuses a configuration of another model until the user overrides it", () => {
    const onAllow = vi.fn();
    const other: ImportPreview = {
      ...preview,
      sameModel: false,
      otherModel: true,
      items: [
        { item: "model", target: "smol.gguf", status: "mismatch", detail: "recorded on another model", from: null, to: null, fromText: null, toText: null },
        preview.items[0]!,
      ],
      applicable: false,
    };
    const el = render(
      <PreviewPanel preview={other} busy={false} onApply={() => {}} onDiscard={() => {}} onAllowOtherModel={onAllow} applyLabel="Apply" />,
    );
    expect(el.querySelector<HTMLButtonElement>('[data-testid="import-apply"]')!.disabled).toBe(true);
    expect(el.querySelector('[data-testid="import-verdict"]')?.textContent).toContain("not applied unless you say so");
    act(() => el.querySelector<HTMLButtonElement>('[data-testid="import-allow-other-model"]')!.click());
    expect(onAllow).toHaveBeenCalledTimes(1);
    // After the override the backend sends the preview again: the model row is information.
    const allowed: ImportPreview = {
      ...other,
      allowOtherModel: true,
      items: [{ ...other.items[0]!, status: "info", detail: "applied anyway" }, preview.items[0]!],
      applicable: true,
    };
    const el2 = render(
      <PreviewPanel preview={allowed} busy={false} onApply={() => {}} onDiscard={() => {}} onAllowOtherModel={onAllow} applyLabel="Apply" />,
    );
    expect(el2.querySelector('[data-testid="import-allow-other-model"]')).toBeNull();
    expect(el2.querySelector<HTMLButtonElement>('[data-testid="import-apply"]')!.disabled).toBe(false);
    expect(el2.querySelector('[data-testid="import-verdict"]')?.textContent).toContain("applied to this one anyway");
  });
});

describe("PreviewPanel text changes", () => {
  it("shows a text diff of a template with text appended: the appended text, not 60 identical characters", () => {
    const tpl = Array.from({ length: 80 }, (_, i) => `{% if m.role == 'r${i}' %}<|r${i}|>{% endif %}\n`).join("");
    const appended = "Always answer in French.\n";
    const p: ImportPreview = {
      ...preview,
      items: [
        {
          item: "metadata[0]",
          target: "tokenizer.chat_template",
          status: "willChange",
          detail: "",
          from: `STRING "${tpl.slice(0, 60)}…"`,
          to: `STRING "${tpl.slice(0, 60)}…"`,
          fromText: tpl,
          toText: tpl + appended,
        },
      ],
      applicable: true,
    };
    const el = render(<PreviewPanel preview={p} busy={false} onApply={() => {}} onDiscard={() => {}} applyLabel="Apply" />);
    const diff = el.querySelector('[data-testid="preview-text-diff"]')!;
    expect([...diff.querySelectorAll('[data-testid="diff-added"]')].map((x) => x.textContent)).toEqual([appended]);
    expect(diff.querySelectorAll('[data-testid="diff-removed"]').length).toBe(0);
    // The long unchanged start is left out, the template's last line is shown next to the change.
    expect(diff.querySelector('[data-testid="diff-skip"]')?.textContent).toMatch(/unchanged characters/);
    expect(diff.querySelector("pre")?.textContent).toContain("{% if m.role == 'r79' %}");
    expect(diff.querySelector('[data-testid="preview-text-diff-added"]')?.textContent).toBe(`+${appended.length}`);
    act(() => diff.querySelector<HTMLButtonElement>('[data-testid="preview-text-diff-whole"]')!.click());
    expect(diff.querySelector("pre")?.textContent).toBe(tpl + appended);
  });
});

describe("ApplyResult", () => {
  it("reports the transforms as a table and the undo step", () => {
    const el = render(
      <ApplyResult
        result={{
          source: "preset scale-ffn",
          change: 12,
          transforms: [
            { tensor: "blk.1.ffn_down.weight", op: "scale", elementsSelected: 65536, bytesChanged: 30000, blocksRequantized: 2, sideEffects: 5 },
          ],
          bytePatchesApplied: 0,
          bytePatchesAlreadyApplied: 0,
          protections: 0,
          metadataEdits: 0,
          serverRules: 0,
          cacheEnabled: false,
        }}
      />,
    );
    expect(el.textContent).toContain("Applied preset scale-ffn: 1 tensor transform, 0 byte patches, 0 metadata edits, 0 protections");
    expect(el.textContent).toContain("One undo step (#12) reverts it.");
    const cells = [...el.querySelectorAll("tbody td")].map((c) => c.textContent);
    expect(cells).toEqual(["blk.1.ffn_down.weight", "scale", "65,536", "30,000", "2", "5"]);
  });
});

describe("ApplyResult with metadata only", () => {
  it("counts the staged metadata edits as pending and undoable", () => {
    const el = render(
      <ApplyResult
        result={{
          source: "/tmp/t.json",
          change: null,
          transforms: [],
          bytePatchesApplied: 0,
          bytePatchesAlreadyApplied: 0,
          protections: 0,
          metadataEdits: 2,
          serverRules: 0,
          cacheEnabled: false,
        }}
      />,
    );
    expect(el.textContent).toContain("2 metadata edits (pending until Save)");
    expect(el.textContent).toContain("One undo step reverts it.");
    expect(el.textContent).not.toContain("Nothing in the model changed.");
  });
});
