import { describe, expect, it } from "vitest";
import {
  cellAt,
  cellOfElement,
  cellSpan,
  clampView,
  fitView,
  matrixShape,
  MAX_PX_PER_ELEMENT,
  panBy,
  tileRequest,
  wheelFactor,
  zoomAt,
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
