/** Number formatting for values of f32 tensors. */

/** A compact label (legend, readout): 5 significant digits, exponent outside [1e-3, 1e5). */
export function formatValue(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "+Inf";
  if (x === -Infinity) return "−Inf";
  if (x === 0) return Object.is(x, -0) ? "−0" : "0";
  const a = Math.abs(x);
  const s = a < 1e-3 || a >= 1e5 ? x.toExponential(3) : trimZeros(x.toPrecision(5));
  return s.replace("-", "−");
}

function trimZeros(s: string): string {
  return s.includes(".") && !s.includes("e") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

/**
 * The shortest decimal that reads back as the same f32 (`x` must already be an f32 value,
 * e.g. from a Float32Array): what the value grid and the edit preview show, so the text is
 * exactly the stored value.
 */
export function exactF32(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "Infinity" : "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const f = Math.fround(x);
  for (let p = 1; p <= 9; p++) {
    const s = f.toPrecision(p);
    if (Math.fround(Number(s)) === f) return normalize(s);
  }
  return String(f);
}

function normalize(s: string): string {
  // "1.500e-7" → "1.5e-7"; "12.30" → "12.3"
  const [m, e] = s.split("e");
  const mant = m!.includes(".") ? m!.replace(/0+$/, "").replace(/\.$/, "") : m!;
  return e !== undefined ? `${mant}e${e}` : mant;
}

/**
 * Parses a value typed by the user. Accepts decimals and exponents ("0.5", "-1e-3"), "nan",
 * "inf", "+inf", "-inf" (any case). Returns the number, or an error message naming the input.
 */
export function parseValue(text: string): { value: number } | { error: string } {
  const t = text.trim();
  if (t === "") return { error: "type a value" };
  const l = t.toLowerCase();
  if (l === "nan") return { value: NaN };
  if (l === "inf" || l === "+inf" || l === "infinity" || l === "+infinity") return { value: Infinity };
  if (l === "-inf" || l === "-infinity") return { value: -Infinity };
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return { error: `“${t}” is not a number` };
  const v = Number(t);
  if (!Number.isFinite(v)) return { error: `“${t}” is too large` };
  if (Math.abs(v) > 3.4028234663852886e38) return { error: `“${t}” is outside the f32 range (±3.4e38)` };
  return { value: v };
}
