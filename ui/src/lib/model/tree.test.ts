import { describe, expect, it } from "vitest";
import type { TensorRow } from "../ipc";
import { groupTensors, shortName } from "./tree";

function row(index: number, name: string, nbytes = 10): TensorRow {
  const m = /^blk\.(\d+)\./.exec(name);
  return {
    index,
    name,
    ty: "F32",
    typeId: 0,
    knownType: true,
    dims: [nbytes / 4 || 1],
    nElements: nbytes / 4,
    offset: 1000 + index * 100,
    shard: 0,
    nbytes,
    block: m ? Number(m[1]) : null,
  };
}

// File order as llama.cpp writes it, with block 10 before block 2 to check numeric sorting.
const rows = [
  row(0, "token_embd.weight", 100),
  row(1, "blk.10.attn_q.weight"),
  row(2, "blk.2.attn_q.weight"),
  row(3, "blk.2.ffn_up.weight", 30),
  row(4, "blk.10.ffn_up.weight"),
  row(5, "output.weight", 40),
];

describe("groupTensors", () => {
  it("puts global tensors first and blocks in numeric order", () => {
    const groups = groupTensors(rows);
    expect(groups.map((g) => g.key)).toEqual(["global", "blk.2", "blk.10"]);
    expect(groups[0]!.tensors.map((t) => t.name)).toEqual(["token_embd.weight", "output.weight"]);
    expect(groups[1]!.bytes).toBe(40);
    expect(groups[0]!.bytes).toBe(140);
  });

  it("keeps every tensor exactly once", () => {
    const n = groupTensors(rows).reduce((s, g) => s + g.tensors.length, 0);
    expect(n).toBe(rows.length);
  });

  it("filters by every term, case-insensitively, dropping empty groups", () => {
    const groups = groupTensors(rows, "  FFN  up ");
    expect(groups.map((g) => g.key)).toEqual(["blk.2", "blk.10"]);
    expect(groups.flatMap((g) => g.tensors.map((t) => t.name))).toEqual([
      "blk.2.ffn_up.weight",
      "blk.10.ffn_up.weight",
    ]);
    expect(groupTensors(rows, "no-such-tensor")).toEqual([]);
  });

  it("matches on the full name, block prefix included", () => {
    expect(groupTensors(rows, "blk.10").map((g) => g.key)).toEqual(["blk.10"]);
  });
});

describe("shortName", () => {
  it("drops the block prefix only", () => {
    expect(shortName(rows[1]!)).toBe("attn_q.weight");
    expect(shortName(rows[0]!)).toBe("token_embd.weight");
  });
});
