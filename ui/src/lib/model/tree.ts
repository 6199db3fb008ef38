/**
 * The tensor tree: tensors grouped by transformer block (`blk.N.`), global tensors first,
 * blocks in numeric order, tensors in file order within a group; filtered by name.
 */
import type { TensorRow } from "../ipc";

export interface TensorGroup {
  /** Stable key: `global` or `blk.N`. */
  key: string;
  /** What the tree shows. */
  label: string;
  /** The block number, or null for tensors outside any block. */
  block: number | null;
  /** Matching tensors, in file order. */
  tensors: TensorRow[];
  /** Their data in bytes. */
  bytes: number;
}

/**
 * Splits a filter into lowercase terms; a tensor matches when its name contains every term.
 * `"attn q"` matches `blk.0.attn_q.weight`; an empty filter matches everything.
 */
export function filterTerms(filter: string): string[] {
  return filter
    .toLowerCase()
    .split(/\s+/)
    .filter((t) => t.length > 0);
}

export function matches(name: string, terms: readonly string[]): boolean {
  const n = name.toLowerCase();
  return terms.every((t) => n.includes(t));
}

/** Groups `rows` (file order) into the tree, keeping only names matching `filter`. */
export function groupTensors(rows: readonly TensorRow[], filter = ""): TensorGroup[] {
  const terms = filterTerms(filter);
  const global: TensorGroup = { key: "global", label: "Model", block: null, tensors: [], bytes: 0 };
  const blocks = new Map<number, TensorGroup>();
  for (const row of rows) {
    if (!matches(row.name, terms)) continue;
    let group = global;
    if (row.block !== null) {
      const b = row.block;
      let g = blocks.get(b);
      if (!g) {
        g = { key: `blk.${b}`, label: `blk.${b}`, block: b, tensors: [], bytes: 0 };
        blocks.set(b, g);
      }
      group = g;
    }
    group.tensors.push(row);
    group.bytes += row.nbytes;
  }
  const ordered = [...blocks.values()].sort((a, b) => (a.block ?? 0) - (b.block ?? 0));
  return global.tensors.length > 0 ? [global, ...ordered] : ordered;
}

/** The name shown inside a group: `blk.3.attn_q.weight` → `attn_q.weight`. */
export function shortName(row: TensorRow): string {
  if (row.block === null) return row.name;
  const prefix = `blk.${row.block}.`;
  return row.name.startsWith(prefix) ? row.name.slice(prefix.length) : row.name;
}
