/**
 * Raw-bytes commands (see src-tauri/src/binary.rs): their results arrive as an ArrayBuffer,
 * never as a JSON number array. tauri-specta cannot type these, so each one gets a typed
 * wrapper here; a Rust test checks that every command in `binary::COMMANDS` has one
 * (`invokeBinary("name", ...)`). Failures throw the same {@link IpcFailure} as typed commands.
 */
import { invoke } from "@tauri-apps/api/core";
import { IpcFailure, type IpcError } from "./ipc";
import { parseTile, type Tile } from "./heatmap/tile";
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

/** Bytes [offset, offset+len) of the open model as the session sees them (staged edits included). */
export async function readBytes(offset: number, len: number): Promise<Uint8Array> {
  return new Uint8Array(await invokeBinary("read_bytes", { offset, len }));
}

/** Which map of the Diff screen a tile is for: the open model, model B, or A − B. */
export type DiffSideName = "a" | "b" | "diff";

/** A level-of-detail tile of tensor `tensor` in A, B or A − B (same layout as `heatmap_tile`). */
export async function diffTile(tensor: string, side: DiffSideName, vp: Viewport, width: number, height: number): Promise<Tile> {
  return parseTile(await invokeBinary("diff_tile", { tensor, side, row0: vp.row0, col0: vp.col0, rows: vp.rows, cols: vp.cols, width, height }));
}
