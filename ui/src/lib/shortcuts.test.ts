import { describe, expect, it } from "vitest";
import { matches, parseChord, type KeyLike } from "./shortcuts";

const key = (k: string, mods: Partial<KeyLike> = {}): KeyLike => ({
  key: k,
  ctrlKey: false,
  metaKey: false,
  shiftKey: false,
  altKey: false,
  ...mods,
});

describe("parseChord", () => {
  it("reads modifiers in any order and case", () => {
    expect(parseChord("Shift+Mod+Z")).toEqual({ key: "z", mod: true, shift: true, alt: false });
    expect(parseChord("alt+3")).toEqual({ key: "3", mod: false, shift: false, alt: true });
  });
  it("refuses a chord without a key or with an unknown modifier", () => {
    expect(() => parseChord("mod+")).toThrow(/no key/);
    expect(() => parseChord("hyper+z")).toThrow(/unknown modifier "hyper"/);
  });
});

describe("matches", () => {
  const undo = parseChord("mod+z");
  const redo = parseChord("mod+shift+z");
  it("treats Ctrl and Cmd alike as mod", () => {
    expect(matches(undo, key("z", { ctrlKey: true }))).toBe(true);
    expect(matches(undo, key("z", { metaKey: true }))).toBe(true);
  });
  it("needs the exact modifiers: undo is not redo", () => {
    expect(matches(undo, key("Z", { ctrlKey: true, shiftKey: true }))).toBe(false);
    expect(matches(redo, key("Z", { ctrlKey: true, shiftKey: true }))).toBe(true);
    expect(matches(undo, key("z"))).toBe(false);
  });
});
