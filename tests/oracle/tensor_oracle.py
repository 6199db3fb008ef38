"""numpy reference for the tensor layer and the diff engine (run with the project .venv).

Everything is computed on values dequantized by gguf-py (gguf.quants.dequantize), the way a
gguf-py user would compare two models:

  diff A B            -> JSON {name: {max_abs, mean_abs, rmse, rel_error, cosine, snr_db,
                                       n_diff, type_a, type_b}} for tensors in both models
  values MODEL NAME OUT  -> the tensor's dequantized values as raw little-endian f32 in OUT
  quantize TYPE IN OUT   -> raw f32 IN quantized with gguf-py (legacy types) or ggml (K-quants)
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

sys.path.insert(0, str(Path(__file__).resolve().parent))

KQUANTS = {T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K}


def values(t) -> np.ndarray:
    qt = T(int(t.tensor_type))
    raw = np.asarray(t.data)
    if qt == T.F32:
        return raw.astype(np.float32).reshape(-1)
    if qt == T.F16:
        return raw.astype(np.float16).astype(np.float32).reshape(-1)
    return gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(-1)


def tensors(path: str) -> dict:
    r = gguf.GGUFReader(path)
    return {t.name: t for t in r.tensors}


def diff(a_path: str, b_path: str) -> dict:
    a, b = tensors(a_path), tensors(b_path)
    out = {}
    for name, ta in a.items():
        if name not in b:
            continue
        tb = b[name]
        x = values(ta).astype(np.float64)
        y = values(tb).astype(np.float64)
        d = x - y
        ss = float(np.sum(d * d))
        aa = float(np.sum(x * x))
        bb = float(np.sum(y * y))
        out[name] = {
            "type_a": T(int(ta.tensor_type)).name,
            "type_b": T(int(tb.tensor_type)).name,
            "max_abs": float(np.max(np.abs(d))) if d.size else 0.0,
            "mean_abs": float(np.mean(np.abs(d))) if d.size else 0.0,
            "rmse": math.sqrt(ss / d.size) if d.size else 0.0,
            "rel_error": math.sqrt(ss / aa) if aa > 0 else None,
            "cosine": float(np.sum(x * y) / (math.sqrt(aa) * math.sqrt(bb))) if aa > 0 and bb > 0 else None,
            "snr_db": 10 * math.log10(aa / ss) if ss > 0 else None,
            "n_diff": int(np.count_nonzero(x != y)),
        }
    return out


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "diff":
        json.dump(diff(sys.argv[2], sys.argv[3]), sys.stdout)
    elif cmd == "values":
        t = tensors(sys.argv[2])[sys.argv[3]]
        values(t).astype("<f4").tofile(sys.argv[4])
    elif cmd == "quantize":
        qt = T[sys.argv[2]]
        v = np.fromfile(sys.argv[3], dtype="<f4")
        if qt in KQUANTS:
            import ggml
            raw = ggml.quantize(int(qt), v.reshape(1, -1), v.size)
        elif qt == T.F32:
            raw = v.tobytes()
        elif qt == T.F16:
            raw = v.astype(np.float16).tobytes()
        else:
            raw = gguf.quants.quantize(v.reshape(1, -1), qt).tobytes()
        Path(sys.argv[4]).write_bytes(raw)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
