"""numpy reference for the tensor layer and the diff engine (run with the project .venv).

Everything is computed on values dequantized by gguf-py (gguf.quants.dequantize), the way a
gguf-py user would compare two models:

  diff A B            -> JSON {name: {max_abs, mean_abs, rmse, rel_error, cosine, snr_db,
                                       n_diff, type_a, type_b}} for tensors in both models
  values MODEL NAME OUT  -> the tensor's dequantized values as raw little-endian f32 in OUT
  expect MODEL NAME SPEC OUT -> values a transform {"select", "transform", "heads"} must leave
  expect-many MODEL SPECS.json OUTDIR -> the same for a list of specs (with "name"), OUTDIR/i.f32
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


def encode(v: np.ndarray, qt: T) -> np.ndarray:
    """What a tensor of type qt stores for values v (reference quantizers), as f32."""
    v = v.astype(np.float32)
    if qt == T.F32:
        return v
    if qt == T.F16:
        return v.astype(np.float16).astype(np.float32)
    if qt in KQUANTS:
        import ggml
        raw = np.frombuffer(ggml.quantize(int(qt), v.reshape(1, -1), v.size), dtype=np.uint8)
    else:
        raw = gguf.quants.quantize(v.reshape(1, -1), qt)
    return gguf.quants.dequantize(raw, qt).astype(np.float32).reshape(-1)


def splitmix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def noise_z(seed: int, idx: np.ndarray) -> np.ndarray:
    g = np.uint64(0x9E3779B97F4A7C15)
    i = idx.astype(np.uint64)
    with np.errstate(over="ignore"):
        s1 = np.uint64(seed) + (np.uint64(2) * i + np.uint64(1)) * g
        s2 = np.uint64(seed) + (np.uint64(2) * i + np.uint64(2)) * g
        u1 = ((splitmix64(s1) >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * 2.0**-53
        u2 = (splitmix64(s2) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)


def mask_of(sel: dict, dims: list, name: str, heads: dict) -> np.ndarray:
    n = int(np.prod(dims))
    ne0 = dims[0]
    rows = n // ne0
    m = np.zeros((rows, ne0), dtype=bool)
    k = sel.get("kind", "all")
    if k == "all":
        m[:] = True
    elif k == "range":
        m.reshape(-1)[sel["start"]:sel["end"]] = True
    elif k == "rows":
        m[sel["start"]:sel["end"], :] = True
    elif k == "columns":
        m[:, sel["start"]:sel["end"]] = True
    elif k == "elements":
        m.reshape(-1)[np.array(sel["indices"], dtype=np.int64)] = True
    elif k == "head":
        h = sel["head"]
        hd = heads["head_dim"]
        if ".attn_output." in name:
            m[:, h * hd:(h + 1) * hd] = True
        else:
            m[h * hd:(h + 1) * hd, :] = True
    return m.reshape(-1)


_READERS: dict = {}


def reader(path: str):
    if path not in _READERS:
        _READERS[path] = gguf.GGUFReader(path)
    return _READERS[path]


def expect(model: str, name: str, spec: dict) -> np.ndarray:
    """Values a transform must leave in tensor `name`: numpy op on the selection, then the
    tensor type's reference encoding (whole tensor: every block is fully selected or
    unchanged when the selection is block-aligned, which the tests use)."""
    r = reader(model)
    t = next(t for t in r.tensors if t.name == name)
    qt = T(int(t.tensor_type))
    x = values(t)
    dims = [int(d) for d in t.shape]
    m = mask_of(spec.get("select", {"kind": "all"}), dims, name, spec.get("heads", {}))
    op = spec["transform"]
    y = x.copy()
    o = op["op"]
    f32 = np.float32
    if o == "scale":
        y[m] = x[m] * f32(op["factor"])
    elif o == "add":
        y[m] = x[m] + f32(op["value"])
    elif o == "set":
        y[m] = f32(op["value"])
    elif o == "clamp":
        y[m] = np.clip(x[m], f32(op["min"]), f32(op["max"]))
    elif o == "zero":
        y[m] = 0
    elif o == "negate":
        y[m] = -x[m]
    elif o == "noise":
        idx = np.nonzero(m)[0]
        y[m] = x[m] + (float(np.float32(op["std"])) * noise_z(int(op["seed"]), idx)).astype(np.float32)
    elif o == "replace_non_finite":
        bad = m & ~np.isfinite(x)
        y[bad] = f32(op["value"])
    elif o == "lerp":
        other = values(next(u for u in reader(op["model"]).tensors if u.name == name))
        tt = f32(op["t"])
        y[m] = x[m] + tt * (other[m] - x[m])
    else:
        raise SystemExit(f"unknown op {o}")
    if qt in (T.F32, T.F16) or m.all():
        return encode(y, qt)
    # Partial selection: re-encode only the blocks holding a selected element.
    bs = gguf.constants.GGML_QUANT_SIZES[qt][0]
    out = x.copy()
    for b in np.unique(np.nonzero(m)[0] // bs):
        out[b * bs:(b + 1) * bs] = encode(y[b * bs:(b + 1) * bs], qt)
    return out


def main() -> None:
    cmd = sys.argv[1]
    if cmd == "diff":
        json.dump(diff(sys.argv[2], sys.argv[3]), sys.stdout)
    elif cmd == "values":
        t = tensors(sys.argv[2])[sys.argv[3]]
        values(t).astype("<f4").tofile(sys.argv[4])
    elif cmd == "expect":
        expect(sys.argv[2], sys.argv[3], json.loads(sys.argv[4])).astype("<f4").tofile(sys.argv[5])
    elif cmd == "expect-many":
        specs = json.loads(Path(sys.argv[3]).read_text())
        for i, spec in enumerate(specs):
            expect(sys.argv[2], spec["name"], spec).astype("<f4").tofile(Path(sys.argv[4]) / f"{i}.f32")
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
