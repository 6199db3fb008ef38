/** The form for one rule of any kind: add or edit. Validates locally, then the backend. */
import { useState } from "react";
import type { RuleSpec_Serialize as RuleSpec } from "../../bindings";
import { ENDPOINTS, RULE_KINDS, emptyForm, ruleFromForm, suggestId, type FormErrors, type RuleForm, type RuleKind } from "../../lib/server/rules";
import { InlineError } from "../InlineError";

interface Props {
  initial: RuleForm;
  editing: string | null;
  otherIds: readonly string[];
  onSave: (rule: RuleSpec) => Promise<void>;
  onCancel: () => void;
}

function Field({ label, error, children, hint }: { label: string; error?: string; children: React.ReactNode; hint?: string }) {
  return (
    <div className="field">
      <span className="field-label">{label}</span>
      {children}
      {hint && !error && <span className="hint">{hint}</span>}
      {error && <span className="field-error">{error}</span>}
    </div>
  );
}

export function RuleEditor({ initial, editing, otherIds, onSave, onCancel }: Props) {
  const [form, setForm] = useState<RuleForm>(initial);
  const [errors, setErrors] = useState<FormErrors>({});
  const [failure, setFailure] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof RuleForm>(k: K, v: RuleForm[K]) => setForm((f) => ({ ...f, [k]: v }));

  function changeKind(kind: RuleKind) {
    const keepId = editing !== null || (form.id !== "" && form.id !== suggestId(form.kind, otherIds));
    setForm({ ...emptyForm(kind), id: keepId ? form.id : suggestId(kind, otherIds), enabled: form.enabled, endpoints: form.endpoints });
    setErrors({});
  }

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setFailure(null);
    const r = ruleFromForm(form, otherIds);
    if (!r.ok) {
      setErrors(r.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      await onSave(r.rule);
    } catch (err) {
      setFailure(err);
    } finally {
      setBusy(false);
    }
  }

  const input = (k: keyof RuleForm, props: React.InputHTMLAttributes<HTMLInputElement> = {}) => (
    <input
      value={form[k] as string}
      onChange={(e) => set(k, e.target.value as never)}
      data-testid={`rule-${k}`}
      aria-invalid={errors[k] ? true : undefined}
      spellCheck={false}
      {...props}
    />
  );
  const check = (k: "caseInsensitive" | "literal", label: string) => (
    <label className="check">
      <input type="checkbox" checked={form[k]} onChange={(e) => set(k, e.target.checked)} data-testid={`rule-${k}`} />
      {label}
    </label>
  );
  const help = RULE_KINDS.find((k) => k.kind === form.kind)?.help;

  return (
    <form className="rule-editor" onSubmit={submit} data-testid="rule-editor">
      <div className="editor-top">
        <Field label="Kind">
          <select value={form.kind} onChange={(e) => changeKind(e.target.value as RuleKind)} data-testid="rule-kind">
            {RULE_KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.label}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Id" error={errors.id}>
          {input("id", { placeholder: "e.g. be-brief" })}
        </Field>
      </div>
      {help && <p className="hint">{help}</p>}

      {form.kind === "systemPrompt" && (
        <>
          <Field label="Placement">
            <select value={form.mode} onChange={(e) => set("mode", e.target.value as RuleForm["mode"])} data-testid="rule-mode">
              <option value="prepend">Before the client's system prompt</option>
              <option value="append">After the client's system prompt</option>
              <option value="replace">Instead of the client's system prompt</option>
            </select>
          </Field>
          <Field label="Prompt" error={errors.text}>
            <textarea rows={3} value={form.text} onChange={(e) => set("text", e.target.value)} data-testid="rule-text" aria-invalid={errors.text ? true : undefined} />
          </Field>
        </>
      )}
      {(form.kind === "defaultParameter" || form.kind === "overrideParameter") && (
        <div className="editor-pair">
          <Field label="Field" error={errors.name}>
            {input("name", { placeholder: "temperature" })}
          </Field>
          <Field label="Value (JSON)" error={errors.value} hint='0.7 · true · "text" · ["a","b"]'>
            {input("value", { placeholder: "0.7" })}
          </Field>
        </div>
      )}
      {form.kind === "clampParameter" && (
        <div className="editor-triple">
          <Field label="Field" error={errors.name}>
            {input("name", { placeholder: "temperature" })}
          </Field>
          <Field label="Min" error={errors.min}>
            {input("min", { inputMode: "decimal", placeholder: "none" })}
          </Field>
          <Field label="Max" error={errors.max}>
            {input("max", { inputMode: "decimal", placeholder: "none" })}
          </Field>
        </div>
      )}
      {form.kind === "rewriteMessages" && (
        <>
          <div className="editor-pair">
            <Field label="Pattern (regex)" error={errors.pattern}>
              {input("pattern")}
            </Field>
            <Field label="Replacement" hint="$1 refers to a group">
              {input("replacement")}
            </Field>
          </div>
          <div className="editor-pair">
            <Field label="Roles" hint="comma-separated; empty = every role">
              {input("roles", { placeholder: "user, system" })}
            </Field>
            <div className="field checks">{check("caseInsensitive", "Ignore case")}</div>
          </div>
        </>
      )}
      {form.kind === "filterResponse" && (
        <>
          <div className="editor-pair">
            <Field label="Pattern" error={errors.pattern}>
              {input("pattern")}
            </Field>
            <Field label="Action">
              <select value={form.filterAction} onChange={(e) => set("filterAction", e.target.value as RuleForm["filterAction"])} data-testid="rule-filterAction">
                <option value="redact">Redact each match</option>
                <option value="block">Block: end the answer at the match</option>
              </select>
            </Field>
          </div>
          <div className="editor-pair">
            <Field label="Replacement" hint={form.filterAction === "redact" ? "default [REDACTED]" : "default [BLOCKED]"}>
              {input("replacement")}
            </Field>
            <Field label="Longest match (bytes)" error={errors.maxMatchLen} hint="only for unbounded patterns like a+">
              {input("maxMatchLen", { inputMode: "numeric", placeholder: "auto" })}
            </Field>
          </div>
          <div className="field checks">
            {check("literal", "Literal text (not a regex)")}
            {check("caseInsensitive", "Ignore case")}
          </div>
        </>
      )}
      {form.kind === "stopSequences" && (
        <Field label="Sequences" error={errors.sequences} hint="one per line; \n is a newline">
          <textarea rows={3} value={form.sequences} onChange={(e) => set("sequences", e.target.value)} data-testid="rule-sequences" spellCheck={false} />
        </Field>
      )}

      <div className="field">
        <span className="field-label">Endpoints</span>
        <div className="checks">
          {ENDPOINTS.map((ep) => (
            <label key={ep.value} className="check">
              <input
                type="checkbox"
                checked={form.endpoints.includes(ep.value)}
                onChange={(e) =>
                  set("endpoints", e.target.checked ? [...form.endpoints, ep.value] : form.endpoints.filter((x) => x !== ep.value))
                }
              />
              <code>{ep.label}</code>
            </label>
          ))}
          <span className="hint">{form.endpoints.length === 0 ? "none checked = all three" : ""}</span>
        </div>
      </div>
      <InlineError error={failure} testId="rule-error" />
      <div className="actions">
        <button type="button" className="ghost" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy} data-testid="rule-save">
          {editing ? "Save rule" : "Add rule"}
        </button>
      </div>
    </form>
  );
}
