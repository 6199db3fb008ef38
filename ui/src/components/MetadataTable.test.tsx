import { describe, expect, it } from "vitest";
import { metaText } from "./MetadataTable";

describe("metaText", () => {
  it("shows integers exactly, beyond 2^53", () => {
    expect(metaText({ kind: "int", text: "18446744073709551615" })).toBe("18446744073709551615");
  });
  it("previews arrays and counts the rest", () => {
    expect(
      metaText({
        kind: "array",
        elementType: "string",
        len: 262,
        head: [
          { kind: "str", text: "<unk>", lossy: false },
          { kind: "str", text: "<s>", lossy: false },
        ],
      }),
    ).toBe('["<unk>", "<s>", … 260 more]');
    expect(metaText({ kind: "array", elementType: "bool", len: 1, head: [{ kind: "bool", value: true }] })).toBe(
      "[true]",
    );
  });
});
