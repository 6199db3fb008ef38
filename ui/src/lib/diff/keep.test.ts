import { beforeEach, describe, expect, it } from "vitest";
import { compareOnce, comparing, diffKey, freshDiff, keepDiff, reconcileB, resetDiffKeep, restoreDiff, withResult, type Compared } from "./keep";
import type { DiffModelInfo, DiffResult, DiffRow } from "./types";

const B: DiffModelInfo = { path: "/m/b.gguf", fileName: "b.gguf", tensorCount: 2, tensorBytes: 100, shards: 1 };
const B2: DiffModelInfo = { ...B, path: "/m/other.gguf", fileName: "other.gguf" };

function row(name: string, relError: number): DiffRow {
  return {
    name,
    status: "compared",
    reason: null,
    typeA: "F32",
    typeB: "F32",
    dimsA: [4],
    dimsB: [4],
    nElements: 4,
    nDiff: relError > 0 ? 1 : 0,
    nonFinite: 0,
    identical: relError === 0,
    maxAbs: relError,
    meanAbs: relError,
    rmse: relError,
    relError,
    cosine: 1 - relError,
    snrDb: null,
  } as DiffRow;
}

function result(...rows: DiffRow[]): DiffResult {
  return { pathB: B.path, rows, identical: 0, bytesCompared: 10, millis: 1 } as unknown as DiffResult;
}

beforeEach(() => resetDiffKeep());

describe("the kept state", () => {
  it("is restored for the same model A only", () => {
    const k = { ...freshDiff("/m/a.gguf"), b: B, filter: "attn", selected: "x" };
    keepDiff(k);
    expect(restoreDiff("/m/a.gguf")).toBe(k);
    expect(restoreDiff("/m/other-a.gguf")).toBeNull();
    expect(restoreDiff(null)).toBeNull();
  });

  it("keeps the ranking when the backend's B is the same file, clears it for another or none", () => {
    const k = withResult({ ...freshDiff("/m/a.gguf"), b: B, sort: { key: "name", mostFirst: false }, filter: "blk" }, result(row("a", 0.1), row("b", 0.5)), 7);
    expect(reconcileB(k, B)).toBe(k);
    const fresh = { ...B, tensorCount: 3 };
    expect(reconcileB(k, fresh).result).toBe(k.result);
    expect(reconcileB(k, fresh).b).toBe(fresh);
    const other = reconcileB(k, B2);
    expect(other.result).toBeNull();
    expect(other.selected).toBeNull();
    expect(other.ranAt).toBe(-1);
    expect(other.filter).toBe("blk"); // the user's reading settings stay
    expect(other.sort).toEqual({ key: "name", mostFirst: false });
    expect(reconcileB(k, null).result).toBeNull();
    expect(diffKey(other)).toBe("/m/a.gguf|/m/other.gguf");
  });

  it("a new ranking keeps the selection if still a row, else selects the first in sort order", () => {
    const k = { ...freshDiff("/m/a.gguf"), b: B };
    const r = result(row("a", 0.1), row("b", 0.5));
    expect(withResult(k, r, 3)).toMatchObject({ selected: "b", ranAt: 3, result: r }); // most different first
    expect(withResult({ ...k, selected: "a" }, r, 3).selected).toBe("a");
    expect(withResult({ ...k, selected: "gone" }, r, 3).selected).toBe("b");
  });
});

describe("compareOnce", () => {
  it("joins the comparison still running for the same A and B, and stores its result when it ends", async () => {
    const k = { ...freshDiff("/m/a.gguf"), b: B };
    keepDiff(k);
    let starts = 0;
    let finish: (c: Compared) => void = () => {};
    const start = () => {
      starts++;
      return new Promise<Compared>((resolve) => (finish = resolve));
    };
    const key = diffKey(k);
    const first = compareOnce(key, start);
    // The screen left and came back: the same comparison, not a second one.
    const second = compareOnce(key, start);
    expect(second).toBe(first);
    expect(starts).toBe(1);
    expect(comparing(key)).toBe(true);
    const r = result(row("a", 0.2));
    finish({ result: r, at: 5 });
    await first;
    expect(comparing(key)).toBe(false);
    // Finished while no screen was there: the kept state has it.
    expect(restoreDiff("/m/a.gguf")).toMatchObject({ result: r, ranAt: 5, selected: "a" });
    // Another run afterwards starts anew.
    void compareOnce(key, start);
    expect(starts).toBe(2);
  });

  it("a failed comparison is not joined afterwards and leaves the kept state alone", async () => {
    const k = { ...freshDiff("/m/a.gguf"), b: B };
    keepDiff(k);
    const key = diffKey(k);
    await expect(compareOnce(key, () => Promise.reject(new Error("canceled")))).rejects.toThrow("canceled");
    expect(comparing(key)).toBe(false);
    expect(restoreDiff("/m/a.gguf")).toBe(k);
  });
});
