import { describe, expect, it } from "vitest";
import { arrayProblem, keyProblem, scalarProblem, valueProblem } from "./metaValue";

// Expected verdicts follow the GGUF type widths (gguf-py's GGUFValueType) and agree with the
// Rust parser's unit tests in crates/core/src/metadata.rs.
describe("scalarProblem", () => {
  it("range-checks every integer width exactly, 64-bit included", () => {
    expect(scalarProblem("UINT8", "255")).toBeNull();
    expect(scalarProblem("UINT8", "256")).toMatch(/out of range 0..=255/);
    expect(scalarProblem("INT8", "-128")).toBeNull();
    expect(scalarProblem("INT8", "-129")).toMatch(/out of range/);
    expect(scalarProblem("UINT32", "-1")).toMatch(/out of range/);
    expect(scalarProblem("UINT64", "18446744073709551615")).toBeNull();
    expect(scalarProblem("UINT64", "18446744073709551616")).toMatch(/out of range/);
    expect(scalarProblem("INT64", "-9223372036854775808")).toBeNull();
    expect(scalarProblem("INT64", "9223372036854775808")).toMatch(/out of range/);
    expect(scalarProblem("UINT32", "abc")).toBe("'abc' is not a whole number");
    expect(scalarProblem("UINT32", "1.5")).toMatch(/not a whole number/);
    expect(scalarProblem("UINT32", " ")).toBe("no value given");
  });

  it("checks floats against their width and accepts nan/inf spelled out", () => {
    expect(scalarProblem("FLOAT32", "1e-5")).toBeNull();
    expect(scalarProblem("FLOAT32", ".5")).toBeNull();
    expect(scalarProblem("FLOAT32", "nan")).toBeNull();
    expect(scalarProblem("FLOAT32", "-inf")).toBeNull();
    expect(scalarProblem("FLOAT32", "1e39")).toMatch(/too large/);
    expect(scalarProblem("FLOAT64", "1e39")).toBeNull();
    expect(scalarProblem("FLOAT64", "1e309")).toMatch(/too large/);
    expect(scalarProblem("FLOAT32", "one")).toMatch(/not a number/);
    expect(scalarProblem("FLOAT32", "0x10")).toMatch(/not a number/);
  });

  it("takes bools as true/false only and strings as anything", () => {
    expect(scalarProblem("BOOL", "true")).toBeNull();
    expect(scalarProblem("BOOL", "yes")).toMatch(/not true or false/);
    expect(scalarProblem("STRING", "")).toBeNull();
    expect(scalarProblem("STRING", "{% if %}\n")).toBeNull();
  });
});

describe("arrayProblem", () => {
  it("wants a JSON list of the element type", () => {
    expect(arrayProblem("INT32", "[1, -2, 3]")).toBeNull();
    expect(arrayProblem("UINT8", "[1, 300]")).toMatch(/^element 1: .*out of range/);
    expect(arrayProblem("UINT8", "1, 2")).toMatch(/not a JSON list/);
    expect(arrayProblem("UINT8", "{}")).toMatch(/not a JSON list/);
    expect(arrayProblem("STRING", '["a", 1]')).toMatch(/element 1 is 1, not a string/);
    expect(arrayProblem("BOOL", '["true"]')).toMatch(/not a BOOL/);
    expect(arrayProblem("BOOL", "[true, false]")).toBeNull();
    expect(arrayProblem("UINT64", '["18446744073709551615", 7]')).toBeNull();
    expect(arrayProblem("UINT64", "[18446744073709551616]")).toMatch(/out of range/);
    expect(arrayProblem("FLOAT32", '[0.5, "inf"]')).toBeNull();
  });
});

describe("valueProblem and keyProblem", () => {
  it("name the key and the type like the backend", () => {
    expect(valueProblem("llama.block_count", "UINT32", null, "abc")).toBe(
      "llama.block_count (UINT32): 'abc' is not a whole number",
    );
    expect(valueProblem("tok.types", "ARRAY", "UINT8", "[1, 300]")).toMatch(/^tok\.types \(ARRAY\[UINT8\]\): element 1/);
    expect(valueProblem("k", "UINT8", null, "3")).toBeNull();
  });

  it("accept printable ASCII keys only", () => {
    expect(keyProblem("tokenizer.chat_template")).toBeNull();
    expect(keyProblem("")).toBe("the key is empty");
    expect(keyProblem("a b")).toMatch(/contains " "/);
    expect(keyProblem("é")).toMatch(/printable ASCII/);
    expect(keyProblem("k".repeat(1025))).toMatch(/at most 1024/);
  });
});
