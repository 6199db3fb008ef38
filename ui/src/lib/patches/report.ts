/**
 * Pure helpers of the Patches screen: which log entries can be undone (and how many steps
 * that takes), the counts and verdict of an import preview, and the one-line summaries of
 * the safety scan and boost reports. Unit-tested in report.test.ts.
 */
import type { BoostView_Serialize as BoostView, ImportPreview_Serialize as ImportPreview, PatchEventView_Serialize as PatchEventView, PreviewRow, SafetyView_Serialize as SafetyView } from "../../bindings";

/** Whether the log row of `ev` offers "Undo to here": its change is still in the history. */
export function canUndo(ev: PatchEventView, undoable: ReadonlySet<number>): boolean {
  return (
    ev.undoable &&
    ev.change != null &&
    undoable.has(ev.change) &&
    ev.operation !== "undo" &&
    ev.operation !== "redo"
  );
}

/** Undo steps "Undo to here" on `change` takes: the entry and every later one. */
export function undoSteps(change: number, undoable: readonly number[]): number {
  return undoable.filter((id) => id >= change).length;
}

export interface PreviewCounts {
  willChange: number;
  alreadyApplied: number;
  mismatch: number;
  info: number;
}

export function previewCounts(items: readonly PreviewRow[]): PreviewCounts {
  const c: PreviewCounts = { willChange: 0, alreadyApplied: 0, mismatch: 0, info: 0 };
  for (const i of items) c[i.status] += 1;
  return c;
}

/** How the configuration relates to the open model, from its fingerprints. */
export function fingerprintVerdict(
  p: Pick<ImportPreview, "sameFile" | "sameModel" | "recordedOn"> & Partial<Pick<ImportPreview, "allowOtherModel">>,
): {
  tone: "ok" | "warn" | "info";
  text: string;
} {
  const on = p.recordedOn ? ` (${p.recordedOn})` : "";
  if (p.sameFile === true) return { tone: "ok", text: `Recorded on this exact file layout${on}.` };
  if (p.sameModel === true)
    return { tone: "info", text: `Recorded on another quantization of this model${on}: tensor edits re-encode here.` };
  if (p.sameModel === false)
    return p.allowOtherModel
      ? { tone: "warn", text: `Recorded on a different model${on}: applied to this one anyway, as you asked.` }
      : {
          tone: "warn",
          text: `Recorded on a different model${on}: tensors of the same name may mean something else here, so it is not applied unless you say so.`,
        };
  return { tone: "info", text: "Not tied to a model (a preset): applies wherever its tensors exist." };
}

/** `0.8312` → `"83.1 %"`, `null` → `"unknown"`. */
export function formatFraction(f: number | null): string {
  return f == null || !Number.isFinite(f) ? "unknown" : `${(f * 100).toFixed(1)} %`;
}

/** One line on a safety scan. */
export function safetySummary(v: SafetyView): string {
  const found = v.flagged.filter((t) => t.skipped == null).length;
  const head = v.canceled
    ? `Canceled after ${v.tensorsScanned} tensors: partial counts, nothing repaired.`
    : `Scanned ${v.tensorsScanned} tensors (${v.elementsScanned.toLocaleString("en-US")} values).`;
  const what =
    v.totalHits === 0
      ? " Nothing found."
      : ` Found ${v.totalHits.toLocaleString("en-US")} value${v.totalHits === 1 ? "" : "s"} in ${found} tensor${found === 1 ? "" : "s"}.`;
  const fix = v.repairs.length > 0 ? ` Repaired ${v.repairs.length} (one undo step).` : "";
  return head + what + fix;
}

/** One line on a boost. */
export function boostSummary(b: BoostView): string {
  const pin =
    b.pinnedPages != null ? `, ${b.pinnedPages.toLocaleString("en-US")} pages pinned` : b.pinError ? ", not pinned" : "";
  return `Resident ${formatFraction(b.residentBefore)} → ${formatFraction(b.residentAfter)}${pin}; response cache ${
    b.cacheEnabled ? "on" : "off"
  }.`;
}

/** `HH:MM:SS.mmm` in local time. */
export function formatClock(unixMs: number): string {
  const d = new Date(unixMs);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
