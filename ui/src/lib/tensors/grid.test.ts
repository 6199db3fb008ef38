import { describe, expect, it } from "vitest";
import { contains, extent, firstVisible, flatIndex, grow, MAX_SCROLL_PX, rowCol, scrollFor, visibleWindow } from "./grid";

const cell = { w: 80, h: 22 };

describe("visibleWindow", () => {
  it("renders only the visible cells plus overscan", () => {
    const w = visibleWindow({ top: 220, left: 800 }, { w: 400, h: 220 }, cell, { rows: 1000, cols: 1000 }, 2);
    // First visible row 10, col 10; 10 rows and 5 cols visible (+1 partial), overscan 2.
    expect(w).toEqual({ row0: 8, rows: 2 + 10 + 1 + 2, col0: 8, cols: 2 + 5 + 1 + 2 });
  });

  it("clips at the matrix's edges", () => {
    const w = visibleWindow({ top: 0, left: 0 }, { w: 4000, h: 4000 }, cell, { rows: 3, cols: 7 }, 2);
    expect(w).toEqual({ row0: 0, rows: 3, col0: 0, cols: 7 });
    const end = visibleWindow({ top: 1e9, left: 1e9 }, { w: 400, h: 220 }, cell, { rows: 50, cols: 50 }, 0);
    expect(end.row0 + end.rows).toBe(50);
    expect(end.col0 + end.cols).toBe(50);
  });

  it("is empty for an empty matrix", () => {
    expect(visibleWindow({ top: 0, left: 0 }, { w: 400, h: 220 }, cell, { rows: 0, cols: 5 })).toEqual({ row0: 0, rows: 0, col0: 0, cols: 0 });
  });
});

describe("huge grids", () => {
  it("cap the scroll extent and map scroll linearly onto rows", () => {
    const n = 10_000_000; // 220 M px at 22 px a row
    expect(extent(n, 22)).toBe(MAX_SCROLL_PX);
    const view = 440;
    expect(firstVisible(0, view, n, 22)).toBe(0);
    const visible = Math.ceil(view / 22);
    expect(firstVisible(MAX_SCROLL_PX - view, view, n, 22)).toBe(n - visible); // bottom shows the last rows
    const mid = firstVisible((MAX_SCROLL_PX - view) / 2, view, n, 22);
    expect(Math.abs(mid - (n - visible) / 2)).toBeLessThanOrEqual(1);
  });

  it("scrollFor inverts firstVisible", () => {
    for (const [n, k] of [
      [1000, 0],
      [1000, 537],
      [10_000_000, 0],
      [10_000_000, 4_321_987],
    ] as const) {
      expect(firstVisible(scrollFor(k, 440, n, 22), 440, n, 22)).toBe(k);
    }
  });
});

describe("window helpers", () => {
  it("contains and grow", () => {
    const a = { row0: 10, rows: 10, col0: 5, cols: 5 };
    const g = grow(a, { rows: 4, cols: 2 }, { rows: 100, cols: 8 });
    expect(g).toEqual({ row0: 6, rows: 18, col0: 3, cols: 5 });
    expect(contains(g, a)).toBe(false); // cols clipped at 8 < 10
    expect(contains(grow(a, { rows: 1, cols: 1 }, { rows: 100, cols: 100 }), a)).toBe(true);
  });

  it("flat index is ggml order (row-major over ne0)", () => {
    expect(flatIndex(3, 7, 256)).toBe(3 * 256 + 7);
    expect(rowCol(3 * 256 + 7, 256)).toEqual({ row: 3, col: 7 });
  });
});
