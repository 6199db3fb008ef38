import { describe, expect, it } from "vitest";
import { DEFAULT_SORT, filterRows, formatMetric, nextSort, sortRows, statusLabel, type RankRow } from "./rank";

function row(name: string, over: Partial<RankRow> = {}): RankRow {
  return {
    name,
    status: "compared",
    identical: false,
    nDiff: 10,
    nElements: 100,
    maxAbs: 0.5,
    rmse: 0.1,
    relError: 0.1,
    cosine: 0.99,
    snrDb: 20,
    ...over,
  };
}

const same = (name: string) => row(name, { identical: true, nDiff: 0, maxAbs: 0, rmse: 0, relError: 0, cosine: 1, snrDb: null });

describe("sortRows", () => {
  const rows = [
    same("blk.10.a"),
    row("blk.2.b", { relError: 0.3, cosine: 0.9, snrDb: 10, rmse: 0.05 }),
    row("blk.1.c", { relError: 0.05, cosine: 0.999, snrDb: 26, rmse: 0.2 }),
    row("only", { status: "onlyInB", maxAbs: null, rmse: null, relError: null, cosine: null, snrDb: null, nDiff: 0 }),
    same("blk.2.a"),
  ];

  it("puts structural differences first, then the metric, identical rows last", () => {
    expect(sortRows(rows, DEFAULT_SORT).map((r) => r.name)).toEqual(["only", "blk.2.b", "blk.1.c", "blk.2.a", "blk.10.a"]);
  });

  it("ranks cosine and SNR the other way round (smaller = more different)", () => {
    expect(sortRows(rows, { key: "cosine", mostFirst: true }).map((r) => r.name).slice(0, 3)).toEqual(["only", "blk.2.b", "blk.1.c"]);
    // SNR null on a compared row = identical = least different.
    expect(sortRows(rows, { key: "snrDb", mostFirst: true }).map((r) => r.name)).toEqual(["only", "blk.2.b", "blk.1.c", "blk.2.a", "blk.10.a"]);
  });

  it("RMSE can disagree with relative error", () => {
    expect(sortRows(rows, { key: "rmse", mostFirst: true })[1]!.name).toBe("blk.1.c");
  });

  it("reverses everything, and names sort with numbers in order", () => {
    expect(sortRows(rows, { key: "relError", mostFirst: false })[rows.length - 1]!.name).toBe("only");
    expect(sortRows(rows, { key: "name", mostFirst: true }).map((r) => r.name)).toEqual(["blk.1.c", "blk.2.a", "blk.2.b", "blk.10.a", "only"]);
  });

  it("a null relative error on a compared row (A all zeros, B not) is the most different", () => {
    const z = row("zeros", { relError: null, cosine: null });
    expect(sortRows([rows[1]!, z], DEFAULT_SORT)[0]!.name).toBe("zeros");
    expect(sortRows([rows[1]!, z], { key: "cosine", mostFirst: true })[0]!.name).toBe("zeros");
  });
});

describe("table helpers", () => {
  it("nextSort flips the same key and starts a new key most-different-first", () => {
    expect(nextSort(DEFAULT_SORT, "relError")).toEqual({ key: "relError", mostFirst: false });
    expect(nextSort({ key: "relError", mostFirst: false }, "rmse")).toEqual({ key: "rmse", mostFirst: true });
  });

  it("filters by every word and by changed-only", () => {
    const rows = [row("blk.0.attn_q.weight"), same("blk.0.ffn_up.weight"), row("blk.1.attn_k.weight")];
    expect(filterRows(rows, "blk.0 ATTN", false).map((r) => r.name)).toEqual(["blk.0.attn_q.weight"]);
    expect(filterRows(rows, "", true).map((r) => r.name)).toEqual(["blk.0.attn_q.weight", "blk.1.attn_k.weight"]);
  });

  it("formats metrics compactly and says what a status is", () => {
    expect(formatMetric(0.123456)).toBe("0.1235");
    expect(formatMetric(0.0000123)).toBe("1.23e−5");
    expect(formatMetric(null)).toBe("—");
    expect(formatMetric(Infinity)).toBe("∞");
    expect(formatMetric(-2.5)).toBe("−2.5");
    expect(statusLabel(row("x", { status: "shapeMismatch" }))).toBe("shape differs");
    expect(statusLabel(same("x"))).toBe("identical");
    expect(statusLabel(row("x"))).toBeNull();
  });
});
