/**
 * Proxy rules in the Server screen's form: the form state for every rule kind, its validation
 * (what can be checked without the backend: empty fields, numbers like "abc", JSON values,
 * duplicate ids) and the one-line summary the rule list shows. Regexes and value types are
 * checked by the backend (the proxy crate), whose message names the rule and the field.
 */
import type { FilterAction, InjectMode, RuleActionSpec_Serialize as RuleActionSpec, RuleEndpoint, RuleSpec_Serialize as RuleSpec } from "../../bindings";

export type RuleKind = RuleActionSpec["kind"];

/** The kinds, in the order the picker lists them. */
export const RULE_KINDS: readonly { kind: RuleKind; label: string; help: string }[] = [
  { kind: "systemPrompt", label: "System prompt", help: "Inject a system prompt before, after or instead of the client's." },
  { kind: "defaultParameter", label: "Default parameter", help: "Set a request field when the client did not send it." },
  { kind: "overrideParameter", label: "Override parameter", help: "Set a request field, replacing what the client sent." },
  { kind: "clampParameter", label: "Clamp parameter", help: "Keep a numeric request field inside [min, max]." },
  { kind: "rewriteMessages", label: "Rewrite messages", help: "Regex replace in message contents (chat) or the prompt." },
  { kind: "filterResponse", label: "Response filter", help: "Redact or block answer text, streamed answers included." },
  { kind: "stopSequences", label: "Stop sequences", help: "Add stop sequences to every request." },
];

export const ENDPOINTS: readonly { value: RuleEndpoint; label: string }[] = [
  { value: "chatCompletions", label: "/v1/chat/completions" },
  { value: "completions", label: "/v1/completions" },
  { value: "llamaCompletion", label: "/completion" },
];

/** Every field any kind uses, as the inputs hold them (text). */
export interface RuleForm {
  id: string;
  enabled: boolean;
  endpoints: RuleEndpoint[];
  kind: RuleKind;
  mode: InjectMode;
  text: string;
  name: string;
  value: string;
  min: string;
  max: string;
  pattern: string;
  replacement: string;
  roles: string;
  caseInsensitive: boolean;
  filterAction: FilterAction;
  literal: boolean;
  maxMatchLen: string;
  sequences: string;
}

export type FormErrors = Partial<Record<keyof RuleForm, string>>;

export function emptyForm(kind: RuleKind = "systemPrompt"): RuleForm {
  return {
    id: "",
    enabled: true,
    endpoints: [],
    kind,
    mode: "prepend",
    text: "",
    name: "",
    value: "",
    min: "",
    max: "",
    pattern: "",
    replacement: "",
    roles: "",
    caseInsensitive: false,
    filterAction: "redact",
    literal: false,
    maxMatchLen: "",
    sequences: "",
  };
}

/** `\n`, `\t` and `\\` typed in a stop-sequence line become the characters. */
export function unescapeSequence(s: string): string {
  return s.replace(/\\(n|t|\\)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\"));
}

/** The inverse of {@link unescapeSequence}. */
export function escapeSequence(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t");
}

/** The form for an existing rule. */
export function formFromRule(rule: RuleSpec): RuleForm {
  const f: RuleForm = { ...emptyForm(rule.action.kind), id: rule.id, enabled: rule.enabled, endpoints: [...rule.endpoints] };
  const a = rule.action;
  switch (a.kind) {
    case "systemPrompt":
      return { ...f, mode: a.mode, text: a.text };
    case "defaultParameter":
    case "overrideParameter":
      return { ...f, name: a.name, value: a.value };
    case "clampParameter":
      return { ...f, name: a.name, min: a.min == null ? "" : String(a.min), max: a.max == null ? "" : String(a.max) };
    case "rewriteMessages":
      return { ...f, pattern: a.pattern, replacement: a.replacement, roles: a.roles.join(", "), caseInsensitive: a.caseInsensitive };
    case "filterResponse":
      return {
        ...f,
        pattern: a.pattern,
        filterAction: a.action,
        replacement: a.replacement ?? "",
        literal: a.literal,
        caseInsensitive: a.caseInsensitive,
        maxMatchLen: a.maxMatchLen == null ? "" : String(a.maxMatchLen),
      };
    case "stopSequences":
      return { ...f, sequences: a.sequences.map(escapeSequence).join("\n") };
  }
}

/** A decimal number typed by a person; `null` when empty, `NaN` when not a number. */
function parseNumber(s: string): number | null {
  const t = s.trim();
  if (t === "") return null;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number.NaN;
  return Number(t);
}

/**
 * The rule the form describes, or the errors per field. `otherIds` are the ids of the other
 * rules (the one being edited excluded).
 */
export function ruleFromForm(
  form: RuleForm,
  otherIds: readonly string[],
): { ok: true; rule: RuleSpec } | { ok: false; errors: FormErrors } {
  const errors: FormErrors = {};
  const id = form.id.trim();
  if (id === "") errors.id = "Give the rule an id (it names the rule in the request log).";
  else if (/\s/.test(id)) errors.id = "No spaces in an id.";
  else if (otherIds.includes(id)) errors.id = `Another rule already has the id "${id}".`;

  let action: RuleActionSpec | null = null;
  const name = form.name.trim();
  const needName = () => {
    if (name === "") errors.name = "Give the request field, e.g. temperature.";
    else if (/\s/.test(name)) errors.name = "A field name has no spaces.";
  };
  switch (form.kind) {
    case "systemPrompt":
      if (form.text.trim() === "") errors.text = "Write the prompt to inject.";
      action = { kind: "systemPrompt", mode: form.mode, text: form.text };
      break;
    case "defaultParameter":
    case "overrideParameter": {
      needName();
      const v = form.value.trim();
      if (v === "") errors.value = "Give a JSON value: 0.7, true, \"text\" or [\"a\", \"b\"].";
      else {
        try {
          JSON.parse(v);
        } catch {
          errors.value = `"${v}" is not JSON; quote text ("${v}"), or write a number, true/false or a list.`;
        }
      }
      action = { kind: form.kind, name, value: v };
      break;
    }
    case "clampParameter": {
      needName();
      const min = parseNumber(form.min);
      const max = parseNumber(form.max);
      if (min !== null && Number.isNaN(min)) errors.min = `"${form.min.trim()}" is not a number.`;
      if (max !== null && Number.isNaN(max)) errors.max = `"${form.max.trim()}" is not a number.`;
      if (min === null && max === null) errors.min = "Give a minimum, a maximum or both.";
      if (min !== null && max !== null && !Number.isNaN(min) && !Number.isNaN(max) && min > max)
        errors.max = `The maximum ${max} is below the minimum ${min}.`;
      action = { kind: "clampParameter", name, min, max };
      break;
    }
    case "rewriteMessages":
      if (form.pattern === "") errors.pattern = "Give the regular expression to replace.";
      action = {
        kind: "rewriteMessages",
        pattern: form.pattern,
        replacement: form.replacement,
        roles: form.roles
          .split(",")
          .map((r) => r.trim())
          .filter((r) => r !== ""),
        caseInsensitive: form.caseInsensitive,
      };
      break;
    case "filterResponse": {
      if (form.pattern === "") errors.pattern = "Give the text or regular expression to filter.";
      const n = parseNumber(form.maxMatchLen);
      if (n !== null && (Number.isNaN(n) || !Number.isInteger(n) || n < 1 || n > 65536))
        errors.maxMatchLen = "A whole number of bytes from 1 to 65536, or empty.";
      action = {
        kind: "filterResponse",
        pattern: form.pattern,
        action: form.filterAction,
        replacement: form.replacement === "" ? null : form.replacement,
        literal: form.literal,
        caseInsensitive: form.caseInsensitive,
        maxMatchLen: n === null || Number.isNaN(n) ? null : n,
      };
      break;
    }
    case "stopSequences": {
      const sequences = form.sequences
        .split("\n")
        .filter((l) => l !== "")
        .map(unescapeSequence);
      if (sequences.length === 0) errors.sequences = "One stop sequence per line (\\n for a newline).";
      action = { kind: "stopSequences", sequences };
      break;
    }
  }
  if (Object.keys(errors).length > 0 || action === null) return { ok: false, errors };
  return { ok: true, rule: { id, enabled: form.enabled, endpoints: [...form.endpoints], action } };
}

function clip(s: string, n = 60): string {
  const one = s.replace(/\s+/g, " ").trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/** What a rule does, in one line, for the rule list. */
export function describeRule(rule: RuleSpec): string {
  const a = rule.action;
  switch (a.kind) {
    case "systemPrompt":
      return `${a.mode} system prompt "${clip(a.text)}"`;
    case "defaultParameter":
      return `${a.name} = ${clip(a.value, 30)} if absent`;
    case "overrideParameter":
      return `${a.name} := ${clip(a.value, 30)}`;
    case "clampParameter":
      return `${a.min ?? "−∞"} ≤ ${a.name} ≤ ${a.max ?? "+∞"}`;
    case "rewriteMessages":
      return `/${clip(a.pattern, 30)}/ → "${clip(a.replacement, 20)}"${a.roles.length ? ` in ${a.roles.join(", ")}` : ""}`;
    case "filterResponse":
      return `${a.action} ${a.literal ? `"${clip(a.pattern, 30)}"` : `/${clip(a.pattern, 30)}/`}${
        a.replacement != null ? ` → "${clip(a.replacement, 20)}"` : ""
      }`;
    case "stopSequences":
      return `stop at ${a.sequences.map((s) => `"${escapeSequence(s)}"`).join(", ")}`;
  }
}

/** The label of a kind. */
export function kindLabel(kind: RuleKind): string {
  return RULE_KINDS.find((k) => k.kind === kind)?.label ?? kind;
}

/** The next free id like `prompt-1`, `prompt-2` for a new rule. */
export function suggestId(kind: RuleKind, ids: readonly string[]): string {
  const base = {
    systemPrompt: "prompt",
    defaultParameter: "default",
    overrideParameter: "override",
    clampParameter: "clamp",
    rewriteMessages: "rewrite",
    filterResponse: "filter",
    stopSequences: "stop",
  }[kind];
  for (let i = 1; ; i++) {
    const id = `${base}-${i}`;
    if (!ids.includes(id)) return id;
  }
}
