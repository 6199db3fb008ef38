/**
 * Native open/save dialogs (tauri-plugin-dialog). Every screen that uses one keeps a typed
 * path field beside the button too: WebDriver cannot drive GTK dialogs, and people paste paths.
 */
import { open, save } from "@tauri-apps/plugin-dialog";

/** A file-type filter, e.g. `{ name: "GGUF model", extensions: ["gguf"] }`. */
export interface FileFilter {
  name: string;
  extensions: string[];
}

export const GGUF_FILTER: FileFilter = { name: "GGUF model", extensions: ["gguf"] };
export const JSON_FILTER: FileFilter = { name: "Hotpatch configuration", extensions: ["json"] };

/** Asks for one existing file; resolves to its path, or null when the user cancels. */
export async function pickOpenFile(filters: FileFilter[] = [GGUF_FILTER]): Promise<string | null> {
  const picked = await open({ multiple: false, directory: false, filters });
  return typeof picked === "string" ? picked : null;
}

/** Asks where to save; resolves to the chosen path, or null when the user cancels. */
export async function pickSaveFile(defaultName: string, filters: FileFilter[] = [GGUF_FILTER]): Promise<string | null> {
  const picked = await save({ defaultPath: defaultName, filters });
  return picked ?? null;
}
