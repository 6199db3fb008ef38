/**
 * Checking what a user typed for a metadata value before it is sent, per GGUF value type.
 *
 * The backend (`hotpatch_core::metadata::parse_value` / `parse_array`) is the authority and
 * re-checks everything; these functions give the same verdict at once, next to the input, with
 * a message naming the key and the type. Integers are checked with BigInt so 64-bit values are
 * exact (they cross IPC as decimal strings).
 */

/** GGUF value type names as gguf-py spells them. */
export const SCALAR_TYPES = [
  "UINT8",
  "INT8",
  "UINT16",
  "INT16",
  "UINT32",
  "INT32",
  "UINT64",
  "INT64",
  "FLOAT32",
  "FLOAT64",
  "BOOL",
  "STRING",
] as const;
export type ScalarType = (typeof SCALAR_TYPES)[number];

const INT_RANGE: Record<string, [bigint, bigint]> = {
  UINT8: [0n, 255n],
  INT8: [-128n, 127n],
  UINT16: [0n, 65535n],
  INT16: [-32768n, 32767n],
  UINT32: [0n, 4294967295n],
  INT32: [-2147483648n, 2147483647n],
  UINT64: [0n, 18446744073709551615n],
  INT64: [-9223372036854775808n, 9223372036854775807n],
};

const F32_MAX = 3.4028234663852886e38;

/** Whether `t` is one of the GGUF scalar type names. */
export function isScalarType(t: string): t is ScalarType {
  return (SCALAR_TYPES as readonly string[]).includes(t);
}

/** Why `text` is not a valid value of `type` (without the key), or null when it is. */
export function scalarProblem(type: string, text: string): string | null {
  const t = text.trim();
  const range = INT_RANGE[type];
  if (range) {
    if (t === "") return "no value given";
    if (!/^[+-]?\d+$/.test(t)) return `'${t}' is not a whole number`;
    const v = BigInt(t);
    if (v < range[0] || v > range[1]) return `${v} is out of range ${range[0]}..=${range[1]}`;
    return null;
  }
  if (type === "FLOAT32" || type === "FLOAT64") {
    if (t === "") return "no value given";
    if (/^(nan|\+?inf|infinity|-inf|-infinity)$/i.test(t)) return null;
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return `'${t}' is not a number`;
    const v = Number(t);
    const max = type === "FLOAT32" ? F32_MAX : Number.MAX_VALUE;
    if (!Number.isFinite(v) || Math.abs(v) > max) return `${t} is too large for this type`;
    return null;
  }
  if (type === "BOOL") return t === "true" || t === "false" ? null : `'${t}' is not true or false`;
  if (type === "STRING") return null;
  return `unknown type ${type}`;
}

/** Why `text` is not a valid JSON list of `element` values, or null. */
export function arrayProblem(element: string, text: string): string | null {
  let items: unknown;
  try {
    items = JSON.parse(text);
  } catch (e) {
    return `not a JSON list: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (!Array.isArray(items)) return "not a JSON list (write it as [a, b, c])";
  if (element === "ARRAY") return "arrays of arrays cannot be edited as text";
  for (let i = 0; i < items.length; i++) {
    const v: unknown = items[i];
    if (element === "STRING") {
      if (typeof v !== "string") return `element ${i} is ${JSON.stringify(v)}, not a string`;
      continue;
    }
    if (element === "BOOL") {
      if (typeof v !== "boolean") return `element ${i} is ${JSON.stringify(v)}, not a BOOL`;
      continue;
    }
    if (typeof v !== "number" && typeof v !== "string") return `element ${i} is ${JSON.stringify(v)}, not a ${element}`;
    // JSON numbers beyond 2^53 lose digits in JS; the backend reads the original text, so
    // only the form is checked here for numbers, the full range for strings.
    const p = scalarProblem(element, typeof v === "number" ? numberText(text, i, v) : v);
    if (p) return `element ${i}: ${p}`;
  }
  return null;
}

/** The source text of the i-th number of a flat JSON list (so big integers keep their digits). */
function numberText(text: string, i: number, v: number): string {
  const inner = text.trim().replace(/^\[/, "").replace(/\]$/, "");
  const parts = inner.split(",");
  const raw = parts[i]?.trim();
  return raw !== undefined && /^[+-]?[\d.eE+-]+$/.test(raw) ? raw : String(v);
}

/** The full message for an input problem: names the key and type, as the backend does. */
export function valueProblem(key: string, type: string, element: string | null, text: string): string | null {
  const p = type === "ARRAY" ? arrayProblem(element ?? "", text) : scalarProblem(type, text);
  if (!p) return null;
  const ty = type === "ARRAY" ? `ARRAY[${element}]` : type;
  return `${key} (${ty}): ${p}`;
}

/** Why a key is not acceptable, or null (printable ASCII, no spaces, 1..=1024 bytes). */
export function keyProblem(key: string): string | null {
  if (key.length === 0) return "the key is empty";
  if (key.length > 1024) return `the key is ${key.length} bytes long (at most 1024)`;
  const bad = [...key].find((c) => c.charCodeAt(0) < 0x21 || c.charCodeAt(0) > 0x7e);
  if (bad !== undefined) return `key '${key}' contains ${JSON.stringify(bad)}; keys are printable ASCII without spaces`;
  return null;
}
