#!/usr/bin/env python3
"""gguf-py's view of a tensor, for the CLI's big-tensor tests.

  values MODEL NAME OUT     dequantize tensor NAME (gguf-py) and write it as little-endian f32
  diff A B NAME             numpy metrics of tensor NAME between models A and B (JSON)
"""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import gguf


def values(path: str, name: str) -> np.ndarray:
    t = next(t for t in gguf.GGUFReader(path).tensors if t.name == name)
    qt = gguf.GGMLQuantizationType(int(t.tensor_type))
    raw = np.asarray(t.data)
    if qt in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
        return raw.astype(np.float32).reshape(-1)
    return gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(-1)


def main() -> None:
    if sys.argv[1] == "values":
        values(sys.argv[2], sys.argv[3]).astype("<f4").tofile(sys.argv[4])
    elif sys.argv[1] == "diff":
        x = values(sys.argv[2], sys.argv[4]).astype(np.float64)
        y = values(sys.argv[3], sys.argv[4]).astype(np.float64)
        d = x - y
        ss, aa, bb = float(d @ d), float(x @ x), float(y @ y)
        print(json.dumps({
            "n_diff": int(np.count_nonzero(x != y)),
            "max_abs": float(np.abs(d).max()),
            "mean_abs": float(np.abs(d).mean()),
            "rmse": math.sqrt(ss / d.size),
            "cosine": float(x @ y) / math.sqrt(aa * bb),
        }))
    else:
        raise SystemExit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
