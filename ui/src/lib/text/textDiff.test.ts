import { describe, expect, it } from "vitest";
import { condense, diffCounts, side, textDiff, type DiffPart } from "./textDiff";

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

describe("condense", () => {
  const tpl = Array.from({ length: 120 }, (_, i) => `{% if x == ${i} %}line ${i}{% endif %}\n`).join("");

  it("keeps the text next to an appended line and leaves out the long unchanged start", () => {
    const parts = textDiff(tpl, tpl + "Always answer in French.\n");
    const shown = condense(parts, 100);
    expect(shown[0]?.kind).toBe("skip");
    const skip = shown[0] as { kind: "skip"; chars: number; lines: number };
    const kept = shown[1] as DiffPart;
    expect(kept.kind).toBe("same");
    // Whole lines kept: the context starts at a line start and ends with the template's end.
    expect(tpl.endsWith(kept.text)).toBe(true);
    expect(kept.text.startsWith("{% if")).toBe(true);
    expect(kept.text.length).toBeLessThanOrEqual(100);
    expect(skip.chars + kept.text.length).toBe(tpl.length);
    expect(skip.lines).toBe(120 - kept.text.split("\n").length + 1);
    expect(shown[2]).toEqual({ kind: "added", text: "Always answer in French.\n" });
    expect(shown.length).toBe(3);
    expect(diffCounts(parts)).toEqual({ removed: 0, added: 25 });
  });

  it("keeps context on both sides of a change in the middle; short texts stay whole", () => {
    const b = tpl.replace("line 60", "LINE SIXTY");
    const shown = condense(textDiff(tpl, b), 80);
    expect(shown.map((p) => p.kind)).toEqual(["skip", "same", "removed", "added", "same", "skip"]);
    const after = shown.filter((p) => p.kind === "same" || p.kind === "added").map((p) => (p as DiffPart).text).join("");
    expect(after).toContain("LINE SIXTY");
    expect(condense(textDiff("abc", "abd"))).toEqual(textDiff("abc", "abd"));
  });
});
