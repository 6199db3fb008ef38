/** Light/dark theme: follows prefers-color-scheme unless the user picks one (kept in localStorage). */
import { useCallback, useEffect, useState } from "react";

export type ThemeChoice = "system" | "light" | "dark";
const KEY = "hotpatch.theme";
const ORDER: ThemeChoice[] = ["system", "light", "dark"];

function stored(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : "system";
  } catch {
    return "system";
  }
}

/** The current choice and a function cycling system → light → dark. */
export function useTheme(): [ThemeChoice, () => void] {
  const [choice, setChoice] = useState<ThemeChoice>(stored);
  useEffect(() => {
    try {
      if (choice === "system") localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch {
      // Storage unavailable: the choice lasts for this session only.
    }
  }, [choice]);
  const cycle = useCallback(
    () => setChoice((c) => ORDER[(ORDER.indexOf(c) + 1) % ORDER.length] ?? "system"),
    [],
  );
  return [choice, cycle];
}
