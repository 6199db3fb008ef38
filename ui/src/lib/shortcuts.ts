/**
 * Keyboard shortcuts. `useShortcut("mod+shift+z", fn)` binds a chord while the component is
 * mounted; `mod` is Ctrl (Linux/Windows) or Cmd (macOS). Shortcuts do not fire while the user
 * types in a text field unless the chord has a modifier (Ctrl+S still saves from a field;
 * a bare "?" typed into a field is text).
 */
import { useEffect, useRef } from "react";

export interface Chord {
  key: string;
  mod: boolean;
  shift: boolean;
  alt: boolean;
}

/** Parses "mod+shift+z" (case-insensitive, any order of modifiers). Throws on an empty key. */
export function parseChord(text: string): Chord {
  const parts = text.toLowerCase().split("+").map((p) => p.trim());
  const key = parts.pop() ?? "";
  if (!key) throw new Error(`shortcut "${text}" has no key`);
  const mods = new Set(parts);
  for (const m of mods) {
    if (m !== "mod" && m !== "shift" && m !== "alt") throw new Error(`shortcut "${text}": unknown modifier "${m}"`);
  }
  return { key, mod: mods.has("mod"), shift: mods.has("shift"), alt: mods.has("alt") };
}

export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

/** Whether a key event matches `chord` exactly (extra modifiers do not match). */
export function matches(chord: Chord, e: KeyLike): boolean {
  const mod = e.ctrlKey || e.metaKey;
  return e.key.toLowerCase() === chord.key && mod === chord.mod && e.shiftKey === chord.shift && e.altKey === chord.alt;
}

function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  const tag = target.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
}

/** Binds `chord` to `handler` while mounted (`enabled` false unbinds). */
export function useShortcut(chord: string, handler: (e: KeyboardEvent) => void, enabled = true): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => {
    if (!enabled) return;
    const parsed = parseChord(chord);
    const onKey = (e: KeyboardEvent) => {
      if (!matches(parsed, e)) return;
      if (!parsed.mod && typingIn(e.target)) return;
      e.preventDefault();
      ref.current(e);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [chord, enabled]);
}
