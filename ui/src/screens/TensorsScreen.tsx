/**
 * The Tensors screen: the tensor tree by block (with a name filter) on the left; for the
 * selected tensor a zoomable heatmap (level of detail computed in Rust), the exact-value grid,
 * the histogram, and the editors — one element with a preview of what will be stored, and
 * transforms on a selection. Every read goes through the session, so staged edits show at
 * once; the views refetch when the session revision moves (edits, undo, redo, save).
 *
 * "Go to" takes a row (a token id, for the embedding and output matrices), "row, col" or
 * "#element" and brings it into view on the heatmap and the grid, selected. Where rows are
 * token ids the token's text shows beside each row number and in the heatmap's readout.
 */
import { useCallback, useMemo, useRef, useState } from "react";
import { TensorTree } from "../components/tensors/TensorTree";
import { Heatmap } from "../components/heatmap/Heatmap";
import { ValueGrid } from "../components/tensors/ValueGrid";
import { Histogram } from "../components/tensors/Histogram";
import { EditPanel, type EditPanelHandle } from "../components/tensors/EditPanel";
import { TransformPanel } from "../components/tensors/TransformPanel";
import { InlineError } from "../components/InlineError";
import { useQuery } from "../lib/query";
import { useSession } from "../lib/session";
import { commands, describeFailure, type TensorRow } from "../lib/ipc";
import { DIMS_HINT, formatBytes, formatCount, formatDims, formatOffset, typeFamily } from "../lib/format";
import { formatValue } from "../lib/heatmap/format";
import { matrixShape } from "../lib/heatmap/view";
import type { GridWindow } from "../lib/tensors/grid";
import { parseGoTo, rowsAreTokens, tokenLabel } from "../lib/tensors/find";
import { useTokenTexts } from "../lib/tensors/tokens";
import {
  fetchTile,
  fetchWindow,
  readValue,
  setTensorLock,
  tensorHistogram,
  tensorLocked,
} from "../lib/tensors/api";
import { NoModel } from "./NoModel";
import "./tensors.css";

const BINS = 96;
/** Statistics and histogram run as a job; the status bar shows it only past this time (a
 * small tensor's take a few milliseconds and must not flash a progress bar). */
const STATS_QUIET_MS = 200;

export function TensorsScreen() {
  const { summary, tensors, selected, setSelected } = useSession();
  if (!summary) return <NoModel screen="tensors" />;
  const tensor = tensors.find((t) => t.name === selected) ?? null;
  return (
    <div className="screen screen-split" data-testid="screen-tensors">
      <aside className="sidebar">
        <TensorTree tensors={tensors} selected={selected} onSelect={setSelected} />
      </aside>
      <div className="content tensors-content">
        {tensor ? <TensorView key={tensor.name} tensor={tensor} /> : <p className="muted pad">Select a tensor on the left.</p>}
      </div>
    </div>
  );
}

function TensorView({ tensor }: { tensor: TensorRow }) {
  const { revision, bumpRevision, runJob, summary } = useSession();
  const files = summary?.shards ?? 1;
  const name = tensor.name;
  const shape = useMemo(() => matrixShape(tensor.dims), [tensor.dims]);
  const [cell, setCell] = useState<{ row: number; col: number } | null>(null);
  const [lockError, setLockError] = useState<unknown>(null);
  const edit = useRef<EditPanelHandle>(null);
  const [goText, setGoText] = useState("");
  const [goError, setGoError] = useState<string | null>(null);
  const [goTo, setGoTo] = useState<{ row: number; col: number | null; key: number } | null>(null);

  // Token texts beside the rows of the embedding and output matrices (rows = token ids).
  const maybeTokens = /(^|\.)(token_embd|output)\.weight$/.test(name) && !name.startsWith("blk.");
  const tokens = useTokenTexts(maybeTokens, revision);
  const tokenRows = rowsAreTokens(name, shape.rows, tokens.vocab ?? 0);
  const rowLabel = useMemo(() => {
    if (!tokenRows) return undefined;
    return (row: number) => {
      const t = tokens.text(row);
      return t === undefined ? undefined : tokenLabel(t);
    };
  }, [tokenRows, tokens]);

  const go = () => {
    const r = parseGoTo(goText, shape, tokenRows);
    if (!r.ok) {
      setGoError(r.error);
      return;
    }
    setGoError(null);
    const { row, col } = r.target;
    setCell({ row, col: col ?? (cell?.col ?? 0) });
    setGoTo((g) => ({ row, col, key: (g?.key ?? 0) + 1 }));
  };

  const lock = useQuery(() => tensorLocked(name), [name], { on: [revision] });
  const locked = lock.data ?? false;

  // Statistics and histogram in one pass pair (the histogram carries the statistics), as a
  // cancelable job: Cancel in the status bar leaves a "canceled — Recompute" state, never
  // stale numbers. Leaving the tensor (or a new revision) cancels a job still running.
  const statsQ = useQuery(
    (signal) => {
      let running: number | null = null;
      signal.addEventListener("abort", () => {
        if (running !== null) void commands.cancelJob(running);
      });
      return runJob(
        `statistics of ${name}`,
        (job, channel) => {
          running = job;
          return tensorHistogram(name, BINS, job, channel);
        },
        { quietMs: STATS_QUIET_MS },
      ).finally(() => {
        running = null;
      });
    },
    [name, runJob],
    { on: [revision] },
  );
  const hist = statsQ.data;
  const stats = hist?.stats ?? null;
  const canceled = statsQ.error != null && describeFailure(statsQ.error).code === "Canceled";
  const error = (statsQ.error != null && !canceled ? statsQ.error : null) ?? lock.error;
  const again = statsQ.reload;

  const tile = useCallback((vp: Parameters<typeof fetchTile>[1], w: number, h: number) => fetchTile(name, vp, w, h), [name]);
  const windowOf = useCallback((w: GridWindow) => fetchWindow(name, w), [name]);
  const valueAt = useCallback((r: number, c: number) => readValue(name, r, c), [name]);
  const applied = useCallback(() => void bumpRevision(), [bumpRevision]);

  const toggleLock = async () => {
    try {
      lock.set(await setTensorLock(name, !locked));
      setLockError(null);
    } catch (e) {
      setLockError(e);
    }
  };

  const nonFinite = stats ? stats.nan + stats.posInf + stats.negInf : 0;
  return (
    <div className="tensor-view" data-testid="tensor-view">
      <header className="tv-head">
        <div className="tv-title">
          <h2 data-testid="detail-name" title={name}>
            {name}
          </h2>
          <span className={`badge big ${typeFamily(tensor.ty)}`} data-testid="detail-type">
            {tensor.ty}
          </span>
          <span className="muted mono" data-testid="detail-dims" title={DIMS_HINT}>
            {formatDims(tensor.dims)}
          </span>
          <span className="muted">
            {formatCount(tensor.nElements)} elements · {formatBytes(tensor.nbytes)} at{" "}
            <span className="mono" data-testid="detail-offset" title={`${formatCount(tensor.offset)} bytes into the file`}>
              {formatOffset(tensor.offset)}
            </span>
            {files > 1 && (
              <span data-testid="detail-shard">
                {" "}
                in file {tensor.shard + 1} of {files}
              </span>
            )}
          </span>
        </div>
        <div className="tv-stats" data-testid="tensor-stats" data-state={stats ? "ready" : canceled ? "canceled" : "computing"}>
          {canceled && (
            <span className="stats-canceled" data-testid="stats-canceled">
              Statistics canceled
              <button type="button" className="small" onClick={again} data-testid="stats-recompute">
                Recompute
              </button>
            </span>
          )}
          {!stats && !canceled && <span className="muted small">computing statistics…</span>}
          {stats && (
            <>
              <Stat label="min" raw={stats.min} value={formatValue(stats.min)} />
              <Stat label="max" raw={stats.max} value={formatValue(stats.max)} />
              <Stat label="mean" raw={stats.mean} value={formatValue(stats.mean)} />
              <Stat label="std" raw={stats.std} value={formatValue(stats.std)} />
              <Stat label="zeros" raw={stats.zeros} value={formatCount(stats.zeros)} />
              <Stat label="NaN/Inf" raw={nonFinite} value={formatCount(nonFinite)} warn={nonFinite > 0} />
            </>
          )}
          <form
            className="tv-goto"
            onSubmit={(e) => {
              e.preventDefault();
              go();
            }}
          >
            <input
              className="mono"
              value={goText}
              onChange={(e) => setGoText(e.target.value)}
              placeholder={tokenRows ? "token id · row, col · #n" : "row · row, col · #n"}
              aria-label="Go to a row, an element (row, col) or a flat element index (#n)"
              title={`Go to: a row${tokenRows ? " (= token id)" : ""}, "row, col", or "#" and a flat element index`}
              aria-invalid={goError !== null}
              data-testid="goto-input"
              spellCheck={false}
            />
            <button type="submit" className="small" data-testid="goto-go">
              Go
            </button>
          </form>
          <button className={`lock-btn ${locked ? "on" : ""}`} onClick={() => void toggleLock()} data-testid="lock-toggle" title={locked ? "Unlock: allow edits again" : "Lock: refuse every edit of this tensor"}>
            {locked ? "Locked" : "Lock"}
          </button>
        </div>
        <InlineError error={lockError} />
        <InlineError error={goError} testId="goto-error" />
      </header>
      {error != null ? (
        <InlineError error={error} className="pad-error" testId="tensor-error" />
      ) : (
        <div className="tv-body">
          <div className="tv-map">
            <Heatmap
              shape={shape}
              fetchTile={tile}
              version={`${name}@${revision}`}
              fixedScale={stats && stats.absMax > 0 ? stats.absMax : null}
              fixedScaleLabel="tensor"
              defaultRange="robust"
              readValue={valueAt}
              onCellClick={(row, col) => setCell({ row, col })}
              highlight={cell}
              goTo={goTo}
              rowLabel={rowLabel}
              testId="heatmap"
            />
          </div>
          <div className="tv-grid">
            <ValueGrid
              rows={shape.rows}
              cols={shape.cols}
              fetchWindow={windowOf}
              version={`${name}@${revision}`}
              scale={stats?.absMax ?? 0}
              selected={cell}
              onSelect={(row, col) => setCell({ row, col })}
              onEdit={() => edit.current?.focus()}
              rowLabel={rowLabel}
            />
          </div>
          <div className="tv-side">
            <EditPanel ref={edit} tensor={name} ty={tensor.ty} cols={shape.cols} selected={cell} revision={revision} locked={locked} onApplied={applied} />
            {hist && <Histogram data={hist} scale={stats?.absMax ?? 0} />}
            {canceled && (
              <div className="histogram hist-canceled" data-testid="histogram-canceled">
                <span className="panel-title">Histogram</span>
                <span className="muted small">canceled</span>
                <button type="button" className="small" onClick={again}>
                  Recompute
                </button>
              </div>
            )}
            <TransformPanel tensor={name} selected={cell} cols={shape.cols} onApplied={applied} />
          </div>
        </div>
      )}
    </div>
  );
}

function Stat({ label, raw, value, warn }: { label: string; raw: number; value: string; warn?: boolean }) {
  return (
    <span className={`stat ${warn ? "warn" : ""}`} data-stat={label} data-raw={String(raw)}>
      <span className="stat-label">{label}</span>
      <span className="stat-value mono">{value}</span>
    </span>
  );
}
