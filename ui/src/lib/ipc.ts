/**
 * The UI's side of the IPC boundary: unwraps the generated commands' `Result`s into values or
 * a thrown {@link IpcFailure} carrying the backend's typed `{ code, message }`.
 */
import {
  commands,
  type ErrorCode,
  type IpcError,
  type ModelSummary_Serialize,
  type TensorRow_Serialize,
} from "../bindings";

export { commands };
export type { ErrorCode, IpcError, MetaRow, MetaView, Progress, TypeCount } from "../bindings";
/** What commands return (specta also emits a `_Deserialize` shape for arguments; results use this). */
export type ModelSummary = ModelSummary_Serialize;
export type TensorRow = TensorRow_Serialize;
/** The shape tauri-specta gives every fallible command's result. */
export type Result<T, E> = { status: "ok"; data: T } | { status: "error"; error: E };

/** A command failed; `code` is the backend's {@link ErrorCode}, for branching. */
export class IpcFailure extends Error {
  readonly code: ErrorCode;
  constructor(error: IpcError) {
    super(error.message);
    this.name = "IpcFailure";
    this.code = error.code;
  }
}

/** The value of an ok result, or throws the typed error. */
export function unwrap<T>(result: Result<T, IpcError>): T {
  if (result.status === "ok") return result.data;
  throw new IpcFailure(result.error);
}


/** What the UI tells the user for a failure, branching on the code, never on the text. */
export function describeFailure(e: unknown): { title: string; detail: string; code: ErrorCode | null } {
  if (e instanceof IpcFailure) {
    const titles: Record<ErrorCode, string> = {
      Io: "Could not read the file",
      NotGguf: "Not a GGUF model",
      InvalidGguf: "The GGUF file is damaged or unsupported",
      NoModel: "No model is open",
      NotFound: "Not found",
      BadRequest: "Invalid request",
      Refused: "Refused",
      Canceled: "Canceled",
      Internal: "Internal error",
    };
    return { title: titles[e.code], detail: e.message, code: e.code };
  }
  return { title: "Unexpected error", detail: e instanceof Error ? e.message : String(e), code: null };
}
