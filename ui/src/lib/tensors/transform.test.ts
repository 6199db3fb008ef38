import { describe, expect, it } from "vitest";
import { toSelectionArgs, toTransformArgs, type TransformForm } from "./transform";

const base: TransformForm = {
  op: "scale",
  value: "",
  min: "",
  max: "",
  std: "",
  seed: "",
  model: "",
  kind: "all",
  start: "",
  end: "",
  indices: "",
  head: "",
};

describe("toTransformArgs", () => {
  it("converts the fields an operation needs", () => {
    expect(toTransformArgs({ ...base, op: "scale", value: "0.5" })).toEqual({
      ok: { op: "scale", value: 0.5, min: null, max: null, seed: null, std: null, model: null },
    });
    expect(toTransformArgs({ ...base, op: "noise", std: "0.01", seed: "42" })).toMatchObject({ ok: { std: 0.01, seed: 42 } });
    expect(toTransformArgs({ ...base, op: "zero", value: "abc" })).toMatchObject({ ok: { op: "zero", value: null } });
  });

  it("names the field that is wrong", () => {
    expect(toTransformArgs({ ...base, op: "scale", value: "abc" })).toEqual({ error: "factor: “abc” is not a number" });
    expect(toTransformArgs({ ...base, op: "clamp", min: "1" })).toEqual({ error: "max: required" });
    expect(toTransformArgs({ ...base, op: "clamp", min: "2", max: "1" })).toEqual({ error: "clamp: min 2 is above max 1" });
    expect(toTransformArgs({ ...base, op: "noise", std: "-1", seed: "1" })).toEqual({ error: "std: must be ≥ 0" });
    expect(toTransformArgs({ ...base, op: "noise", std: "1", seed: "-1" })).toHaveProperty("error");
    expect(toTransformArgs({ ...base, op: "lerp", value: "0.5" })).toEqual({ error: "other model (.gguf): required" });
  });
});

describe("toSelectionArgs", () => {
  it("converts ranges, lists and heads", () => {
    expect(toSelectionArgs({ ...base, kind: "rows", start: "3", end: "5" })).toEqual({
      ok: { kind: "rows", start: 3, end: 5, indices: null, head: null },
    });
    expect(toSelectionArgs({ ...base, kind: "elements", indices: "1, 5;9  12" })).toMatchObject({ ok: { indices: [1, 5, 9, 12] } });
    expect(toSelectionArgs({ ...base, kind: "head", head: "2" })).toMatchObject({ ok: { head: 2 } });
    expect(toSelectionArgs({ ...base, kind: "all", start: "x" })).toMatchObject({ ok: { kind: "all", start: null } });
  });

  it("refuses reversed ranges and bad numbers", () => {
    expect(toSelectionArgs({ ...base, kind: "columns", start: "5", end: "5" })).toEqual({ error: "to (excluded) 5 must be above from 5" });
    expect(toSelectionArgs({ ...base, kind: "rows", start: "1.5", end: "3" })).toEqual({ error: "from: “1.5” is not a whole number ≥ 0" });
    expect(toSelectionArgs({ ...base, kind: "elements", indices: " , " })).toEqual({ error: "elements: list at least one flat index" });
  });
});
