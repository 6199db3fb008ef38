/**
 * The Surgery screen: build a recipe of operations on the open model — change tensor types,
 * drop/keep/repeat/insert layers, rename/remove/add tensors, merge, apply a LoRA, ablate a
 * direction — preview what it writes, write it to a new file (a job with progress and Cancel),
 * then open the result, compare it on the Diff screen, or save the recipe as a configuration
 * (`hotpatch apply CONFIG MODEL --out FILE` replays it). The operations are the CLI's.
 */
import { useMemo, useState } from "react";
import type { Channel } from "@tauri-apps/api/core";
import type { Progress, SurgeryPreviewView_Serialize as SurgeryPreviewView, SurgeryWritten } from "../bindings";
import { GGUF_FILTER, JSON_FILTER, pickOpenFile, pickSaveFile } from "../lib/dialog";
import { formatBytes, formatCount, formatDims } from "../lib/format";
import { commands, describeFailure, unwrap } from "../lib/ipc";
import { useEditState } from "../lib/editState";
import { useSession } from "../lib/session";
import {
  ablateOp,
  addOp,
  convertOp,
  describeOp,
  FieldError,
  mergeOp,
  moveUp,
  parseRecipeText,
  recipeJson,
  removeOp,
  renameOp,
  loraOp,
  type MergeMethod,
  type OpKind,
  type SurgeryOp,
} from "../lib/surgery/recipe";
import "./ops.css";
import "./surgery.css";
import { InlineError } from "../components/InlineError";

const KINDS: { kind: OpKind | "layers"; label: string }[] = [
  { kind: "convert", label: "Change types" },
  { kind: "layers", label: "Layers" },
  { kind: "rename", label: "Rename tensors" },
  { kind: "remove", label: "Remove tensors" },
  { kind: "add", label: "Add a tensor" },
  { kind: "merge", label: "Merge" },
  { kind: "lora", label: "Apply LoRA" },
  { kind: "ablate", label: "Ablate a direction" },
];

function message(e: unknown): string {
  if (e instanceof FieldError) return e.message;
  const d = describeFailure(e);
  return d.detail;
}

/** A path field with a Browse… button. */
function PathField({ value, onChange, testId, placeholder, filters = [GGUF_FILTER] }: {
  value: string;
  onChange: (v: string) => void;
  testId: string;
  placeholder: string;
  filters?: { name: string; extensions: string[] }[];
}) {
  return (
    <span className="surgery-path">
      <input className="mono" data-testid={testId} spellCheck={false} placeholder={placeholder} value={value} onChange={(e) => onChange(e.target.value)} />
      <button
        type="button"
        className="ghost"
        onClick={() =>
          void pickOpenFile(filters).then((p) => {
            if (p) onChange(p);
          })
        }
      >
        Browse…
      </button>
    </span>
  );
}

/** `onAdd` previews the recipe with the new operation and resolves to the backend's refusal
 * (then nothing is added) or null. */
function OperationForm({ onAdd }: { onAdd: (op: SurgeryOp) => Promise<string | null> }) {
  const [kind, setKind] = useState<OpKind>("convert");
  const [error, setError] = useState<string | null>(null);
  // One field set per form; kept when switching so nothing typed is lost.
  const [types, setTypes] = useState("");
  const [layerMode, setLayerMode] = useState<"drop" | "keep" | "repeat" | "insert">("drop");
  const [layerList, setLayerList] = useState("");
  const [layerFrom, setLayerFrom] = useState("");
  const [layerAt, setLayerAt] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [tensor, setTensor] = useState("");
  const [addName, setAddName] = useState("");
  const [addPath, setAddPath] = useState("");
  const [addTensor, setAddTensor] = useState("");
  const [addType, setAddType] = useState("");
  const [method, setMethod] = useState<MergeMethod>("linear");
  const [models, setModels] = useState("");
  const [t, setT] = useState("0.5");
  const [weights, setWeights] = useState("");
  const [density, setDensity] = useState("");
  const [lambda, setLambda] = useState("");
  const [seed, setSeed] = useState("");
  const [adapter, setAdapter] = useState("");
  const [scale, setScale] = useState("1");
  const [direction, setDirection] = useState("");
  const [dirLayer, setDirLayer] = useState("");
  const [ablateLayers, setAblateLayers] = useState("");
  const [embeddings, setEmbeddings] = useState(true);
  const [ablateScale, setAblateScale] = useState("1");

  const add = async () => {
    setError(null);
    try {
      let op: SurgeryOp;
      switch (kind) {
        case "convert":
          op = convertOp(types);
          break;
        case "layers": {
          if (layerList.trim() === "") throw new FieldError("Layers", "give a list like 3,5-7");
          let at: number | null = null;
          if (layerAt.trim() !== "") {
            at = Number(layerAt.trim());
            if (!Number.isInteger(at) || at < 0) throw new FieldError("Before layer", `"${layerAt.trim()}" is not a layer number`);
          }
          const slices = unwrap(await commands.surgeryLayerSlices(layerMode, layerList, layerMode === "insert" ? layerFrom : null, layerMode === "insert" ? at : null));
          op = { op: "layers", slices: slices.map((s) => (s.model ? { model: s.model, layers: s.layers } : { layers: s.layers })) };
          break;
        }
        case "rename":
          op = renameOp(from, to);
          break;
        case "remove":
          op = removeOp(tensor);
          break;
        case "add":
          op = addOp(addName, addPath, addTensor, addType);
          break;
        case "merge":
          op = mergeOp({ method, models, t, weights, density, lambda, seed });
          break;
        case "lora":
          op = loraOp(adapter, scale);
          break;
        case "ablate":
          op = ablateOp(direction, dirLayer, ablateLayers, embeddings, ablateScale);
          break;
      }
      const refused = await onAdd(op);
      if (refused) setError(refused);
    } catch (e) {
      setError(message(e));
    }
  };

  const usesT = method === "linear" || method === "slerp";
  const usesDensity = method === "ties" || method === "dare" || method === "dare_ties";
  return (
    <section className="card" data-testid="surgery-form">
      <header className="card-head">
        <h3>Add an operation</h3>
      </header>
      <div className="surgery-kinds" role="tablist">
        {KINDS.map((k) => (
          <button
            key={k.kind}
            type="button"
            role="tab"
            aria-selected={kind === k.kind}
            className={`tab${kind === k.kind ? " active" : ""}`}
            data-testid={`surgery-kind-${k.kind}`}
            onClick={() => {
              setKind(k.kind);
              setError(null);
            }}
          >
            {k.label}
          </button>
        ))}
      </div>
      <div className="surgery-fields">
        {kind === "convert" && (
          <label>
            Types (GLOB=TYPE, one per line or comma-separated; first match wins)
            <textarea data-testid="surgery-types" rows={3} spellCheck={false} placeholder={"blk.*.ffn_down.weight=Q8_0\n*=Q4_K"} value={types} onChange={(e) => setTypes(e.target.value)} />
          </label>
        )}
        {kind === "layers" && (
          <>
            <div className="surgery-inline">
              {(["drop", "keep", "repeat", "insert"] as const).map((m) => (
                <label key={m} className="check">
                  <input type="radio" name="layer-mode" checked={layerMode === m} onChange={() => setLayerMode(m)} data-testid={`surgery-layers-${m}`} />
                  {m}
                </label>
              ))}
            </div>
            <label>
              Layers (like 3,5-7)
              <input className="mono" data-testid="surgery-layer-list" value={layerList} onChange={(e) => setLayerList(e.target.value)} />
            </label>
            {layerMode === "insert" && (
              <>
                <label>
                  From another model of the same architecture (empty: this one)
                  <PathField value={layerFrom} onChange={setLayerFrom} testId="surgery-layer-from" placeholder="/path/to/other.gguf" />
                </label>
                <label>
                  Before layer (empty: after the last)
                  <input className="w-num" value={layerAt} onChange={(e) => setLayerAt(e.target.value)} data-testid="surgery-layer-at" />
                </label>
              </>
            )}
            <p className="hint">Layers are renumbered from 0; block_count and every per-layer metadata array follow.</p>
          </>
        )}
        {kind === "rename" && (
          <>
            <label>
              From (a name, or a glob whose * parts go into the * of To)
              <input className="mono" data-testid="surgery-rename-from" value={from} onChange={(e) => setFrom(e.target.value)} placeholder="blk.*.attn_q.weight" />
            </label>
            <label>
              To
              <input className="mono" data-testid="surgery-rename-to" value={to} onChange={(e) => setTo(e.target.value)} placeholder="blk.*.attn_q_renamed.weight" />
            </label>
          </>
        )}
        {kind === "remove" && (
          <label>
            Tensor (a name or a glob)
            <input className="mono" data-testid="surgery-remove" value={tensor} onChange={(e) => setTensor(e.target.value)} placeholder="blk.*.ffn_gate.weight" />
          </label>
        )}
        {kind === "add" && (
          <>
            <label>
              Name of the new tensor (an existing name is replaced)
              <input className="mono" data-testid="surgery-add-name" value={addName} onChange={(e) => setAddName(e.target.value)} />
            </label>
            <label>
              From a .gguf, .npy or .safetensors file
              <PathField
                value={addPath}
                onChange={setAddPath}
                testId="surgery-add-path"
                placeholder="/path/to/values.npy"
                filters={[{ name: "Tensor sources", extensions: ["gguf", "npy", "safetensors"] }]}
              />
            </label>
            <label>
              Tensor in that file (.gguf and .safetensors)
              <input className="mono" data-testid="surgery-add-tensor" value={addTensor} onChange={(e) => setAddTensor(e.target.value)} />
            </label>
            <label>
              Type (empty: the source&apos;s)
              <input className="w-num mono" data-testid="surgery-add-type" value={addType} onChange={(e) => setAddType(e.target.value)} placeholder="Q8_0" />
            </label>
          </>
        )}
        {kind === "merge" && (
          <>
            <label>
              Method
              <select data-testid="surgery-merge-method" value={method} onChange={(e) => setMethod(e.target.value as MergeMethod)}>
                <option value="linear">linear</option>
                <option value="slerp">SLERP</option>
                <option value="task">task arithmetic</option>
                <option value="ties">TIES</option>
                <option value="dare">DARE</option>
                <option value="dare_ties">DARE-TIES</option>
              </select>
            </label>
            <label>
              Models to merge with the open one (the base), one path per line; any quantization
              <textarea data-testid="surgery-merge-models" rows={2} spellCheck={false} value={models} onChange={(e) => setModels(e.target.value)} />
            </label>
            {usesT && (
              <label>
                t (0 is the open model, 1 the other; a gradient like [0, 0.5, 1] spreads over the layers)
                <input className="mono" data-testid="surgery-merge-t" value={t} onChange={(e) => setT(e.target.value)} />
              </label>
            )}
            <label>
              Weights, one per model separated by ; (numbers or gradients; empty: 1 each)
              <input className="mono" data-testid="surgery-merge-weights" value={weights} onChange={(e) => setWeights(e.target.value)} />
            </label>
            {usesDensity && (
              <label>
                Density (fraction of each task vector kept)
                <input className="mono" data-testid="surgery-merge-density" value={density} onChange={(e) => setDensity(e.target.value)} placeholder="0.5" />
              </label>
            )}
            {method !== "linear" && method !== "slerp" && (
              <label>
                λ (task-vector scale; empty: 1)
                <input className="w-num" value={lambda} onChange={(e) => setLambda(e.target.value)} />
              </label>
            )}
            {(method === "dare" || method === "dare_ties") && (
              <label>
                Seed of DARE&apos;s drops
                <input className="w-num" value={seed} onChange={(e) => setSeed(e.target.value)} placeholder="0" />
              </label>
            )}
            <p className="hint">Each output tensor keeps the open model&apos;s type, re-quantized with the byte-exact quantizers.</p>
          </>
        )}
        {kind === "lora" && (
          <>
            <label>
              Adapter (a GGUF LoRA as llama.cpp&apos;s convert_lora_to_gguf writes it)
              <PathField value={adapter} onChange={setAdapter} testId="surgery-lora-adapter" placeholder="/path/to/adapter.gguf" />
            </label>
            <label>
              Scale (llama.cpp&apos;s --lora-scaled; the delta is scale · alpha / rank · B·A)
              <input className="w-num" data-testid="surgery-lora-scale" value={scale} onChange={(e) => setScale(e.target.value)} />
            </label>
            <p className="hint">Merged into each tensor in its own type (quantized and split models too).</p>
          </>
        )}
        {kind === "ablate" && (
          <>
            <label>
              Direction (a control-vector GGUF as llama-cvector-generator writes it, or a .npy)
              <PathField
                value={direction}
                onChange={setDirection}
                testId="surgery-ablate-direction"
                placeholder="/path/to/refusal.gguf"
                filters={[{ name: "Directions", extensions: ["gguf", "npy"] }]}
              />
            </label>
            <label>
              Which direction of the file (direction.N or the .npy row; needed when it holds several)
              <input className="w-num" value={dirLayer} onChange={(e) => setDirLayer(e.target.value)} data-testid="surgery-ablate-layer" />
            </label>
            <label>
              From the attention output and FFN down of layers (empty: all)
              <input className="mono" value={ablateLayers} onChange={(e) => setAblateLayers(e.target.value)} data-testid="surgery-ablate-layers" />
            </label>
            <label className="check">
              <input type="checkbox" checked={embeddings} onChange={(e) => setEmbeddings(e.target.checked)} />
              and from the token embeddings
            </label>
            <label>
              Scale (1 removes the direction entirely)
              <input className="w-num" value={ablateScale} onChange={(e) => setAblateScale(e.target.value)} />
            </label>
            <p className="hint">W ← (I − s·r rᵀ) W on every tensor that writes into the residual stream.</p>
          </>
        )}
      </div>
      <InlineError error={error} testId="surgery-form-error" />
      <div className="actions">
        <button type="button" className="primary" data-testid="surgery-add" onClick={() => void add()}>
          Add to recipe
        </button>
      </div>
    </section>
  );
}

function Preview({ preview }: { preview: SurgeryPreviewView }) {
  const [all, setAll] = useState(false);
  const shown = useMemo(() => preview.tensors.filter((t) => all || t.changed), [preview, all]);
  return (
    <section className="card" data-testid="surgery-preview">
      <header className="card-head">
        <h3>Preview</h3>
        <span className="muted" data-testid="surgery-totals">
          {formatCount(preview.tensorCount)} tensors, {formatCount(preview.changed)} changed; data {formatBytes(preview.dataBytes)} (was {formatBytes(preview.inputBytes)})
        </span>
      </header>
      {preview.notes.length > 0 && (
        <ul className="surgery-notes" data-testid="surgery-notes">
          {preview.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
      {preview.metadata.length > 0 && (
        <table className="table" data-testid="surgery-metadata">
          <thead>
            <tr>
              <th>Metadata</th>
              <th>Before</th>
              <th>After</th>
            </tr>
          </thead>
          <tbody>
            {preview.metadata.map((m) => (
              <tr key={m.key} data-testid="surgery-meta-row" data-key={m.key}>
                <td className="mono">{m.key}</td>
                <td className="mono surgery-value">{m.before ?? "absent"}</td>
                <td className="mono surgery-value" data-testid="surgery-meta-after">
                  {m.after ?? "absent"}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <label className="check small-text">
        <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} data-testid="surgery-show-all" />
        every tensor (not only the changed ones)
      </label>
      <div className="table-scroll">
        <table className="table" data-testid="surgery-tensors">
          <thead>
            <tr>
              <th>Tensor</th>
              <th>Type</th>
              <th>Shape</th>
              <th className="num">Bytes</th>
              <th>What happens</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((t) => (
              <tr key={`${t.name}/${t.action}`} data-testid="surgery-tensor-row" data-name={t.name} data-action={t.action}>
                <td className="mono" title={t.origin}>
                  {t.name}
                </td>
                <td className="mono">{t.ty === "" ? t.sourceTy : t.ty === t.sourceTy ? t.ty : `${t.sourceTy}→${t.ty}`}</td>
                <td className="mono">{t.dims.length ? formatDims(t.dims) : ""}</td>
                <td className="num">{formatBytes(t.bytes)}</td>
                <td className="surgery-action">{t.action}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function SurgeryScreen() {
  const { summary, revision, runJob, open, setScreen } = useSession();
  const editState = useEditState(revision, summary?.path ?? null);
  const [ops, setOps] = useState<SurgeryOp[]>([]);
  const [text, setText] = useState<string | null>(null);
  const [preview, setPreview] = useState<SurgeryPreviewView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [out, setOut] = useState("");
  const [written, setWritten] = useState<SurgeryWritten | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const change = (next: SurgeryOp[]) => {
    setOps(next);
    setText(null);
    setPreview(null);
    setWritten(null);
    setNote(null);
  };
  const recipe = recipeJson(ops);

  /** Previews `list`; returns the backend's refusal (the preview is then cleared) or null. */
  const doPreview = async (list = ops): Promise<string | null> => {
    setError(null);
    setBusy(true);
    try {
      setPreview(unwrap(await commands.surgeryPreview(recipeJson(list))));
      return null;
    } catch (e) {
      setPreview(null);
      return message(e);
    } finally {
      setBusy(false);
    }
  };
  const previewShown = async (list = ops) => {
    const refused = await doPreview(list);
    if (refused) setError(refused);
  };
  const applyText = () => {
    if (text === null) return;
    try {
      const list = parseRecipeText(text);
      change(list);
      void previewShown(list);
    } catch (e) {
      setError(message(e));
    }
  };
  const write = async () => {
    setError(null);
    setWritten(null);
    setBusy(true);
    try {
      const w = await runJob("surgery: writing the new model", async (job: number, channel: Channel<Progress>) =>
        unwrap(await commands.surgeryWrite(recipe, out, job, channel)),
      );
      setWritten(w);
    } catch (e) {
      const d = describeFailure(e);
      setError(d.code === "Canceled" ? "Canceled: the new file was not written." : message(e));
    } finally {
      setBusy(false);
    }
  };
  const [recordPath, setRecordPath] = useState("");
  const record = async () => {
    setNote(null);
    setError(null);
    try {
      const dest = recordPath.trim();
      if (!dest) throw new FieldError("Configuration file", "give the path of the .json to write");
      unwrap(await commands.surgeryRecord(recipe, dest));
      setNote(`Saved the recipe as ${dest}: hotpatch apply ${dest} MODEL --out FILE replays it.`);
    } catch (e) {
      setError(message(e));
    }
  };
  const browseRecord = async () => {
    const p = await pickSaveFile("surgery.json", [JSON_FILTER]);
    if (p) setRecordPath(p);
  };
  const compare = async () => {
    if (!written) return;
    try {
      unwrap(await commands.openDiffModel(written.path));
      setScreen("diff");
    } catch (e) {
      setError(message(e));
    }
  };
  const browseOut = async () => {
    const p = await pickSaveFile(summary ? summary.fileName.replace(/\.gguf$/i, "") + "-surgery.gguf" : "out.gguf");
    if (p) setOut(p);
  };

  if (!summary)
    return (
      <div className="screen ops" data-testid="screen-surgery">
        <section className="card empty-card">
          <h2>No model open</h2>
          <p className="muted">Open a model: the surgery makes a new file from it.</p>
        </section>
      </div>
    );

  return (
    <div className="screen ops surgery-screen" data-testid="screen-surgery">
      <div className="surgery-grid">
        <div className="surgery-col">
          <OperationForm
            onAdd={async (op) => {
              // An operation joins the recipe only if the recipe with it still plans.
              const next = [...ops, op];
              const refused = await doPreview(next);
              if (refused) {
                if (ops.length > 0) void doPreview(ops);
                return refused;
              }
              setOps(next);
              setText(null);
              setWritten(null);
              setNote(null);
              return null;
            }}
          />
          <section className="card" data-testid="surgery-recipe">
            <header className="card-head">
              <h3>
                Recipe <span className="count">{ops.length} operations, run in order</span>
              </h3>
            </header>
            {editState?.modified && (
              <p className="note warn small" data-testid="surgery-unsaved">
                The open model has unsaved edits: surgery reads the file on disk. Save first to include them.
              </p>
            )}
            <ol className="surgery-ops">
              {ops.map((op, i) => (
                <li key={i} data-testid="surgery-op">
                  <span className="surgery-op-n">{i + 1}.</span>
                  <span className="mono surgery-op-text">{describeOp(op)}</span>
                  <span className="surgery-op-tools">
                    <button type="button" className="ghost" disabled={i === 0} onClick={() => change(moveUp(ops, i))} title="Move up">
                      ↑
                    </button>
                    <button type="button" className="ghost" onClick={() => change(ops.filter((_, j) => j !== i))} title="Remove" data-testid="surgery-op-remove">
                      ✕
                    </button>
                  </span>
                </li>
              ))}
            </ol>
            <details>
              <summary>As JSON (a configuration&apos;s surgery section; paste one to load it)</summary>
              <textarea
                className="mono surgery-json"
                data-testid="surgery-json"
                rows={8}
                spellCheck={false}
                value={text ?? recipe}
                onChange={(e) => setText(e.target.value)}
              />
              <div className="actions">
                <button type="button" onClick={applyText} disabled={text === null} data-testid="surgery-json-apply">
                  Use this recipe
                </button>
              </div>
            </details>
            <div className="actions">
              <button type="button" className="ghost" onClick={() => change([])} disabled={ops.length === 0}>
                Clear
              </button>
              <button type="button" onClick={() => void previewShown()} disabled={busy || ops.length === 0} data-testid="surgery-preview-button">
                Preview
              </button>
            </div>
            <div className="surgery-path surgery-record">
              <input
                className="mono"
                data-testid="surgery-record-path"
                spellCheck={false}
                placeholder="/path/to/recipe.json"
                value={recordPath}
                onChange={(e) => setRecordPath(e.target.value)}
                aria-label="Configuration file"
              />
              <button type="button" className="ghost" onClick={() => void browseRecord()}>
                Browse…
              </button>
              <button type="button" onClick={() => void record()} disabled={ops.length === 0 || !recordPath.trim()} data-testid="surgery-record">
                Save as configuration
              </button>
            </div>
          </section>
        </div>
        <div className="surgery-col">
          <InlineError error={error} testId="surgery-error" />
          {note && (
            <div className="note ok small" data-testid="surgery-note">
              {note}
            </div>
          )}
          <section className="card" data-testid="surgery-output">
            <header className="card-head">
              <h3>Write</h3>
              <span className="muted">a new file, atomically; the open model is not changed</span>
            </header>
            <div className="surgery-path">
              <input className="mono" data-testid="surgery-out" spellCheck={false} placeholder="/path/to/new-model.gguf" value={out} onChange={(e) => setOut(e.target.value)} />
              <button type="button" className="ghost" onClick={() => void browseOut()}>
                Browse…
              </button>
              <button type="button" className="primary" data-testid="surgery-write" disabled={busy || ops.length === 0 || !out.trim()} onClick={() => void write()}>
                Write
              </button>
            </div>
            {written && (
              <div className="surgery-written" data-testid="surgery-written">
                <div>
                  Wrote <span className="mono">{written.path}</span>: {formatCount(written.tensors)} tensors, {formatBytes(written.fileSize)} in{" "}
                  {(written.millis / 1000).toFixed(1)} s.
                </div>
                <div className="actions">
                  <button type="button" onClick={() => void compare()} data-testid="surgery-compare">
                    Compare on the Diff screen
                  </button>
                  <button type="button" onClick={() => void open(written.path)} data-testid="surgery-open">
                    Open the new model
                  </button>
                </div>
              </div>
            )}
          </section>
          {preview ? (
            <Preview preview={preview} />
          ) : (
            <section className="card">
              <p className="muted">Add operations to see what the new file holds: every tensor&apos;s type and origin, and the metadata that follows.</p>
            </section>
          )}
        </div>
      </div>
    </div>
  );
}
