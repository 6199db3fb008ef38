/**
 * The heatmap's diverging colour map: negative values blue, zero near-white, positive red
 * (ColorBrewer's RdBu, 11 stops, linearly interpolated), on a scale symmetric around zero.
 * Non-finite values get colours no finite value can have: NaN bright yellow, +Inf and −Inf
 * darker than the ends of the map.
 */

export type Rgb = readonly [number, number, number];

/** RdBu from −1 (blue) to +1 (red). */
const STOPS: readonly Rgb[] = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

export const NAN_RGB: Rgb = [255, 221, 0];
export const POS_INF_RGB: Rgb = [40, 0, 12];
export const NEG_INF_RGB: Rgb = [2, 20, 44];

/** The colour of `t` in [−1, 1] (clamped). */
export function diverging(t: number): Rgb {
  const x = (Math.max(-1, Math.min(1, t)) + 1) / 2 * (STOPS.length - 1);
  const k = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - k;
  const a = STOPS[k]!;
  const b = STOPS[k + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}

/** The colour of value `x` on a scale of half-width `scale` (> 0) centred on zero. */
export function colorOf(x: number, scale: number): Rgb {
  if (Number.isNaN(x)) return NAN_RGB;
  if (x === Infinity) return POS_INF_RGB;
  if (x === -Infinity) return NEG_INF_RGB;
  return diverging(scale > 0 ? x / scale : 0);
}

/** A 1024-entry table of the map (index 0 = −1, 1023 = +1), for painting many cells. */
const LUT: Uint8Array = (() => {
  const t = new Uint8Array(1024 * 3);
  for (let i = 0; i < 1024; i++) {
    const [r, g, b] = diverging((i / 1023) * 2 - 1);
    t[i * 3] = r;
    t[i * 3 + 1] = g;
    t[i * 3 + 2] = b;
  }
  return t;
})();

/**
 * Paints `values` into RGBA pixels `out` (4 bytes per value) on a scale of half-width `scale`.
 * Uses a 1024-step table: a cell's colour is within one step of {@link colorOf}.
 */
export function paint(values: Float32Array, scale: number, out: Uint8ClampedArray, curve: Curve = "linear"): void {
  const inv = scale > 0 ? 1 / scale : 0;
  // Symmetric log: linear within ±scale/SYMLOG_KNEE, logarithmic beyond, so values far below
  // the scale still get a colour of their own.
  const knee = scale / SYMLOG_KNEE;
  const logInv = scale > 0 ? 1 / Math.log1p(SYMLOG_KNEE) : 0;
  for (let k = 0; k < values.length; k++) {
    const x = values[k]!;
    const o = k * 4;
    let c: Rgb | null = null;
    if (x !== x) c = NAN_RGB;
    else if (x === Infinity) c = POS_INF_RGB;
    else if (x === -Infinity) c = NEG_INF_RGB;
    if (c) {
      out[o] = c[0];
      out[o + 1] = c[1];
      out[o + 2] = c[2];
    } else {
      const u = curve === "symlog" && knee > 0 ? Math.sign(x) * Math.log1p(Math.abs(x) / knee) * logInv : x * inv;
      const t = Math.max(-1, Math.min(1, u));
      const i = Math.round(((t + 1) / 2) * 1023) * 3;
      out[o] = LUT[i]!;
      out[o + 1] = LUT[i + 1]!;
      out[o + 2] = LUT[i + 2]!;
    }
    out[o + 3] = 255;
  }
}

/** How values map to colours within ±scale. */
export type Curve = "linear" | "symlog";

/** The symmetric-log curve is linear up to scale / SYMLOG_KNEE. */
export const SYMLOG_KNEE = 100;

/** The quantile of |x| a robust range uses: outliers beyond it saturate instead of washing the rest out. */
export const ROBUST_QUANTILE = 0.995;

/**
 * The `q` quantile of the finite |x| of `values` (0 when none), from at most `sample` evenly
 * spaced values: a robust colour-scale half-width. Falls back to the largest |x| when the
 * quantile is 0 (a mostly-zero view) so a lone non-zero value still shows.
 */
export function robustAbs(values: Float32Array, q = ROBUST_QUANTILE, sample = 65536): number {
  const step = Math.max(1, Math.floor(values.length / sample));
  const picked: number[] = [];
  for (let k = 0; k < values.length; k += step) {
    const a = Math.abs(values[k]!);
    if (a === a && a !== Infinity) picked.push(a);
  }
  if (picked.length === 0) return 0;
  picked.sort((x, y) => x - y);
  const at = picked[Math.min(picked.length - 1, Math.floor(q * (picked.length - 1)))]!;
  return at > 0 ? at : finiteAbsMax(values);
}

/** The largest finite |x| of `values` (0 when none): a view's own scale. */
export function finiteAbsMax(values: Float32Array): number {
  let m = 0;
  for (let k = 0; k < values.length; k++) {
    const a = Math.abs(values[k]!);
    if (a > m && a !== Infinity) m = a;
  }
  return m;
}

/** CSS `linear-gradient` stops of the map, for the legend bar. */
export function legendGradient(): string {
  const stops = STOPS.map((c, k) => `rgb(${c[0]}, ${c[1]}, ${c[2]}) ${((k / (STOPS.length - 1)) * 100).toFixed(1)}%`);
  return `linear-gradient(to right, ${stops.join(", ")})`;
}
