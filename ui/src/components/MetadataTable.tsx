import { useMemo, useState } from "react";
import type { MetaRow, MetaView } from "../lib/ipc";
import { formatCount } from "../lib/format";

/** One line of text for a metadata value; arrays show their first elements. */
export function metaText(v: MetaView): string {
  switch (v.kind) {
    case "int":
    case "float":
      return v.text;
    case "bool":
      return v.value ? "true" : "false";
    case "str":
      return v.text;
    case "array": {
      const items = v.head.map((h) => (h.kind === "str" ? JSON.stringify(h.text) : metaText(h)));
      const more = v.len > v.head.length ? `, … ${formatCount(v.len - v.head.length)} more` : "";
      return `[${items.join(", ")}${more}]`;
    }
  }
}

export function MetadataTable({ rows }: { rows: MetaRow[] }) {
  const [filter, setFilter] = useState("");
  const shown = useMemo(() => {
    const f = filter.toLowerCase();
    return f ? rows.filter((r) => r.key.toLowerCase().includes(f)) : rows;
  }, [rows, filter]);
  return (
    <section className="card metadata" data-testid="metadata">
      <div className="card-title">
        <h3>Metadata</h3>
        <input
          className="filter small"
          type="search"
          placeholder="Filter keys…"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          spellCheck={false}
        />
      </div>
      <table className="meta-table">
        <thead>
          <tr>
            <th>Key</th>
            <th>Type</th>
            <th>Value</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.key} data-testid="meta-row" data-key={r.key}>
              <td className="mono key">{r.key}</td>
              <td className="muted type">
                {r.value.kind === "array" ? `${r.value.elementType}[${formatCount(r.value.len)}]` : r.valueType}
              </td>
              <td className={`value ${r.value.kind}`}>{metaText(r.value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
