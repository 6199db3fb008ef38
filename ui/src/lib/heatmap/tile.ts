/**
 * The binary layout of a heatmap tile as `heatmap_tile` returns it (see
 * src-tauri/src/commands/tensors.rs): a 16-byte header of four little-endian u32
 * — `width`, `height`, `planes` (2), reserved (0) — then `planes` planes of `width·height`
 * little-endian f32, row-major: the **mean** of each cell's finite values, then its **peak**
 * (the signed value of largest magnitude, NaN first). Exact values (`tensor_window`) are a
 * bare f32 array, row-major.
 */

/** A reduced view of a viewport. */
export interface Tile {
  width: number;
  height: number;
  mean: Float32Array;
  peak: Float32Array;
}

export const TILE_HEADER_BYTES = 16;

/** Reads a tile; throws on a truncated or inconsistent buffer. */
export function parseTile(buf: ArrayBuffer): Tile {
  if (buf.byteLength < TILE_HEADER_BYTES) throw new Error(`tile: ${buf.byteLength} bytes, header needs 16`);
  const head = new DataView(buf, 0, TILE_HEADER_BYTES);
  const width = head.getUint32(0, true);
  const height = head.getUint32(4, true);
  const planes = head.getUint32(8, true);
  const n = width * height;
  const want = TILE_HEADER_BYTES + planes * n * 4;
  if (planes !== 2 || buf.byteLength !== want) {
    throw new Error(`tile: ${buf.byteLength} bytes for ${width}×${height}×${planes} (expected ${want})`);
  }
  const all = f32le(buf, TILE_HEADER_BYTES, 2 * n);
  return { width, height, mean: all.subarray(0, n), peak: all.subarray(n) };
}

/** `count` little-endian f32 at byte `offset` (copied when unaligned or on big-endian hosts). */
export function f32le(buf: ArrayBuffer, offset: number, count: number): Float32Array {
  if (offset + count * 4 > buf.byteLength) throw new Error(`values: ${buf.byteLength} bytes, need ${offset + count * 4}`);
  const littleHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  if (littleHost && offset % 4 === 0) return new Float32Array(buf, offset, count);
  const v = new DataView(buf, offset, count * 4);
  const out = new Float32Array(count);
  for (let k = 0; k < count; k++) out[k] = v.getFloat32(k * 4, true);
  return out;
}

/** Builds a tile buffer (tests, and the diff screen's derived maps). */
export function encodeTile(t: Tile): ArrayBuffer {
  const n = t.width * t.height;
  const buf = new ArrayBuffer(TILE_HEADER_BYTES + 8 * n);
  const v = new DataView(buf);
  v.setUint32(0, t.width, true);
  v.setUint32(4, t.height, true);
  v.setUint32(8, 2, true);
  for (let k = 0; k < n; k++) {
    v.setFloat32(TILE_HEADER_BYTES + 4 * k, t.mean[k]!, true);
    v.setFloat32(TILE_HEADER_BYTES + 4 * (n + k), t.peak[k]!, true);
  }
  return buf;
}
