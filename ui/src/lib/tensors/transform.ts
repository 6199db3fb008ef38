/**
 * The transform form's model: which fields each operation and selection needs, and the
 * conversion of the form's text fields into the command's arguments with an error naming the
 * field that is wrong.
 */
import type { SelectionArgs, TransformArgs } from "../../bindings";

export type OpName = "scale" | "add" | "set" | "clamp" | "zero" | "negate" | "noise" | "replace_non_finite" | "lerp";
export type SelKind = "all" | "rows" | "columns" | "range" | "elements" | "head";

/** The text fields each operation shows, with labels. */
export const OP_FIELDS: Record<OpName, { key: keyof TransformForm; label: string }[]> = {
  scale: [{ key: "value", label: "factor" }],
  add: [{ key: "value", label: "value" }],
  set: [{ key: "value", label: "value" }],
  clamp: [
    { key: "min", label: "min" },
    { key: "max", label: "max" },
  ],
  zero: [],
  negate: [],
  noise: [
    { key: "std", label: "std" },
    { key: "seed", label: "seed" },
  ],
  replace_non_finite: [{ key: "value", label: "replacement" }],
  lerp: [
    { key: "model", label: "other model (.gguf)" },
    { key: "value", label: "t (0…1)" },
  ],
};

export const OP_LABELS: Record<OpName, string> = {
  scale: "Scale ×",
  add: "Add +",
  set: "Set =",
  clamp: "Clamp",
  zero: "Zero",
  negate: "Negate",
  noise: "Add noise",
  replace_non_finite: "Replace NaN/Inf",
  lerp: "Blend with model",
};

export const SEL_LABELS: Record<SelKind, string> = {
  all: "Whole tensor",
  rows: "Rows",
  columns: "Columns",
  range: "Flat elements",
  elements: "Element list",
  head: "Attention head",
};

/** The form's fields as typed. */
export interface TransformForm {
  op: OpName;
  value: string;
  min: string;
  max: string;
  std: string;
  seed: string;
  model: string;
  kind: SelKind;
  start: string;
  end: string;
  indices: string;
  head: string;
}

type Out<T> = { ok: T } | { error: string };

function num(text: string, label: string): Out<number> {
  const t = text.trim();
  if (t === "") return { error: `${label}: required` };
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return { error: `${label}: “${t}” is not a number` };
  const v = Number(t);
  if (!Number.isFinite(v) || Math.abs(v) > 3.4028234663852886e38) return { error: `${label}: “${t}” is outside the f32 range` };
  return { ok: v };
}

function uint(text: string, label: string): Out<number> {
  const t = text.trim();
  if (t === "") return { error: `${label}: required` };
  if (!/^\d+$/.test(t)) return { error: `${label}: “${t}” is not a whole number ≥ 0` };
  const v = Number(t);
  if (!Number.isSafeInteger(v)) return { error: `${label}: “${t}” is too large` };
  return { ok: v };
}

/** The command's `op` argument, or the first field that is wrong. */
export function toTransformArgs(f: TransformForm): Out<TransformArgs> {
  const a: TransformArgs = { op: f.op, value: null, min: null, max: null, seed: null, std: null, model: null };
  for (const { key, label } of OP_FIELDS[f.op]) {
    if (key === "model") {
      if (f.model.trim() === "") return { error: `${label}: required` };
      a.model = f.model.trim();
    } else if (key === "seed") {
      const r = uint(f.seed, label);
      if ("error" in r) return r;
      a.seed = r.ok;
    } else {
      const r = num(f[key] as string, label);
      if ("error" in r) return r;
      (a as Record<string, unknown>)[key] = r.ok;
    }
  }
  if (f.op === "clamp" && a.min! > a.max!) return { error: `clamp: min ${a.min} is above max ${a.max}` };
  if (f.op === "noise" && a.std! < 0) return { error: "std: must be ≥ 0" };
  return { ok: a };
}

/** The command's `selection` argument, or the first field that is wrong. */
export function toSelectionArgs(f: TransformForm): Out<SelectionArgs> {
  const s: SelectionArgs = { kind: f.kind, start: null, end: null, indices: null, head: null };
  if (f.kind === "rows" || f.kind === "columns" || f.kind === "range") {
    const a = uint(f.start, "from");
    if ("error" in a) return a;
    const b = uint(f.end, "to (excluded)");
    if ("error" in b) return b;
    if (b.ok <= a.ok) return { error: `to (excluded) ${b.ok} must be above from ${a.ok}` };
    s.start = a.ok;
    s.end = b.ok;
  } else if (f.kind === "elements") {
    const parts = f.indices.split(/[\s,;]+/).filter((p) => p !== "");
    if (parts.length === 0) return { error: "elements: list at least one flat index" };
    const out: number[] = [];
    for (const p of parts) {
      const r = uint(p, "elements");
      if ("error" in r) return r;
      out.push(r.ok);
    }
    s.indices = out;
  } else if (f.kind === "head") {
    const r = uint(f.head, "head");
    if ("error" in r) return r;
    s.head = r.ok;
  }
  return { ok: s };
}
