/**
 * A heatmap of a matrix of any size: canvas rendering of level-of-detail tiles computed by the
 * caller (`fetchTile` — for a tensor, the `heatmap_tile` raw command), diverging colour map
 * with a legend, hover readout (row, col, value), wheel zoom around the cursor (Shift: rows only,
 * Alt: columns only — a 262,144-row embedding needs the rows zoomed, not the 640 columns), drag
 * pan, fit (whole matrix, width, height), and "go to" a row or element from outside (`goTo`).
 *
 * The view (which rectangle of the matrix is shown) is internal unless `view` +
 * `onViewChange` are given: then it is controlled from outside, so several heatmaps can keep
 * zoom and pan in sync. Each cell is reduced two ways by Rust (mean of its finite values, or its
 * peak = signed value of largest |x|); the toolbar says which one the colour shows.
 *
 * While a new tile is in flight the previous one is redrawn at the new view (instant feedback
 * while zooming); only the latest wanted request is sent next, stale answers are dropped.
 */
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { describeFailure } from "../../lib/ipc";
import { finiteAbsMax, legendGradient, paint, robustAbs, ROBUST_QUANTILE, type Curve } from "../../lib/heatmap/colormap";
import type { Tile } from "../../lib/heatmap/tile";
import {
  cellAt,
  cellOfElement,
  cellSpan,
  clampView,
  fitHeight,
  fitView,
  fitWidth,
  panBy,
  sameView,
  tileRequest,
  viewAround,
  wheelAxis,
  wheelDelta,
  wheelFactor,
  zoomAt,
  zoomOf,
  type HeatmapView,
  type MatrixShape,
  type Size,
  type Viewport,
} from "../../lib/heatmap/view";
import { formatValue } from "../../lib/heatmap/format";
import { DIMS_HINT, formatDims } from "../../lib/format";
import "./heatmap.css";

export type Reduction = "mean" | "peak";

export interface HeatmapProps {
  /** The matrix (rows × cols). */
  shape: MatrixShape;
  /** Computes the tile of `viewport` at (at most) `w × h` cells. */
  fetchTile: (viewport: Viewport, w: number, h: number) => Promise<Tile>;
  /**
   * Change to refetch the current view: after an edit (the session revision), or when
   * `fetchTile` starts reading other data (a new identity alone does not refetch).
   */
  version?: unknown;
  /** Controlled view (with `onViewChange`); internal when absent. */
  view?: HeatmapView;
  onViewChange?: (v: HeatmapView) => void;
  /** Controlled reduction; a toggle is shown when absent. */
  reduction?: Reduction;
  onReductionChange?: (r: Reduction) => void;
  /** A fixed colour-scale half-width (e.g. the tensor's max |x|); "view" scaling is offered too. */
  fixedScale?: number | null;
  /** Label of the fixed scale in the toolbar ("tensor"). */
  fixedScaleLabel?: string;
  /**
   * The colour range offered first: `robust` (the 99.5th percentile of |x| of what is shown:
   * outliers saturate, the bulk of real weights gets colour) or `max` (max |x|, the fixed or
   * the view scale). Maps compared side by side keep `max` (one scale for all).
   */
  defaultRange?: "robust" | "max";
  /** Exact value of one element, for the hover readout when a cell holds many elements. */
  readValue?: (row: number, col: number) => Promise<number>;
  /** A click on the map (not a drag). */
  onCellClick?: (row: number, col: number) => void;
  /** An element to outline. */
  highlight?: { row: number; col: number } | null;
  /**
   * Show this row (`col` null) or element in the middle, zoomed in enough to see it; a new
   * `key` goes there again (the same place typed twice).
   */
  goTo?: { row: number; col: number | null; key: number } | null;
  /** A label of a row for the hover readout (a token's text when rows are token ids). */
  rowLabel?: (row: number) => string | undefined;
  /** Title shown in the toolbar. */
  title?: string;
  /** `data-testid` of the root (default `heatmap`). */
  testId?: string;
}

interface Drawn {
  tile: Tile;
  /** The elements the tile covers. */
  viewport: Viewport;
}

const DRAG_THRESHOLD = 3;

export function Heatmap(props: HeatmapProps) {
  const { shape, fetchTile, version, readValue, onCellClick, highlight, title, goTo, rowLabel } = props;
  const testId = props.testId ?? "heatmap";
  const wrapRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [size, setSize] = useState<Size>({ w: 0, h: 0 });
  const [innerView, setInnerView] = useState<HeatmapView>(() => fitView(shape));
  const controlled = props.view !== undefined;
  const view = props.view ?? innerView;
  const [innerReduction, setInnerReduction] = useState<Reduction>("mean");
  const reduction = props.reduction ?? innerReduction;
  const [scaleChoice, setScaleMode] = useState<"fixed" | "view">("fixed");
  const [range, setRange] = useState<"robust" | "max">(props.defaultRange ?? "max");
  const [curve, setCurve] = useState<Curve>("linear");
  const scaleMode = props.fixedScale ? scaleChoice : "view";
  const [drawn, setDrawn] = useState<Drawn | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [lastMs, setLastMs] = useState<number | null>(null);
  const [hover, setHover] = useState<{ row: number; col: number } | null>(null);
  const [exact, setExact] = useState<{ row: number; col: number; value: number } | null>(null);

  const onViewChange = props.onViewChange;
  const setView = useCallback(
    (v: HeatmapView) => {
      const c = size.w > 0 ? clampView(v, shape, size) : v;
      if (controlled) onViewChange?.(c);
      else setInnerView(c);
    },
    [controlled, onViewChange, shape, size],
  );
  const setReduction = (r: Reduction) => {
    if (props.reduction !== undefined) props.onReductionChange?.(r);
    else setInnerReduction(r);
  };

  // A new matrix: back to the whole view.
  const shapeKey = `${shape.rows}x${shape.cols}`;
  const lastShape = useRef(shapeKey);
  useEffect(() => {
    if (lastShape.current === shapeKey) return;
    lastShape.current = shapeKey;
    setDrawn(null);
    if (!controlled) setInnerView(fitView(shape));
  }, [shapeKey, shape, controlled]);

  // Track the canvas's CSS size.
  useLayoutEffect(() => {
    const el = wrapRef.current;
    if (!el) return;
    const measure = () => {
      const r = el.getBoundingClientRect();
      setSize((s) => (Math.round(r.width) === s.w && Math.round(r.height) === s.h ? s : { w: Math.round(r.width), h: Math.round(r.height) }));
    };
    measure();
    const ro = typeof ResizeObserver !== "undefined" ? new ResizeObserver(measure) : null;
    ro?.observe(el);
    return () => ro?.disconnect();
  }, []);

  // ----- fetching: one request in flight, the latest wanted one next ---------------------
  const inFlight = useRef(false);
  const wanted = useRef<{ key: string; run: () => Promise<void> } | null>(null);
  const seq = useRef(0);
  const dpr = typeof window !== "undefined" ? window.devicePixelRatio || 1 : 1;
  const request = useMemo(
    () => (size.w > 0 && size.h > 0 ? tileRequest(clampView(view, shape, size), shape, size, dpr) : null),
    [view, shape, size, dpr],
  );
  const requestKey = request
    ? `${shapeKey}|${request.viewport.row0},${request.viewport.col0},${request.viewport.rows},${request.viewport.cols}|${request.outW}x${request.outH}|${String(version)}`
    : null;

  const pump = useCallback(async () => {
    if (inFlight.current) return;
    const next = wanted.current;
    if (!next) return;
    wanted.current = null;
    inFlight.current = true;
    try {
      await next.run();
    } finally {
      inFlight.current = false;
      if (wanted.current) void pump();
    }
  }, []);

  const requestRef = useRef(request);
  requestRef.current = request;
  const fetchRef = useRef(fetchTile);
  fetchRef.current = fetchTile;
  useEffect(() => {
    const req = requestRef.current;
    if (!req || !requestKey) return;
    const my = ++seq.current;
    const fetcher = fetchRef.current;
    wanted.current = {
      key: requestKey,
      run: async () => {
        setLoading(true);
        const t0 = performance.now();
        try {
          const tile = await fetcher(req.viewport, req.outW, req.outH);
          if (my !== seq.current && wanted.current) return; // a newer view is queued
          setDrawn({ tile, viewport: req.viewport });
          setError(null);
          setLastMs(performance.now() - t0);
        } catch (e) {
          const d = describeFailure(e);
          setError(d.detail || d.title);
        } finally {
          setLoading(false);
        }
      },
    };
    void pump();
  }, [requestKey, pump]);

  // ----- painting ------------------------------------------------------------------------
  const values = drawn ? (reduction === "mean" ? drawn.tile.mean : drawn.tile.peak) : null;
  const viewScale = useMemo(() => (values ? finiteAbsMax(values) : 0), [values]);
  const robustScale = useMemo(() => (values && range === "robust" ? robustAbs(values) : 0), [values, range]);
  const maxScale = scaleMode === "fixed" && props.fixedScale ? props.fixedScale : viewScale;
  const scale = range === "robust" && robustScale > 0 ? robustScale : maxScale;
  const clipped = range === "robust" && robustScale > 0 && robustScale < viewScale;

  const image = useMemo(() => {
    if (!drawn || !values || typeof document === "undefined") return null;
    const { width, height } = drawn.tile;
    const c = document.createElement("canvas");
    c.width = width;
    c.height = height;
    const ctx = c.getContext("2d");
    if (!ctx) return null;
    const img = ctx.createImageData(width, height);
    paint(values, scale, img.data, curve);
    ctx.putImageData(img, 0, 0);
    return c;
  }, [drawn, values, scale, curve]);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas || size.w === 0) return;
    canvas.width = Math.round(size.w * dpr);
    canvas.height = Math.round(size.h * dpr);
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, size.w, size.h);
    const v = clampView(view, shape, size);
    if (drawn && image) {
      const vp = drawn.viewport;
      const x = ((vp.col0 - v.col0) * size.w) / v.cols;
      const y = ((vp.row0 - v.row0) * size.h) / v.rows;
      const w = (vp.cols * size.w) / v.cols;
      const h = (vp.rows * size.h) / v.rows;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(image, x, y, w, h);
    }
    if (highlight) {
      // Crosshair through the element's row and column, and a box around it (at least 9 px).
      const x = ((highlight.col - v.col0) * size.w) / v.cols;
      const y = ((highlight.row - v.row0) * size.h) / v.rows;
      const w = size.w / v.cols;
      const h = size.h / v.rows;
      ctx.fillStyle = "rgba(79, 70, 229, 0.18)";
      ctx.fillRect(x, 0, Math.max(1, w), size.h);
      ctx.fillRect(0, y, size.w, Math.max(1, h));
      const bw = Math.max(9, w + 4);
      const bh = Math.max(9, h + 4);
      const bx = x + w / 2 - bw / 2;
      const by = y + h / 2 - bh / 2;
      ctx.lineWidth = 3;
      ctx.strokeStyle = "rgba(255, 255, 255, 0.95)";
      ctx.strokeRect(bx, by, bw, bh);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#1b1f27";
      ctx.strokeRect(bx, by, bw, bh);
    }
  }, [drawn, image, view, shape, size, dpr, highlight]);

  // ----- pointer: drag pan, click, hover, wheel zoom --------------------------------------
  const drag = useRef<{ x: number; y: number; moved: boolean; view: HeatmapView } | null>(null);
  const pos = (e: { clientX: number; clientY: number }) => {
    const r = canvasRef.current?.getBoundingClientRect();
    return r ? { x: e.clientX - r.left, y: e.clientY - r.top } : { x: 0, y: 0 };
  };

  const onPointerDown = (e: React.PointerEvent) => {
    if (e.button !== 0) return;
    const p = pos(e);
    drag.current = { x: p.x, y: p.y, moved: false, view: clampView(view, shape, size) };
    (e.target as Element).setPointerCapture?.(e.pointerId);
  };
  const onPointerMove = (e: React.PointerEvent) => {
    const p = pos(e);
    const d = drag.current;
    if (d) {
      const dx = p.x - d.x;
      const dy = p.y - d.y;
      if (!d.moved && Math.hypot(dx, dy) >= DRAG_THRESHOLD) d.moved = true;
      if (d.moved) setView(panBy(d.view, dx, dy, size));
    }
    setHover(cellAt(clampView(view, shape, size), shape, size, p.x, p.y));
  };
  const onPointerUp = (e: React.PointerEvent) => {
    const d = drag.current;
    drag.current = null;
    if (d && !d.moved && onCellClick) {
      const p = pos(e);
      const cell = cellAt(clampView(view, shape, size), shape, size, p.x, p.y);
      if (cell) onCellClick(cell.row, cell.col);
    }
  };

  // Wheel: a native listener (React's is passive, preventDefault would be ignored).
  const viewRef = useRef(view);
  viewRef.current = view;
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const r = canvas.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) return;
      const fx = (e.clientX - r.left) / r.width;
      const fy = (e.clientY - r.top) / r.height;
      const cur = clampView(viewRef.current, shape, size);
      setView(zoomAt(cur, wheelFactor(wheelDelta(e), e.deltaMode), fx, fy, wheelAxis(e)));
    };
    canvas.addEventListener("wheel", onWheel, { passive: false });
    return () => canvas.removeEventListener("wheel", onWheel);
  }, [setView, shape, size]);

  const zoomCenter = (factor: number) => setView(zoomAt(clampView(view, shape, size), factor, 0.5, 0.5));
  const reset = () => setView(fitView(shape));

  // "Go to": once per new key, when the canvas has a size.
  const wentTo = useRef<number | null>(null);
  useEffect(() => {
    if (!goTo || size.w === 0 || wentTo.current === goTo.key) return;
    wentTo.current = goTo.key;
    setView(viewAround(viewRef.current, shape, size, goTo.row, goTo.col));
  }, [goTo, size, shape, setView]);

  // Hover readout: the tile's cell, plus the exact value when the cell holds many elements.
  const hoverCell = useMemo(() => {
    if (!hover || !drawn) return null;
    const { tile, viewport } = drawn;
    const ij = cellOfElement(viewport, tile.width, tile.height, hover.row, hover.col);
    if (!ij) return null;
    const k = ij.i * tile.width + ij.j;
    const span = cellSpan(viewport, tile.width, tile.height, ij.i, ij.j);
    return {
      mean: tile.mean[k]!,
      peak: tile.peak[k]!,
      rows: span.row1 - span.row0,
      cols: span.col1 - span.col0,
    };
  }, [hover, drawn]);
  const single = hoverCell !== null && hoverCell.rows === 1 && hoverCell.cols === 1;
  useEffect(() => {
    if (!hover || single || !readValue) return;
    const t = window.setTimeout(() => {
      readValue(hover.row, hover.col).then(
        (value) => setExact({ ...hover, value }),
        () => setExact(null),
      );
    }, 120);
    return () => window.clearTimeout(t);
  }, [hover, single, readValue]);
  const exactHere = exact && hover && exact.row === hover.row && exact.col === hover.col ? exact.value : null;

  const v = size.w > 0 ? clampView(view, shape, size) : view;
  const zoom = zoomOf(v, shape);
  const atFit = sameView(v, fitView(shape));
  const fmtZoom = (z: number) => `${z < 10 ? z.toFixed(2) : z.toFixed(0)}×`;
  const sameZoom = Math.abs(zoom.x - zoom.y) < 1e-3 * Math.max(zoom.x, zoom.y);
  const label = hover && rowLabel ? rowLabel(hover.row) : undefined;

  return (
    <div
      className="heatmap"
      data-testid={testId}
      data-view={`${v.col0},${v.row0},${v.cols},${v.rows}`}
      data-last-ms={lastMs ?? ""}
      data-loading={loading ? "1" : "0"}
      data-tile={drawn ? `${drawn.tile.width}x${drawn.tile.height}` : ""}
    >
      <div className="heatmap-bar">
        {title && <span className="heatmap-title">{title}</span>}
        {props.reduction === undefined && (
          <div className="seg" role="group" aria-label="Cell value">
            <button className={reduction === "mean" ? "on" : ""} onClick={() => setReduction("mean")} title="Each cell shows the mean of the elements it covers" data-testid={`${testId}-mean`}>
              mean
            </button>
            <button className={reduction === "peak" ? "on" : ""} onClick={() => setReduction("peak")} title="Each cell shows its value of largest |x| (NaN first): outliers stay visible" data-testid={`${testId}-peak`}>
              max |x|
            </button>
          </div>
        )}
        <div className="seg" role="group" aria-label="Colour range">
          <button
            className={range === "robust" ? "on" : ""}
            onClick={() => setRange("robust")}
            title={`Colour range: the ${(ROBUST_QUANTILE * 100).toFixed(1)}th percentile of |x| of what is shown (outliers saturate)`}
            data-testid={`${testId}-range-robust`}
          >
            p{(ROBUST_QUANTILE * 100).toFixed(1)}
          </button>
          <button className={range === "max" ? "on" : ""} onClick={() => setRange("max")} title="Colour range: max |x|" data-testid={`${testId}-range-max`}>
            max
          </button>
          <button
            className={curve === "symlog" ? "on" : ""}
            onClick={() => setCurve(curve === "symlog" ? "linear" : "symlog")}
            title="Symmetric-log colour curve: linear near zero, logarithmic beyond, so small values keep a colour"
            data-testid={`${testId}-symlog`}
          >
            symlog
          </button>
        </div>
        {props.fixedScale && range === "max" ? (
          <div className="seg" role="group" aria-label="Colour scale">
            <button className={scaleMode === "fixed" ? "on" : ""} onClick={() => setScaleMode("fixed")} title="Colour scale from the whole matrix">
              {props.fixedScaleLabel ?? "fixed"}
            </button>
            <button className={scaleMode === "view" ? "on" : ""} onClick={() => setScaleMode("view")} title="Colour scale from what is visible">
              view
            </button>
          </div>
        ) : null}
        <span className="spacer" />
        <span
          className="heatmap-zoom muted"
          data-testid={`${testId}-zoom`}
          data-zoom-x={zoom.x}
          data-zoom-y={zoom.y}
          title={`Zoom: columns ${fmtZoom(zoom.x)}, rows ${fmtZoom(zoom.y)} (Shift+wheel: rows only, Alt+wheel: columns only)`}
        >
          {sameZoom ? fmtZoom(zoom.x) : `${fmtZoom(zoom.x)} ↔ · ${fmtZoom(zoom.y)} ↕`}
        </span>
        <button onClick={() => zoomCenter(1 / 1.5)} title="Zoom out" disabled={atFit} aria-label="Zoom out">
          −
        </button>
        <button onClick={() => zoomCenter(1.5)} title="Zoom in" aria-label="Zoom in" data-testid={`${testId}-zoom-in`}>
          +
        </button>
        <button
          onClick={() => setView(fitWidth(v, shape, size))}
          title="Fit width: every column across, the rows zoomed to the same pixel size (Shift+wheel zooms the rows only, Alt+wheel the columns only)"
          aria-label="Fit width"
          data-testid={`${testId}-fit-width`}
        >
          ↔
        </button>
        <button
          onClick={() => setView(fitHeight(v, shape, size))}
          title="Fit height: every row down, the columns zoomed to the same pixel size"
          aria-label="Fit height"
          data-testid={`${testId}-fit-height`}
        >
          ↕
        </button>
        <button onClick={reset} disabled={atFit} title="Show the whole matrix" data-testid={`${testId}-reset`}>
          Fit
        </button>
      </div>
      <div className="heatmap-canvas-wrap" ref={wrapRef}>
        <canvas
          ref={canvasRef}
          className={`heatmap-canvas ${onCellClick ? "clickable" : ""}`}
          data-testid={`${testId}-canvas`}
          style={{ width: size.w, height: size.h }}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerLeave={() => setHover(null)}
        />
        {loading && <div className="heatmap-busy" aria-hidden />}
        {error && (
          <div className="heatmap-error inline-error" role="alert" data-testid={`${testId}-error`}>
            {error}
          </div>
        )}
      </div>
      <div className="heatmap-foot">
        <div
          className="legend"
          data-testid={`${testId}-legend`}
          data-scale={scale}
          data-range={range}
          data-curve={curve}
          title={`Colour: ${reduction === "mean" ? "mean of each cell" : "max |x| of each cell (signed)"}; range ${
            range === "robust" ? `the ${(ROBUST_QUANTILE * 100).toFixed(1)}th percentile of |x| shown` : "max |x|"
          }${curve === "symlog" ? ", symmetric-log curve" : ", linear"}`}
        >
          <span className="legend-end">
            {clipped ? "≤" : ""}
            {formatValue(-scale)}
          </span>
          <span className="legend-bar" style={{ background: legendGradient() }} />
          <span className="legend-end">
            {clipped ? "≥" : ""}
            {formatValue(scale)}
          </span>
          <span className="legend-kind muted">
            {range === "robust" ? `p${(ROBUST_QUANTILE * 100).toFixed(1)}` : "max"}
            {curve === "symlog" ? " · symlog" : ""}
          </span>
          <span className="legend-nan" title="NaN">NaN</span>
        </div>
        <div className="readout" data-testid={`${testId}-readout`}>
          {hover ? (
            <>
              <span>
                row <b>{hover.row}</b>, col <b>{hover.col}</b>
              </span>
              {label !== undefined && (
                <span className="readout-token mono" data-testid={`${testId}-token`} title={`token ${hover.row}: ${label}`}>
                  {label}
                </span>
              )}
              {hoverCell &&
                (single ? (
                  <span>
                    = <b className="mono">{formatValue(hoverCell.mean)}</b>
                  </span>
                ) : (
                  <>
                    {exactHere !== null && (
                      <span>
                        = <b className="mono">{formatValue(exactHere)}</b>
                      </span>
                    )}
                    <span className="muted">
                      cell {formatDims([hoverCell.cols, hoverCell.rows])}: mean {formatValue(hoverCell.mean)}, max|x| {formatValue(hoverCell.peak)}
                    </span>
                  </>
                ))}
            </>
          ) : (
            <span className="muted">
              <span title={DIMS_HINT} data-testid={`${testId}-dims`}>
                {formatDims([shape.cols, shape.rows])}
              </span>{" "}
              · wheel: zoom (Shift: rows, Alt: columns) · drag: pan{onCellClick ? " · click: select" : ""}
              {lastMs !== null ? ` · ${lastMs.toFixed(0)} ms` : ""}
            </span>
          )}
        </div>
      </div>
    </div>
  );
}
