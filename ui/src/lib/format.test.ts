import { describe, expect, it } from "vitest";
import { bitsPerWeight, formatBytes, formatCount, formatDims, formatOffset, typeFamily } from "./format";

describe("formatBytes", () => {
  it("keeps small sizes exact and scales by 1024", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1.00 KiB");
    expect(formatBytes(75888)).toBe("74.1 KiB");
    expect(formatBytes(3 * 1024 * 1024 + 200 * 1024)).toBe("3.20 MiB");
    expect(formatBytes(2 ** 40 * 512)).toBe("512 TiB");
  });
  it("refuses nonsense instead of printing NaN", () => {
    expect(formatBytes(-1)).toBe("—");
    expect(formatBytes(Number.NaN)).toBe("—");
  });
});

describe("numbers", () => {
  it("groups thousands without the locale", () => {
    expect(formatCount(999)).toBe("999");
    expect(formatCount(1000)).toBe("1,000");
    expect(formatCount(9007199254740991)).toBe("9,007,199,254,740,991");
  });
  it("prints offsets like a hex editor", () => {
    expect(formatOffset(0)).toBe("0x00000000");
    expect(formatOffset(0x1a2b0)).toBe("0x0001a2b0");
    expect(formatOffset(2 ** 40)).toBe("0x10000000000");
  });
  it("prints dims in ggml order", () => {
    expect(formatDims([256, 279])).toBe("256 × 279");
    expect(formatDims([4096])).toBe("4,096");
    expect(formatDims([])).toBe("scalar");
  });
  it("computes bits per weight", () => {
    // Q4_K: 144 bytes per 256 weights.
    expect(bitsPerWeight(144, 256)).toBe(4.5);
    expect(bitsPerWeight(0, 0)).toBe(0);
  });
});

describe("typeFamily", () => {
  it("sorts ggml type names into families", () => {
    expect(typeFamily("F32")).toBe("float");
    expect(typeFamily("BF16")).toBe("float");
    expect(typeFamily("Q4_0")).toBe("legacy");
    expect(typeFamily("Q5_1")).toBe("legacy");
    expect(typeFamily("Q6_K")).toBe("kquant");
    expect(typeFamily("IQ2_XXS")).toBe("iquant");
    expect(typeFamily("UNKNOWN(99)")).toBe("unknown");
    expect(typeFamily("TQ1_0")).toBe("other");
  });
});
