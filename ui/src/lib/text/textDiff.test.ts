import { describe, expect, it } from "vitest";
import { side, textDiff } from "./textDiff";

describe("textDiff", () => {
  it("shows appended text as the only added part after the long same prefix", () => {
    const tpl = "{% for m in messages %}".repeat(20);
    const parts = textDiff(tpl, tpl + "\nEXTRA");
    expect(parts).toEqual([
      { kind: "same", text: tpl },
      { kind: "added", text: "\nEXTRA" },
    ]);
  });

  it("finds a replaced word in the middle", () => {
    const parts = textDiff("you are a helpful assistant", "you are a rude assistant");
    expect(parts.filter((p) => p.kind !== "same")).toEqual([
      { kind: "removed", text: "helpful" },
      { kind: "added", text: "rude" },
    ]);
  });

  it("diffs lines: an inserted line between changed lines keeps the common lines", () => {
    const a = "a\nb\nc\nd\n";
    const b = "a\nB\nc\nx\nd\n";
    const parts = textDiff(a, b);
    expect(side(parts, "before")).toBe(a);
    expect(side(parts, "after")).toBe(b);
    expect(parts.some((p) => p.kind === "same" && p.text.includes("c\n"))).toBe(true);
  });

  it("round-trips both sides on random edits", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const alphabet = "ab\n{}%";
    for (let k = 0; k < 200; k++) {
      const gen = (n: number) =>
        Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join("");
      const a = gen(Math.floor(rnd() * 40));
      const b = gen(Math.floor(rnd() * 40));
      const parts = textDiff(a, b);
      expect(side(parts, "before")).toBe(a);
      expect(side(parts, "after")).toBe(b);
    }
  });

  it("equal texts are one same part; empty texts are no parts", () => {
    expect(textDiff("x", "x")).toEqual([{ kind: "same", text: "x" }]);
    expect(textDiff("", "")).toEqual([]);
  });
});
