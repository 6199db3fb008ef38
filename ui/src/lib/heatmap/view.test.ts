import { describe, expect, it } from "vitest";
import {
  cellAt,
  cellOfElement,
  cellSpan,
  clampView,
  fitHeight,
  fitView,
  fitWidth,
  GOTO_PX,
  matrixShape,
  MAX_PX_PER_ELEMENT,
  panBy,
  tileRequest,
  viewAround,
  wheelAxis,
  wheelDelta,
  wheelFactor,
  zoomAt,
  zoomOf,
} from "./view";

const shape = { rows: 4096, cols: 4096 };
const size = { w: 800, h: 600 };

describe("matrixShape", () => {
  it("folds higher dims into rows", () => {
    expect(matrixShape([64, 3, 5])).toEqual({ rows: 15, cols: 64 });
    expect(matrixShape([7])).toEqual({ rows: 1, cols: 7 });
  });
});

describe("zoomAt", () => {
  it("keeps the element under the cursor fixed", () => {
    const v = fitView(shape);
    const before = cellAt(v, shape, size, 200, 450)!;
    const z = zoomAt(v, 4, 200 / size.w, 450 / size.h);
    expect(z.cols).toBe(1024);
    expect(z.rows).toBe(1024);
    // The matrix point under the cursor, before and after, in fractional elements.
    const fx = (p: typeof v) => p.col0 + (200 / size.w) * p.cols;
    const fy = (p: typeof v) => p.row0 + (450 / size.h) * p.rows;
    expect(fx(z)).toBeCloseTo(fx(v), 9);
    expect(fy(z)).toBeCloseTo(fy(v), 9);
    expect(cellAt(z, shape, size, 200, 450)).toEqual(before);
  });

  it("is undone by the inverse factor at the same point", () => {
    const v = { col0: 100, row0: 50, cols: 400, rows: 300 };
    const back = zoomAt(zoomAt(v, 3, 0.3, 0.7), 1 / 3, 0.3, 0.7);
    expect(back.col0).toBeCloseTo(100, 9);
    expect(back.row0).toBeCloseTo(50, 9);
    expect(back.cols).toBeCloseTo(400, 9);
  });
});

describe("clampView", () => {
  it("cannot zoom out past the whole matrix nor pan off the edges", () => {
    expect(clampView({ col0: -50, row0: 10, cols: 9000, rows: 9000 }, shape, size)).toEqual(fitView(shape));
    const panned = clampView({ col0: 4000, row0: -3, cols: 200, rows: 100 }, shape, size);
    expect(panned).toEqual({ col0: 3896, row0: 0, cols: 200, rows: 100 });
  });

  it("caps the zoom at MAX_PX_PER_ELEMENT pixels per element", () => {
    const c = clampView({ col0: 10, row0: 10, cols: 1, rows: 1 }, shape, size);
    expect(size.w / c.cols).toBeCloseTo(MAX_PX_PER_ELEMENT, 9);
    expect(size.h / c.rows).toBeCloseTo(MAX_PX_PER_ELEMENT, 9);
  });

  it("lets a tiny matrix fill the canvas", () => {
    const tiny = { rows: 2, cols: 3 };
    expect(clampView(fitView(tiny), tiny, size)).toEqual(fitView(tiny));
  });
});

describe("panBy", () => {
  it("moves the content with the pointer", () => {
    const v = { col0: 1000, row0: 1000, cols: 800, rows: 600 }; // 1 px per element
    expect(panBy(v, 100, -50, size)).toEqual({ col0: 900, row0: 1050, cols: 800, rows: 600 });
  });
});

describe("wheelFactor", () => {
  it("zooms in on negative deltas, out on positive, symmetric", () => {
    expect(wheelFactor(-100)).toBeGreaterThan(1);
    expect(wheelFactor(100)).toBeLessThan(1);
    expect(wheelFactor(100) * wheelFactor(-100)).toBeCloseTo(1, 12);
    expect(wheelFactor(-3, 1)).toBeCloseTo(wheelFactor(-48), 12); // lines → 16 px
  });
});

describe("cellAt", () => {
  it("maps pixels to elements and refuses outside", () => {
    const v = { col0: 10.5, row0: 20, cols: 80, rows: 60 }; // 10 px per element
    expect(cellAt(v, shape, size, 0, 0)).toEqual({ row: 20, col: 10 });
    expect(cellAt(v, shape, size, 5, 9.9)).toEqual({ row: 20, col: 11 });
    expect(cellAt(v, shape, size, 799, 599)).toEqual({ row: 79, col: 90 });
    expect(cellAt(fitView(shape), shape, size, -1, 10)).toBeNull();
  });
});

describe("tileRequest", () => {
  it("asks for about one cell per device pixel when zoomed out", () => {
    const r = tileRequest(fitView(shape), shape, size, 1);
    expect(r.viewport).toEqual({ row0: 0, col0: 0, rows: 4096, cols: 4096 });
    expect([r.outW, r.outH]).toEqual([800, 600]);
    expect(r.dest).toEqual({ x: 0, y: 0, w: 800, h: 600 });
    const hi = tileRequest(fitView(shape), shape, size, 2);
    expect([hi.outW, hi.outH]).toEqual([1600, 1200]);
  });

  it("covers partial elements at the edges and places the tile under them", () => {
    const v = { col0: 10.5, row0: 20.25, cols: 80, rows: 60 }; // 10 px per element
    const r = tileRequest(v, shape, size, 1);
    expect(r.viewport).toEqual({ row0: 20, col0: 10, rows: 61, cols: 81 });
    expect([r.outW, r.outH]).toEqual([81, 61]); // never more cells than elements
    expect(r.dest.x).toBeCloseTo(-5, 9);
    expect(r.dest.y).toBeCloseTo(-2.5, 9);
    expect(r.dest.w).toBeCloseTo(810, 9);
  });

  it("stays inside the matrix", () => {
    const r = tileRequest({ col0: 4090, row0: 4090, cols: 6, rows: 6 }, shape, size, 1);
    expect(r.viewport.col0 + r.viewport.cols).toBe(4096);
    expect(r.viewport.row0 + r.viewport.rows).toBe(4096);
  });
});

describe("cellSpan / cellOfElement", () => {
  it("agree with each other and cover every element once", () => {
    const vp = { row0: 7, col0: 3, rows: 37, cols: 53 };
    const [w, h] = [10, 7];
    const seen = new Map<string, number>();
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const s = cellSpan(vp, w, h, i, j);
        for (let r = s.row0; r < s.row1; r++)
          for (let c = s.col0; c < s.col1; c++) {
            expect(cellOfElement(vp, w, h, r, c)).toEqual({ i, j });
            seen.set(`${r},${c}`, (seen.get(`${r},${c}`) ?? 0) + 1);
          }
      }
    expect(seen.size).toBe(37 * 53);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(cellOfElement(vp, w, h, 6, 3)).toBeNull();
  });
});

// A real token embedding: 262,144 rows of 640 columns, on an 800 × 500 canvas.
const tall = { rows: 262_144, cols: 640 };
const canvas = { w: 800, h: 500 };

describe("zoom per axis", () => {
  it("zooms the rows only, keeping the row under the cursor and every column", () => {
    const v = fitView(tall);
    const z = zoomAt(v, 8, 0.5, 0.25, "y");
    expect(z.cols).toBe(640);
    expect(z.col0).toBe(0);
    expect(z.rows).toBe(262_144 / 8);
    // The row under the cursor (a quarter down) stays there.
    expect(z.row0 + 0.25 * z.rows).toBeCloseTo(v.row0 + 0.25 * v.rows, 9);
    expect(zoomOf(z, tall)).toEqual({ x: 1, y: 8 });
  });

  it("zooms the columns only", () => {
    const v = { col0: 0, row0: 1000, cols: 640, rows: 400 };
    const z = zoomAt(v, 4, 0.75, 0.5, "x");
    expect(z.rows).toBe(400);
    expect(z.row0).toBe(1000);
    expect(z.cols).toBe(160);
    expect(z.col0).toBeCloseTo(0.75 * (640 - 160), 9);
  });

  it("Shift+wheel zooms rows, Alt+wheel columns, a plain wheel both; Shift's horizontal delta counts", () => {
    expect(wheelAxis({ shiftKey: true, altKey: false })).toBe("y");
    expect(wheelAxis({ shiftKey: false, altKey: true })).toBe("x");
    expect(wheelAxis({ shiftKey: false, altKey: false })).toBe("both");
    expect(wheelAxis({ shiftKey: true, altKey: true })).toBe("both");
    expect(wheelDelta({ deltaX: 0, deltaY: -120 })).toBe(-120);
    expect(wheelDelta({ deltaX: -120, deltaY: 0 })).toBe(-120);
  });

  it("fit width: every column across, square pixels down, around the middle row", () => {
    const v = { col0: 0, row0: 100_000, cols: 640, rows: 20_000 }; // middle row 110,000
    const f = fitWidth(v, tall, canvas);
    expect(f.col0).toBe(0);
    expect(f.cols).toBe(640);
    // 800 px / 640 columns = 1.25 px per column; 500 px / 1.25 = 400 rows.
    expect(f.rows).toBeCloseTo(400, 9);
    expect(f.row0 + f.rows / 2).toBeCloseTo(110_000, 9);
    expect(canvas.w / f.cols).toBeCloseTo(canvas.h / f.rows, 9);
    // At the top, it stays inside the matrix.
    expect(fitWidth(fitView(tall), tall, canvas).row0).toBeCloseTo(131_072 - 200, 9);
    expect(fitWidth({ ...v, row0: 0, rows: 10 }, tall, canvas).row0).toBe(0);
  });

  it("fit height: every row down; a wide matrix gets square pixels across", () => {
    const wide = { rows: 640, cols: 262_144 };
    const f = fitHeight({ col0: 0, row0: 0, cols: 1000, rows: 10 }, wide, canvas);
    expect(f.row0).toBe(0);
    expect(f.rows).toBe(640);
    expect(f.cols).toBeCloseTo(800 / (500 / 640), 9);
    expect(f.col0).toBe(0);
    // A tall matrix at fit height is the whole matrix (its columns all fit).
    expect(fitHeight({ col0: 100, row0: 5, cols: 10, rows: 10 }, tall, canvas)).toEqual(fitView(tall));
  });
});

describe("viewAround (go to)", () => {
  it("centres a row of a tall tensor, zooming the rows in until a row is visible", () => {
    const v = viewAround(fitView(tall), tall, canvas, 151_000, null);
    expect(v.rows).toBeCloseTo(500 / GOTO_PX, 9);
    expect(v.cols).toBe(640); // columns untouched: 1.25 px each, as before
    expect(v.row0 + v.rows / 2).toBeCloseTo(151_000.5, 9);
    expect(cellAt(v, tall, canvas, 400, 250)!.row).toBe(151_000);
  });

  it("centres an element, zooming the columns too; keeps a zoom that is enough", () => {
    const v = viewAround(fitView(tall), tall, canvas, 7, 320);
    expect(v.row0).toBe(0); // clamped at the top: row 7 is 7 rows of 12 px down
    expect(cellAt(v, tall, canvas, 400, 7.5 * GOTO_PX)).toEqual({ row: 7, col: 320 });
    expect(v.cols).toBeCloseTo(800 / GOTO_PX, 9);
    const zoomed = { col0: 0, row0: 0, cols: 40, rows: 25 }; // 20 px per element
    const w = viewAround(zoomed, tall, canvas, 1000, 600);
    expect(w.cols).toBe(40);
    expect(w.rows).toBe(25);
    expect(cellAt(w, tall, canvas, 400, 250)).toEqual({ row: 1000, col: 600 });
    expect(w.col0).toBeCloseTo(600.5 - 20, 9);
    // The last column: clamped at the right edge, the element in the last 20 px.
    const e = viewAround(zoomed, tall, canvas, 1000, 639);
    expect(e.col0 + e.cols).toBe(640);
    expect(cellAt(e, tall, canvas, 799, 250)).toEqual({ row: 1000, col: 639 });
  });
});
