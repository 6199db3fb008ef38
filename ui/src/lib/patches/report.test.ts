import { describe, expect, it } from "vitest";
import type { BoostView_Serialize as BoostView, PatchEventView_Serialize as PatchEventView, SafetyView_Serialize as SafetyView } from "../../bindings";
import {
  boostSummary,
  canUndo,
  fingerprintVerdict,
  formatClock,
  formatFraction,
  previewCounts,
  safetySummary,
  undoSteps,
} from "./report";

const ev = (over: Partial<PatchEventView>): PatchEventView => ({
  id: 1,
  change: 5,
  layer: "tensor",
  operation: "scale",
  target: "blk.0.attn_q.weight",
  source: null,
  file: null,
  bytesChanged: 10,
  bytesWritten: 10,
  timeUnixMs: 0,
  undoable: true,
  ...over,
});

describe("undo", () => {
  it("offers undo only for changes still in the history, never on undo/redo rows", () => {
    const live = new Set([3, 5]);
    expect(canUndo(ev({}), live)).toBe(true);
    expect(canUndo(ev({ change: 4 }), live)).toBe(false);
    expect(canUndo(ev({ change: null }), live)).toBe(false);
    expect(canUndo(ev({ undoable: false }), live)).toBe(false);
    expect(canUndo(ev({ operation: "redo" }), live)).toBe(false);
  });
  it("counts the entry and every later one", () => {
    expect(undoSteps(5, [2, 5, 9, 11])).toBe(3);
    expect(undoSteps(11, [2, 5, 9, 11])).toBe(1);
  });
});

describe("preview", () => {
  it("counts items per status", () => {
    const row = (status: "willChange" | "alreadyApplied" | "mismatch" | "info") => ({ item: "", target: "", status, detail: "" });
    expect(previewCounts([row("willChange"), row("willChange"), row("mismatch"), row("info")])).toEqual({
      willChange: 2,
      alreadyApplied: 0,
      mismatch: 1,
      info: 1,
    });
  });
  it("explains the fingerprints", () => {
    expect(fingerprintVerdict({ sameFile: true, sameModel: true, recordedOn: "a.gguf" })).toEqual({
      tone: "ok",
      text: "Recorded on this exact file layout (a.gguf).",
    });
    expect(fingerprintVerdict({ sameFile: false, sameModel: true, recordedOn: null }).tone).toBe("info");
    expect(fingerprintVerdict({ sameFile: false, sameModel: false, recordedOn: null }).tone).toBe("warn");
    expect(fingerprintVerdict({ sameFile: null, sameModel: null, recordedOn: null }).text).toMatch(/preset/);
  });
});

describe("reports", () => {
  const scan: SafetyView = {
    canceled: false,
    tensorsScanned: 30,
    elementsScanned: 1234567,
    flagged: [
      { tensor: "a", ty: "F32", elements: 10, nan: 1, inf: 0, subnormal: 0, outliers: 0, skipped: null },
      { tensor: "b", ty: "Q4_K", elements: 0, nan: 0, inf: 0, subnormal: 0, outliers: 0, skipped: "no codec" },
    ],
    hits: [],
    totalHits: 1,
    repairs: [{ tensor: "a", op: "replace_non_finite", elementsSelected: 10, bytesChanged: 4, blocksRequantized: 0, sideEffects: 0 }],
    change: 7,
    responseFilters: 0,
  };
  it("summarizes a scan", () => {
    expect(safetySummary(scan)).toBe("Scanned 30 tensors (1,234,567 values). Found 1 value in 1 tensor. Repaired 1 (one undo step).");
    expect(safetySummary({ ...scan, canceled: true, repairs: [], totalHits: 0 })).toBe(
      "Canceled after 30 tensors: partial counts, nothing repaired. Nothing found.",
    );
  });
  it("summarizes a boost", () => {
    const b: BoostView = { residentBefore: 0.25, residentAfter: 1, prefetchedBytes: 100, pinnedPages: null, pinError: "mlock failed", cacheEnabled: true };
    expect(boostSummary(b)).toBe("Resident 25.0 % → 100.0 %, not pinned; response cache on.");
    expect(formatFraction(null)).toBe("unknown");
  });
  it("formats a clock time", () => {
    const t = new Date(2026, 0, 2, 3, 4, 5, 67).getTime();
    expect(formatClock(t)).toBe("03:04:05.067");
  });
});
