import { describe, expect, it } from "vitest";
import type { RuleSpec_Serialize as RuleSpec } from "../../bindings";
import {
  RULE_KINDS,
  describeRule,
  emptyForm,
  escapeSequence,
  formFromRule,
  ruleFromForm,
  suggestId,
  unescapeSequence,
} from "./rules";

describe("ruleFromForm", () => {
  it("builds a system prompt rule with the endpoints chosen", () => {
    const r = ruleFromForm(
      { ...emptyForm("systemPrompt"), id: " greet ", text: "Be brief.", mode: "append", endpoints: ["chatCompletions"] },
      [],
    );
    expect(r).toEqual({
      ok: true,
      rule: {
        id: "greet",
        enabled: true,
        endpoints: ["chatCompletions"],
        action: { kind: "systemPrompt", mode: "append", text: "Be brief." },
      },
    });
  });

  it("names each bad field", () => {
    const r = ruleFromForm({ ...emptyForm("clampParameter"), id: "a b", name: "", min: "abc", max: "" }, []);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.id).toMatch(/spaces/);
    expect(r.errors.name).toMatch(/field/);
    expect(r.errors.min).toBe('"abc" is not a number.');
    expect(r.errors.max).toBeUndefined();
  });

  it("refuses a duplicate id but not the rule's own", () => {
    const form = { ...emptyForm("systemPrompt"), id: "p", text: "x" };
    const dup = ruleFromForm(form, ["p", "q"]);
    expect(dup.ok).toBe(false);
    if (!dup.ok) expect(dup.errors.id).toMatch(/already/);
    expect(ruleFromForm(form, ["q"]).ok).toBe(true);
  });

  it("checks parameter values are JSON and keeps the text", () => {
    const bad = ruleFromForm({ ...emptyForm("defaultParameter"), id: "t", name: "temperature", value: "warm" }, []);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.value).toMatch(/not JSON/);
    const good = ruleFromForm({ ...emptyForm("overrideParameter"), id: "s", name: "samplers", value: ' ["top_k"] ' }, []);
    expect(good.ok && good.rule.action).toEqual({ kind: "overrideParameter", name: "samplers", value: '["top_k"]' });
  });

  it("clamp: needs a bound, min ≤ max, accepts exponents", () => {
    const none = ruleFromForm({ ...emptyForm("clampParameter"), id: "c", name: "top_p" }, []);
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.errors.min).toMatch(/minimum, a maximum/);
    const inverted = ruleFromForm({ ...emptyForm("clampParameter"), id: "c", name: "top_p", min: "0.9", max: "0.1" }, []);
    expect(inverted.ok).toBe(false);
    if (!inverted.ok) expect(inverted.errors.max).toMatch(/below the minimum/);
    const ok = ruleFromForm({ ...emptyForm("clampParameter"), id: "c", name: "top_p", max: "1e0" }, []);
    expect(ok.ok && ok.rule.action).toEqual({ kind: "clampParameter", name: "top_p", min: null, max: 1 });
  });

  it("filter: max match length is a whole number in range, replacement optional", () => {
    const base = { ...emptyForm("filterResponse"), id: "f", pattern: "secret" };
    for (const v of ["0", "1.5", "x", "70000"]) {
      const r = ruleFromForm({ ...base, maxMatchLen: v }, []);
      expect(r.ok, v).toBe(false);
    }
    const r = ruleFromForm({ ...base, filterAction: "block", literal: true, maxMatchLen: "64" }, []);
    expect(r.ok && r.rule.action).toEqual({
      kind: "filterResponse",
      pattern: "secret",
      action: "block",
      replacement: null,
      literal: true,
      caseInsensitive: false,
      maxMatchLen: 64,
    });
  });

  it("stop sequences: one per line with escapes", () => {
    const r = ruleFromForm({ ...emptyForm("stopSequences"), id: "s", sequences: "\\n\\n\nUser:\n" }, []);
    expect(r.ok && r.rule.action).toEqual({ kind: "stopSequences", sequences: ["\n\n", "User:"] });
    expect(ruleFromForm({ ...emptyForm("stopSequences"), id: "s", sequences: "\n\n" }, []).ok).toBe(false);
  });

  it("rewrite: roles from a comma list", () => {
    const r = ruleFromForm({ ...emptyForm("rewriteMessages"), id: "r", pattern: "foo", roles: "user, ,system" }, []);
    expect(r.ok && r.rule.action).toMatchObject({ roles: ["user", "system"] });
  });
});

describe("formFromRule", () => {
  const rules: RuleSpec[] = [
    { id: "p", enabled: false, endpoints: ["completions"], action: { kind: "systemPrompt", mode: "replace", text: "hi" } },
    { id: "d", enabled: true, endpoints: [], action: { kind: "defaultParameter", name: "seed", value: "42" } },
    { id: "c", enabled: true, endpoints: [], action: { kind: "clampParameter", name: "top_k", min: 1, max: null } },
    {
      id: "r",
      enabled: true,
      endpoints: [],
      action: { kind: "rewriteMessages", pattern: "a(b)", replacement: "$1", roles: ["user"], caseInsensitive: true },
    },
    {
      id: "f",
      enabled: true,
      endpoints: [],
      action: { kind: "filterResponse", pattern: "x+", action: "redact", replacement: "[x]", literal: false, caseInsensitive: false, maxMatchLen: 8 },
    },
    { id: "s", enabled: true, endpoints: [], action: { kind: "stopSequences", sequences: ["\n\n", "a\\b"] } },
  ];
  it.each(rules.map((r) => [r.id, r] as const))("round-trips rule %s through the form", (_, rule) => {
    const back = ruleFromForm(formFromRule(rule), []);
    expect(back).toEqual({ ok: true, rule });
  });
});

describe("describeRule and helpers", () => {
  it("summarizes each kind in one line", () => {
    expect(
      describeRule({ id: "c", enabled: true, endpoints: [], action: { kind: "clampParameter", name: "temperature", min: 0, max: 1.5 } }),
    ).toBe("0 ≤ temperature ≤ 1.5");
    expect(
      describeRule({ id: "s", enabled: true, endpoints: [], action: { kind: "stopSequences", sequences: ["\n", "END"] } }),
    ).toBe('stop at "\\n", "END"');
    const long = "x".repeat(100);
    expect(describeRule({ id: "p", enabled: true, endpoints: [], action: { kind: "systemPrompt", mode: "prepend", text: long } }).length).toBeLessThan(90);
  });

  it("escapes are inverse", () => {
    for (const s of ["\n", "a\\nb", "\t\\", "plain"]) expect(unescapeSequence(escapeSequence(s))).toBe(s);
  });

  it("suggests the first free id and lists every kind once", () => {
    expect(suggestId("systemPrompt", ["prompt-1", "prompt-3"])).toBe("prompt-2");
    expect(new Set(RULE_KINDS.map((k) => k.kind)).size).toBe(7);
  });
});
