/**
 * Every byte operation on a range of the open model: the range comes from the selection in
 * the hex view or from the offset/length fields (hex or decimal). Each operation goes through
 * the session (journaled, undoable with Ctrl+Z, recorded for export); the backend's refusal
 * (protected range, out of bounds, a header write that would break the GGUF) shows here.
 */
import { useEffect, useState } from "react";
import type { BitKind, ByteOp } from "../../bindings";
import { formatOffset, parseHexBytes, parseOffset, type Parsed } from "../../lib/bytes/hex";
import { pickOpenFile } from "../../lib/dialog";
import { commands, describeFailure, unwrap } from "../../lib/ipc";
import { InlineError } from "../InlineError";

type OpName =
  | "write"
  | "fill"
  | "copy"
  | "swap"
  | "compare"
  | "xor"
  | "bits"
  | "rotateBits"
  | "rotateBytes"
  | "reverse"
  | "reverseElements"
  | "protect"
  | "unprotect";

const OPS: { name: OpName; label: string; help: string }[] = [
  { name: "write", label: "Write bytes", help: "Writes the bytes at the range's offset (the length is the bytes')." },
  { name: "fill", label: "Fill", help: "Fills the range with the pattern repeated." },
  { name: "copy", label: "Copy to", help: "Copies the range to the destination offset (overlap is safe)." },
  { name: "swap", label: "Swap with", help: "Exchanges the range with the same length at the other offset." },
  { name: "compare", label: "Compare", help: "Compares the range with another range or with another file. Changes nothing." },
  { name: "xor", label: "XOR key", help: "XORs the range with the key, repeated." },
  { name: "bits", label: "Bit operation", help: "AND / OR / XOR / NOT / shift each byte; the mask repeats and selects the bits that change." },
  { name: "rotateBits", label: "Rotate bits", help: "Rotates the bits inside each byte (positive: left, negative: right)." },
  { name: "rotateBytes", label: "Rotate range", help: "Rotates the whole range by n bytes (positive: towards its start, negative: towards its end)." },
  { name: "reverse", label: "Reverse range", help: "Reverses the order of the range's bytes." },
  { name: "reverseElements", label: "Reverse per element", help: "Reverses the byte order inside each element of w bytes (endianness swap)." },
  { name: "protect", label: "Protect", help: "Makes the range read-only for every layer." },
  { name: "unprotect", label: "Unprotect", help: "Removes the protections that lie inside the range." },
];

const BIT_KINDS: BitKind[] = ["and", "or", "xor", "not", "shl", "shr"];

function intIn(text: string, lo: number, hi: number, what: string): Parsed<number> {
  const t = text.trim();
  if (!/^[-+]?\d+$/.test(t)) return { ok: false, error: `${what} "${t}" is not a whole number` };
  const v = Number(t);
  if (v < lo || v > hi) return { ok: false, error: `${what} ${v} is not in ${lo}..${hi}` };
  return { ok: true, value: v };
}

export interface OpsPanelProps {
  /** The file of the model the operations change (0-based shard; 0 for a single file). */
  shard: number;
  size: number;
  selStart: number;
  selLen: number;
  onRange: (offset: number, len: number) => void;
  onApplied: () => void;
}

export function OpsPanel({ shard, size, selStart, selLen, onRange, onApplied }: OpsPanelProps) {
  const [op, setOp] = useState<OpName>("write");
  const [offText, setOffText] = useState(formatOffset(selStart));
  const [lenText, setLenText] = useState(String(selLen));
  const [hex, setHex] = useState("");
  const [other, setOther] = useState("");
  const [otherPath, setOtherPath] = useState("");
  const [compareFile, setCompareFile] = useState(false);
  const [kind, setKind] = useState<BitKind>("and");
  const [count, setCount] = useState("1");
  const [width, setWidth] = useState("4");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [result, setResult] = useState<string | null>(null);

  // Follow the selection in the view.
  useEffect(() => {
    setOffText(formatOffset(selStart));
    setLenText(String(selLen));
  }, [selStart, selLen]);

  const offset = parseOffset(offText, Math.max(0, size - 1));
  const len = parseOffset(lenText, size, "length");
  const rangeError = !offset.ok ? offset.error : !len.ok ? len.error : len.value === 0 ? "length is 0: select at least one byte" : null;

  const commitRange = (o: string, l: string) => {
    const po = parseOffset(o, Math.max(0, size - 1));
    const pl = parseOffset(l, size, "length");
    if (po.ok && pl.ok && pl.value > 0) onRange(po.value, Math.min(pl.value, size - po.value));
  };

  /** The request for the chosen operation, or what is wrong with the fields. */
  const build = (): Parsed<ByteOp | { compare: true }> => {
    if (rangeError && op !== "write") return { ok: false, error: rangeError };
    if (!offset.ok) return offset;
    const o = offset.value;
    const l = len.ok ? len.value : 0;
    const needHex = (what: string): Parsed<string> => {
      const h = parseHexBytes(hex);
      return h.ok ? { ok: true, value: hex } : { ok: false, error: `${what}: ${h.error}` };
    };
    const otherOffset = () => parseOffset(other, Math.max(0, size - 1), "other offset");
    switch (op) {
      case "write": {
        const h = needHex("bytes");
        return h.ok ? { ok: true, value: { op: "write", offset: o, hex: h.value } } : h;
      }
      case "fill": {
        const h = needHex("pattern");
        return h.ok ? { ok: true, value: { op: "fill", offset: o, len: l, hex: h.value } } : h;
      }
      case "xor": {
        const h = needHex("key");
        return h.ok ? { ok: true, value: { op: "xor", offset: o, len: l, hex: h.value } } : h;
      }
      case "bits": {
        const h = needHex("mask");
        if (!h.ok) return h;
        const b = kind === "shl" || kind === "shr" ? intIn(count, 0, 7, "shift") : ({ ok: true, value: 0 } as const);
        if (!b.ok) return b;
        return { ok: true, value: { op: "bits", offset: o, len: l, kind, bits: b.value, hex: h.value } };
      }
      case "copy": {
        const t = otherOffset();
        return t.ok ? { ok: true, value: { op: "copy", from: o, to: t.value, len: l } } : t;
      }
      case "swap": {
        const t = otherOffset();
        return t.ok ? { ok: true, value: { op: "swap", a: o, b: t.value, len: l } } : t;
      }
      case "rotateBits": {
        const b = intIn(count, -7, 7, "bits");
        return b.ok ? { ok: true, value: { op: "rotateBits", offset: o, len: l, bits: b.value } } : b;
      }
      case "rotateBytes": {
        const b = intIn(count, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "bytes");
        return b.ok ? { ok: true, value: { op: "rotateBytes", offset: o, len: l, n: b.value } } : b;
      }
      case "reverse":
        return { ok: true, value: { op: "reverse", offset: o, len: l } };
      case "reverseElements": {
        const w = intIn(width, 1, 1 << 20, "element width");
        return w.ok ? { ok: true, value: { op: "reverseElements", offset: o, len: l, width: w.value } } : w;
      }
      case "protect":
        return { ok: true, value: { op: "protect", offset: o, len: l } };
      case "unprotect":
        return { ok: true, value: { op: "unprotect", offset: o, len: l } };
      case "compare":
        return { ok: true, value: { compare: true } };
    }
  };

  const apply = async () => {
    setError(null);
    setResult(null);
    const req = build();
    if (!req.ok) {
      setError(req.error);
      return;
    }
    setBusy(true);
    try {
      if ("compare" in req.value) {
        if (!offset.ok || !len.ok) return;
        let withSide;
        if (compareFile) {
          if (!otherPath.trim()) throw new Error("enter the path of the file to compare with");
          const oo = parseOffset(other || "0", Number.MAX_SAFE_INTEGER, "offset in the other file");
          if (!oo.ok) throw new Error(oo.error);
          withSide = { with: "file" as const, path: otherPath.trim(), offset: oo.value };
        } else {
          const oo = parseOffset(other, Math.max(0, size - 1), "other offset");
          if (!oo.ok) throw new Error(oo.error);
          withSide = { with: "range" as const, offset: oo.value };
        }
        const c = unwrap(await commands.bytesCompare(shard, { offset: offset.value, len: len.value, with: withSide }));
        setResult(
          c.differing === 0
            ? `identical (${c.len} bytes)`
            : `${c.differing} of ${c.len} bytes differ; first at +${c.firstDifference} (${formatOffset(offset.value + (c.firstDifference ?? 0))})`,
        );
      } else {
        const out = unwrap(await commands.bytesApply(shard, req.value));
        setResult(out.message);
        onApplied();
      }
    } catch (e) {
      setError(e instanceof Error && !("code" in e) ? e.message : describeFailure(e).detail);
    } finally {
      setBusy(false);
    }
  };

  const info = OPS.find((x) => x.name === op)!;
  const hexLabel = op === "write" ? "bytes" : op === "fill" ? "pattern" : op === "xor" ? "key" : "mask";
  return (
    <section className="card bytes-card" data-testid="ops-panel">
      <div className="card-title">
        <h3>Operations</h3>
        <span className="muted small">undo: Ctrl+Z</span>
      </div>
      <div className="ops-grid">
        <label>
          offset
          <input
            className={`filter mono ${!offset.ok ? "invalid" : ""}`}
            value={offText}
            onChange={(e) => setOffText(e.target.value)}
            onBlur={() => commitRange(offText, lenText)}
            onKeyDown={(e) => e.key === "Enter" && commitRange(offText, lenText)}
            data-testid="op-offset"
          />
        </label>
        <label>
          length
          <input
            className={`filter mono ${!len.ok ? "invalid" : ""}`}
            value={lenText}
            onChange={(e) => setLenText(e.target.value)}
            onBlur={() => commitRange(offText, lenText)}
            onKeyDown={(e) => e.key === "Enter" && commitRange(offText, lenText)}
            data-testid="op-length"
          />
        </label>
        <label className="span2">
          operation
          <select className="filter" value={op} onChange={(e) => { setOp(e.target.value as OpName); setError(null); setResult(null); }} data-testid="op-select">
            {OPS.map((o) => (
              <option key={o.name} value={o.name}>
                {o.label}
              </option>
            ))}
          </select>
        </label>
        {op === "bits" && (
          <label className={kind === "shl" || kind === "shr" ? "" : "span2"}>
            bit op
            <select className="filter" value={kind} onChange={(e) => setKind(e.target.value as BitKind)} data-testid="op-bitkind">
              {BIT_KINDS.map((k) => (
                <option key={k} value={k}>
                  {k.toUpperCase()}
                </option>
              ))}
            </select>
          </label>
        )}
        {(op === "rotateBits" || op === "rotateBytes" || (op === "bits" && (kind === "shl" || kind === "shr"))) && (
          <label className={op === "bits" ? "" : "span2"}>
            {op === "rotateBytes" ? "by n bytes" : op === "rotateBits" ? "by bits (−7…7)" : "shift bits (0…7)"}
            <input className="filter mono" value={count} onChange={(e) => setCount(e.target.value)} data-testid="op-count" />
          </label>
        )}
        {(op === "write" || op === "fill" || op === "xor" || op === "bits") && (
          <label className="span2">
            {hexLabel} (hex)
            <input
              className="filter mono"
              placeholder={op === "bits" ? "ff" : "de ad be ef"}
              value={hex}
              onChange={(e) => setHex(e.target.value)}
              data-testid="op-hex"
            />
          </label>
        )}
        {op === "reverseElements" && (
          <label className="span2">
            element width (bytes)
            <input className="filter mono" value={width} onChange={(e) => setWidth(e.target.value)} data-testid="op-width" />
          </label>
        )}
        {op === "compare" && (
          <div className="span2 seg" role="group" aria-label="compare with">
            <button type="button" className={!compareFile ? "on" : ""} onClick={() => setCompareFile(false)}>
              this file
            </button>
            <button type="button" className={compareFile ? "on" : ""} onClick={() => setCompareFile(true)} data-testid="compare-file">
              another file
            </button>
          </div>
        )}
        {op === "compare" && compareFile && (
          <label className="span2">
            other file
            <span className="row-form">
              <input className="filter mono grow" placeholder="/path/to/other.gguf" value={otherPath} onChange={(e) => setOtherPath(e.target.value)} data-testid="op-path" />
              <button
                type="button"
                className="ghost"
                onClick={() => void pickOpenFile([{ name: "Any file", extensions: ["*"] }]).then((p) => p && setOtherPath(p))}
              >
                Browse…
              </button>
            </span>
          </label>
        )}
        {(op === "copy" || op === "swap" || op === "compare") && (
          <label className="span2">
            {op === "copy" ? "destination offset" : op === "swap" ? "other range's offset" : compareFile ? "offset in the other file" : "other range's offset"}
            <input className="filter mono" placeholder="0x…" value={other} onChange={(e) => setOther(e.target.value)} data-testid="op-other" />
          </label>
        )}
      </div>
      <p className="muted small op-help">{info.help}</p>
      <div className="row-form">
        <button className="primary" disabled={busy} onClick={() => void apply()} data-testid="op-apply">
          {op === "compare" ? "Compare" : "Apply"}
        </button>
        {op !== "write" && <InlineError error={rangeError} inline />}
      </div>
      <InlineError error={error} testId="op-error" />
      {result && (
        <p className="op-result" data-testid="op-result">
          {result}
        </p>
      )}
    </section>
  );
}
