#!/usr/bin/env python3
"""Writes a GGUF with two 4096×4096 tensors (F16 and Q4_K) of random normal weights, for the
heatmap round-trip timing of the Tensors screen (tests/e2e/tensors.test.mjs, docs/PERFORMANCE.md).
Q4_K is quantized with ggml's reference quantizer (tests/oracle/ggml.py, libggml-base.so).

Usage: .venv/bin/python scripts/make_heatmap_model.py OUT.gguf [--n 4096]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "oracle"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=4096)
    a = ap.parse_args()
    n = a.n
    rng = np.random.default_rng(11)
    w = gguf.GGUFWriter(str(a.out), "llama")
    w.add_name("heatmap-bench")
    f16 = (rng.standard_normal((n, n)).astype(np.float32) * np.float32(0.02))
    w.add_tensor("bench.f16.weight", f16.astype(np.float16))
    import ggml  # the real ggml reference quantizer

    q = rng.standard_normal((n, n)).astype(np.float32) * np.float32(0.02)
    raw = ggml.quantize(int(T.Q4_K), q, n)
    w.add_tensor("bench.q4_k.weight", np.frombuffer(raw, dtype=np.uint8).reshape(n, -1), raw_dtype=T.Q4_K)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
