/**
 * Raw-bytes commands (see src-tauri/src/binary.rs): their results arrive as an ArrayBuffer,
 * never as a JSON number array. tauri-specta cannot type these, so each one gets a typed
 * wrapper here; a Rust test checks that every command in `binary::COMMANDS` has one
 * (`invokeBinary("name", ...)`). Failures throw the same {@link IpcFailure} as typed commands.
 */
import { invoke, type Channel } from "@tauri-apps/api/core";
import { IpcFailure, type IpcError, type Progress } from "./ipc";
import { f32le, parseTile, type Tile } from "./heatmap/tile";
import type { Viewport } from "./heatmap/view";

function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** Invokes raw command `cmd` with JSON `args`; resolves to the body's bytes. */
export async function invokeBinary(cmd: string, args: Record<string, unknown>): Promise<ArrayBuffer> {
  let out: unknown;
  try {
    out = await invoke<unknown>(cmd, args);
  } catch (e) {
    if (isIpcError(e)) throw new IpcFailure(e);
    throw e;
  }
  if (out instanceof ArrayBuffer) return out;
  // Small raw bodies may arrive as a plain number array (Tauri's fast path for tiny
  // payloads); normalize so callers always get bytes.
  if (Array.isArray(out)) return new Uint8Array(out as number[]).buffer;
  if (ArrayBuffer.isView(out)) {
    const v = out as ArrayBufferView;
    return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer;
  }
  throw new Error(`${cmd}: expected raw bytes, got ${typeof out}`);
}

/**
 * Bytes [offset, offset+len) of file `shard` of the open model (0-based: 0 for a single file)
 * as the session sees them (staged edits included).
 */
export async function readBytes(shard: number, offset: number, len: number): Promise<Uint8Array> {
  return new Uint8Array(await invokeBinary("read_bytes", { shard, offset, len }));
}

/**
 * A heatmap tile of `tensor` (see `heatmap_tile` in src-tauri/src/commands/tensors.rs): the
 * viewport's rows/cols reduced to at most `width × height` cells. Layout: 16-byte header (u32 LE
 * width, height, planes = 2, 0), then the mean plane and the peak plane (f32 LE, row-major);
 * parse with `parseTile` (lib/heatmap/tile.ts).
 */
export async function heatmapTile(
  tensor: string,
  vp: { row0: number; col0: number; rows: number; cols: number },
  width: number,
  height: number,
): Promise<ArrayBuffer> {
  return invokeBinary("heatmap_tile", { tensor, ...vp, width, height });
}

/** The exact values of a window of `tensor` (`tensor_window`): rows·cols f32, row-major. */
export async function tensorWindow(
  tensor: string,
  vp: { row0: number; col0: number; rows: number; cols: number },
): Promise<Float32Array> {
  const buf = await invokeBinary("tensor_window", { tensor, ...vp });
  const n = vp.rows * vp.cols;
  if (buf.byteLength !== n * 4) throw new Error(`tensor_window: ${buf.byteLength} bytes for ${n} values`);
  return f32le(buf, 0, n);
}

/** What {@link searchBytes} found. */
export interface ByteMatches {
  /** Length of the pattern in bytes. */
  patternLen: number;
  /** Match offsets, ascending. */
  offsets: Float64Array;
  /** True when more matches exist than the limit allowed. */
  more: boolean;
}

/** Decodes the `bytes_search` layout: little-endian f64s — pattern length, more (0/1), offsets. */
export function decodeMatches(buf: ArrayBuffer): ByteMatches {
  if (buf.byteLength < 16 || buf.byteLength % 8 !== 0) throw new Error(`bytes_search: malformed result of ${buf.byteLength} bytes`);
  const v = new DataView(buf);
  const offsets = new Float64Array(buf.byteLength / 8 - 2);
  for (let i = 0; i < offsets.length; i++) offsets[i] = v.getFloat64(16 + 8 * i, true);
  return { patternLen: v.getFloat64(0, true), more: v.getFloat64(8, true) === 1, offsets };
}

/** Searches the whole of file `shard` of the open model (hex with `??`/`3?` wildcards, or text) as job `job`. */
export async function searchBytes(
  shard: number,
  query: string,
  text: boolean,
  limit: number,
  job: number,
  onProgress: Channel<Progress>,
): Promise<ByteMatches> {
  return decodeMatches(await invokeBinary("bytes_search", { shard, query, text, limit, job, onProgress }));
}

/** Which map of the Diff screen a tile is for: the open model, model B, or A − B. */
export type DiffSideName = "a" | "b" | "diff";

/** A level-of-detail tile of tensor `tensor` in A, B or A − B (`diff_tile`, same layout as `heatmap_tile`). */
export async function diffTile(tensor: string, side: DiffSideName, vp: Viewport, width: number, height: number): Promise<Tile> {
  return parseTile(await invokeBinary("diff_tile", { tensor, side, row0: vp.row0, col0: vp.col0, rows: vp.rows, cols: vp.cols, width, height }));
}
