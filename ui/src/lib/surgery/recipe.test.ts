import { describe, expect, it } from "vitest";
import { ablateOp, addOp, convertOp, describeOp, FieldError, mergeOp, moveUp, parseParam, parseRecipeText, parseTypeRules, recipeJson } from "./recipe";

const merge = { method: "linear" as const, models: "/m/other.gguf", t: "0.5", weights: "", density: "", lambda: "", seed: "" };

describe("form fields become operations", () => {
  it("reads type rules as --type does, upper-casing the type", () => {
    expect(parseTypeRules("Types", "blk.*.ffn_down.weight=q8_0,\n output.weight = Q6_K")).toEqual([
      { tensor: "blk.*.ffn_down.weight", type: "Q8_0" },
      { tensor: "output.weight", type: "Q6_K" },
    ]);
    expect(() => parseTypeRules("Types", "blk.0")).toThrow(/Types: "blk.0" is not GLOB=TYPE/);
    expect(() => parseTypeRules("Types", " ")).toThrow(FieldError);
  });
  it("reads a number or a gradient", () => {
    expect(parseParam("t", "0.25")).toBe(0.25);
    expect(parseParam("t", "[0, 0.5, 1]")).toEqual([0, 0.5, 1]);
    expect(() => parseParam("t", "0,,1")).toThrow(/empty item/);
    expect(() => parseParam("t", "half")).toThrow(/t: "half" is not a number/);
  });
  it("builds merges with per-model weights and refuses what does not fit", () => {
    expect(mergeOp(merge)).toEqual({ op: "merge", method: "linear", models: [{ path: "/m/other.gguf" }], t: 0.5 });
    const ties = mergeOp({ ...merge, method: "ties", models: "/a.gguf\n/b.gguf", t: "", weights: "1; [0, 1]", density: "0.5", lambda: "0.8", seed: "7" });
    expect(ties).toEqual({
      op: "merge",
      method: "ties",
      models: [
        { path: "/a.gguf", weight: 1, density: 0.5 },
        { path: "/b.gguf", weight: [0, 1], density: 0.5 },
      ],
      lambda: 0.8,
      seed: 7,
    });
    expect(() => mergeOp({ ...merge, method: "slerp", models: "/a\n/b" })).toThrow(/exactly one other/);
    expect(() => mergeOp({ ...merge, weights: "1;2" })).toThrow(/2 weights for 1 models/);
    expect(() => mergeOp({ ...merge, t: "" })).toThrow(/interpolation factor/);
    expect(() => mergeOp({ ...merge, method: "dare", t: "", seed: "-1" })).toThrow(/whole number/);
  });
  it("picks the source kind of an added tensor from the file", () => {
    expect(addOp("x.weight", "/d/v.npy", "", "")).toEqual({ op: "add", name: "x.weight", source: { kind: "npy", path: "/d/v.npy" } });
    expect(addOp("x", "/d/m.safetensors", "w", "f16").source).toEqual({ kind: "safetensors", path: "/d/m.safetensors", tensor: "w" });
    expect(() => addOp("x", "/d/m.gguf", "", "")).toThrow(/Tensor in the file: is empty/);
  });
});

describe("recipes", () => {
  it("describes each operation in one line", () => {
    expect(describeOp(convertOp("*=Q8_0"))).toBe("convert * → Q8_0");
    expect(describeOp(mergeOp(merge))).toBe("merge (linear) with other.gguf, t=0.5");
    expect(describeOp(ablateOp("/r/refusal.npy", "", "3-5", true, ""))).toBe("ablate refusal.npy from layers 3-5 and the embeddings");
    expect(describeOp({ op: "layers", slices: [{ layers: "0-3" }, { model: "/x/b.gguf", layers: "2" }] })).toBe("layers 0-3 + b.gguf:2");
  });
  it("round-trips through text and reads a configuration's surgery section", () => {
    const ops = [convertOp("*=Q8_0"), { op: "remove" as const, tensor: "output.weight" }];
    expect(parseRecipeText(recipeJson(ops))).toEqual(ops);
    expect(parseRecipeText(JSON.stringify({ version: 3, surgery: ops }))).toEqual(ops);
    expect(() => parseRecipeText("{")).toThrow(/Recipe: not JSON/);
    expect(() => parseRecipeText('[{"tensor":"x"}]')).toThrow(/Recipe\[0\]/);
    expect(moveUp(ops, 1)).toEqual([ops[1], ops[0]]);
    expect(moveUp(ops, 0)).toBe(ops);
  });
});
