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
  expect-merge METHOD OUT BASE OTHER... [--t G] [--weights G;G] [--densities G;G] ...
      the merge recomputed in float32 (G: a number or a gradient `0,0.5,1`); F32 outputs must
      be equal (SLERP: within 1e-5, its angle is summed in another order), quantized ones
      within one re-quantization of the exact result
  lora-fixture OUT BASE --targets NAMES [--rank R] [--alpha A] [--type F32|F16]
      an adapter as convert_lora_to_gguf writes it (token_embd in llama.cpp's layout)
  expect-lora BASE ADAPTER OUT [--scale S]   W + S·alpha/rank·B·A in float64
  cvec-fixture OUT [--layers N] [--embd E] [--npy FILE]
      a control vector as llama-cvector-generator writes it (direction.1..N)
  expect-ablate BASE DIRECTION OUT [--layer N] [--layers L] [--scale S] [--embeddings 0|1]
      (I - s r r^T) W along the residual dimension; reports how much of r is left
  expect-add OUT NAME (--npy FILE | --gguf FILE --tensor T)
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


GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dare_stream(seed: int, name: str, model: int) -> int:
    h = 0xCBF29CE484222325
    for b in name.encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return seed ^ h ^ ((model * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)


def dare_keep(stream: int, n: int, density: float) -> np.ndarray:
    idx = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = splitmix64(np.uint64(stream) + (idx + np.uint64(1)) * GOLDEN)
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return u < np.float64(np.float32(density))


def gradient(g: list[float], t: float) -> float:
    if len(g) == 1:
        return g[0]
    scaled = t * (len(g) - 1)
    i0 = int(scaled)
    i1 = min(len(g) - 1, i0 + 1)
    frac = scaled - i0
    return (1 - frac) * g[i0] + frac * g[i1]


def position(name: str, n_layers: int) -> float:
    if name.startswith("blk."):
        l = int(name.split(".")[1])
        return l / (n_layers - 1) if n_layers > 1 else 1.0
    return 0.0 if name.startswith("token_embd") else 1.0


def merged(a, name: str, base: np.ndarray, others: list[np.ndarray], n_layers: int) -> np.ndarray:
    """The exact merge in float32, operation for operation as mergekit defines it."""
    f = np.float32
    t = position(name, n_layers)
    ws = [f(gradient(w, t)) for w in a.weights] if a.weights else [f(1)] * len(others)
    ds = [f(gradient(d, t)) for d in a.densities] if a.densities else [f(1)] * len(others)
    bw = f(gradient(a.base_weight, t)) if a.base_weight else f(1)
    lam = f(a.lam)
    m = a.method
    norm = a.normalize if a.normalize is not None else m in ("linear", "ties")
    if m == "linear":
        if a.t is not None and len(others) == 1:
            tt = gradient(a.t, t)
            bw, ws = f(1.0 - tt), [f(tt)]
        wsum = bw
        for w in ws:
            wsum = f(wsum + w)
        acc = bw * base
        for w, x in zip(ws, others):
            acc = acc + w * x
        return acc / wsum if norm else acc
    if m == "slerp":
        tt = gradient(a.t, t)
        v0 = base.astype(np.float64).ravel()
        v1 = others[0].astype(np.float64).ravel()
        n0, n1 = np.linalg.norm(v0), np.linalg.norm(v1)
        n0 = n0 if n0 > 1e-8 else 1.0
        n1 = n1 if n1 > 1e-8 else 1.0
        dot = float(np.dot(v0, v1)) / (n0 * n1)
        if abs(dot) > 0.9995:
            s0, s1 = 1.0 - tt, tt
        else:
            th0 = np.arccos(dot)
            s = np.sin(th0)
            s0, s1 = np.sin(th0 - th0 * tt) / s, np.sin(th0 * tt) / s
        return f(s0) * base + f(s1) * others[0]
    deltas = [x - base for x in others]
    if m in ("dare", "dare_ties"):
        out = []
        for k, (d, dens) in enumerate(zip(deltas, ds)):
            if dens >= 1:
                out.append(d)
                continue
            keep = dare_keep(dare_stream(a.seed, name, k + 1), d.size, float(dens)).reshape(d.shape)
            out.append(np.where(keep, d / dens, f(0)).astype(np.float32))
        deltas = out
    if m == "ties":
        out = []
        for d, dens in zip(deltas, ds):
            if dens >= 1:
                out.append(d)
                continue
            k = int(np.floor(np.float64(dens) * d.size))
            if k == 0:
                out.append(np.zeros_like(d))
                continue
            th = np.sort(np.abs(d).ravel())[-k]
            out.append(np.where(np.abs(d) >= th, d, f(0)).astype(np.float32))
        deltas = out
    if m in ("task", "dare"):
        wsum = f(0)
        for w in ws:
            wsum = f(wsum + w)
        if abs(wsum) < 1e-8:
            wsum = f(1)
        mixed = np.zeros_like(base)
        for w, d in zip(ws, deltas):
            mixed = mixed + w * d
        if norm:
            mixed = mixed / wsum
        return base + mixed * lam
    # ties, dare_ties: sign election, disjoint merge
    wd = [w * d for w, d in zip(ws, deltas)]
    total = np.zeros_like(base)
    for x in wd:
        total = total + x
    major = np.where(total >= 0, f(1), f(-1))
    mixed = np.zeros_like(base)
    div = np.zeros_like(base)
    for w, x in zip(ws, wd):
        mask = np.sign(x) == major
        mixed = mixed + np.where(mask, x, f(0))
        div = div + np.where(mask, w, f(0))
    div = np.where(div == 0, f(1), div)
    if norm:
        mixed = mixed / div
    return base + mixed * lam


def expect_merge(a) -> dict:
    out, ro = tensors(a.out)
    base, rb = tensors(a.base)
    others = [tensors(o)[0] for o in a.others]
    n_layers = int(meta(rb, "llama.block_count") or 1)
    report = {"checked": 0, "exact": 0, "bytes_identical": 0, "mismatches": [], "worst": 0.0}
    for name, t in out.items():
        b = base[name]
        if b.tensor_type in (T.I8, T.I16, T.I32, T.I64):
            continue
        report["checked"] += 1
        want = merged(a, name, values(b), [values(o[name]) for o in others], n_layers)
        got = values(t)
        if t.tensor_type == T.F32:
            if np.array_equal(got, want):
                report["exact"] += 1
                continue
            rel = float(np.max(np.abs(got - want)) / max(1e-30, float(np.max(np.abs(want)))))
            report["worst"] = max(report["worst"], rel)
            if a.method != "slerp" or rel > 1e-5:
                report["mismatches"].append(f"{name}: F32 differs (relative {rel:.3g})")
            continue
        q = encode(want, t.tensor_type)
        if q == raw(t):
            report["bytes_identical"] += 1
        ref = gguf.quants.dequantize(np.frombuffer(q, dtype=np.uint8).reshape(want.shape[0], -1), t.tensor_type).reshape(want.shape)
        err = float(np.max(np.abs(got - want)))
        ref_err = float(np.max(np.abs(ref - want)))
        if err > ref_err * 1.0001 + 1e-6:
            report["mismatches"].append(f"{name}: {t.tensor_type.name} error {err:.4g} above one re-quantization ({ref_err:.4g})")
    return report


def lora_fixture(a) -> None:
    """An adapter as convert_lora_to_gguf writes it, for the tensors of BASE named in --targets."""
    src, rb = tensors(a.base)
    rng = np.random.default_rng(a.seed)
    w = gguf.GGUFWriter(a.out, "llama")
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    if a.alpha:
        w.add_float32("adapter.lora.alpha", a.alpha)
    r = a.rank
    for name in a.targets.split(","):
        t = src[name]
        ne0, ne1 = int(t.shape[0]), int(t.shape[1])
        if name.startswith("token_embd"):
            # llama.cpp's token_embd layout: A ne [rank, n_vocab], B ne [rank, n_embd]
            A = rng.standard_normal((ne1, r)).astype(np.float32) * np.float32(0.05)
            B = rng.standard_normal((ne0, r)).astype(np.float32) * np.float32(0.05)
        else:
            A = rng.standard_normal((r, ne0)).astype(np.float32) * np.float32(0.05)
            B = rng.standard_normal((ne1, r)).astype(np.float32) * np.float32(0.05)
        if a.type == "F16":
            A, B = A.astype(np.float16), B.astype(np.float16)
        w.add_tensor(name + ".lora_a", A)
        w.add_tensor(name + ".lora_b", B)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def close_enough(report, name, t, got, want):
    """F32: within 1e-5 of the largest value (summation order differs); quantized: within one
    re-quantization of the exact result."""
    scale = max(1e-30, float(np.max(np.abs(want))))
    if t.tensor_type == T.F32:
        rel = float(np.max(np.abs(got - want))) / scale
        report["worst"] = max(report["worst"], rel)
        if rel > 1e-5:
            report["mismatches"].append(f"{name}: F32 differs (relative {rel:.3g})")
        return
    q = encode(want, t.tensor_type)
    if q == raw(t):
        report["bytes_identical"] += 1
    ref = gguf.quants.dequantize(np.frombuffer(q, dtype=np.uint8).reshape(want.shape[0], -1), t.tensor_type).reshape(want.shape)
    err = float(np.max(np.abs(got - want)))
    ref_err = float(np.max(np.abs(ref - want)))
    if err > ref_err * 1.01 + 1e-5 * scale:
        report["mismatches"].append(f"{name}: {t.tensor_type.name} error {err:.4g} above one re-quantization ({ref_err:.4g})")


def expect_lora(a) -> dict:
    base, _ = tensors(a.base)
    ad, ra = tensors(a.adapter)
    out, _ = tensors(a.out)
    alpha = meta(ra, "adapter.lora.alpha") or 0.0
    report = {"checked": 0, "applied": 0, "bytes_identical": 0, "worst": 0.0, "mismatches": []}
    for name, t in out.items():
        b = base[name]
        report["checked"] += 1
        if t.tensor_type != b.tensor_type:
            report["mismatches"].append(f"{name}: type {t.tensor_type.name}, the base has {b.tensor_type.name}")
        if name + ".lora_a" not in ad:
            if raw(t) != raw(b):
                report["mismatches"].append(f"{name}: no LoRA but bytes changed")
            continue
        report["applied"] += 1
        A = values(ad[name + ".lora_a"]).astype(np.float64)
        B = values(ad[name + ".lora_b"]).astype(np.float64)
        W = values(b).astype(np.float64)
        if name.startswith("token_embd"):
            rank = A.shape[1]
            delta = A @ B.T
        else:
            rank = A.shape[0]
            delta = B @ A
        eff = a.scale * alpha / rank if alpha else a.scale
        want = (W + eff * delta).astype(np.float32)
        close_enough(report, name, t, values(t), want)
    return report


def cvec_fixture(a) -> None:
    """A control vector as llama-cvector-generator writes it: direction.1 .. direction.N."""
    rng = np.random.default_rng(a.seed)
    w = gguf.GGUFWriter(a.out, "controlvector")
    w.add_string("controlvector.model_hint", "llama")
    w.add_int32("controlvector.layer_count", a.layers)
    for i in range(1, a.layers + 1):
        w.add_tensor(f"direction.{i}", rng.standard_normal(a.embd).astype(np.float32) * np.float32(3.0))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if a.npy:
        np.save(a.npy, rng.standard_normal((a.layers, a.embd)).astype(np.float32))


def expect_ablate(a) -> dict:
    base, _ = tensors(a.base)
    out, _ = tensors(a.out)
    if a.direction.endswith(".npy"):
        d = np.load(a.direction).astype(np.float64)
        r = d if d.ndim == 1 else d[a.layer]
    else:
        cv, _ = tensors(a.direction)
        r = values(cv[f"direction.{a.layer}"]).astype(np.float64).ravel()
    r = r / np.linalg.norm(r)
    layers = None if a.layers is None else {int(x) for x in a.layers.split(",")}
    report = {"checked": 0, "ablated": 0, "bytes_identical": 0, "worst": 0.0, "mismatches": [], "residual": 0.0}
    for name, t in out.items():
        b = base[name]
        report["checked"] += 1
        target = name == "token_embd.weight" and a.embeddings
        if name.startswith("blk."):
            l, rest = int(name.split(".")[1]), name.split(".", 2)[2]
            target = (layers is None or l in layers) and (rest.startswith("attn_output.") or rest.startswith("ffn_down"))
        if not target:
            if raw(t) != raw(b):
                report["mismatches"].append(f"{name}: not a target but bytes changed")
            continue
        report["ablated"] += 1
        W = values(b).astype(np.float64)
        s = a.scale
        if name == "token_embd.weight" or W.shape[0] == 1:
            want = W - s * np.outer(W @ r, r)
            along = np.abs(values(t).astype(np.float64) @ r).max() / max(1e-30, np.abs(W @ r).max())
        else:
            want = W - s * np.outer(r, r @ W)
            along = np.abs(r @ values(t).astype(np.float64)).max() / max(1e-30, np.abs(r @ W).max())
        report["residual"] = max(report["residual"], float(along))
        close_enough(report, name, t, values(t), want.astype(np.float32))
    return report


def expect_add(a) -> dict:
    out, _ = tensors(a.out)
    t = out[a.name]
    report = {"mismatches": [], "type": t.tensor_type.name, "shape": [int(x) for x in t.shape]}
    if a.npy:
        want = np.load(a.npy).astype(np.float32)
    else:
        src, _ = tensors(a.gguf)
        want = values(src[a.tensor])
    want2 = want.reshape(-1, int(t.shape[0]))
    exp = encode(want2, t.tensor_type) if t.tensor_type != T.F16 else want2.astype(np.float16).tobytes()
    if exp != raw(t):
        report["mismatches"].append(f"{a.name}: bytes are not the source's values as {t.tensor_type.name}")
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
    mg = sub.add_parser("expect-merge")
    mg.add_argument("method")
    mg.add_argument("out")
    mg.add_argument("base")
    mg.add_argument("others", nargs="+")
    floats = lambda s: [float(x) for x in s.split(",")]
    mg.add_argument("--t", type=floats)
    mg.add_argument("--weights", type=lambda s: [floats(x) for x in s.split(";")])
    mg.add_argument("--densities", type=lambda s: [floats(x) for x in s.split(";")])
    mg.add_argument("--base-weight", type=floats)
    mg.add_argument("--normalize", type=lambda s: s == "1")
    mg.add_argument("--lam", type=float, default=1.0)
    mg.add_argument("--seed", type=int, default=0)
    lf = sub.add_parser("lora-fixture")
    lf.add_argument("out")
    lf.add_argument("base")
    lf.add_argument("--targets", required=True)
    lf.add_argument("--rank", type=int, default=4)
    lf.add_argument("--alpha", type=float, default=8.0)
    lf.add_argument("--seed", type=int, default=3)
    lf.add_argument("--type", default="F32")
    el = sub.add_parser("expect-lora")
    el.add_argument("base")
    el.add_argument("adapter")
    el.add_argument("out")
    el.add_argument("--scale", type=float, default=1.0)
    cf = sub.add_parser("cvec-fixture")
    cf.add_argument("out")
    cf.add_argument("--layers", type=int, default=4)
    cf.add_argument("--embd", type=int, default=256)
    cf.add_argument("--seed", type=int, default=5)
    cf.add_argument("--npy")
    ea = sub.add_parser("expect-ablate")
    ea.add_argument("base")
    ea.add_argument("direction")
    ea.add_argument("out")
    ea.add_argument("--layer", type=int, default=1)
    ea.add_argument("--layers")
    ea.add_argument("--scale", type=float, default=1.0)
    ea.add_argument("--embeddings", type=lambda s: s == "1", default=True)
    ed = sub.add_parser("expect-add")
    ed.add_argument("out")
    ed.add_argument("name")
    ed.add_argument("--npy")
    ed.add_argument("--gguf")
    ed.add_argument("--tensor")
    a = p.parse_args()
    if a.cmd == "fixture":
        fixture(a)
        return
    if a.cmd == "lora-fixture":
        lora_fixture(a)
        return
    if a.cmd == "cvec-fixture":
        cvec_fixture(a)
        return
    report = {"expect-convert": expect_convert, "expect-layers": expect_layers,
              "expect-merge": expect_merge, "expect-lora": expect_lora,
              "expect-ablate": expect_ablate, "expect-add": expect_add}[a.cmd](a)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
