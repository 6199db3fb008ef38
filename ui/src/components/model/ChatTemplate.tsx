/**
 * The chat template (`tokenizer.chat_template`) in a multi-line editor. "Stage" records the
 * text as a pending metadata edit (undoable, written by Save); "Revert" drops unstaged typing.
 */
import { useEffect, useState } from "react";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import { keepTextUndo, type EditState, type MetaEditRow } from "../../lib/editState";

export const CHAT_TEMPLATE_KEY = "tokenizer.chat_template";

export function ChatTemplate({ row, onChanged }: { row: MetaEditRow | undefined; onChanged: (s: EditState) => void }) {
  const present = !!row && row.status !== "removed";
  const [saved, setSaved] = useState<string>("");
  const [text, setText] = useState<string>("");
  const [error, setError] = useState<string | null>(null);
  // The staged text changes with edits, undo and redo: reload it when the row's value does.
  const current = row && row.value.kind === "str" ? row.value.text : null;

  useEffect(() => {
    if (!present) {
      setSaved("");
      setText("");
      return;
    }
    let live = true;
    void commands.metadataText(CHAT_TEMPLATE_KEY).then((r) => {
      if (!live) return;
      if (r.status === "ok") {
        setSaved(r.data);
        setText(r.data);
      } else setError(r.error.message);
    });
    return () => {
      live = false;
    };
  }, [present, current]);

  const dirty = text !== saved;
  const stage = async () => {
    setError(null);
    try {
      onChanged(unwrap(await commands.setMetadata(CHAT_TEMPLATE_KEY, "STRING", null, text)));
    } catch (e) {
      setError(describeFailure(e).detail);
    }
  };
  const lines = text.split("\n").length;

  return (
    <section className="card chat-template" data-testid="chat-template">
      <div className="card-title">
        <h3>Chat template</h3>
        <div className="title-tools">
          {row && row.status !== "unchanged" && <span className={`chip tiny ${row.status}`}>{row.status}</span>}
          {dirty && <span className="chip warn">not staged</span>}
          <span className="muted small-text">
            {present || dirty ? `${lines} line${lines === 1 ? "" : "s"}, ${text.length} chars` : "none in this model"}
          </span>
        </div>
      </div>
      <textarea
        className="template-editor"
        data-testid="chat-template-input"
        spellCheck={false}
        value={text}
        placeholder={present ? "" : "{% for message in messages %}…{% endfor %}"}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={keepTextUndo}
        rows={10}
      />
      {error && (
        <div className="inline-error" data-testid="chat-template-error" role="alert">
          {error}
        </div>
      )}
      <div className="editor-buttons">
        <button className="tool primary" data-testid="chat-template-stage" disabled={!dirty} onClick={() => void stage()}>
          {present ? "Stage change" : "Add template"}
        </button>
        <button className="ghost" disabled={!dirty} onClick={() => setText(saved)}>
          Revert
        </button>
        <span className="muted hint">Staged edits are undoable and written by Save / Save As.</span>
      </div>
    </section>
  );
}
