import { describe, expect, it } from "vitest";
import type { RunToken } from "../../bindings";
import {
  appendToken,
  checkEvalTokens,
  checkRunInput,
  EMPTY_STREAMS,
  firstDivergence,
  formatDelta,
  formatKl,
  formatPpl,
  formatProb,
  initialRunState,
  keepRunState,
  klHeat,
  restoreRunState,
  showToken,
} from "./run";

const tok = (job: number, side: "edited" | "original", index: number, token: number, text: string): RunToken => ({
  job,
  side,
  index,
  token,
  text,
  prob: 0.5,
});

describe("run streams", () => {
  it("gathers tokens per side and drops another job's", () => {
    let s = { ...EMPTY_STREAMS, job: 7 };
    s = appendToken(s, tok(7, "edited", 0, 1, " Paris"));
    s = appendToken(s, tok(7, "original", 0, 1, " Paris"));
    s = appendToken(s, tok(6, "edited", 1, 9, " late"));
    s = appendToken(s, tok(7, "edited", 0, 1, " Paris"));
    s = appendToken(s, tok(7, "edited", 1, 2, "."));
    expect(s.edited.map((p) => p.text).join("")).toBe(" Paris.");
    expect(s.original.map((p) => p.text)).toEqual([" Paris"]);
  });

  it("finds where the answers part", () => {
    const p = (ids: number[]) => ids.map((token) => ({ token, text: "", prob: 1 }));
    expect(firstDivergence(p([1, 2, 3]), p([1, 2, 3]))).toBe(-1);
    expect(firstDivergence(p([1, 5, 3]), p([1, 2, 3]))).toBe(1);
    expect(firstDivergence(p([1, 2]), p([1, 2, 3]))).toBe(2);
    expect(firstDivergence(p([]), p([]))).toBe(-1);
  });
});

describe("run formatting", () => {
  it("formats probabilities, deltas and KL", () => {
    expect(formatProb(0.9312)).toBe("93.1 %");
    expect(formatProb(0.0042)).toBe("0.42 %");
    expect(formatProb(1e-7)).toBe("<0.01 %");
    expect(formatProb(0)).toBe("0 %");
    expect(formatProb(null)).toBe("—");
    expect(formatDelta(0.5, 0.377)).toBe("+12.3 pp");
    expect(formatDelta(0.1, 0.14)).toBe("−4.00 pp");
    expect(formatDelta(0.2, 0.2)).toBe("±0");
    expect(formatKl(0)).toBe("0");
    expect(formatKl(2.31749)).toBe("2.317");
    expect(formatKl(0.000123456)).toBe("0.0001235");
    expect(formatKl(Number.NaN)).toBe("—");
    expect(formatPpl(8.123)).toBe("8.12");
    expect(formatPpl(null, 812.34)).toBe("e^812.3");
    expect(formatPpl(null)).toBe("—");
  });

  it("colours KL on a log scale, 0 below 1e-4 and 1 at the maximum", () => {
    expect(klHeat(0, 1)).toBe(0);
    expect(klHeat(1e-5, 1)).toBe(0);
    expect(klHeat(1, 1)).toBe(1);
    expect(klHeat(2, 1)).toBe(1);
    const mid = klHeat(1e-2, 1);
    expect(mid).toBeGreaterThan(0.4);
    expect(mid).toBeLessThan(0.6);
  });

  it("makes whitespace tokens visible", () => {
    expect(showToken(" ")).toBe("␣");
    expect(showToken("a\nb")).toBe("a⏎b");
    expect(showToken(" Paris")).toBe(" Paris");
  });
});

describe("run input", () => {
  it("checks the prompt and max tokens, naming the field", () => {
    expect(checkRunInput("hi", "32")).toEqual({ maxTokens: 32 });
    expect(checkRunInput("  ", "32")).toEqual({ error: "Type a prompt first." });
    expect(checkRunInput("hi", "0")).toHaveProperty("error");
    expect(checkRunInput("hi", "2000")).toHaveProperty("error");
    expect((checkRunInput("hi", "x") as { error: string }).error).toContain('Max tokens "x"');
    expect(checkEvalTokens("")).toEqual({ maxTokens: 0 });
    expect(checkEvalTokens("128")).toEqual({ maxTokens: 128 });
    expect(checkEvalTokens("-1")).toHaveProperty("error");
  });

  it("keeps the screen's state across visits, per model", () => {
    const s = { ...initialRunState("/m/a.gguf"), prompt: "Once upon", maxTokens: "8" };
    keepRunState(s);
    expect(restoreRunState("/m/a.gguf")).toBe(s);
    const other = restoreRunState("/m/b.gguf");
    expect(other.prompt).toBe("Once upon");
    expect(other.result).toBeNull();
    expect(other.model).toBe("/m/b.gguf");
  });
});
