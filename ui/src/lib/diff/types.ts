/** The Diff screen's IPC result types (specta emits `_Serialize` shapes for what commands return). */
import type { CopyResult_Serialize, DiffResult_Serialize, DiffRow_Serialize } from "../../bindings";

export type { CopyRange, DiffModelInfo, DiffPointRow, DiffTensorInfo } from "../../bindings";
export type DiffRow = DiffRow_Serialize;
export type DiffResult = DiffResult_Serialize;
export type CopyResult = CopyResult_Serialize;
