/**
 * The Tensors screen's calls to the backend, unwrapped: typed commands from the bindings and
 * the raw-bytes ones (heatmap tiles, value windows) from `../binary`.
 */
import type { Channel } from "@tauri-apps/api/core";
import { commands, unwrap, type Progress } from "../ipc";
import { heatmapTile, tensorWindow } from "../binary";
import { parseTile, type Tile } from "../heatmap/tile";
import type { Viewport } from "../heatmap/view";
import type { GridWindow } from "./grid";
import type { SelectionArgs, TensorHistogram, TensorStats, TransformArgs, TransformReportView, WeightEditView } from "../../bindings";

export type { SelectionArgs, TensorHistogram, TensorStats, TransformArgs, TransformReportView, WeightEditView };

/** A tile of `tensor` (see `heatmap_tile`). */
export async function fetchTile(tensor: string, vp: Viewport, w: number, h: number): Promise<Tile> {
  return parseTile(await heatmapTile(tensor, vp, w, h));
}

/** The exact values of a window of `tensor`, row-major. */
export async function fetchWindow(tensor: string, w: GridWindow): Promise<Float32Array> {
  return tensorWindow(tensor, { row0: w.row0, col0: w.col0, rows: w.rows, cols: w.cols });
}

/** One element's exact value. */
export async function readValue(tensor: string, row: number, col: number): Promise<number> {
  const v = await tensorWindow(tensor, { row0: row, col0: col, rows: 1, cols: 1 });
  return v[0]!;
}

/** Statistics of every value of `tensor`, as job `job` (progress on `channel`; `cancel_job(job)` stops it). */
export async function tensorStats(tensor: string, job: number, channel: Channel<Progress>): Promise<TensorStats> {
  return unwrap(await commands.tensorStats(tensor, job, channel));
}

/** The histogram of `tensor` over its own range, with its statistics, as job `job` (cancelable). */
export async function tensorHistogram(tensor: string, bins: number, job: number, channel: Channel<Progress>): Promise<TensorHistogram> {
  return unwrap(await commands.tensorHistogram(tensor, bins, null, null, job, channel));
}

export async function previewWeight(tensor: string, index: number, value: string): Promise<WeightEditView> {
  return unwrap(await commands.previewWeight({ tensor, index, value }));
}

export async function setWeight(tensor: string, index: number, value: string): Promise<WeightEditView> {
  return unwrap(await commands.setWeight({ tensor, index, value }));
}

/** Runs a transform as job `job` (progress on `channel`; `cancel_job(job)` stops it, writing nothing). */
export async function transformTensor(
  tensor: string,
  selection: SelectionArgs,
  op: TransformArgs,
  job: number,
  channel: Channel<Progress>,
): Promise<TransformReportView> {
  return unwrap(await commands.transformTensor(tensor, selection, op, job, channel));
}

export async function setTensorLock(tensor: string, locked: boolean): Promise<boolean> {
  return unwrap(await commands.setTensorLock(tensor, locked));
}

export async function tensorLocked(tensor: string): Promise<boolean> {
  return unwrap(await commands.tensorLocked(tensor));
}
