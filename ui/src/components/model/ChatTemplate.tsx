/**
 * The chat template (`tokenizer.chat_template`) in a multi-line editor. "Stage" records the
 * text as a pending metadata edit (undoable, written by Save); "Revert" drops unstaged typing.
 */
import { useEffect, useState } from "react";
import { commands, unwrap } from "../../lib/ipc";
import { keepTextUndo, type EditState, type MetaEditRow } from "../../lib/editState";
import { useQuery } from "../../lib/query";
import { InlineError } from "../InlineError";

export const CHAT_TEMPLATE_KEY = "tokenizer.chat_template";

export function ChatTemplate({ row, onChanged }: { row: MetaEditRow | undefined; onChanged: (s: EditState) => void }) {
  const present = !!row && row.status !== "removed";
  const [saved, setSaved] = useState<string>("");
  const [text, setText] = useState<string>("");
  const [stageError, setStageError] = useState<unknown>(null);
  // The staged text changes with edits, undo and redo: reload it when the row's value does.
  const current = row && row.value.kind === "str" ? row.value.text : null;
  const loaded = useQuery(async () => (present ? unwrap(await commands.metadataText(CHAT_TEMPLATE_KEY)) : ""), [present], {
    on: [current],
  });
  const staged = loaded.data;
  useEffect(() => {
    if (staged === null) return;
    setSaved(staged);
    setText(staged);
  }, [staged]);

  const dirty = text !== saved;
  const stage = async () => {
    setStageError(null);
    try {
      onChanged(unwrap(await commands.setMetadata(CHAT_TEMPLATE_KEY, "STRING", null, text)));
    } catch (e) {
      setStageError(e);
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
      <InlineError error={stageError ?? loaded.error} testId="chat-template-error" />
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
