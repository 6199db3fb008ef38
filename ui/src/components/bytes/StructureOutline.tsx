/** The structure outline: every span of the file, grouped, filterable; click to jump. */
import { useMemo, useState } from "react";
import type { SpanView } from "../../bindings";
import { formatOffset } from "../../lib/bytes/hex";
import { formatBytes } from "../../lib/format";
import { spanLabel } from "./HexView";
import { InlineError } from "../InlineError";

const GROUPS: { cls: SpanView["class"][]; title: string }[] = [
  { cls: ["header"], title: "Header" },
  { cls: ["metadata"], title: "Metadata" },
  { cls: ["tensorInfo"], title: "Tensor infos" },
  { cls: ["tensorData"], title: "Tensor data" },
  { cls: ["padding", "trailing"], title: "Padding" },
];

/** Items shown per group before "N more" (filter to narrow). */
const SHOWN = 400;

export function StructureOutline({
  spans,
  current,
  onJump,
  error,
}: {
  spans: SpanView[];
  current: SpanView | null;
  onJump: (s: SpanView) => void;
  error: string | null;
}) {
  const [filter, setFilter] = useState("");
  const [closed, setClosed] = useState<Set<string>>(new Set(["Padding"]));
  const groups = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return GROUPS.map((g) => ({
      ...g,
      items: spans.filter((s) => g.cls.includes(s.class) && (!f || spanLabel(s).toLowerCase().includes(f))),
    }));
  }, [spans, filter]);
  return (
    <aside className="bytes-outline" data-testid="outline">
      <div className="outline-head">
        <input className="filter" placeholder="Filter structure…" value={filter} onChange={(e) => setFilter(e.target.value)} data-testid="outline-filter" />
      </div>
      <InlineError error={error} className="pad" />
      <div className="outline-body">
        {groups.map((g) => {
          const open = !closed.has(g.title) || filter.trim() !== "";
          return (
            <div key={g.title} className="outline-group">
              <button
                className="group-head"
                onClick={() =>
                  setClosed((c) => {
                    const n = new Set(c);
                    if (n.has(g.title)) n.delete(g.title);
                    else n.add(g.title);
                    return n;
                  })
                }
              >
                <span className={`caret ${open ? "open" : ""}`}>▸</span>
                <span className="group-label">{g.title}</span>
                <span className="group-meta">{g.items.length}</span>
              </button>
              {open && (
                <ul>
                  {g.items.slice(0, SHOWN).map((s) => (
                    <li key={s.start}>
                      <button
                        className={`outline-item ${current && current.start === s.start ? "selected" : ""}`}
                        onClick={() => onJump(s)}
                        title={`${formatOffset(s.start)}–${formatOffset(s.end)} · ${formatBytes(s.end - s.start)}`}
                        data-testid="outline-item"
                      >
                        <span className={`dot sp-${s.class}`} />
                        <span className="outline-name">{spanLabel(s)}</span>
                        <span className="outline-off mono">{s.start.toString(16)}</span>
                      </button>
                    </li>
                  ))}
                  {g.items.length > SHOWN && <li className="muted outline-more">{g.items.length - SHOWN} more — filter to narrow</li>}
                </ul>
              )}
            </div>
          );
        })}
      </div>
    </aside>
  );
}
