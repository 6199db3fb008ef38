/**
 * Can this file be trusted? The audit of the open model as `hotpatch audit` runs it: findings
 * of the structure and chat-template checks, the prompts the template renders on fixed
 * conversations, and (on request, as a job) whether every tensor re-derives from a claimed base.
 */
import { useState } from "react";
import type { Channel } from "@tauri-apps/api/core";
import type { FindingView_Serialize as FindingView, ModelSummary, Progress, ProvenanceView_Serialize as ProvenanceView } from "../../bindings";
import { pickOpenFile } from "../../lib/dialog";
import { formatOffset } from "../../lib/format";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import { auditBadge, findingTone, useAudit } from "../../lib/model/audit";
import { useSession } from "../../lib/session";
import { InlineError } from "../InlineError";

export function FindingsTable({ findings, testId }: { findings: FindingView[]; testId: string }) {
  if (findings.length === 0) return null;
  return (
    <ul className="audit-findings" data-testid={testId}>
      {findings.map((f, i) => (
        <li key={`${f.code}-${i}`} data-testid="audit-finding" data-code={f.code} data-severity={f.severity}>
          <div className="audit-head">
            <span className={`sev sev-${findingTone(f)}`}>{f.severity}</span>
            <span className="mono audit-code">{f.code}</span>
            <span className="mono audit-where" title={f.offset != null ? `offset ${formatOffset(f.offset)}` : undefined}>
              {f.location}
            </span>
          </div>
          <div className="audit-message">{f.message}</div>
        </li>
      ))}
    </ul>
  );
}

export function AuditCard({ summary }: { summary: ModelSummary }) {
  const audit = useAudit(summary);
  const { runJob } = useSession();
  const [base, setBase] = useState("");
  const [prov, setProv] = useState<ProvenanceView | null>(null);
  const [provError, setProvError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const check = async () => {
    setProvError(null);
    setProv(null);
    setBusy(true);
    try {
      const v = await runJob("provenance check", async (job: number, channel: Channel<Progress>) =>
        unwrap(await commands.auditProvenance(base, job, channel)),
      );
      setProv(v);
    } catch (e) {
      const d = describeFailure(e);
      setProvError(d.code === "Canceled" ? "Canceled: nothing was checked to the end." : d.detail);
    } finally {
      setBusy(false);
    }
  };
  const browse = async () => {
    const p = await pickOpenFile();
    if (p) setBase(p);
  };

  return (
    <section className="card audit-card" id="audit-card" data-testid="audit-card">
      <div className="card-title">
        <h3>Audit</h3>
        {audit?.ok && (
          <span className={`sev sev-${auditBadge(audit.view).tone}`} data-testid="audit-verdict">
            {audit.view.clean ? "clean" : auditBadge(audit.view).label.replace("Audit: ", "")}
          </span>
        )}
      </div>
      {!audit && <p className="muted">Auditing the file…</p>}
      {audit && !audit.ok && <InlineError error={audit.message} />}
      {audit?.ok && (
        <>
          <p className="muted small-text" data-testid="audit-summary">
            {audit.view.clean ? "No warning or error. " : "Look at these before running the model. "}
            Structure checked by the refusal rules of {audit.view.llamaCpp}; the chat template parsed into a syntax tree
            (injection gadgets, text that appears only for some messages, hidden Unicode, network addresses). The file on
            disk is audited: save to audit unsaved edits.
          </p>
          <FindingsTable findings={audit.view.findings} testId="audit-findings" />
          {audit.view.renders.length > 0 && (
            <details className="audit-renders" data-testid="audit-renders">
              <summary>
                The prompt the model really sees ({audit.view.renders.length} fixed conversation
                {audit.view.renders.length === 1 ? "" : "s"})
              </summary>
              {audit.view.renders.map((r) => (
                <div key={`${r.template}/${r.conversation}`} className="audit-render" data-testid="audit-render" data-conversation={r.conversation}>
                  <div className="muted small-text">
                    {r.template} on “{r.conversation}”
                  </div>
                  {r.prompt != null ? <pre className="mono">{r.prompt}</pre> : <div className="muted">not rendered: {r.error}</div>}
                </div>
              ))}
            </details>
          )}
        </>
      )}
      <div className="audit-provenance">
        <div className="muted small-text">
          Provenance: re-derive every tensor from the F16/BF16/F32 model this one claims to be quantized from.
        </div>
        <div className="audit-row">
          <input
            className="grow mono"
            data-testid="audit-base"
            spellCheck={false}
            placeholder="/path/to/base-f16.gguf"
            value={base}
            onChange={(e) => setBase(e.target.value)}
            aria-label="Base model path"
          />
          <button type="button" className="ghost" onClick={() => void browse()} disabled={busy}>
            Browse…
          </button>
          <button type="button" data-testid="audit-check-base" onClick={() => void check()} disabled={busy || !base.trim()}>
            Check
          </button>
        </div>
        <InlineError error={provError} testId="audit-base-error" />
        {prov && (
          <>
            <div className="small-text" data-testid="audit-provenance-summary">
              {prov.summary}
            </div>
            <FindingsTable findings={prov.findings} testId="audit-provenance-findings" />
          </>
        )}
      </div>
    </section>
  );
}
