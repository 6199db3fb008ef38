/**
 * The ranking: every tensor of A and B, most different first, sortable by any metric (click a
 * header; again to reverse), filterable by name, with the rows that could not be compared
 * (shape differs, only in one model, no codec) flagged. Clicking a row selects it.
 */
import { useMemo } from "react";
import type { DiffRow } from "../../lib/diff/types";
import { formatCount } from "../../lib/format";
import { filterRows, formatMetric, nextSort, SORT_LABELS, sortRows, statusLabel, type SortKey, type SortState } from "../../lib/diff/rank";

export interface DiffTableProps {
  rows: DiffRow[];
  sort: SortState;
  onSort: (s: SortState) => void;
  filter: string;
  onFilter: (f: string) => void;
  changedOnly: boolean;
  onChangedOnly: (v: boolean) => void;
  selected: string | null;
  onSelect: (name: string) => void;
}

const COLUMNS: SortKey[] = ["name", "relError", "maxAbs", "rmse", "cosine", "snrDb", "nDiff"];

function typePair(r: DiffRow): string {
  const a = r.typeA ?? "—";
  const b = r.typeB ?? "—";
  return a === b ? a : `${a} → ${b}`;
}

export function DiffTable(props: DiffTableProps) {
  const { rows, sort, onSort, filter, onFilter, changedOnly, onChangedOnly, selected, onSelect } = props;
  const shown = useMemo(() => sortRows(filterRows(rows, filter, changedOnly), sort), [rows, filter, changedOnly, sort]);
  const changed = rows.filter((r) => !r.identical).length;

  const cell = (r: DiffRow, key: SortKey) => {
    switch (key) {
      case "relError":
        return formatMetric(r.relError);
      case "maxAbs":
        return formatMetric(r.maxAbs);
      case "rmse":
        return formatMetric(r.rmse);
      case "cosine":
        return r.cosine === null ? "—" : r.cosine === 1 ? "1" : r.cosine.toFixed(5);
      case "snrDb":
        return r.status !== "compared" ? "—" : r.snrDb === null ? "∞" : r.snrDb.toFixed(1);
      case "nDiff":
        return r.status === "compared" ? `${formatCount(r.nDiff)}` : "—";
      default:
        return "";
    }
  };

  return (
    <section className="diff-table-panel" data-testid="diff-table">
      <div className="diff-table-head">
        <input
          className="filter"
          placeholder="Filter tensors…"
          value={filter}
          onChange={(e) => onFilter(e.target.value)}
          aria-label="Filter tensors by name"
          data-testid="diff-filter"
        />
        <label className="check">
          <input type="checkbox" checked={changedOnly} onChange={(e) => onChangedOnly(e.target.checked)} data-testid="diff-changed-only" />
          changed only
        </label>
        <span className="muted diff-counts" data-testid="diff-counts">
          {changed} of {rows.length} differ
        </span>
      </div>
      <div className="diff-table-scroll">
        <table className="diff-table">
          <thead>
            <tr>
              <th className="rank">#</th>
              {COLUMNS.map((k) => (
                <th
                  key={k}
                  className={`sortable ${k === "name" ? "name" : "num"} ${sort.key === k ? "sorted" : ""}`}
                  title={`${SORT_LABELS[k].title} — click to sort`}
                  onClick={() => onSort(nextSort(sort, k))}
                  data-testid={`diff-sort-${k}`}
                  aria-sort={sort.key === k ? (sort.mostFirst === (k !== "name") ? "descending" : "ascending") : "none"}
                >
                  {SORT_LABELS[k].label}
                  {sort.key === k ? <span className="arrow">{sort.mostFirst ? "▼" : "▲"}</span> : null}
                </th>
              )).flatMap((th, i) => (i === 0 ? [th, <th key="type" className="type">type</th>] : [th]))}
            </tr>
          </thead>
          <tbody>
            {shown.map((r, i) => {
              const badge = statusLabel(r);
              return (
                <tr
                  key={r.name}
                  className={`${r.name === selected ? "selected" : ""} ${r.identical ? "same" : ""} ${r.status !== "compared" ? "structural" : ""}`}
                  onClick={() => onSelect(r.name)}
                  data-testid="diff-row"
                  data-name={r.name}
                  data-status={r.status}
                  aria-selected={r.name === selected}
                  title={badge ?? undefined}
                >
                  <td className="rank muted">{i + 1}</td>
                  <td className="name">
                    <div className="name-cell">
                      <span className="mono tensor-name" title={r.name}>
                        {r.name}
                      </span>
                      {badge && r.status !== "compared" && (
                        <span className="badge warn" title={r.reason ?? undefined}>
                          {badge}
                        </span>
                      )}
                    </div>
                  </td>
                  <td className="type mono muted">{typePair(r)}</td>
                  {COLUMNS.slice(1).map((k) => (
                    <td key={k} className="num mono">
                      {cell(r, k)}
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
        {shown.length === 0 && <div className="empty muted">No tensor matches.</div>}
      </div>
    </section>
  );
}
