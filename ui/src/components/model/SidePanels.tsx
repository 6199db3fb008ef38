/** Smaller Model-screen cards: the files of a split model, and the undo history. */
import { commands, unwrap } from "../../lib/ipc";
import { useQuery } from "../../lib/query";
import { InlineError } from "../InlineError";
import type { EditState } from "../../lib/editState";
import { formatBytes, formatCount } from "../../lib/format";

/** The shards of a split model (`-00001-of-0000N.gguf`), checked by the GGUF crate. */
export function ShardsCard({ path }: { path: string }) {
  // Read again when another model opens (`path`).
  const { data: shards, error } = useQuery(async () => unwrap(await commands.modelShards()), [], { on: [path] });
  if (error != null)
    return (
      <section className="card shards" data-testid="shards">
        <div className="card-title">
          <h3>Files</h3>
        </div>
        <InlineError error={error} />
      </section>
    );
  if (!shards || shards.length < 2) return null;
  return (
    <section className="card shards" data-testid="shards">
      <div className="card-title">
        <h3>
          Split model <span className="count">{shards.length} files</span>
        </h3>
      </div>
      <table className="live-table">
        <thead>
          <tr>
            <th>#</th>
            <th>File</th>
            <th className="num">Tensors</th>
            <th className="num">Size</th>
          </tr>
        </thead>
        <tbody>
          {shards.map((s) => (
            <tr key={s.path} data-testid="shard-row">
              <td className="num">{s.number}</td>
              <td className="mono" title={s.path}>
                {s.fileName}
              </td>
              <td className="num">{formatCount(s.tensors)}</td>
              <td className="num muted">{formatBytes(s.fileSize)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted small-text" data-testid="shards-note">
        Opened as one model: every tensor of every file is listed and editable, and Save writes each file back. The metadata is the
        first file's (a metadata edit rewrites that file); the Bytes screen shows one file at a time.
      </p>
    </section>
  );
}

/** The undo history: done steps, then undone ones (greyed) in redo order. */
export function HistoryCard({ state }: { state: EditState | null }) {
  const rows = state?.history ?? [];
  return (
    <section className="card history" data-testid="history">
      <div className="card-title">
        <h3>
          History <span className="count">{rows.filter((r) => !r.undone).length}</span>
        </h3>
        <span className="muted small-text">Ctrl+Z undo · Ctrl+Shift+Z redo</span>
      </div>
      {rows.length === 0 ? (
        <p className="muted small-text">No edits yet.</p>
      ) : (
        <ol className="history-list">
          {rows.map((r) => (
            <li key={`${r.kind}-${r.id}`} data-testid="history-row" data-undone={r.undone ? "true" : "false"} className={r.undone ? "undone" : ""}>
              <span className={`chip tiny ${r.kind}`}>{r.kind === "metadata" ? "meta" : "bytes"}</span>
              <span className="label" title={r.label}>
                {r.label}
              </span>
              {r.bytes > 0 && <span className="muted num">{formatBytes(r.bytes)}</span>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
