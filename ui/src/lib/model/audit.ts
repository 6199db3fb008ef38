/**
 * The audit of the open model (`hotpatch-audit` through `audit_model`), run once per opened or
 * saved model and shared by the top bar's badge and the Model screen's card.
 */
import type { AuditView_Serialize as AuditView, FindingView_Serialize as FindingView, ModelSummary } from "../../bindings";
import { commands } from "../ipc";
import { useQuery } from "../query";

export type AuditResult = { ok: true; view: AuditView } | { ok: false; message: string };

// One audit per loaded model: the session replaces `summary` on open and after a save that
// rewrites the file, which is exactly when the file's header (and template) can change.
const cache = new WeakMap<ModelSummary, Promise<AuditResult>>();

export function auditOf(summary: ModelSummary): Promise<AuditResult> {
  let p = cache.get(summary);
  if (!p) {
    p = commands.auditModel().then(
      (r): AuditResult => (r.status === "ok" ? { ok: true, view: r.data } : { ok: false, message: r.error.message }),
      (e: unknown): AuditResult => ({ ok: false, message: String(e) }),
    );
    cache.set(summary, p);
  }
  return p;
}

/** The audit of `summary`'s model, or null while it runs (or with no model). */
export function useAudit(summary: ModelSummary | null): AuditResult | null {
  const result = useQuery(async () => (summary ? { of: summary, r: await auditOf(summary) } : null), [summary]).data;
  // Until the effect ran for a new summary, the last result is another model's.
  return summary && result?.of === summary ? result.r : null;
}

export type Tone = "ok" | "info" | "warn" | "error";

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? "" : "s"}`;
}

/** The badge a model gets on open: "clean", or the count of errors and warnings. */
export function auditBadge(v: Pick<AuditView, "clean" | "errors" | "warnings" | "infos">): { label: string; tone: Tone; title: string } {
  if (v.clean) {
    const notes = v.infos > 0 ? ` (${plural(v.infos, "note")})` : "";
    return { label: "Audit: clean", tone: "ok", title: `No warning or error${notes}: structure, chat template and the prompts it renders were checked.` };
  }
  const parts: string[] = [];
  if (v.errors > 0) parts.push(plural(v.errors, "error"));
  if (v.warnings > 0) parts.push(plural(v.warnings, "warning"));
  return {
    label: `Audit: ${parts.join(", ")}`,
    tone: v.errors > 0 ? "error" : "warn",
    title: "Findings of the audit: see the Audit card on the Model screen before running this model.",
  };
}

/** A finding's tone. */
export function findingTone(f: Pick<FindingView, "severity">): Tone {
  return f.severity === "error" ? "error" : f.severity === "warning" ? "warn" : "info";
}
