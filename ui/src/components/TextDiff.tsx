/**
 * A text change shown as a diff: removed text struck through in red, added text in green,
 * long unchanged stretches left out ("⋯ 4,210 unchanged characters (96 lines) ⋯") with a
 * toggle for the whole text. Used wherever a metadata string changes (import preview).
 */
import { useMemo, useState } from "react";
import { condense, diffCounts, textDiff } from "../lib/text/textDiff";

export function TextDiff({ before, after, testId = "text-diff" }: { before: string; after: string; testId?: string }) {
  const [whole, setWhole] = useState(false);
  const parts = useMemo(() => textDiff(before, after), [before, after]);
  const shown = useMemo(() => (whole ? parts : condense(parts)), [parts, whole]);
  const { removed, added } = diffCounts(parts);
  const skipped = shown.some((p) => p.kind === "skip");
  return (
    <div className="text-diff" data-testid={testId}>
      <div className="text-diff-head">
        <span className="muted small">
          {before.length.toLocaleString("en-US")} → {after.length.toLocaleString("en-US")} characters:{" "}
          <span className="diff-added-count" data-testid={`${testId}-added`}>
            +{added.toLocaleString("en-US")}
          </span>{" "}
          <span className="diff-removed-count" data-testid={`${testId}-removed`}>
            −{removed.toLocaleString("en-US")}
          </span>
        </span>
        {(skipped || whole) && (
          <button type="button" className="ghost small" onClick={() => setWhole((w) => !w)} data-testid={`${testId}-whole`}>
            {whole ? "Show the changes only" : "Show the whole text"}
          </button>
        )}
      </div>
      <pre className="text-diff-body">
        {shown.map((p, i) =>
          p.kind === "skip" ? (
            <span key={i} className="diff-skip" data-testid="diff-skip">
              {`⋯ ${p.chars.toLocaleString("en-US")} unchanged character${p.chars === 1 ? "" : "s"}${p.lines > 0 ? ` (${p.lines.toLocaleString("en-US")} line${p.lines === 1 ? "" : "s"})` : ""} ⋯\n`}
            </span>
          ) : p.kind === "same" ? (
            <span key={i}>{p.text}</span>
          ) : p.kind === "added" ? (
            <ins key={i} className="diff-added" data-testid="diff-added">
              {p.text}
            </ins>
          ) : (
            <del key={i} className="diff-removed" data-testid="diff-removed">
              {p.text}
            </del>
          ),
        )}
      </pre>
    </div>
  );
}
