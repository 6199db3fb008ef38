import { describe, expect, it } from "vitest";
import { parseGoTo, rowsAreTokens, tokenLabel } from "./find";

const embd = { rows: 262_144, cols: 640 };

describe("parseGoTo", () => {
  it("reads a row, a row and a column, and a flat element", () => {
    expect(parseGoTo("151000", embd)).toEqual({ ok: true, target: { row: 151_000, col: null } });
    expect(parseGoTo(" 262,143 ", embd)).toEqual({ ok: true, target: { row: 262_143, col: null } });
    expect(parseGoTo("12, 34", embd)).toEqual({ ok: true, target: { row: 12, col: 34 } });
    expect(parseGoTo("12 34", embd)).toEqual({ ok: true, target: { row: 12, col: 34 } });
    expect(parseGoTo("12:34", embd)).toEqual({ ok: true, target: { row: 12, col: 34 } });
    expect(parseGoTo("1,2", embd)).toEqual({ ok: true, target: { row: 1, col: 2 } });
    // Element 640·3 + 5 is row 3, column 5.
    expect(parseGoTo("#1925", embd)).toEqual({ ok: true, target: { row: 3, col: 5 } });
    expect(parseGoTo("# 167,772,159", embd)).toEqual({ ok: true, target: { row: 262_143, col: 639 } });
  });

  it("refuses places outside the matrix, naming the last one", () => {
    const r = parseGoTo("262144", embd);
    expect(r).toEqual({ ok: false, error: "Row 262,144 is past the last row (262,143)." });
    expect(parseGoTo("262144", embd, true)).toEqual({ ok: false, error: "Token id 262,144 is past the last row (262,143)." });
    expect(parseGoTo("3, 640", embd)).toEqual({ ok: false, error: "Column 640 is past the last column (639)." });
    expect(parseGoTo("#167772160", embd)).toEqual({ ok: false, error: "Element 167,772,160 is past the last one (167,772,159)." });
  });

  it("refuses what is not a place, saying what to type", () => {
    for (const t of ["", "abc", "1,2,3", "-4", "1.5", "#x"]) {
      const r = parseGoTo(t, embd);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error).toContain('"row, col"');
    }
  });
});

describe("rowsAreTokens", () => {
  it("is the embedding and output matrices whose rows are the vocabulary", () => {
    expect(rowsAreTokens("token_embd.weight", 262_144, 262_144)).toBe(true);
    expect(rowsAreTokens("output.weight", 279, 279)).toBe(true);
    expect(rowsAreTokens("output.weight", 280, 279)).toBe(false);
    expect(rowsAreTokens("token_embd.weight", 279, 0)).toBe(false);
    expect(rowsAreTokens("blk.0.attn_output.weight", 279, 279)).toBe(false);
    expect(rowsAreTokens("output_norm.weight", 279, 279)).toBe(false);
  });
});

describe("tokenLabel", () => {
  it("quotes, escapes control characters and cuts long texts", () => {
    expect(tokenLabel("\u2581hello")).toBe('"\u2581hello"');
    expect(tokenLabel("a\nb\tc\\")).toBe('"a\\nb\\tc\\\\"');
    expect(tokenLabel("\u0001")).toBe('"\\x01"');
    expect(tokenLabel("abcdef", 3)).toBe('"abc…"');
    expect(tokenLabel("abc", 3)).toBe('"abc"');
    expect(tokenLabel("")).toBe('""');
  });
});
