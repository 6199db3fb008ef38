/**
 * The Diff screen: open a second model (B) and compare it with the open one (A, staged edits
 * included). Every tensor is ranked by how much it differs (a cancelable job with progress);
 * selecting one shows A, B and A − B side by side with zoom and pan in sync, the largest
 * differences (click to jump), and copies from B into A as undoable, recorded patches.
 * **Behaviour** runs both models over a text (perplexity, KL, top-1 agreement, per token).
 *
 * The ranking survives switching screens (kept in a module-level cache keyed by A and B); it
 * is marked stale when A changes (an edit anywhere, undo) and re-run after a copy.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import type { CopyResult, DiffModelInfo, DiffResult } from "../lib/diff/types";
import { commands, describeFailure, unwrap } from "../lib/ipc";
import { useSession } from "../lib/session";
import { DEFAULT_SORT, sortRows, type SortState } from "../lib/diff/rank";
import { formatBytes } from "../lib/format";
import { OpenModelB } from "../components/diff/OpenModelB";
import { DiffTable } from "../components/diff/DiffTable";
import { TensorCompare } from "../components/diff/TensorCompare";
import { DiffBehaviour } from "../components/diff/DiffBehaviour";
import { NoModel } from "./NoModel";
import "./diff.css";
import { InlineError } from "../components/InlineError";
import { useQuery } from "../lib/query";

interface Kept {
  key: string;
  result: DiffResult | null;
  revision: number;
  sort: SortState;
  filter: string;
  changedOnly: boolean;
  selected: string | null;
}

/** What the screen shows, kept while another screen is open. */
let kept: Kept | null = null;

export function DiffScreen() {
  const { summary, revision, runJob, bumpRevision } = useSession();
  // Model B lives in the backend: ask which one is open when the screen mounts.
  const bQ = useQuery(() => commands.diffModel(), []);
  const b = bQ.data;
  const setB = bQ.set;
  const key = `${summary?.path ?? ""}|${b?.path ?? ""}`;
  const restore = kept && kept.key === key ? kept : null;
  const [result, setResult] = useState<DiffResult | null>(restore?.result ?? null);
  const [ranAt, setRanAt] = useState<number>(restore?.revision ?? -1);
  const [sort, setSort] = useState<SortState>(restore?.sort ?? DEFAULT_SORT);
  const [filter, setFilter] = useState(restore?.filter ?? "");
  const [changedOnly, setChangedOnly] = useState(restore?.changedOnly ?? false);
  const [selected, setSelected] = useState<string | null>(restore?.selected ?? null);
  const [running, setRunning] = useState(false);
  const [behaviour, setBehaviour] = useState(false);
  const [runError, setRunError] = useState<string | null>(null);


  useEffect(() => {
    kept = { key, result, revision: ranAt, sort, filter, changedOnly, selected };
  }, [key, result, ranAt, sort, filter, changedOnly, selected]);

  const compare = useCallback(async () => {
    setRunning(true);
    setRunError(null);
    try {
      // The revision the comparison sees (A's edits up to now).
      const at = await commands.sessionRevision();
      const r = await runJob("diff A ↔ B", async (job, channel) => unwrap(await commands.runDiff(job, channel)));
      setResult(r);
      setRanAt(at);
      setSelected((cur) => (cur && r.rows.some((x) => x.name === cur) ? cur : (sortRows(r.rows, sort)[0]?.name ?? null)));
    } catch (e) {
      const d = describeFailure(e);
      setRunError(d.code === "Canceled" ? "Comparison canceled." : `${d.title}: ${d.detail}`);
    } finally {
      setRunning(false);
    }
  }, [runJob, sort]);

  // Another model opened as A: the ranking is for the old one (a fresh one runs below).
  const pathA = summary?.path ?? null;
  const shownA = useRef(pathA);
  useEffect(() => {
    if (shownA.current === pathA) return;
    shownA.current = pathA;
    setResult(null);
    setSelected(null);
    setRunError(null);
  }, [pathA]);

  // A freshly opened B is compared right away.
  useEffect(() => {
    if (summary && b && result === null && !running && runError === null) void compare();
  }, [summary, b, result, running, runError, compare]);

  if (!summary) return <NoModel screen="diff" />;

  const onOpened = (info: DiffModelInfo | null) => {
    setB(info);
    setResult(null);
    setSelected(null);
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
