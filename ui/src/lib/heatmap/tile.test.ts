import { describe, expect, it } from "vitest";
import { encodeTile, f32le, parseTile } from "./tile";

describe("parseTile", () => {
  it("reads the header and both planes", () => {
    // Built by hand with DataView, independent of encodeTile.
    const buf = new ArrayBuffer(16 + 2 * 6 * 4);
    const v = new DataView(buf);
    v.setUint32(0, 3, true);
    v.setUint32(4, 2, true);
    v.setUint32(8, 2, true);
    for (let k = 0; k < 6; k++) {
      v.setFloat32(16 + 4 * k, k + 0.5, true);
      v.setFloat32(16 + 24 + 4 * k, -k, true);
    }
    const t = parseTile(buf);
    expect([t.width, t.height]).toEqual([3, 2]);
    expect([...t.mean]).toEqual([0.5, 1.5, 2.5, 3.5, 4.5, 5.5]);
    expect([...t.peak]).toEqual([-0, -1, -2, -3, -4, -5]);
    expect(parseTile(encodeTile(t))).toEqual(t);
  });

  it("refuses truncated or inconsistent buffers", () => {
    expect(() => parseTile(new ArrayBuffer(8))).toThrow(/header/);
    const t = encodeTile({ width: 2, height: 2, mean: new Float32Array(4), peak: new Float32Array(4) });
    expect(() => parseTile(t.slice(0, t.byteLength - 4))).toThrow(/expected/);
  });
});

describe("f32le", () => {
  it("reads unaligned little-endian floats", () => {
    const buf = new ArrayBuffer(10);
    new DataView(buf).setFloat32(2, 1.25, true);
    new DataView(buf).setFloat32(6, -3, true);
    expect([...f32le(buf, 2, 2)]).toEqual([1.25, -3]);
    expect(() => f32le(buf, 4, 2)).toThrow();
  });
});
