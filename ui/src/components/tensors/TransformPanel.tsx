/**
 * Transforms on a selection of the tensor (scale, add, set, clamp, zero, negate,
 * seeded noise, replace NaN/Inf, blend with another model) over the whole tensor, rows,
 * columns, a flat range, a list of elements or one attention head — one undo step — with the
 * report of how the values were stored (blocks whose scales were kept vs. re-quantized, side
 * effects on unselected elements).
 */
import { useState } from "react";
import { describeFailure } from "../../lib/ipc";
import { useSession } from "../../lib/session";
import { OP_FIELDS, OP_LABELS, SEL_LABELS, toSelectionArgs, toTransformArgs, type OpName, type SelKind, type TransformForm } from "../../lib/tensors/transform";
import { transformTensor, type TransformReportView } from "../../lib/tensors/api";
import { InlineError } from "../InlineError";

interface Props {
  tensor: string;
  selected: { row: number; col: number } | null;
  cols: number;
  onApplied: (r: TransformReportView) => void;
}

const EMPTY: TransformForm = {
  op: "scale",
  value: "",
  min: "",
  max: "",
  std: "",
  seed: "1",
  model: "",
  kind: "all",
  start: "",
  end: "",
  indices: "",
  head: "0",
};

export function TransformPanel({ tensor, selected, cols, onApplied }: Props) {
  const [form, setForm] = useState<TransformForm>(EMPTY);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { runJob } = useSession();
  const [report, setReport] = useState<TransformReportView | null>(null);
  const set = (patch: Partial<TransformForm>) => {
    setForm((f) => ({ ...f, ...patch }));
    setError(null);
  };

  const useSelected = () => {
    if (!selected) return;
    if (form.kind === "rows") set({ start: String(selected.row), end: String(selected.row + 1) });
    else if (form.kind === "columns") set({ start: String(selected.col), end: String(selected.col + 1) });
    else if (form.kind === "elements" || form.kind === "range") {
      const i = selected.row * cols + selected.col;
      set(form.kind === "elements" ? { indices: String(i) } : { start: String(i), end: String(i + 1) });
    }
  };

  const apply = async () => {
    const sel = toSelectionArgs(form);
    if ("error" in sel) return setError(sel.error);
    const op = toTransformArgs(form);
    if ("error" in op) return setError(op.error);
    setBusy(true);
    setReport(null);
    try {
      // A job: progress bar and Cancel in the status bar (large tensors take seconds).
      const r = await runJob(`${form.op} ${tensor}`, (job, channel) => transformTensor(tensor, sel.ok, op.ok, job, channel));
      setReport(r);
      setError(null);
      onApplied(r);
    } catch (e) {
      const d = describeFailure(e);
      setError(d.code === "Canceled" ? "Canceled: nothing was changed." : d.detail);
    } finally {
      setBusy(false);
    }
  };

  const ranged = form.kind === "rows" || form.kind === "columns" || form.kind === "range";
  return (
    <section className="panel transform-panel" data-testid="transform-panel">
      <div className="panel-title">Transform</div>
      <form
        className="tf-grid"
        onSubmit={(e) => {
          e.preventDefault();
          void apply();
        }}
      >
        <label>Apply</label>
        <select value={form.op} onChange={(e) => set({ op: e.target.value as OpName })} data-testid="tf-op">
          {(Object.keys(OP_LABELS) as OpName[]).map((o) => (
            <option key={o} value={o}>
              {OP_LABELS[o]}
            </option>
          ))}
        </select>
        {OP_FIELDS[form.op].map(({ key, label }) => (
          <Field key={key} label={label} value={form[key] as string} onChange={(v) => set({ [key]: v })} testId={`tf-${key}`} wide={key === "model"} />
        ))}
        <label>To</label>
        <div className="tf-row">
          <select value={form.kind} onChange={(e) => set({ kind: e.target.value as SelKind })} data-testid="tf-kind">
            {(Object.keys(SEL_LABELS) as SelKind[]).map((k) => (
              <option key={k} value={k}>
                {SEL_LABELS[k]}
              </option>
            ))}
          </select>
          {selected && (ranged || form.kind === "elements") && (
            <button type="button" className="ghost small" onClick={useSelected} title="Fill in from the selected element">
              from selection
            </button>
          )}
        </div>
        {ranged && (
          <>
            <Field label="from" value={form.start} onChange={(v) => set({ start: v })} testId="tf-start" />
            <Field label="to (excluded)" value={form.end} onChange={(v) => set({ end: v })} testId="tf-end" />
          </>
        )}
        {form.kind === "elements" && <Field label="flat indices" value={form.indices} onChange={(v) => set({ indices: v })} testId="tf-indices" wide />}
        {form.kind === "head" && <Field label="head" value={form.head} onChange={(v) => set({ head: v })} testId="tf-head" />}
        <span />
        <button type="submit" className="primary" disabled={busy} data-testid="tf-apply">
          {busy ? "Applying…" : "Apply transform"}
        </button>
      </form>
      <InlineError error={error} testId="tf-error" />
      {report && (
        <div className="tf-report" data-testid="tf-report">
          <div>
            <b>{report.op}</b> on {report.elementsSelected.toLocaleString()} elements: {report.elementsChanged.toLocaleString()} changed, {report.bytesChanged.toLocaleString()} bytes written
          </div>
          <div className="muted small">
            blocks: {report.blocksKeptScales} kept scales · {report.blocksRequantizedWhole} re-quantized whole · {report.blocksRequantized} re-quantized with side effects
          </div>
          {report.sideEffectCount > 0 && (
            <div className="small warn-text">
              {report.sideEffectCount.toLocaleString()} unselected element{report.sideEffectCount === 1 ? "" : "s"} moved (largest |Δ| {report.maxSideEffect})
            </div>
          )}
          {report.change === null && <div className="muted small">Nothing changed (no undo step).</div>}
        </div>
      )}
    </section>
  );
}

function Field({ label, value, onChange, testId, wide }: { label: string; value: string; onChange: (v: string) => void; testId: string; wide?: boolean }) {
  return (
    <>
      <label>{label}</label>
      <input className={`field mono ${wide ? "wide" : ""}`} value={value} onChange={(e) => onChange(e.target.value)} spellCheck={false} data-testid={testId} />
    </>
  );
}
