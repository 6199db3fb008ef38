"""ctypes bindings to the real ggml (prebuilt libggml-base.so from npm node-llama-cpp).

The oracle for codecs that gguf-py lacks (K-quant quantization): ggml_quantize_chunk with no
importance matrix runs ggml's quantize_row_*_ref; type traits give the C dequantizers.
Run scripts/setup-oracles.sh first.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
LIB_DIR = ROOT / "node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"


class _Traits(ctypes.Structure):
    _fields_ = [
        ("type_name", ctypes.c_char_p),
        ("blck_size", ctypes.c_int64),
        ("blck_size_interleave", ctypes.c_int64),
        ("type_size", ctypes.c_size_t),
        ("is_quantized", ctypes.c_bool),
        ("to_float", ctypes.c_void_p),
        ("from_float_ref", ctypes.c_void_p),
    ]


_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64)

_lib = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        path = Path(os.environ.get("HOTPATCH_LIBGGML_BASE", LIB_DIR / "libggml-base.so"))
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: run scripts/setup-oracles.sh")
        _lib = ctypes.CDLL(str(path))
        _lib.ggml_get_type_traits.restype = ctypes.POINTER(_Traits)
        _lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
        _lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        _lib.ggml_quantize_chunk.argtypes = [
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
        ]
        _lib.ggml_quantize_init.argtypes = [ctypes.c_int]
    return _lib


def traits(type_id: int) -> _Traits:
    return lib().ggml_get_type_traits(type_id).contents


def quantize(type_id: int, values: np.ndarray, n_per_row: int) -> bytes:
    """Quantizes rows of f32 with ggml's reference quantizer (no imatrix)."""
    src = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if src.size % n_per_row:
        raise ValueError("values are not a whole number of rows")
    nrows = src.size // n_per_row
    t = traits(type_id)
    nbytes = nrows * (n_per_row // t.blck_size) * t.type_size
    dst = ctypes.create_string_buffer(nbytes)
    lib().ggml_quantize_init(type_id)
    written = lib().ggml_quantize_chunk(type_id, src.ctypes.data, dst, 0, nrows, n_per_row, None)
    if written != nbytes:
        raise RuntimeError(f"ggml wrote {written} bytes, expected {nbytes}")
    return dst.raw


def dequantize(type_id: int, data: bytes) -> np.ndarray:
    """Dequantizes whole blocks with ggml's C to_float."""
    t = traits(type_id)
    if not t.to_float:
        raise ValueError(f"ggml has no to_float for type {type_id}")
    n = len(data) // t.type_size * t.blck_size
    out = np.empty(n, dtype=np.float32)
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    _TO_FLOAT(t.to_float)(buf, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n)
    return out
