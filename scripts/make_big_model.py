#!/usr/bin/env python3
"""Writes a real-size GGUF for the big-tensor tests and benchmarks (issue "Real models at full
size"): a llama-architecture model shaped like a 270M model's largest part — a 262,144 × 640
Q8_0 token embedding (167.8 M values, ~178 MB) with a 262,144-token vocabulary
(`tokenizer.ggml.tokens`), plus two small blocks (Q8_0 projections, F32 norms).

The weights look like real ones, not like white noise: N(0, 0.038) with a few outlier rows
(×6), a few column bands (×3) and isolated spikes up to ±0.547, so a colour scale linear to
max |x| washes them out and a robust one shows them.

--perturb writes the "finetune" of the same model: the same weights plus seeded noise on
embedding rows 38 %..42 % of the vocabulary (99,614..110,100 at full size) and on
blk.1.ffn_down (for `hotpatch diff` and the Diff screen).

Usage: .venv/bin/python scripts/make_big_model.py OUT.gguf [--rows 262144] [--perturb]
Nothing it writes is committed; tests and benches generate it at run time.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

N_EMBD = 640
N_HEAD = 4
N_HEAD_KV = 1
HEAD_DIM = 256
N_FF = 2048
N_LAYER = 2
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "an", "el", "in", "or", "us",
             "ch", "th", "st", "pr", "qu", "er", "on", "ly", "ed", "ing", "ion"]


def vocab(n: int) -> tuple[list[str], list[int]]:
    toks = ["<pad>", "<eos>", "<bos>", "<unk>"]
    types = [gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.UNKNOWN]
    for b in range(256):
        toks.append(f"<0x{b:02X}>")
        types.append(gguf.TokenType.BYTE)
    s = len(SYLLABLES)
    i = 0
    while len(toks) < n:
        # Distinct words of 1–4 syllables, some with the SentencePiece word-start mark.
        k, word = i, ""
        while True:
            word += SYLLABLES[k % s]
            k //= s
            if k == 0:
                break
        toks.append(("▁" if i % 3 else "") + word + (str(i // 331776) if i >= 331776 else ""))
        types.append(gguf.TokenType.NORMAL)
        i += 1
    return toks[:n], types[:n]


def weights(rng: np.random.Generator, rows: int, cols: int, std: float) -> np.ndarray:
    w = rng.standard_normal((rows, cols), dtype=np.float32)
    w *= np.float32(std)
    # Column bands and outlier rows, as trained embeddings have.
    for c in rng.choice(cols, size=max(1, cols // 80), replace=False):
        w[:, c] *= np.float32(3.0)
    for r in rng.choice(rows, size=max(1, rows // 4000), replace=False):
        w[r, :] *= np.float32(6.0)
    # Isolated spikes.
    n = max(1, rows * cols // 500_000)
    idx = rng.choice(rows * cols, size=n, replace=False)
    w.reshape(-1)[idx] = rng.choice([-1.0, 1.0], size=n).astype(np.float32) * np.float32(0.547) * \
        rng.uniform(0.5, 1.0, size=n).astype(np.float32)
    return w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--rows", type=int, default=262144, help="vocabulary size (embedding rows)")
    ap.add_argument("--perturb", action="store_true", help="write the perturbed 'finetune'")
    a = ap.parse_args()
    rng = np.random.default_rng(270)
    w = gguf.GGUFWriter(str(a.out), "llama")
    w.add_name("big-tensor-fixture" + ("-perturbed" if a.perturb else ""))
    w.add_context_length(2048)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    toks, types = vocab(a.rows)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([-float(i) for i in range(a.rows)])
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)

    emb = weights(rng, a.rows, N_EMBD, 0.038)
    blocks = []
    for b in range(N_LAYER):
        shapes = {
            "attn_q": (N_HEAD * HEAD_DIM, N_EMBD), "attn_k": (N_HEAD_KV * HEAD_DIM, N_EMBD),
            "attn_v": (N_HEAD_KV * HEAD_DIM, N_EMBD), "attn_output": (N_EMBD, N_HEAD * HEAD_DIM),
            "ffn_gate": (N_FF, N_EMBD), "ffn_up": (N_FF, N_EMBD), "ffn_down": (N_EMBD, N_FF),
        }
        blocks.append({k: weights(rng, r, c, 0.02) for k, (r, c) in shapes.items()})
    if a.perturb:
        noise = np.random.default_rng(7)
        r0, r1 = a.rows * 38 // 100, a.rows * 42 // 100
        emb[r0:r1] += noise.standard_normal((r1 - r0, N_EMBD), dtype=np.float32) * np.float32(0.01)
        fd = blocks[1]["ffn_down"]
        fd += noise.standard_normal(fd.shape, dtype=np.float32) * np.float32(0.002)

    w.add_tensor("token_embd.weight", gguf.quants.quantize(emb, T.Q8_0), raw_dtype=T.Q8_0)
    del emb
    for b, ts in enumerate(blocks):
        w.add_tensor(f"blk.{b}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for k, v in ts.items():
            w.add_tensor(f"blk.{b}.{k}.weight", gguf.quants.quantize(v, T.Q8_0), raw_dtype=T.Q8_0)
        w.add_tensor(f"blk.{b}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
