/**
 * A surgery recipe as the Surgery screen builds it: the JSON list of operations a
 * configuration's `surgery` section holds (`crates/core/src/surgery/ops.rs` is the format; the
 * backend validates every field and names the one that is wrong). These helpers turn the
 * screen's form fields into operations and describe them in one line.
 */

/** A merge parameter as mergekit writes it: a number or a gradient over the layers. */
export type Param = number | number[];

export interface TypeRule {
  tensor: string;
  type: string;
}

export interface LayerSlice {
  model?: string | null;
  layers: string;
}

export type TensorSource =
  | { kind: "gguf"; path: string; tensor: string }
  | { kind: "npy"; path: string }
  | { kind: "safetensors"; path: string; tensor: string };

export type MergeMethod = "linear" | "slerp" | "task" | "ties" | "dare" | "dare_ties";

export interface MergeModel {
  path: string;
  weight?: Param;
  density?: Param;
}

export type SurgeryOp =
  | { op: "convert"; types: TypeRule[] }
  | { op: "layers"; slices: LayerSlice[] }
  | { op: "rename"; from: string; to: string }
  | { op: "remove"; tensor: string }
  | { op: "add"; name: string; source: TensorSource; type?: string }
  | { op: "merge"; method: MergeMethod; models: MergeModel[]; t?: Param; lambda?: number; seed?: number; types?: TypeRule[] }
  | { op: "lora"; adapter: string; scale: number }
  | { op: "ablate"; direction: { path: string; layer?: number }; layers?: string; embeddings: boolean; scale: number };

export type OpKind = SurgeryOp["op"];

/** Thrown for a form field that cannot become an operation; names the field. */
export class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A finite number from a field. */
export function parseNumber(field: string, text: string): number {
  const t = text.trim();
  if (!NUMBER.test(t)) throw new FieldError(field, `"${t}" is not a number`);
  const n = Number(t);
  if (!Number.isFinite(n)) throw new FieldError(field, `"${t}" is out of range`);
  return n;
}

/** A number, or a gradient written `[0, 0.5, 1]` (or `0, 0.5, 1`), spread over the layers. */
export function parseParam(field: string, text: string): Param {
  const t = text.trim().replace(/^\[/, "").replace(/\]$/, "");
  const parts = t.split(",").map((s) => s.trim());
  if (parts.length === 1) return parseNumber(field, parts[0] ?? "");
  if (parts.some((p) => p === "")) throw new FieldError(field, `"${text.trim()}" has an empty item`);
  return parts.map((p) => parseNumber(field, p));
}

/** Type rules written `GLOB=TYPE` separated by commas or lines, as `--type` takes them. */
export function parseTypeRules(field: string, text: string): TypeRule[] {
  const rules = text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => {
      const eq = s.lastIndexOf("=");
      if (eq <= 0 || eq === s.length - 1) throw new FieldError(field, `"${s}" is not GLOB=TYPE (e.g. blk.*.ffn_down.weight=Q8_0)`);
      return { tensor: s.slice(0, eq).trim(), type: s.slice(eq + 1).trim().toUpperCase() };
    });
  if (rules.length === 0) throw new FieldError(field, "give at least one GLOB=TYPE rule");
  return rules;
}

function required(field: string, text: string): string {
  const t = text.trim();
  if (t === "") throw new FieldError(field, "is empty");
  return t;
}

export interface MergeFields {
  method: MergeMethod;
  models: string;
  t: string;
  weights: string;
  density: string;
  lambda: string;
  seed: string;
}

/** A merge of the open model (the base) with the models listed one per line. */
export function mergeOp(f: MergeFields): SurgeryOp {
  const paths = f.models
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (paths.length === 0) throw new FieldError("Models", "give at least one model to merge with the open one");
  if (f.method === "slerp" && paths.length !== 1) throw new FieldError("Models", "SLERP interpolates between the open model and exactly one other");
  const weights = f.weights.trim() === "" ? [] : f.weights.split(";").map((w) => parseParam("Weights", w));
  if (weights.length > 0 && weights.length !== paths.length)
    throw new FieldError("Weights", `${weights.length} weights for ${paths.length} models (separate them with ';')`);
  const density = f.density.trim() === "" ? undefined : parseParam("Density", f.density);
  const models: MergeModel[] = paths.map((path, i) => ({
    path,
    ...(weights[i] !== undefined ? { weight: weights[i] } : {}),
    ...(density !== undefined ? { density } : {}),
  }));
  const op: SurgeryOp = { op: "merge", method: f.method, models };
  if (f.t.trim() !== "") op.t = parseParam("t", f.t);
  if (f.lambda.trim() !== "") op.lambda = parseNumber("λ", f.lambda);
  if (f.seed.trim() !== "") {
    const s = parseNumber("Seed", f.seed);
    if (!Number.isSafeInteger(s) || s < 0) throw new FieldError("Seed", `"${f.seed.trim()}" is not a whole number ≥ 0`);
    op.seed = s;
  }
  if ((f.method === "linear" || f.method === "slerp") && op.t === undefined && paths.length === 1)
    throw new FieldError("t", "give the interpolation factor (0 is the open model, 1 the other)");
  return op;
}

export function convertOp(rules: string): SurgeryOp {
  return { op: "convert", types: parseTypeRules("Types", rules) };
}

export function renameOp(from: string, to: string): SurgeryOp {
  return { op: "rename", from: required("From", from), to: required("To", to) };
}

export function removeOp(tensor: string): SurgeryOp {
  return { op: "remove", tensor: required("Tensor", tensor) };
}

export function addOp(name: string, path: string, tensor: string, type: string): Extract<SurgeryOp, { op: "add" }> {
  const p = required("File", path);
  const lower = p.toLowerCase();
  const source: TensorSource = lower.endsWith(".npy")
    ? { kind: "npy", path: p }
    : lower.endsWith(".safetensors")
      ? { kind: "safetensors", path: p, tensor: required("Tensor in the file", tensor) }
      : { kind: "gguf", path: p, tensor: required("Tensor in the file", tensor) };
  const op: Extract<SurgeryOp, { op: "add" }> = { op: "add", name: required("Name", name), source };
  if (type.trim() !== "") op.type = type.trim().toUpperCase();
  return op;
}

export function loraOp(adapter: string, scale: string): SurgeryOp {
  return { op: "lora", adapter: required("Adapter", adapter), scale: scale.trim() === "" ? 1 : parseNumber("Scale", scale) };
}

export function ablateOp(path: string, layer: string, layers: string, embeddings: boolean, scale: string): SurgeryOp {
  const direction: { path: string; layer?: number } = { path: required("Direction", path) };
  if (layer.trim() !== "") {
    const n = parseNumber("Direction of layer", layer);
    if (!Number.isInteger(n) || n < 0) throw new FieldError("Direction of layer", `"${layer.trim()}" is not a layer number`);
    direction.layer = n;
  }
  const op: SurgeryOp = { op: "ablate", direction, embeddings, scale: scale.trim() === "" ? 1 : parseNumber("Scale", scale) };
  if (layers.trim() !== "") op.layers = layers.trim();
  return op;
}

function base(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

function param(p: Param): string {
  return typeof p === "number" ? String(p) : `[${p.join(", ")}]`;
}

/** One line for the recipe list. */
export function describeOp(op: SurgeryOp): string {
  switch (op.op) {
    case "convert":
      return `convert ${op.types.map((r) => `${r.tensor} → ${r.type}`).join(", ")}`;
    case "layers":
      return `layers ${op.slices.map((s) => (s.model ? `${base(s.model)}:${s.layers}` : s.layers)).join(" + ")}`;
    case "rename":
      return `rename ${op.from} → ${op.to}`;
    case "remove":
      return `remove ${op.tensor}`;
    case "add":
      return `add ${op.name} from ${base(op.source.path)}${"tensor" in op.source ? `:${op.source.tensor}` : ""}${op.type ? ` as ${op.type}` : ""}`;
    case "merge":
      return `merge (${op.method}) with ${op.models.map((m) => base(m.path) + (m.weight !== undefined ? ` ×${param(m.weight)}` : "")).join(", ")}${op.t !== undefined ? `, t=${param(op.t)}` : ""}`;
    case "lora":
      return `LoRA ${base(op.adapter)} × ${op.scale}`;
    case "ablate":
      return `ablate ${base(op.direction.path)}${op.direction.layer !== undefined ? `[${op.direction.layer}]` : ""} from ${op.layers ? `layers ${op.layers}` : "every layer"}${op.embeddings ? " and the embeddings" : ""}${op.scale !== 1 ? ` × ${op.scale}` : ""}`;
  }
}

/** The recipe with operation `i` moved one place up (no change for the first). */
export function moveUp(ops: SurgeryOp[], i: number): SurgeryOp[] {
  if (i <= 0 || i >= ops.length) return ops;
  const next = ops.slice();
  const [op] = next.splice(i, 1);
  if (op) next.splice(i - 1, 0, op);
  return next;
}

/** The recipe as the text the backend reads (and a configuration's `surgery` section holds). */
export function recipeJson(ops: SurgeryOp[]): string {
  return JSON.stringify(ops, null, 2);
}

/** A recipe from text: a JSON list of operations, or a configuration with a `surgery` section. */
export function parseRecipeText(text: string): SurgeryOp[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new FieldError("Recipe", `not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  const list = Array.isArray(v) ? v : v && typeof v === "object" && Array.isArray((v as { surgery?: unknown }).surgery) ? (v as { surgery: unknown[] }).surgery : null;
  if (!list) throw new FieldError("Recipe", "expected a list of operations or a configuration with a surgery section");
  list.forEach((o, i) => {
    if (!o || typeof o !== "object" || typeof (o as { op?: unknown }).op !== "string") throw new FieldError(`Recipe[${i}]`, "an operation needs an \"op\"");
  });
  return list as SurgeryOp[];
}
