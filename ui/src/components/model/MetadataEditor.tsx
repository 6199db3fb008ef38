/**
 * The metadata table with editing: every entry as it will be saved (pending edits marked),
 * edit a value in place (typed input per GGUF type, checked as you type, the backend checks
 * again), delete a key, add one. Edits are staged: undoable, written by Save / Save As.
 */
import { useMemo, useState, type FormEvent } from "react";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import { keepTextUndo, type EditState, type MetaEditRow } from "../../lib/editState";
import { formatCount } from "../../lib/format";
import { keyProblem, SCALAR_TYPES, valueProblem } from "../../lib/model/metaValue";
import { useQuery } from "../../lib/query";
import { metaText } from "../MetadataTable";
import { InlineError } from "../InlineError";

interface Props {
  rows: MetaEditRow[];
  /** Called with the new edit state after a staged change. */
  onChanged: (s: EditState) => void;
}

const STATUS_LABEL: Record<string, string> = { changed: "changed", added: "added", removed: "removed" };

function typeLabel(r: MetaEditRow): string {
  if (r.value.kind === "array") return `${r.value.elementType}[${formatCount(r.value.len)}]`;
  return r.valueType;
}

export function MetadataEditor({ rows, onChanged }: Props) {
  const [filter, setFilter] = useState("");
  const [editing, setEditing] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);
  const [rowError, setRowError] = useState<{ key: string; text: string } | null>(null);
  const shown = useMemo(() => {
    const f = filter.toLowerCase();
    return f ? rows.filter((r) => r.key.toLowerCase().includes(f)) : rows;
  }, [rows, filter]);
  const pending = rows.filter((r) => r.status !== "unchanged").length;

  const remove = async (key: string) => {
    setRowError(null);
    try {
      onChanged(unwrap(await commands.removeMetadata(key)));
    } catch (e) {
      setRowError({ key, text: describeFailure(e).detail });
    }
  };

  return (
    <section className="card metadata-editor" data-testid="metadata">
      <div className="card-title">
        <h3>
          Metadata <span className="count">{rows.length}</span>
        </h3>
        <div className="title-tools">
          {pending > 0 && (
            <span className="chip warn" data-testid="meta-pending" title="Written by Save / Save As">
              {pending} pending
            </span>
          )}
          <input
            className="filter small"
            type="search"
            placeholder="Filter keys…"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
            spellCheck={false}
            data-testid="meta-filter"
          />
          <button className="tool" data-testid="meta-add" onClick={() => setAdding((a) => !a)}>
            {adding ? "Close" : "+ Add key"}
          </button>
        </div>
      </div>
      {adding && <AddKey onChanged={onChanged} onDone={() => setAdding(false)} existing={rows} />}
      <table className="meta-table editable">
        <thead>
          <tr>
            <th>Key</th>
            <th>Type</th>
            <th>Value</th>
            <th aria-label="Actions" />
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.key} data-testid="meta-row" data-key={r.key} data-status={r.status} className={`status-${r.status}`}>
              <td className="mono key" title={r.key}>
                {r.key}
              </td>
              <td className="muted type">
                {typeLabel(r)}
                {STATUS_LABEL[r.status] && <span className={`chip tiny ${r.status}`}>{STATUS_LABEL[r.status]}</span>}
              </td>
              <td className={`value ${r.value.kind}`}>
                {editing === r.key ? (
                  <ValueEditor row={r} onChanged={onChanged} onClose={() => setEditing(null)} />
                ) : (
                  <span className="value-text" data-testid="meta-value" title={r.value.kind === "str" ? r.value.text.slice(0, 2000) : undefined}>
                    {metaText(r.value)}
                  </span>
                )}
                {rowError?.key === r.key && <InlineError error={rowError.text} />}
              </td>
              <td className="actions">
                {r.status !== "removed" && editing !== r.key && (
                  <>
                    <button
                      className="icon"
                      data-testid="meta-edit"
                      disabled={!r.editable}
                      title={r.editable ? "Edit the value" : "This value cannot be edited as text (nested or very long array)"}
                      onClick={() => {
                        setRowError(null);
                        setEditing(r.key);
                      }}
                    >
                      ✎
                    </button>
                    <button className="icon danger" data-testid="meta-delete" title="Delete the key (pending until Save)" onClick={() => void remove(r.key)}>
                      ✕
                    </button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown.length === 0 && <p className="muted">No key matches “{filter}”.</p>}
    </section>
  );
}

/** The inline editor of one value. Long strings and arrays get a text area. */
function ValueEditor({ row, onChanged, onClose }: { row: MetaEditRow; onChanged: (s: EditState) => void; onClose: () => void }) {
  // The value's text as stored, then as the user types it.
  const loaded = useQuery(async () => unwrap(await commands.metadataText(row.key)), [row.key]);
  const [typed, setText] = useState<string | null>(null);
  const text = typed ?? loaded.data;
  const [error, setError] = useState<string | null>(null);
  const element = row.elementType ?? null;

  if (loaded.error != null)
    return (
      <div className="value-load-error">
        <InlineError error={loaded.error} />
        <button className="link" onClick={onClose}>
          Close
        </button>
      </div>
    );
  if (text === null) return <span className="muted">loading…</span>;

  const problem = valueProblem(row.key, row.valueType, element, text);
  const apply = async (e?: FormEvent) => {
    e?.preventDefault();
    if (problem) {
      setError(problem);
      return;
    }
    try {
      onChanged(unwrap(await commands.setMetadata(row.key, row.valueType, element, text)));
      onClose();
    } catch (err) {
      setError(describeFailure(err).detail);
    }
  };
  const multiline = row.valueType === "ARRAY" || (row.valueType === "STRING" && (text.includes("\n") || text.length > 80));
  const shownError = error ?? (problem && text !== "" ? problem : null);
  return (
    <form
      className="value-editor"
      onSubmit={(e) => void apply(e)}
      onKeyDown={(e) => {
        if (e.key === "Escape") onClose();
        keepTextUndo(e);
      }}
    >
      {row.valueType === "BOOL" ? (
        <select data-testid="meta-input" value={text} onChange={(e) => setText(e.target.value)} autoFocus>
          <option value="true">true</option>
          <option value="false">false</option>
        </select>
      ) : multiline ? (
        <textarea
          data-testid="meta-input"
          value={text}
          rows={Math.min(12, Math.max(3, text.split("\n").length))}
          spellCheck={false}
          onChange={(e) => {
            setText(e.target.value);
            setError(null);
          }}
          autoFocus
        />
      ) : (
        <input
          data-testid="meta-input"
          type="text"
          value={text}
          spellCheck={false}
          aria-invalid={!!shownError}
          onChange={(e) => {
            setText(e.target.value);
            setError(null);
          }}
          autoFocus
        />
      )}
      <div className="editor-buttons">
        <button type="submit" className="tool primary" data-testid="meta-apply">
          Apply
        </button>
        <button type="button" className="ghost" onClick={onClose}>
          Cancel
        </button>
        {row.valueType === "ARRAY" && <span className="muted hint">JSON list of {element}</span>}
      </div>
      <InlineError error={shownError} testId="meta-error" />
    </form>
  );
}

const ADD_TYPES = [...SCALAR_TYPES, "ARRAY"] as const;

/** The "add a key" form. */
function AddKey({ onChanged, onDone, existing }: { onChanged: (s: EditState) => void; onDone: () => void; existing: MetaEditRow[] }) {
  const [key, setKey] = useState("");
  const [type, setType] = useState<string>("STRING");
  const [element, setElement] = useState<string>("STRING");
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const k = key.trim();
    const p = keyProblem(k) ?? valueProblem(k, type, type === "ARRAY" ? element : null, text);
    if (p) {
      setError(p);
      return;
    }
    try {
      onChanged(unwrap(await commands.setMetadata(k, type, type === "ARRAY" ? element : null, text)));
      onDone();
    } catch (err) {
      setError(describeFailure(err).detail);
    }
  };
  const replaces = existing.some((r) => r.key === key.trim() && r.status !== "removed");
  return (
    <form className="add-key" data-testid="meta-add-form" onSubmit={(e) => void submit(e)} onKeyDown={keepTextUndo}>
      <input data-testid="meta-add-key" placeholder="key, e.g. general.license" value={key} spellCheck={false} onChange={(e) => setKey(e.target.value)} autoFocus />
      <select data-testid="meta-add-type" value={type} onChange={(e) => setType(e.target.value)}>
        {ADD_TYPES.map((t) => (
          <option key={t}>{t}</option>
        ))}
      </select>
      {type === "ARRAY" && (
        <select value={element} onChange={(e) => setElement(e.target.value)} aria-label="Element type">
          {SCALAR_TYPES.map((t) => (
            <option key={t}>{t}</option>
          ))}
        </select>
      )}
      <input
        data-testid="meta-add-value"
        placeholder={type === "ARRAY" ? "[1, 2, 3]" : type === "BOOL" ? "true / false" : "value"}
        value={text}
        spellCheck={false}
        onChange={(e) => setText(e.target.value)}
      />
      <button type="submit" className="tool primary" data-testid="meta-add-apply">
        {replaces ? "Replace" : "Add"}
      </button>
      <InlineError error={error} testId="meta-add-error" className="full" />
    </form>
  );
}
