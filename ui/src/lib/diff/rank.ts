/**
 * The Diff screen's ranking table, as pure functions: sorting by any metric with "most
 * different first" as the natural direction, filtering, and the number formats of the cells.
 *
 * Rows come from `run_diff` (see src-tauri/src/commands/diff.rs). Rows that could not be
 * compared value by value — a shape mismatch, a tensor found in only one model, a type without
 * a codec — are the most different of all: they sort above every compared row when the order
 * is "most different first" (and below when reversed). Among compared rows each metric has its
 * own direction: larger max |Δ|, RMSE, relative error and changed count mean more different;
 * smaller cosine and SNR mean more different. A missing metric on a compared row is resolved
 * the way core defines it (SNR `null` = no difference = +∞; relative error or cosine `null` =
 * exactly one side all zeros = as different as it gets).
 */

/** The subset of a `DiffRow` the table logic needs (the generated type is wider). */
export interface RankRow {
  name: string;
  status: "compared" | "shapeMismatch" | "unsupported" | "onlyInA" | "onlyInB";
  identical: boolean;
  nDiff: number;
  nElements: number;
  maxAbs: number | null;
  rmse: number | null;
  relError: number | null;
  cosine: number | null;
  snrDb: number | null;
}

export type SortKey = "name" | "maxAbs" | "rmse" | "relError" | "cosine" | "snrDb" | "nDiff";

/** `mostFirst`: most different first (for `name`: alphabetical). */
export interface SortState {
  key: SortKey;
  mostFirst: boolean;
}

export const DEFAULT_SORT: SortState = { key: "relError", mostFirst: true };

/** Column titles (and tooltips) of the sortable metrics. */
export const SORT_LABELS: Record<SortKey, { label: string; title: string }> = {
  name: { label: "Tensor", title: "Tensor name (blocks in numeric order)" },
  maxAbs: { label: "max |Δ|", title: "Largest |A − B| over the tensor's elements" },
  rmse: { label: "RMSE", title: "Root mean square of A − B" },
  relError: { label: "rel. err", title: "‖A − B‖ / ‖A‖ (scale-free: comparable across tensors)" },
  cosine: { label: "cosine", title: "Cosine similarity of A and B (1 = same direction)" },
  snrDb: { label: "SNR dB", title: "10·log10(‖A‖² / ‖A − B‖²); ∞ when identical" },
  nDiff: { label: "changed", title: "Elements whose values differ" },
};

/** A value where larger always means "more different" (`-Infinity` = not different at all). */
export function difference(row: RankRow, key: Exclude<SortKey, "name">): number {
  switch (key) {
    case "maxAbs":
      return row.maxAbs ?? (row.identical ? 0 : Infinity);
    case "rmse":
      return row.rmse ?? (row.identical ? 0 : Infinity);
    case "relError":
      return row.relError ?? Infinity;
    case "cosine":
      return row.cosine === null ? Infinity : -row.cosine;
    case "snrDb":
      return row.snrDb === null ? -Infinity : -row.snrDb;
    case "nDiff":
      return row.nDiff;
  }
}

const collator = new Intl.Collator("en", { numeric: true });

/** Whether the row was compared value by value. */
export function isCompared(row: RankRow): boolean {
  return row.status === "compared";
}

/** Sorted copy of `rows` (stable; ties by name). */
export function sortRows<T extends RankRow>(rows: readonly T[], sort: SortState): T[] {
  const dir = sort.mostFirst ? 1 : -1;
  const out = rows.slice();
  out.sort((x, y) => {
    if (sort.key === "name") return dir * collator.compare(x.name, y.name);
    // Structural differences first (most different), then the metric.
    const gx = isCompared(x) ? 0 : 1;
    const gy = isCompared(y) ? 0 : 1;
    if (gx !== gy) return dir * (gy - gx);
    if (gx === 0) {
      const dx = difference(x, sort.key);
      const dy = difference(y, sort.key);
      if (dx !== dy) return dir * (dy > dx ? 1 : -1);
    }
    return collator.compare(x.name, y.name);
  });
  return out;
}

/** The next sort after a click on `key`'s header: same key flips, a new key starts at its
 * natural direction (most different first; names A→Z). */
export function nextSort(cur: SortState, key: SortKey): SortState {
  if (cur.key === key) return { key, mostFirst: !cur.mostFirst };
  return { key, mostFirst: true };
}

/** Rows whose name contains every space-separated word of `text` (case-insensitive);
 * `changedOnly` keeps rows that are not identical. */
export function filterRows<T extends RankRow>(rows: readonly T[], text: string, changedOnly: boolean): T[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  return rows.filter((r) => (!changedOnly || !r.identical) && words.every((w) => r.name.toLowerCase().includes(w)));
}

/** A metric for a table cell: 4 significant digits, exponent form for tiny/huge values. */
export function formatMetric(x: number | null, none = "—"): string {
  if (x === null || Number.isNaN(x)) return none;
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2).replace("e", "e").replace("-", "−");
  return Number(x.toPrecision(4)).toString().replace("-", "−");
}

/** Short label of a row's status, for the table's badge. */
export function statusLabel(row: RankRow): string | null {
  switch (row.status) {
    case "shapeMismatch":
      return "shape differs";
    case "unsupported":
      return "no codec";
    case "onlyInA":
      return "only in A";
    case "onlyInB":
      return "only in B";
    default:
      return row.identical ? "identical" : null;
  }
}
