/**
 * The Diff screen's behaviour diff: the open model as edited (A) against model B over a text —
 * perplexity of each, KL(A ‖ B) mean and p99, top-1 agreement, per token: what
 * `llama-perplexity --kl-divergence` measures offline (base vs finetune, F16 vs Q4_K), here in
 * the editor. The last report is kept per (A, B) while other screens are open.
 */
import { useEffect, useState } from "react";
import type { BehaviourView } from "../../bindings";
import { commands } from "../../lib/ipc";
import { BehaviourCard } from "../run/BehaviourCard";

interface Kept {
  key: string;
  textPath: string;
  evalTokens: string;
  report: BehaviourView | null;
  revision: number;
}

let kept: Kept | null = null;

export function DiffBehaviour({ pathA, pathB, revision }: { pathA: string; pathB: string; revision: number }) {
  const key = `${pathA}|${pathB}`;
  const restore = kept && kept.key === key ? kept : null;
  const [textPath, setTextPath] = useState(restore?.textPath ?? "");
  const [evalTokens, setEvalTokens] = useState(restore?.evalTokens ?? "256");
  const [report, setReport] = useState<BehaviourView | null>(restore?.report ?? null);
  const [at, setAt] = useState(restore?.revision ?? -1);

  useEffect(() => {
    kept = { key, textPath, evalTokens, report, revision: at };
  }, [key, textPath, evalTokens, report, at]);

  const nameB = pathB.split(/[\\/]/).pop() ?? "B";
  return (
    <div className="ops diff-behaviour" data-testid="diff-behaviour">
      <BehaviourCard
        textPath={textPath}
        setTextPath={setTextPath}
        evalTokens={evalTokens}
        setEvalTokens={setEvalTokens}
        report={report}
        setReport={(r) => {
          setReport(r);
          setAt(revision);
        }}
        stale={report !== null && at !== revision}
        measure={commands.diffBehaviour}
        names={{ a: "A", b: "B" }}
        subtitle={`A (the open model, edits included) vs B (${nameB}) over a text: what llama-perplexity --kl-divergence measures`}
      />
    </div>
  );
}
