/**
 * The byte inspector: the bytes at the cursor read as every integer and float width, in
 * either byte order, and where the cursor falls inside a tensor (element, block).
 */
import type { SpanTensor } from "../../bindings";

/** Decodes an IEEE 754 half (binary16) from its 16 bits. */
export function f16FromBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes a bfloat16 from its 16 bits (the top half of an f32). */
export function bf16FromBits(b: number): number {
  const v = new DataView(new ArrayBuffer(4));
  v.setUint32(0, (b & 0xffff) << 16, false);
  return v.getFloat32(0, false);
}

/** One inspector row: a type and its value, or why there is none (too few bytes). */
export interface InspectRow {
  label: string;
  value: string | null;
}

/** Formats a float so that it reads back to the same value (shortest round trip). */
export function formatFloat(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "+Inf";
  if (x === -Infinity) return "-Inf";
  if (Object.is(x, -0)) return "-0";
  return String(x);
}

/** Every reading of `bytes` (the bytes from the cursor on) in the given byte order. */
export function inspect(bytes: Uint8Array, littleEndian: boolean): InspectRow[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength;
  const at = (w: number, f: () => string): string | null => (n >= w ? f() : null);
  const u16 = () => v.getUint16(0, littleEndian);
  const f32 = (x: number) => formatFloat(Math.fround(x));
  return [
    { label: "u8", value: at(1, () => String(v.getUint8(0))) },
    { label: "i8", value: at(1, () => String(v.getInt8(0))) },
    { label: "u16", value: at(2, () => String(u16())) },
    { label: "i16", value: at(2, () => String(v.getInt16(0, littleEndian))) },
    { label: "u32", value: at(4, () => String(v.getUint32(0, littleEndian))) },
    { label: "i32", value: at(4, () => String(v.getInt32(0, littleEndian))) },
    { label: "u64", value: at(8, () => v.getBigUint64(0, littleEndian).toString()) },
    { label: "i64", value: at(8, () => v.getBigInt64(0, littleEndian).toString()) },
    { label: "f16", value: at(2, () => formatFloat(f16FromBits(u16()))) },
    { label: "bf16", value: at(2, () => f32(bf16FromBits(u16()))) },
    { label: "f32", value: at(4, () => f32(v.getFloat32(0, littleEndian))) },
    { label: "f64", value: at(8, () => formatFloat(v.getFloat64(0, littleEndian))) },
    { label: "bits", value: at(1, () => v.getUint8(0).toString(2).padStart(8, "0")) },
  ];
}

/** Where a byte falls inside a tensor's data. */
export interface TensorLocation {
  tensor: string;
  ty: string;
  /** Byte offset from the start of the tensor's data. */
  byte: number;
  /** Block index and the byte within the block (block-quantized types). */
  block: number | null;
  byteInBlock: number | null;
  /** Elements the block holds: [first, last] (flat indices). */
  elements: [number, number] | null;
  /** The element this byte belongs to (plain types: one element per type_size bytes). */
  element: number | null;
  /** Its coordinates, fastest dimension first (plain types). */
  coords: number[] | null;
}

/** Locates absolute `offset` inside the tensor data span starting at `start`. */
export function locateInTensor(t: SpanTensor, start: number, offset: number): TensorLocation {
  const byte = offset - start;
  const loc: TensorLocation = { tensor: t.name, ty: t.ty, byte, block: null, byteInBlock: null, elements: null, element: null, coords: null };
  if (t.blockSize == null || t.typeSize == null || t.typeSize === 0) return loc;
  const block = Math.floor(byte / t.typeSize);
  if (t.blockSize === 1) {
    loc.element = block;
    const coords: number[] = [];
    let rest = block;
    for (const d of t.dims) {
      coords.push(d > 0 ? rest % d : 0);
      rest = d > 0 ? Math.floor(rest / d) : 0;
    }
    loc.coords = coords;
  } else {
    loc.block = block;
    loc.byteInBlock = byte - block * t.typeSize;
    const first = block * t.blockSize;
    loc.elements = [first, Math.min(t.nElements, first + t.blockSize) - 1];
  }
  return loc;
}
