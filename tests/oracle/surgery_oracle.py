#!/usr/bin/env python3
"""The numpy/gguf-py reference for hotpatch's model surgery (crates/core/src/surgery).

Every check reads the files with gguf-py's GGUFReader, recomputes the expected output with numpy
(dequantizing with gguf-py, quantizing with gguf-py where it can and with ggml's own reference
quantizer, tests/oracle/ggml.py, for the K-quants), and prints one JSON report; the Rust tests
assert on it.

  fixture OUT [--layers N] [--seed S] [--type T] [--noise X] [--embd E]
      a llama-architecture model (real llama.cpp loads it) whose layers differ, with per-layer
      metadata arrays (head_count_kv, feed_forward_length, and `llama.test.layer_id` = 100+i)
  expect-convert IN OUT       every tensor of OUT: same bytes as IN's, or IN re-encoded
  expect-layers IN OUT ORDER [--other OTHER]
      ORDER: comma list of source layers, `o` prefix for OTHER's (`0,1,o2,3`)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent / "scripts"))

GGUFPY_QUANT = {T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0}


def tensors(path: str) -> dict[str, gguf.ReaderTensor]:
    r = gguf.GGUFReader(path)
    return {t.name: t for t in r.tensors}, r


def values(t: gguf.ReaderTensor) -> np.ndarray:
    """f32 values, numpy shape (rows, ne0)."""
    ne0 = int(t.shape[0])
    v = gguf.quants.dequantize(t.data, t.tensor_type)
    return np.asarray(v, dtype=np.float32).reshape(-1, ne0)


def encode(v: np.ndarray, ty: T) -> bytes:
    v = np.ascontiguousarray(v, dtype=np.float32)
    if ty == T.F32:
        return v.tobytes()
    if ty in GGUFPY_QUANT:
        return gguf.quants.quantize(v, ty).tobytes()
    import ggml
    return ggml.quantize(int(ty), v, v.shape[-1])


def raw(t: gguf.ReaderTensor) -> bytes:
    return bytes(np.asarray(t.data).view(np.uint8).tobytes())


def meta(r: gguf.GGUFReader, key: str):
    f = r.fields.get(key)
    if f is None:
        return None
    return f.contents()


def fixture(a) -> None:
    import make_demo_model as demo
    rng = np.random.default_rng(a.seed)
    toks, scores, ttypes = demo.vocab()
    n_embd, n_ff, n_head, n_kv = a.embd, a.embd * 2, 4, 2
    w = gguf.GGUFWriter(a.out, "llama")
    w.add_name("surgery fixture")
    w.add_context_length(256)
    w.add_embedding_length(n_embd)
    w.add_block_count(a.layers)
    w.add_head_count(n_head)
    w.add_key_value("llama.attention.head_count_kv", [n_kv] * a.layers, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32)
    w.add_key_value("llama.feed_forward_length", [n_ff] * a.layers, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32)
    w.add_key_value("llama.test.layer_id", [100 + i for i in range(a.layers)], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT32)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(ttypes)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if a.type == "F32" else gguf.LlamaFileType.MOSTLY_F16)
    qt = T[a.type]
    noise = np.random.default_rng(a.seed + 1000)

    def add(name: str, shape: tuple, scale: float, matrix: bool = True) -> None:
        v = rng.standard_normal(shape).astype(np.float32) * np.float32(scale)
        if a.noise:
            v = v + noise.standard_normal(shape).astype(np.float32) * np.float32(scale * a.noise)
        if not matrix or qt == T.F32:
            w.add_tensor(name, v)
        elif qt == T.F16:
            w.add_tensor(name, v.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(v, qt), raw_dtype=qt)

    n_vocab = len(toks)
    add("token_embd.weight", (n_vocab, n_embd), 0.5)
    hd = n_embd // n_head
    for i in range(a.layers):
        add(f"blk.{i}.attn_norm.weight", (n_embd,), 1.0, matrix=False)
        add(f"blk.{i}.attn_q.weight", (n_embd, n_embd), 0.06)
        add(f"blk.{i}.attn_k.weight", (hd * n_kv, n_embd), 0.06)
        add(f"blk.{i}.attn_v.weight", (hd * n_kv, n_embd), 0.06)
        add(f"blk.{i}.attn_output.weight", (n_embd, n_embd), 0.06)
        add(f"blk.{i}.ffn_norm.weight", (n_embd,), 1.0, matrix=False)
        add(f"blk.{i}.ffn_gate.weight", (n_ff, n_embd), 0.06)
        add(f"blk.{i}.ffn_up.weight", (n_ff, n_embd), 0.06)
        add(f"blk.{i}.ffn_down.weight", (n_embd, n_ff), 0.04)
    add("output_norm.weight", (n_embd,), 1.0, matrix=False)
    add("output.weight", (n_vocab, n_embd), 0.08)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def expect_convert(a) -> dict:
    src, _ = tensors(a.inp)
    out, _ = tensors(a.out)
    report = {"checked": 0, "reencoded": 0, "identical_copies": 0, "mismatches": []}
    for name, t in out.items():
        s = src.get(name)
        if s is None:
            report["mismatches"].append(f"{name}: not in the input")
            continue
        report["checked"] += 1
        if list(s.shape) != list(t.shape):
            report["mismatches"].append(f"{name}: shape {list(t.shape)} vs {list(s.shape)}")
            continue
        if s.tensor_type == t.tensor_type:
            if raw(s) != raw(t):
                report["mismatches"].append(f"{name}: same type but bytes differ")
            else:
                report["identical_copies"] += 1
            continue
        want = encode(values(s), t.tensor_type)
        got = raw(t)
        report["reencoded"] += 1
        if want != got:
            n = len(want)
            diff = sum(1 for x, y in zip(want, got) if x != y) if len(got) == n else -1
            report["mismatches"].append(
                f"{name}: {s.tensor_type.name}->{t.tensor_type.name} {diff} of {n} bytes differ")
    return report


def expect_layers(a) -> dict:
    src, rs = tensors(a.inp)
    out, ro = tensors(a.out)
    oth, rt = tensors(a.other) if a.other else ({}, None)
    order = []
    for x in a.order.split(","):
        order.append(("o", int(x[1:])) if x.startswith("o") else ("s", int(x)))
    report = {"checked": 0, "mismatches": []}
    bc = meta(ro, "llama.block_count")
    if bc != len(order):
        report["mismatches"].append(f"llama.block_count {bc}, expected {len(order)}")
    for key in ("llama.attention.head_count_kv", "llama.feed_forward_length", "llama.test.layer_id"):
        s_arr = meta(rs, key)
        if s_arr is None:
            continue
        o_arr = meta(rt, key) if rt else None
        want = [(o_arr if w == "o" else s_arr)[l] for w, l in order]
        got = meta(ro, key)
        if got != want:
            report["mismatches"].append(f"{key}: {got}, expected {want}")
    names = set()
    for j, (w, l) in enumerate(order):
        pool = oth if w == "o" else src
        for name, t in pool.items():
            if not name.startswith(f"blk.{l}."):
                continue
            new = f"blk.{j}." + name[len(f"blk.{l}."):]
            names.add(new)
            o = out.get(new)
            report["checked"] += 1
            if o is None:
                report["mismatches"].append(f"{new}: missing")
            elif o.tensor_type != t.tensor_type or raw(o) != raw(t):
                report["mismatches"].append(f"{new}: not the bytes of {name}")
    for name, t in src.items():
        if name.startswith("blk."):
            continue
        names.add(name)
        report["checked"] += 1
        if name not in out or raw(out[name]) != raw(t):
            report["mismatches"].append(f"{name}: not copied")
    extra = set(out) - names
    if extra:
        report["mismatches"].append(f"unexpected tensors: {sorted(extra)[:5]}")
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("out")
    f.add_argument("--layers", type=int, default=4)
    f.add_argument("--seed", type=int, default=7)
    f.add_argument("--type", default="F32")
    f.add_argument("--noise", type=float, default=0.0)
    f.add_argument("--embd", type=int, default=256)
    c = sub.add_parser("expect-convert")
    c.add_argument("inp")
    c.add_argument("out")
    l = sub.add_parser("expect-layers")
    l.add_argument("inp")
    l.add_argument("out")
    l.add_argument("order")
    l.add_argument("--other")
    a = p.parse_args()
    if a.cmd == "fixture":
        fixture(a)
        return
    report = {"expect-convert": expect_convert, "expect-layers": expect_layers}[a.cmd](a)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
