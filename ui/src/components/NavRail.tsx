/** The left rail: one button per screen (Alt+1…8). */
import type { ScreenName } from "../lib/session";

export const SCREENS: { name: ScreenName; label: string; icon: string }[] = [
  { name: "model", label: "Model", icon: "▤" },
  { name: "tensors", label: "Tensors", icon: "▦" },
  { name: "diff", label: "Diff", icon: "◧" },
  { name: "bytes", label: "Bytes", icon: "0x" },
  { name: "server", label: "Server", icon: "⇄" },
  { name: "patches", label: "Patches", icon: "✎" },
  { name: "run", label: "Run", icon: "▶" },
  { name: "surgery", label: "Surgery", icon: "✂" },
];

export function NavRail({ current, onSelect }: { current: ScreenName; onSelect: (s: ScreenName) => void }) {
  return (
    <nav className="navrail" aria-label="Screens">
      {SCREENS.map((s, i) => (
        <button
          key={s.name}
          type="button"
          className={`nav-item${s.name === current ? " active" : ""}`}
          data-testid={`nav-${s.name}`}
          aria-current={s.name === current ? "page" : undefined}
          title={`${s.label} (Alt+${i + 1})`}
          onClick={() => onSelect(s.name)}
        >
          <span className="nav-icon" aria-hidden>
            {s.icon}
          </span>
          <span className="nav-label">{s.label}</span>
        </button>
      ))}
    </nav>
  );
}
