/**
 * One tensor, side by side: the heatmaps of A and B and the difference map A − B, with zoom and
 * pan kept in sync (one view drives all three controlled `Heatmap`s), the largest differences
 * (click one to centre every map on it) and the copy B → A panel.
 *
 * A and B share one colour scale (the larger max |x| of the two) so equal colours mean equal
 * values; the difference map's scale is the tensor's max |A − B|. Tiles come from `diff_tile`
 * (Rust level of detail, shared with the Tensors screen), refetched when the session changes.
 */
import { useCallback, useEffect, useMemo, useState } from "react";
import type { CopyResult, DiffPointRow, DiffRow } from "../../lib/diff/types";
import { Heatmap, type Reduction } from "../heatmap/Heatmap";
import { diffTile, type DiffSideName } from "../../lib/binary";
import { commands, unwrap } from "../../lib/ipc";
import { useQuery } from "../../lib/query";
import { InlineError } from "../InlineError";
import { formatDims } from "../../lib/format";
import { centerOn, visibleRows, type View } from "../../lib/diff/sync";
import { formatMetric } from "../../lib/diff/rank";
import type { Viewport } from "../../lib/heatmap/view";
import { TopDifferences } from "./TopDifferences";
import { CopyPanel } from "./CopyPanel";

export interface TensorCompareProps {
  row: DiffRow;
  /** Session revision: edits of A (a copy included) refetch the maps. */
  revision: number;
  /** Changes when model B changes. */
  bKey: string;
  onCopied: (r: CopyResult) => void;
}

function notComparable(row: DiffRow): string | null {
  switch (row.status) {
    case "shapeMismatch":
      return `The shapes differ (A ${formatDims(row.dimsA)}, B ${formatDims(row.dimsB)}): there is no element-by-element comparison.`;
    case "onlyInA":
      return "This tensor is only in A (the open model).";
    case "onlyInB":
      return "This tensor is only in B.";
    case "unsupported":
      return `A side cannot be read as values: ${row.reason ?? "no codec"}.`;
    default:
      return null;
  }
}

export function TensorCompare({ row, revision, bKey, onCopied }: TensorCompareProps) {
  const name = row.name;
  const blocked = notComparable(row);
  const [view, setView] = useState<View | null>(null);
  const [reduction, setReduction] = useState<Reduction>("peak");
  const [k, setK] = useState(50);
  const [focus, setFocus] = useState<{ row: number; col: number } | null>(null);
  const [pickedRow, setPickedRow] = useState<number | null>(null);

  // Shape and colour scales (new tensor: back to the whole matrix). Edits of A and a new B
  // refetch them in place.
  useEffect(() => {
    setView(null);
    setFocus(null);
    setPickedRow(null);
  }, [name, bKey]);
  const { data: info, error: infoError } = useQuery(async () => (blocked ? null : unwrap(await commands.diffTensorInfo(name))), [name, blocked], {
    on: [bKey, revision],
  });
  useEffect(() => {
    if (info) setView((v) => v ?? { col0: 0, row0: 0, cols: info.cols, rows: info.rows });
  }, [info]);

  // Largest differences (the last list stays while the next one is found).
  const top = useQuery(async () => (blocked ? null : unwrap(await commands.diffTop(name, k))), [name, k, blocked], {
    keep: true,
    on: [bKey, revision],
  });

  const fetchFor = useCallback(
    (side: DiffSideName) => (vp: Viewport, w: number, h: number) => diffTile(name, side, vp, w, h),
    [name],
  );
  const fetchA = useMemo(() => fetchFor("a"), [fetchFor]);
  const fetchB = useMemo(() => fetchFor("b"), [fetchFor]);
  const fetchD = useMemo(() => fetchFor("diff"), [fetchFor]);

  if (blocked) {
    return (
      <>
        <div className="area-side" />
        <section className="compare-empty area-maps" data-testid="diff-compare" data-name={name}>
          <h3 className="mono">{name}</h3>
          <p>{blocked}</p>
        </section>
      </>
    );
  }
  const current = info && info.rows > 0 ? info : null;
  const shape = current ? { rows: current.rows, cols: current.cols } : null;
  const scaleAB = current ? Math.max(current.absMaxA, current.absMaxB) : null;
  const version = `${revision}|${bKey}`;
  const jump = (p: DiffPointRow) => {
    if (!shape || !view) return;
    setFocus({ row: p.row, col: p.col });
    setView(centerOn(view, shape, p.row, p.col));
  };
  const common = shape && view
    ? {
        shape,
        view,
        onViewChange: setView,
        reduction,
        onReductionChange: setReduction,
        version,
        highlight: focus,
        onCellClick: (r: number, c: number) => {
          setFocus({ row: r, col: c });
          setPickedRow(r);
        },
      }
    : null;

  const maps = (
    <section className="compare area-maps" data-testid="diff-compare" data-name={name} data-abs-max-diff={current ? String(current.absMaxDiff) : ""}>
      <div className="compare-head">
        <h3 className="mono" title={name}>
          {name}
        </h3>
        <span className="muted mono">{formatDims(row.dimsA)}</span>
        <span className="chip subtle">{row.typeA === row.typeB ? row.typeA : `${row.typeA} vs ${row.typeB}`}</span>
        <span className="muted">
          rel. err <b className="mono">{formatMetric(row.relError)}</b> · max |Δ| <b className="mono">{formatMetric(row.maxAbs)}</b>
        </span>
        <span className="spacer" />
        <span className="muted small">zoom and pan move all three maps</span>
        <div className="seg" role="group" aria-label="Cell value of all three maps">
          <button className={reduction === "mean" ? "on" : ""} onClick={() => setReduction("mean")} title="Each cell shows the mean of the elements it covers">
            mean
          </button>
          <button className={reduction === "peak" ? "on" : ""} onClick={() => setReduction("peak")} title="Each cell shows its value of largest |x|: single changed weights stay visible">
            max |x|
          </button>
        </div>
        {shape && (
          <button className="ghost" onClick={() => setView({ col0: 0, row0: 0, cols: shape.cols, rows: shape.rows })} data-testid="diff-fit">
            Fit all
          </button>
        )}
      </div>
      <InlineError error={infoError} testId="diff-info-error" />
      {common && current && scaleAB !== null ? (
        <div className="compare-maps" data-testid="diff-maps">
          <Heatmap {...common} fetchTile={fetchA} fixedScale={scaleAB || null} fixedScaleLabel="A∪B" title="A" testId="diff-map-a" />
          <Heatmap {...common} fetchTile={fetchB} fixedScale={scaleAB || null} fixedScaleLabel="A∪B" title="B" testId="diff-map-b" />
          <Heatmap {...common} fetchTile={fetchD} fixedScale={current.absMaxDiff || null} fixedScaleLabel="max|Δ|" title="A − B" testId="diff-map-diff" />
        </div>
      ) : (
        infoError == null && <div className="compare-maps loading muted">Loading…</div>
      )}
    </section>
  );
  return (
    <>
      <div className="area-side">
        <TopDifferences points={top.error == null ? top.data : null} loading={top.loading} error={top.error} k={k} onK={setK} active={focus} onJump={jump} />
        {shape && view && (
          <CopyPanel
            tensor={name}
            shape={shape}
            visible={visibleRows(view, shape)}
            pickedRow={pickedRow}
            typeA={row.typeA ?? "?"}
            typeB={row.typeB ?? "?"}
            disabledReason={row.identical ? "A and B already hold the same values in this tensor." : null}
            onCopied={onCopied}
          />
        )}
      </div>
      {maps}
    </>
  );
}
