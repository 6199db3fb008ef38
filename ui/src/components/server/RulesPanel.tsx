/** The rule list: order, enable/disable, hit counters, add/edit/delete. */
import { useState } from "react";
import type { RuleSpec_Serialize as RuleSpec, ServerView_Serialize as ServerView } from "../../bindings";
import { formatCount } from "../../lib/format";
import { commands, unwrap } from "../../lib/ipc";
import { describeRule, emptyForm, formFromRule, kindLabel, suggestId } from "../../lib/server/rules";
import { InlineError } from "../InlineError";
import { RuleEditor } from "./RuleEditor";

type Editing = { id: string | null; rule: RuleSpec | null } | null;

export function RulesPanel({ view, onView }: { view: ServerView; onView: (v: ServerView) => void }) {
  const [editing, setEditing] = useState<Editing>(null);
  const [error, setError] = useState<unknown>(null);
  const ids = view.rules.map((r) => r.rule.id);

  async function act(p: Promise<Parameters<typeof unwrap<ServerView>>[0]>) {
    setError(null);
    try {
      onView(unwrap(await p));
    } catch (e) {
      setError(e);
    }
  }

  async function save(rule: RuleSpec) {
    onView(unwrap(await commands.saveRule(rule, editing?.id ?? null)));
    setEditing(null);
  }

  return (
    <section className="card rules-panel">
      <header className="card-head">
        <h3>Rules</h3>
        <span className="muted">applied in order, top first</span>
        <button className="primary small" onClick={() => setEditing({ id: null, rule: null })} disabled={editing !== null} data-testid="rule-add">
          + Add rule
        </button>
      </header>
      {editing && (
        <RuleEditor
          key={editing.id ?? "new"}
          initial={editing.rule ? formFromRule(editing.rule) : { ...emptyForm("systemPrompt"), id: suggestId("systemPrompt", ids) }}
          editing={editing.id}
          otherIds={ids.filter((i) => i !== editing.id)}
          onSave={save}
          onCancel={() => setEditing(null)}
        />
      )}
      {view.rules.length === 0 ? (
        <p className="empty">No rules: requests pass through unchanged. Add one to inject a prompt, set parameters or filter answers.</p>
      ) : (
        <table className="table rules-table">
          <thead>
            <tr>
              <th>On</th>
              <th>Rule</th>
              <th>What it does</th>
              <th className="num">Hits</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {view.rules.map(({ rule, hits }, i) => (
              <tr key={rule.id} data-testid={`rule-row-${rule.id}`} className={rule.enabled ? "" : "disabled"}>
                <td>
                  <input
                    type="checkbox"
                    checked={rule.enabled}
                    aria-label={`Enable ${rule.id}`}
                    onChange={(e) => void act(commands.setRuleEnabled(rule.id, e.target.checked))}
                    data-testid={`rule-toggle-${rule.id}`}
                  />
                </td>
                <td>
                  <div className="rule-id">{rule.id}</div>
                  <span className="badge">{kindLabel(rule.action.kind)}</span>
                </td>
                <td className="rule-desc" title={describeRule(rule)}>
                  {describeRule(rule)}
                  {rule.endpoints.length > 0 && <div className="muted small">only {rule.endpoints.join(", ")}</div>}
                </td>
                <td className="num" data-testid={`rule-hits-${rule.id}`}>
                  {formatCount(hits)}
                </td>
                <td className="row-actions">
                  <button className="icon" title="Move up" disabled={i === 0} onClick={() => void act(commands.moveRule(rule.id, true))}>
                    ↑
                  </button>
                  <button className="icon" title="Move down" disabled={i === view.rules.length - 1} onClick={() => void act(commands.moveRule(rule.id, false))}>
                    ↓
                  </button>
                  <button className="ghost small" onClick={() => setEditing({ id: rule.id, rule })} disabled={editing !== null}>
                    Edit
                  </button>
                  <button className="ghost small danger-text" onClick={() => void act(commands.deleteRule(rule.id))} data-testid={`rule-delete-${rule.id}`}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <InlineError error={error} testId="rules-error" />
    </section>
  );
}
