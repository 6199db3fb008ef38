import { describe, expect, it } from "vitest";
import { centerOn, contains, FOCUS_SPAN, parseRange, visibleCols, visibleRows, type View } from "./sync";

const shape = { rows: 768, cols: 256 };
const fit: View = { col0: 0, row0: 0, cols: 256, rows: 768 };

describe("centerOn", () => {
  it("zooms a whole-matrix view to the focus span around the element", () => {
    const v = centerOn(fit, shape, 400, 100);
    expect(v.cols).toBe(FOCUS_SPAN);
    expect(v.rows).toBe(FOCUS_SPAN);
    // The element's centre (row + 0.5) is the view's centre.
    expect(v.row0 + v.rows / 2).toBe(400.5);
    expect(v.col0 + v.cols / 2).toBe(100.5);
    expect(contains(v, 400, 100)).toBe(true);
  });

  it("keeps a close zoom and only pans", () => {
    const close: View = { col0: 10, row0: 10, cols: 20, rows: 30 };
    const v = centerOn(close, shape, 300, 200);
    expect([v.cols, v.rows]).toEqual([20, 30]);
    expect(v.row0).toBe(300.5 - 15);
  });

  it("stays inside the matrix near an edge", () => {
    const v = centerOn(fit, shape, 767, 0);
    expect(v.row0).toBe(768 - FOCUS_SPAN);
    expect(v.col0).toBe(0);
    expect(contains(v, 767, 0)).toBe(true);
    // A matrix smaller than the focus span is shown whole.
    const tiny = centerOn({ col0: 0, row0: 0, cols: 8, rows: 1 }, { rows: 1, cols: 8 }, 0, 7);
    expect(tiny).toEqual({ col0: 0, row0: 0, cols: 8, rows: 1 });
  });
});

describe("visible rows and columns", () => {
  it("covers every row the view touches, fractional edges included", () => {
    expect(visibleRows({ col0: 0, row0: 3.4, cols: 10, rows: 5.2 }, shape)).toEqual({ start: 3, end: 9 });
    expect(visibleRows(fit, shape)).toEqual({ start: 0, end: 768 });
    expect(visibleCols({ col0: 250.5, row0: 0, cols: 5.5, rows: 1 }, shape)).toEqual({ start: 250, end: 256 });
  });
});

describe("parseRange", () => {
  it("accepts whole numbers with start < end ≤ limit", () => {
    expect(parseRange("3", " 9 ", 768, "row")).toEqual({ ok: true, start: 3, end: 9 });
  });
  it("names what is wrong", () => {
    expect(parseRange("abc", "9", 768, "row")).toEqual({ ok: false, error: 'row start "abc" is not a whole number' });
    expect(parseRange("3", "-1", 768, "row")).toEqual({ ok: false, error: 'row end "-1" is not a whole number' });
    expect(parseRange("3", "769", 768, "row")).toEqual({ ok: false, error: "row end 769 is past the last row (the tensor has 768)" });
    expect(parseRange("9", "9", 768, "column")).toEqual({ ok: false, error: "column range 9…9 is empty (start must be below end)" });
    expect(parseRange("1.5", "9", 768, "row").ok).toBe(false);
  });
});
