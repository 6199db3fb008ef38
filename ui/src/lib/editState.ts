/**
 * The session's edit state (can undo / redo, modified, mode, history) as a tiny shared store:
 * the top bar and the Model screen read it with {@link useEditState}; any command that changes
 * it hands back the new state ({@link setEditState}) or asks for a refetch
 * ({@link refreshEditState}). It is also refetched whenever the session's revision moves
 * (edits made on other screens).
 */
import { useEffect, useSyncExternalStore } from "react";
import { commands } from "./ipc";
import type { EditState_Serialize, MetaEditRow_Serialize } from "../bindings";

/** The edit state as commands return it. */
export type EditState = EditState_Serialize;
/** A metadata row as `session_metadata` returns it. */
export type MetaEditRow = MetaEditRow_Serialize;

let current: EditState | null = null;
const listeners = new Set<() => void>();

function notify() {
  for (const l of listeners) l();
}

/** Replaces the shared state (a command returned the new one). */
export function setEditState(s: EditState): void {
  current = s;
  notify();
}

/** Fetches the state from the backend. */
export async function refreshEditState(): Promise<EditState> {
  const s = await commands.editState();
  setEditState(s);
  return s;
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** The shared edit state, refetched when `revision` (or `path`) changes. */
export function useEditState(revision: number, path: string | null): EditState | null {
  useEffect(() => {
    void refreshEditState();
  }, [revision, path]);
  return useSyncExternalStore(subscribe, () => current);
}

/**
 * For text fields: keeps Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y as the field's own text undo instead
 * of the session's (the global shortcuts listen on window; stopping the event here keeps it
 * from reaching them, and the browser's native undo runs).
 */
export function keepTextUndo(e: { key: string; ctrlKey: boolean; metaKey: boolean; stopPropagation: () => void }): void {
  const k = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "y")) e.stopPropagation();
}
