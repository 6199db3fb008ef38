import { describe, expect, it } from "vitest";
import fixture from "./inspector.fixture.json";
import { bf16FromBits, f16FromBits, inspect, locateInTensor } from "./inspect";

function bytesOf(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}

/** The fixture writes floats as numbers, or "NaN", "+Inf", "-Inf", "-0". */
function asNumber(v: number | string): number {
  if (v === "NaN") return NaN;
  if (v === "+Inf") return Infinity;
  if (v === "-Inf") return -Infinity;
  if (v === "-0") return -0;
  return v as number;
}

describe("inspector against numpy (scripts/gen_inspector_fixture.py)", () => {
  it("has cases", () => expect(fixture.cases.length).toBeGreaterThan(40));
  for (const c of fixture.cases) {
    for (const order of ["le", "be"] as const) {
      it(`${c.hex} ${order}`, () => {
        const rows = new Map(inspect(bytesOf(c.hex), order === "le").map((r) => [r.label, r.value]));
        const want = c[order] as Record<string, string | number>;
        for (const k of ["u8", "i8", "u16", "i16", "u32", "i32", "u64", "i64"]) {
          expect(rows.get(k), `${k} of ${c.hex} (${order})`).toBe(want[k]);
        }
        for (const k of ["f16", "bf16", "f32", "f64"]) {
          const got = rows.get(k)!;
          const w = asNumber(want[k]!);
          const g = got === "NaN" ? NaN : got === "+Inf" ? Infinity : got === "-Inf" ? -Infinity : Number(got);
          // Object.is: NaN equals NaN, and -0 differs from 0.
          expect(Object.is(g, w), `${k} of ${c.hex} (${order}): got ${got}, numpy ${want[k]}`).toBe(true);
        }
      });
    }
  }
});

describe("half floats", () => {
  it("decodes the IEEE corner cases", () => {
    expect(f16FromBits(0x3c00)).toBe(1);
    expect(f16FromBits(0xc000)).toBe(-2);
    expect(f16FromBits(0x7bff)).toBe(65504);
    expect(f16FromBits(0x0001)).toBe(2 ** -24);
    expect(f16FromBits(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(f16FromBits(0x7e00))).toBe(true);
    expect(Object.is(f16FromBits(0x8000), -0)).toBe(true);
    expect(bf16FromBits(0x3f80)).toBe(1);
    expect(bf16FromBits(0xc020)).toBe(-2.5);
  });

  it("reports the widths that do not fit", () => {
    const rows = inspect(Uint8Array.of(1, 2, 3), true);
    const get = (k: string) => rows.find((r) => r.label === k)!.value;
    expect(get("u16")).toBe("513");
    expect(get("u32")).toBeNull();
    expect(get("f64")).toBeNull();
  });
});

describe("tensor location", () => {
  it("places a byte of a block-quantized tensor in its block", () => {
    // Q8_0: 32 elements in 34-byte blocks.
    const t = { name: "w", ty: "Q8_0", blockSize: 32, typeSize: 34, nElements: 256, dims: [64, 4] };
    const loc = locateInTensor(t, 1000, 1000 + 34 * 3 + 5);
    expect(loc.block).toBe(3);
    expect(loc.byteInBlock).toBe(5);
    expect(loc.elements).toEqual([96, 127]);
    expect(loc.element).toBeNull();
  });

  it("places a byte of a plain tensor on its element and coordinates", () => {
    const t = { name: "n", ty: "F16", blockSize: 1, typeSize: 2, nElements: 24, dims: [4, 6] };
    const loc = locateInTensor(t, 0, 2 * 13 + 1);
    expect(loc.element).toBe(13);
    expect(loc.coords).toEqual([1, 3]); // 13 = 1 + 3·4
    expect(loc.block).toBeNull();
  });

  it("says nothing more for an unknown type", () => {
    const t = { name: "u", ty: "type 99", blockSize: null, typeSize: null, nElements: 0, dims: [] };
    const loc = locateInTensor(t, 10, 12);
    expect(loc.byte).toBe(2);
    expect(loc.element).toBeNull();
  });
});
