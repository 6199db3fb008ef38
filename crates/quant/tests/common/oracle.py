"""Batch runner for the codec oracles of crates/quant/tests (driven by common/oracle.rs).

Usage: python oracle.py MANIFEST
Each manifest line is `OP ORACLE TYPE N_PER_ROW IN OUT` with OP `quantize` or `dequantize`,
ORACLE `gguf-py` or `ggml`, TYPE a ggml type name (gguf.GGMLQuantizationType). IN holds raw
little-endian f32 values (quantize) or raw block bytes (dequantize); the result is written to
OUT (raw bytes, or f32 values). When an oracle refuses a job, the reason is written to OUT.err
and the other jobs still run.

Oracles:
- gguf-py: `gguf.quants.quantize` / `gguf.quants.dequantize` (pinned gguf==0.19.0). gguf-py has
  no codec for the plain integer types and F64: GGUFReader hands them out as numpy arrays of
  that dtype, so their oracle is numpy's `astype(np.float32)`.
- ggml: the real C codecs of libggml-base.so through tests/oracle/ggml.py — the type traits'
  `from_float_ref` (ggml's `quantize_row_*_ref`, no imatrix) and `to_float`.
"""
from __future__ import annotations

import ctypes
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize, quantize

WORKSPACE = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(WORKSPACE / "tests" / "oracle"))
import ggml  # noqa: E402

PLAIN = {"I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64, "F64": np.float64}
_FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_int64)


def ggml_quantize_ref(type_id: int, values: np.ndarray) -> bytes:
    t = ggml.traits(type_id)
    if not t.from_float_ref:
        raise ValueError(f"ggml has no from_float_ref for type {type_id}")
    src = np.ascontiguousarray(values, dtype=np.float32)
    if src.size % t.blck_size:
        raise ValueError("values are not a whole number of blocks")
    dst = ctypes.create_string_buffer(src.size // t.blck_size * t.type_size)
    _FROM_FLOAT(t.from_float_ref)(src.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), dst, src.size)
    return dst.raw


def run(op: str, oracle: str, tname: str, n_per_row: int, src: Path) -> bytes:
    ty = GGMLQuantizationType[tname]
    raw = src.read_bytes()
    if op == "quantize":
        x = np.frombuffer(raw, dtype=np.float32)
        if oracle == "gguf-py":
            if tname in PLAIN:
                raise NotImplementedError(f"gguf-py has no quantizer for {tname}")
            return np.ascontiguousarray(quantize(x.reshape(-1, n_per_row), ty)).tobytes()
        return ggml_quantize_ref(int(ty), x)
    if op == "dequantize":
        b = np.frombuffer(raw, dtype=np.uint8)
        if oracle == "gguf-py":
            if tname in PLAIN:
                return b.view(PLAIN[tname]).astype(np.float32).tobytes()
            return np.ascontiguousarray(dequantize(b.reshape(1, -1), ty), dtype=np.float32).tobytes()
        return ggml.dequantize(int(ty), raw).astype(np.float32).tobytes()
    raise ValueError(f"unknown op {op}")


def main() -> None:
    warnings.simplefilter("ignore")  # numpy warns about NaN/Inf casts; results are what we compare
    np.seterr(all="ignore")
    for line in Path(sys.argv[1]).read_text().splitlines():
        if not line.strip():
            continue
        op, oracle, tname, n_per_row, src, dst = line.split(" ")
        try:
            Path(dst).write_bytes(run(op, oracle, tname, int(n_per_row), Path(src)))
        except Exception:  # noqa: BLE001 - reported to the Rust side per job
            Path(dst + ".err").write_text(traceback.format_exc(limit=3))


if __name__ == "__main__":
    main()
