/** Formatting helpers shared by the views. Pure functions, unit-tested in format.test.ts. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/** `3_355_443` → `"3.20 MiB"`; bytes below 1 KiB are shown exactly. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "—";
  if (n < 1024) return `${n} B`;
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${UNITS[u]}`;
}

/** `1234567` → `"1,234,567"` (locale-independent, so tests and screenshots are stable). */
export function formatCount(n: number): string {
  const s = Math.trunc(n).toString();
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** An offset as a hex editor shows it: `0x` and at least 8 hex digits. */
export function formatOffset(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

/**
 * What every dimension in the UI means: GGUF order, `ne0 × ne1` (as gguf-py prints), which for
 * a matrix is columns × rows. Shown as the tooltip of each dimension text.
 */
export const DIMS_HINT = "ne0 × ne1 (columns × rows), GGUF order as gguf-py prints it";

/**
 * ggml dims (ne[0] first) as `256 × 279` — columns × rows for a matrix ({@link DIMS_HINT}). The
 * one way the UI writes dimensions. An empty shape is a scalar.
 */
export function formatDims(dims: readonly number[]): string {
  return dims.length === 0 ? "scalar" : dims.map(formatCount).join(" × ");
}

/** Which family a ggml type name belongs to; the UI colours badges by it. */
export type TypeFamily = "float" | "legacy" | "kquant" | "iquant" | "other" | "unknown";

export function typeFamily(ty: string): TypeFamily {
  if (/^(F32|F16|BF16|F64)$/.test(ty)) return "float";
  if (/^Q\d_[01]$/.test(ty)) return "legacy";
  if (/^Q\d_K$/.test(ty)) return "kquant";
  if (/^IQ/.test(ty)) return "iquant";
  if (ty.startsWith("UNKNOWN")) return "unknown";
  return "other";
}

/** Bits per weight of a tensor, e.g. 4.5 for Q4_K. */
export function bitsPerWeight(nbytes: number, nElements: number): number {
  return nElements === 0 ? 0 : (nbytes * 8) / nElements;
}
