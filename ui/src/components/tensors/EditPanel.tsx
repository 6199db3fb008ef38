/**
 * Edit one element: type a value, see what will actually be stored (quantization rounds) and
 * the effect on the element's block (the other elements whose value changes, before → after)
 * — a dry run by the core (`preview_weight`) — then apply (`set_weight`, one undo step).
 * Bad input is refused next to the field: by the UI's parser first ("abc"), then by the
 * backend with its own message (a locked tensor, a value a block type cannot hold).
 */
import { forwardRef, useEffect, useImperativeHandle, useRef, useState } from "react";
import { describeFailure } from "../../lib/ipc";
import { exactF32, formatValue, parseValue } from "../../lib/heatmap/format";
import { rowCol } from "../../lib/tensors/grid";
import { useQuery } from "../../lib/query";
import { previewWeight, readValue, setWeight, type WeightEditView } from "../../lib/tensors/api";
import { InlineError } from "../InlineError";

interface Props {
  tensor: string;
  ty: string;
  cols: number;
  selected: { row: number; col: number } | null;
  /** Session revision (the current value is refetched when it moves). */
  revision: number;
  locked: boolean;
  /** Called after an edit was applied. */
  onApplied: (edit: WeightEditView) => void;
}

export interface EditPanelHandle {
  focus: () => void;
}

const LISTED = 24;

export const EditPanel = forwardRef<EditPanelHandle, Props>(function EditPanel(
  { tensor, ty, cols, selected, revision, locked, onApplied },
  ref,
) {
  const input = useRef<HTMLInputElement>(null);
  useImperativeHandle(ref, () => ({ focus: () => input.current?.select() }), []);
  const [text, setText] = useState("");
  const [preview, setPreview] = useState<WeightEditView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<WeightEditView | null>(null);
  const [showAll, setShowAll] = useState(false);
  const index = selected ? selected.row * cols + selected.col : null;

  // New element: clear the form and read its current value.
  useEffect(() => {
    setText("");
    setPreview(null);
    setError(null);
    setDone(null);
    setShowAll(false);
  }, [tensor, index]);
  const row = selected?.row ?? null;
  const col = selected?.col ?? null;
  // The element's stored value ("…" while it loads or when it cannot be read); an edit anywhere
  // (the revision) refreshes it in place.
  const current = useQuery(() => (row === null || col === null ? null : readValue(tensor, row, col)), [tensor, row, col], {
    on: [revision],
  }).data;

  // Preview as the user types (debounced); the UI's parser refuses non-numbers at once.
  const seq = useRef(0);
  useEffect(() => {
    // Every change of the inputs makes an answer still in flight stale (after Apply clears the
    // field, a preview of the applied text must not replace the result).
    const my = ++seq.current;
    if (index === null || text.trim() === "") {
      setPreview(null);
      setError(null);
      return;
    }
    const p = parseValue(text);
    if ("error" in p) {
      setPreview(null);
      setError(p.error);
      return;
    }
    const t = window.setTimeout(() => {
      previewWeight(tensor, index, text.trim()).then(
        (pv) => {
          if (my !== seq.current) return;
          setPreview(pv);
          setError(null);
        },
        (e) => {
          if (my !== seq.current) return;
          setPreview(null);
          setError(describeFailure(e).detail);
        },
      );
    }, 150);
    return () => window.clearTimeout(t);
  }, [text, tensor, index, revision]);

  const apply = async () => {
    if (index === null) return;
    const p = parseValue(text);
    if ("error" in p) {
      setError(p.error);
      return;
    }
    setBusy(true);
    seq.current++; // a preview still in flight is of the text being applied
    try {
      const e = await setWeight(tensor, index, text.trim());
      setDone(e);
      setPreview(null);
      setText("");
      setError(null);
      onApplied(e);
    } catch (e) {
      setError(describeFailure(e).detail);
    } finally {
      setBusy(false);
    }
  };

  if (!selected || index === null) {
    return (
      <section className="panel edit-panel" data-testid="edit-panel">
        <div className="panel-title">Edit a weight</div>
        <p className="muted small">Click a cell of the heatmap or the grid to select an element.</p>
      </section>
    );
  }
  const shown = preview ?? done;
  return (
    <section className="panel edit-panel" data-testid="edit-panel">
      <div className="panel-title">
        Edit a weight
        {locked && <span className="chip warn">locked</span>}
      </div>
      <dl className="kv">
        <dt>Element</dt>
        <dd className="mono" data-testid="edit-element">
          [{selected.row}, {selected.col}] <span className="muted">#{index.toLocaleString()}</span>
        </dd>
        <dt>Value</dt>
        <dd className="mono" data-testid="edit-current">
          {current === null ? "…" : exactF32(current)}
        </dd>
      </dl>
      <form
        className="edit-form"
        onSubmit={(e) => {
          e.preventDefault();
          void apply();
        }}
      >
        <input
          ref={input}
          data-testid="edit-value"
          className={`field mono ${error ? "invalid" : ""}`}
          placeholder="new value, e.g. 0.25"
          value={text}
          onChange={(e) => setText(e.target.value)}
          spellCheck={false}
          aria-invalid={error !== null}
          aria-describedby="edit-error"
        />
        <button type="submit" className="primary" disabled={busy || text.trim() === "" || error !== null} data-testid="edit-apply">
          Apply
        </button>
      </form>
      <InlineError error={error} testId="edit-error" id="edit-error" />
      {shown && (
        <div className={`edit-preview ${shown.applied ? "applied" : ""}`} data-testid={shown.applied ? "edit-result" : "edit-preview"}>
          <div className="preview-line">
            <span className="muted">{shown.applied ? "Stored" : "Will store"}</span>
            <b className="mono" data-testid={shown.applied ? "edit-stored-final" : "edit-stored"}>
              {shown.stored}
            </b>
            {shown.stored !== shown.requested && (
              <span className="muted small">
                (asked {shown.requested}; {ty} rounds)
              </span>
            )}
          </div>
          <div className="preview-line small">
            <span className="muted">Block</span>
            <span className="mono">
              #{Math.floor(shown.blockFirst / Math.max(1, shown.blockLen))} · elements {shown.blockFirst}…{shown.blockFirst + shown.blockLen - 1}
            </span>
          </div>
          <div className="preview-line small" data-testid="edit-block-effect">
            {shown.blockLen === 1
              ? "Float type: no other element is affected."
              : shown.blockRequantized
                ? `The block is re-quantized: ${shown.sideEffects.length} other element${shown.sideEffects.length === 1 ? "" : "s"} change.`
                : "The block's scales are kept: no other element changes."}
          </div>
          {shown.sideEffects.length > 0 && (
            <div className="side-effects-wrap">
              <table className="side-effects" data-testid="edit-side-effects">
                <thead>
                  <tr>
                    <th>element</th>
                    <th>before</th>
                    <th>after</th>
                    <th>Δ</th>
                  </tr>
                </thead>
                <tbody>
                  {(showAll ? shown.sideEffects : shown.sideEffects.slice(0, LISTED)).map((s) => {
                    const rc = rowCol(s.index, cols);
                    return (
                      <tr key={s.index}>
                        <td className="mono">
                          [{rc.row}, {rc.col}]
                        </td>
                        <td className="mono" title={s.before}>{s.before}</td>
                        <td className="mono" title={s.after}>{s.after}</td>
                        <td className="mono muted">{formatValue(Number(s.after) - Number(s.before))}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          {shown.sideEffects.length > LISTED && (
            <button type="button" className="ghost small" onClick={() => setShowAll((v) => !v)} data-testid="edit-show-all">
              {showAll ? "Show fewer" : `Show all ${shown.sideEffects.length}`}
            </button>
          )}
        </div>
      )}
    </section>
  );
});
