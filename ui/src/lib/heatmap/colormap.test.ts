import { describe, expect, it } from "vitest";
import { colorOf, diverging, finiteAbsMax, NAN_RGB, NEG_INF_RGB, paint, POS_INF_RGB, robustAbs } from "./colormap";

describe("diverging", () => {
  it("is blue below zero, near-white at zero, red above", () => {
    const [r0, g0, b0] = diverging(0);
    expect(Math.min(r0, g0, b0)).toBeGreaterThan(240);
    const [rn, , bn] = diverging(-0.7);
    expect(bn).toBeGreaterThan(rn + 60);
    const [rp, , bp] = diverging(0.7);
    expect(rp).toBeGreaterThan(bp + 60);
  });

  it("clamps outside [-1, 1] and gets darker towards the ends", () => {
    expect(diverging(5)).toEqual(diverging(1));
    expect(diverging(-5)).toEqual(diverging(-1));
    const lum = (c: readonly number[]) => c[0]! + c[1]! + c[2]!;
    expect(lum(diverging(1))).toBeLessThan(lum(diverging(0.5)));
    expect(lum(diverging(-1))).toBeLessThan(lum(diverging(-0.5)));
  });
});

describe("colorOf", () => {
  it("gives non-finite values their own colours", () => {
    expect(colorOf(NaN, 1)).toEqual(NAN_RGB);
    expect(colorOf(Infinity, 1)).toEqual(POS_INF_RGB);
    expect(colorOf(-Infinity, 1)).toEqual(NEG_INF_RGB);
    for (let t = -1; t <= 1; t += 0.05) {
      expect(colorOf(t, 1)).not.toEqual(NAN_RGB);
    }
  });

  it("is relative to the scale", () => {
    expect(colorOf(0.5, 2)).toEqual(diverging(0.25));
    expect(colorOf(3, 0)).toEqual(diverging(0));
  });
});

describe("paint", () => {
  it("writes RGBA within one table step of colorOf", () => {
    const vals = new Float32Array([-2, -0.3, 0, 0.77, 2, NaN, Infinity, -Infinity]);
    const out = new Uint8ClampedArray(vals.length * 4);
    paint(vals, 2, out);
    vals.forEach((x, k) => {
      const want = colorOf(x, 2);
      for (let c = 0; c < 3; c++) expect(Math.abs(out[k * 4 + c]! - want[c]!)).toBeLessThanOrEqual(2);
      expect(out[k * 4 + 3]).toBe(255);
    });
  });
});

describe("finiteAbsMax", () => {
  it("ignores NaN and infinities", () => {
    expect(finiteAbsMax(new Float32Array([1, -3, NaN, Infinity, 2]))).toBe(3);
    expect(finiteAbsMax(new Float32Array([NaN]))).toBe(0);
  });
});

describe("robust range and symlog", () => {
  it("takes the 99.5th percentile of |x|, so one outlier does not wash the rest out", () => {
    const v = new Float32Array(10000);
    for (let i = 0; i < v.length; i++) v[i] = ((i % 200) - 100) / 1000; // |x| ≤ 0.1
    v[17] = 50; // one outlier
    v[18] = NaN;
    v[19] = -Infinity;
    expect(finiteAbsMax(v)).toBe(50);
    const r = robustAbs(v);
    expect(r).toBeGreaterThan(0.09);
    expect(r).toBeLessThanOrEqual(0.1 + 1e-6);
  });
  it("falls back to the largest |x| when most values are zero", () => {
    const v = new Float32Array(1000);
    v[3] = -2;
    expect(robustAbs(v)).toBe(2);
    expect(robustAbs(new Float32Array([NaN]))).toBe(0);
  });
  it("symlog gives small values far more colour than linear, and keeps signs and ends", () => {
    const v = new Float32Array([0.01, -0.01, 1, -1]);
    const lin = new Uint8ClampedArray(16);
    const log = new Uint8ClampedArray(16);
    paint(v, 1, lin, "linear");
    paint(v, 1, log, "symlog");
    // 0.01 of the scale is near-white linearly but clearly red on the log curve.
    const white = diverging(0);
    const dist = (px: Uint8ClampedArray, o: number) => Math.abs(px[o]! - white[0]) + Math.abs(px[o + 1]! - white[1]) + Math.abs(px[o + 2]! - white[2]);
    expect(dist(log, 0)).toBeGreaterThan(4 * dist(lin, 0));
    expect(log[0]).toBeGreaterThan(log[2]!); // positive: red
    expect(log[6]).toBeGreaterThan(log[4]!); // negative: blue
    expect([...log.slice(8, 16)]).toEqual([...lin.slice(8, 16)]); // ±scale: the same ends
  });
});
