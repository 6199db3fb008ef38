/**
 * An import preview: fingerprint verdict, counts, one row per item, its target and detail
 * wrapping in the row (nothing clipped); a metadata edit that will change the model gets a
 * second line: the value now and the new value, and for text (a chat template) a text diff;
 * apply as one undo group. A configuration recorded on another model does not fit until the
 * user overrides it explicitly (the `model` row then says it is applied anyway).
 */
import { Fragment } from "react";
import type { ApplyView_Serialize as ApplyView, ImportPreview_Serialize as ImportPreview } from "../../bindings";
import { fingerprintVerdict, previewCounts } from "../../lib/patches/report";
import { TextDiff } from "../TextDiff";

const STATUS_LABEL = {
  willChange: "will change",
  alreadyApplied: "already applied",
  mismatch: "does not fit",
  info: "info",
} as const;

export function PreviewPanel({
  preview,
  busy,
  onApply,
  onDiscard,
  onAllowOtherModel,
  applyLabel,
}: {
  preview: ImportPreview;
  busy: boolean;
  onApply: () => void;
  onDiscard: () => void;
  /** The user's explicit override for a configuration recorded on another model. */
  onAllowOtherModel?: () => void;
  applyLabel: string;
}) {
  const counts = previewCounts(preview.items);
  const verdict = fingerprintVerdict(preview);
  return (
    <div className="preview" data-testid="import-preview" data-applicable={preview.applicable}>
      <div className="preview-head">
        <div>
          <strong>{preview.name ?? preview.source}</strong>
          {preview.description && <div className="muted">{preview.description}</div>}
        </div>
        <div className="counts">
          <span className="badge ok">{counts.willChange} will change</span>
          {counts.alreadyApplied > 0 && <span className="badge">{counts.alreadyApplied} already applied</span>}
          {counts.mismatch > 0 && <span className="badge bad">{counts.mismatch} do not fit</span>}
          {counts.info > 0 && <span className="badge">{counts.info} info</span>}
        </div>
      </div>
      <p className={`note ${verdict.tone}`} data-testid="import-verdict">
        {verdict.text}
      </p>
      {preview.items.length === 0 ? (
        <p className="empty">The configuration changes nothing.</p>
      ) : (
        <div className="table-scroll short">
          <table className="table preview-table">
            <colgroup>
              <col className="c-item" />
              <col />
              <col className="c-effect" />
            </colgroup>
            <thead>
              <tr>
                <th>Item</th>
                <th>Target · detail</th>
                <th>Effect</th>
              </tr>
            </thead>
            <tbody>
              {preview.items.map((i) => (
                <Fragment key={`${i.item} ${i.target}`}>
                  <tr data-testid="preview-row" data-status={i.status} data-target={i.target} className={i.from != null ? "has-change" : undefined}>
                    <td className="mono small item">{i.item}</td>
                    <td className="target-detail">
                      <div className="mono target">{i.target}</div>
                      <div className="detail small" data-testid="preview-detail">
                        {i.from != null ? "written by Save" : i.detail}
                      </div>
                    </td>
                    <td>
                      <span className={`badge status-${i.status}`}>{STATUS_LABEL[i.status]}</span>
                    </td>
                  </tr>
                  {i.from != null && i.to != null && (
                    <tr className="value-change" data-testid="preview-change" data-target={i.target}>
                      <td colSpan={3}>
                        <div className="value-change-grid">
                          <span className="muted">now</span>
                          <code title={i.from} data-testid="preview-from">
                            {i.from}
                          </code>
                          <span className="muted">new</span>
                          <code title={i.to} data-testid="preview-to">
                            {i.to}
                          </code>
                        </div>
                        {i.fromText != null && i.toText != null && (
                          <TextDiff before={i.fromText} after={i.toText} testId="preview-text-diff" />
                        )}
                      </td>
                    </tr>
                  )}
                </Fragment>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {preview.serverRules != null && (
        <p className="note">
          Sets the proxy: {preview.serverRules} rule{preview.serverRules === 1 ? "" : "s"}, response cache {preview.cacheEnabled ? "on" : "off"}.
        </p>
      )}
      <div className="actions">
        <button className="ghost" onClick={onDiscard} disabled={busy}>
          Discard
        </button>
        {preview.otherModel && !preview.allowOtherModel && onAllowOtherModel && (
          <button
            className="ghost warn"
            onClick={onAllowOtherModel}
            disabled={busy}
            title="Write into the tensors of the same name although this is another model"
            data-testid="import-allow-other-model"
          >
            Apply to this model anyway…
          </button>
        )}
        <button
          className="primary"
          onClick={onApply}
          disabled={busy || !preview.applicable}
          title={preview.applicable ? "One undo step reverts all of it" : "Items do not fit this model"}
          data-testid="import-apply"
        >
          {applyLabel}
        </button>
      </div>
    </div>
  );
}

/** What an import or a preset did. */
export function ApplyResult({ result }: { result: ApplyView }) {
  const changed = result.transforms.length + result.bytePatchesApplied + result.metadataEdits;
  return (
    <div className="result" data-testid="apply-result" data-change={result.change ?? ""}>
      <p className="note ok">
        Applied {result.source}: {result.transforms.length} tensor transform{result.transforms.length === 1 ? "" : "s"},{" "}
        {result.bytePatchesApplied} byte patch{result.bytePatchesApplied === 1 ? "" : "es"}
        {result.bytePatchesAlreadyApplied > 0 && ` (${result.bytePatchesAlreadyApplied} already there)`},{" "}
        {result.metadataEdits} metadata edit{result.metadataEdits === 1 ? "" : "s"}
        {result.metadataEdits > 0 && " (pending until Save)"}, {result.protections} protection
        {result.protections === 1 ? "" : "s"}; proxy {result.serverRules} rule{result.serverRules === 1 ? "" : "s"}, cache{" "}
        {result.cacheEnabled ? "on" : "off"}.{" "}
        {changed > 0 ? (result.change != null ? `One undo step (#${result.change}) reverts it.` : "One undo step reverts it.") : "Nothing in the model changed."}
      </p>
      {result.transforms.length > 0 && <TransformTable rows={result.transforms} />}
    </div>
  );
}

export function TransformTable({ rows }: { rows: ApplyView["transforms"] }) {
  return (
    <div className="table-scroll short">
      <table className="table">
        <thead>
          <tr>
            <th>Tensor</th>
            <th>Operation</th>
            <th className="num">Elements</th>
            <th className="num">Bytes changed</th>
            <th className="num">Blocks re-quantized</th>
            <th className="num">Side effects</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((t, i) => (
            <tr key={`${t.tensor}-${i}`}>
              <td className="mono">{t.tensor}</td>
              <td>{t.op.replace(/_/g, " ")}</td>
              <td className="num mono">{t.elementsSelected.toLocaleString("en-US")}</td>
              <td className="num mono">{t.bytesChanged.toLocaleString("en-US")}</td>
              <td className="num mono">{t.blocksRequantized.toLocaleString("en-US")}</td>
              <td className={`num mono ${t.sideEffects > 0 ? "warn-text" : ""}`}>{t.sideEffects.toLocaleString("en-US")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
