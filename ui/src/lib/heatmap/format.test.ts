import { describe, expect, it } from "vitest";
import { exactF32, formatValue, parseValue } from "./format";

describe("exactF32", () => {
  it("gives the shortest text that reads back as the same f32", () => {
    for (const x of [0.1, 1 / 3, -2.5e-7, 123456.789, 3.4e38, 1e-45, 0.0078125]) {
      const f = Math.fround(x);
      const s = exactF32(f);
      expect(Math.fround(Number(s))).toBe(f);
      expect(s.replace(/[-.e+]/g, "").replace(/^0+/, "").length).toBeLessThanOrEqual(9);
    }
    expect(exactF32(Math.fround(0.1))).toBe("0.1");
    expect(exactF32(Math.fround(-1.5))).toBe("-1.5");
    expect(exactF32(NaN)).toBe("NaN");
    expect(exactF32(-0)).toBe("-0");
  });
});

describe("formatValue", () => {
  it("is compact and marks non-finite values", () => {
    expect(formatValue(0.012345678)).toBe("0.012346");
    expect(formatValue(-1.5)).toBe("−1.5");
    expect(formatValue(2.5e-5)).toBe("2.500e−5");
    expect(formatValue(NaN)).toBe("NaN");
    expect(formatValue(-Infinity)).toBe("−Inf");
  });
});

describe("parseValue", () => {
  it("accepts numbers, exponents and the non-finite words", () => {
    expect(parseValue(" 0.5 ")).toEqual({ value: 0.5 });
    expect(parseValue("-1e-3")).toEqual({ value: -0.001 });
    expect(parseValue(".25")).toEqual({ value: 0.25 });
    expect(parseValue("-INF")).toEqual({ value: -Infinity });
    expect(Number.isNaN((parseValue("nan") as { value: number }).value)).toBe(true);
  });

  it("refuses text, empty input and values outside f32", () => {
    expect(parseValue("abc")).toEqual({ error: "“abc” is not a number" });
    expect(parseValue("1.2.3")).toHaveProperty("error");
    expect(parseValue("0x10")).toHaveProperty("error");
    expect(parseValue("")).toEqual({ error: "type a value" });
    expect(parseValue("1e39")).toHaveProperty("error");
  });
});
