/**
 * The Diff screen: open a second model (B) and compare it with the open one (A, staged edits
 * included). Every tensor is ranked by how much it differs (a cancelable job with progress);
 * selecting one shows A, B and A − B side by side with zoom and pan in sync, the largest
 * differences (click to jump), and copies from B into A as undoable, recorded patches.
 * **Behaviour** runs both models over a text (perplexity, KL, top-1 agreement, per token).
 *
 * The screen's state survives switching screens (`lib/diff/keep.ts`: model B, the ranking, the
 * selection, sort and filter, and a comparison still running, which the screen joins again);
 * the ranking is marked stale when A changes (an edit anywhere, undo) and re-run after a copy.
 */
import { useCallback, useEffect, useState } from "react";
import type { CopyResult, DiffModelInfo } from "../lib/diff/types";
import { commands, describeFailure, unwrap } from "../lib/ipc";
import { useSession } from "../lib/session";
import type { SortState } from "../lib/diff/rank";
import { compareOnce, diffKey, freshDiff, keepDiff, reconcileB, restoreDiff, withResult, type DiffKept } from "../lib/diff/keep";
import { formatBytes } from "../lib/format";
import { OpenModelB } from "../components/diff/OpenModelB";
import { DiffTable } from "../components/diff/DiffTable";
import { TensorCompare } from "../components/diff/TensorCompare";
import { DiffBehaviour } from "../components/diff/DiffBehaviour";
import { NoModel } from "./NoModel";
import "./diff.css";
import { InlineError } from "../components/InlineError";
import { useQuery } from "../lib/query";

export function DiffScreen() {
  const { summary, revision, runJob, bumpRevision } = useSession();
  const pathA = summary?.path ?? "";
  // What the screen showed last time (for this A), at once; then B is confirmed below.
  const [st, setSt] = useState<DiffKept>(() => restoreDiff(pathA) ?? freshDiff(pathA));
  // Model B lives in the backend: ask which one is open when the screen mounts.
  const bQ = useQuery(async () => ({ info: await commands.diffModel() }), []);
  const bKnown = bQ.data !== null;
  const [running, setRunning] = useState(false);
  const [behaviour, setBehaviour] = useState(false);
  const [runError, setRunError] = useState<string | null>(null);
  const { b, result, ranAt, sort, filter, changedOnly, selected } = st;
  const key = diffKey(st);

  // The backend's B: the same file keeps the ranking, another clears it.
  const answeredB = bQ.data;
  useEffect(() => {
    if (answeredB) setSt((s) => reconcileB(s, answeredB.info));
  }, [answeredB]);

  // Another model opened as A: start afresh (a fresh ranking runs below).
  useEffect(() => {
    setSt((s) => (s.pathA === pathA ? s : { ...freshDiff(pathA), b: s.b, sort: s.sort }));
    setRunError(null);
  }, [pathA]);

  // Remember the state once B is confirmed (before that it is only what was remembered).
  useEffect(() => {
    if (bKnown) keepDiff(st);
  }, [st, bKnown]);

  const update = useCallback((patch: Partial<DiffKept>) => setSt((s) => ({ ...s, ...patch })), []);
  const setSort = useCallback((sort: SortState) => update({ sort }), [update]);
  const setFilter = useCallback((filter: string) => update({ filter }), [update]);
  const setChangedOnly = useCallback((changedOnly: boolean) => update({ changedOnly }), [update]);
  const setSelected = useCallback((selected: string | null) => update({ selected }), [update]);

  const compare = useCallback(async () => {
    setRunning(true);
    setRunError(null);
    try {
      // Joins the comparison of this A and B if one is still running (the screen came back).
      const c = await compareOnce(key, async () => {
        // The revision the comparison sees (A's edits up to now).
        const at = await commands.sessionRevision();
        const r = await runJob("diff A ↔ B", async (job, channel) => unwrap(await commands.runDiff(job, channel)));
        return { result: r, at };
      });
      setSt((s) => (diffKey(s) === key ? withResult(s, c.result, c.at) : s));
    } catch (e) {
      const d = describeFailure(e);
      setRunError(d.code === "Canceled" ? "Comparison canceled." : `${d.title}: ${d.detail}`);
    } finally {
      setRunning(false);
    }
  }, [runJob, key]);

  // A freshly opened B is compared right away; back on the screen while its comparison still
  // runs, that one is joined (compareOnce), not started again.
  useEffect(() => {
    if (summary && b && bKnown && result === null && !running && runError === null) void compare();
  }, [summary, b, bKnown, result, running, runError, compare]);

  if (!summary) return <NoModel screen="diff" />;

  const onOpened = (info: DiffModelInfo | null) => {
    setSt((s) => reconcileB({ ...s, result: null, ranAt: -1, selected: null }, info));
    setRunError(null);
  };

  const stale = result !== null && ranAt !== revision;
  const row = result?.rows.find((r) => r.name === selected) ?? null;
  const onCopied = (_r: CopyResult) => {
    // Every view of A refetches; the ranking is out of date: compare again (cancelable).
    void bumpRevision().then(() => compare());
  };

  return (
    <div className="screen diff-screen" data-testid="screen-diff">
      <header className="diff-top-bar">
        <OpenModelB info={b} pathA={summary.path} onOpened={onOpened} onClosed={() => onOpened(null)} />
        <div className="diff-run">
          <button className="primary" disabled={!b || running} onClick={() => void compare()} data-testid="diff-run">
            {running ? "Comparing…" : result ? "Compare again" : "Compare"}
          </button>
          <button
            className={`ghost${behaviour ? " on" : ""}`}
            disabled={!b}
            onClick={() => setBehaviour((v) => !v)}
            data-testid="diff-behaviour-toggle"
            aria-pressed={behaviour}
            title="Run both models over a text: perplexity, KL, top-1 agreement (embedded llama.cpp)"
          >
            Behaviour
          </button>
          {result && (
            <span className="muted small" data-testid="diff-run-info">
              {formatBytes(result.bytesCompared)} read in {result.millis.toFixed(0)} ms
            </span>
          )}
        </div>
      </header>
      <InlineError error={runError} testId="diff-run-error" />
      {stale && (
        <div className="stale-note" data-testid="diff-stale">
          A has changed since this comparison. <button className="link" onClick={() => void compare()}>Compare again</button>
        </div>
      )}
      {b && behaviour && <DiffBehaviour pathA={summary.path} pathB={b.path} revision={revision} />}
      {!b && (
        <div className="empty-state diff-intro">
          <h2>Compare two models</h2>
          <p>Open a second model as B (a finetune, another quantization…) to rank every tensor by how much it differs from the open model, see both side by side with the difference map, and copy tensors or rows from B into A.</p>
        </div>
      )}
      {b && result && (
        <div className="diff-body">
          <DiffTable
            rows={result.rows}
            sort={sort}
            onSort={setSort}
            filter={filter}
            onFilter={setFilter}
            changedOnly={changedOnly}
            onChangedOnly={setChangedOnly}
            selected={selected}
            onSelect={setSelected}
          />
          {row ? (
            <TensorCompare row={row} revision={revision} bKey={b.path} onCopied={onCopied} />
          ) : (
            <>
              <div className="area-side" />
              <div className="area-maps empty muted">Select a tensor to compare it.</div>
            </>
          )}
        </div>
      )}
    </div>
  );
}
