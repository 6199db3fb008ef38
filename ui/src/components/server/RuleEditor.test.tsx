import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { emptyForm } from "../../lib/server/rules";
import { RuleEditor } from "./RuleEditor";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let host: HTMLDivElement | null = null;
afterEach(() => {
  host?.remove();
  host = null;
});

function mount(onSave: (r: unknown) => Promise<void>, kind: Parameters<typeof emptyForm>[0] = "clampParameter") {
  host = document.createElement("div");
  document.body.appendChild(host);
  const root = createRoot(host);
  act(() =>
    root.render(<RuleEditor initial={{ ...emptyForm(kind), id: "c" }} editing={null} otherIds={["taken"]} onSave={onSave} onCancel={() => {}} />),
  );
  return host;
}

/** Types into a React-controlled input the way a user does (value setter + input event). */
function type(el: HTMLInputElement, value: string) {
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!;
  act(() => {
    setter.call(el, value);
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
}

async function submit(el: HTMLElement) {
  await act(async () => {
    el.querySelector<HTMLFormElement>('[data-testid="rule-editor"]')!.requestSubmit();
  });
}

describe("RuleEditor", () => {
  it("shows each bad field next to it and does not call the backend", async () => {
    const onSave = vi.fn(async () => {});
    const el = mount(onSave);
    type(el.querySelector('[data-testid="rule-name"]')!, "temperature");
    type(el.querySelector('[data-testid="rule-min"]')!, "abc");
    type(el.querySelector('[data-testid="rule-id"]')!, "taken");
    await submit(el);
    const errors = [...el.querySelectorAll(".field-error")].map((e) => e.textContent);
    expect(errors).toEqual(['Another rule already has the id "taken".', '"abc" is not a number.']);
    expect(onSave).not.toHaveBeenCalled();
  });

  it("sends the rule the form describes, and shows the backend's refusal inline", async () => {
    const onSave = vi.fn(async () => {
      throw new Error("server.rules[0] (id \"c\").action.name: nope");
    });
    const el = mount(onSave);
    type(el.querySelector('[data-testid="rule-name"]')!, "top_p");
    type(el.querySelector('[data-testid="rule-max"]')!, "0.95");
    await submit(el);
    expect(onSave).toHaveBeenCalledWith({
      id: "c",
      enabled: true,
      endpoints: [],
      action: { kind: "clampParameter", name: "top_p", min: null, max: 0.95 },
    });
    expect(el.querySelector('[data-testid="rule-error"]')?.textContent).toContain("action.name: nope");
  });
});
