import { useMemo, useState } from "react";
import type { TensorRow } from "../../lib/ipc";
import { formatBytes, typeFamily } from "../../lib/format";
import { groupTensors, shortName } from "../../lib/model/tree";

interface Props {
  tensors: TensorRow[];
  selected: string | null;
  onSelect: (name: string) => void;
}

export function TensorTree({ tensors, selected, onSelect }: Props) {
  const [filter, setFilter] = useState("");
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const groups = useMemo(() => groupTensors(tensors, filter), [tensors, filter]);
  const shown = groups.reduce((n, g) => n + g.tensors.length, 0);
  const toggle = (key: string) =>
    setCollapsed((c) => {
      const next = new Set(c);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });

  return (
    <div className="tree">
      <div className="tree-head">
        <input
          data-testid="tensor-filter"
          className="filter"
          type="search"
          placeholder="Filter tensors…"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          spellCheck={false}
        />
        <div className="tree-count" data-testid="tensor-count">
          {filter ? `${shown} of ${tensors.length}` : tensors.length} tensors
        </div>
      </div>
      <div className="tree-body">
        {groups.map((g) => {
          const open = filter !== "" || !collapsed.has(g.key);
          return (
            <section key={g.key} className="tree-group" data-testid="tensor-group" data-group={g.key}>
              <button className="group-head" onClick={() => toggle(g.key)} aria-expanded={open}>
                <span className={`caret ${open ? "open" : ""}`}>▸</span>
                <span className="group-label">{g.label}</span>
                <span className="group-meta">
                  {g.tensors.length} · {formatBytes(g.bytes)}
                </span>
              </button>
              {open && (
                <ul>
                  {g.tensors.map((t) => (
                    <li key={t.name}>
                      <button
                        className={`tensor-item ${t.name === selected ? "selected" : ""}`}
                        data-testid="tensor-item"
                        data-name={t.name}
                        onClick={() => onSelect(t.name)}
                        title={t.name}
                      >
                        <span className="tensor-name">{shortName(t)}</span>
                        <span className={`badge ${typeFamily(t.ty)}`}>{t.ty}</span>
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </section>
          );
        })}
        {tensors.length > 0 && groups.length === 0 && <p className="muted pad">No tensor matches “{filter}”.</p>}
      </div>
    </div>
  );
}
