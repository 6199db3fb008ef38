#!/usr/bin/env python3
"""K-quant and IQ codec speed: hotpatch-quant (Rust) vs ggml C (libggml-base.so) vs gguf-py (numpy).

All three run in the same invocation on the same blocks, single-threaded. The blocks are ggml's
own quantization of N(0,1) values (a 1M-value matrix tiled to the requested size) for the types
ggml quantizes without an importance matrix; for IQ1_S, IQ2_XXS and IQ2_XS (which need one)
they are random bytes with a finite f16 scale. Throughput is GB/s of f32 (output for
dequantize, input for quantize). Dequantize figures are the best of REPS runs, the Rust and
ggml C runs interleaved (the machine is shared; this keeps both under the same load); quantize
figures are the best of 2.

usage: .venv/bin/python scripts/bench/kiquant_codecs.py [--values N] [--reps R] [TYPES...]
Builds `cargo build --release -p hotpatch-quant --example codec_speed` first.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# numpy madvises its big buffers onto transparent huge pages (THP is "madvise" here), which
# speeds up ggml's writes into them; the Rust side writes into ordinary pages. Same memory for
# both: turn numpy's hint off (it is read when numpy is imported).
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

import numpy as np  # noqa: E402
import gguf  # noqa: E402
from gguf.quants import dequantize as gguf_dequantize  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import ggml  # noqa: E402

TYPES = ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS",
         "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_NL", "IQ4_XS"]
NEEDS_IMATRIX = {"IQ1_S", "IQ2_XXS", "IQ2_XS"}
Q8_K = 15
TILE = 1 << 20


def blocks_for(name: str, n: int, rng: np.random.Generator) -> bytes:
    qt = gguf.GGMLQuantizationType[name]
    bs, ts = gguf.GGML_QUANT_SIZES[qt]
    if name in NEEDS_IMATRIX:
        b = rng.integers(0, 256, size=(n // bs, ts), dtype=np.uint8)
        b[:, 0:2] = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
        return b.tobytes()
    x = rng.standard_normal(TILE).astype(np.float32)
    if int(qt) == Q8_K:
        lib = ggml.lib()
        lib.quantize_row_q8_K_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        out = ctypes.create_string_buffer(TILE // bs * ts)
        lib.quantize_row_q8_K_ref(x.ctypes.data, out, TILE)
        tile = out.raw
    else:
        tile = ggml.quantize(int(qt), x, 4096)
    return tile * (n // TILE)


def qt_of(name: str) -> gguf.GGMLQuantizationType:
    return gguf.GGMLQuantizationType[name]


def best(fn, reps: int) -> float:
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def ggml_dequant_fn(name: str, data: bytes, n: int):
    qt = gguf.GGMLQuantizationType[name]
    out = np.empty(n, dtype=np.float32)
    buf = ctypes.create_string_buffer(data, len(data))
    if int(qt) == Q8_K:
        f = ggml.lib().dequantize_row_q8_K
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        d = lambda: f(buf, out.ctypes.data, n)  # noqa: E731
    else:
        to_float = ggml._TO_FLOAT(ggml.traits(int(qt)).to_float)
        p = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        d = lambda: to_float(buf, p, n)  # noqa: E731
    return d, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--values", type=int, default=4096 * 4096)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("types", nargs="*", default=TYPES)
    a = ap.parse_args()
    n = a.values // TILE * TILE
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "hotpatch-quant", "--example", "codec_speed"],
                   cwd=ROOT, check=True)
    exe = target / "release" / "examples" / "codec_speed"
    rng = np.random.default_rng(0)
    gb = n * 4 / 1e9
    print(f"{n} values ({n * 4 / 2**20:.0f} MiB of f32), best of {a.reps}; GB/s of f32\n")
    print("| type | dequant Rust | dequant ggml C | dequant gguf-py | quant Rust | quant ggml C |")
    print("|---|---|---|---|---|---|")
    for name in a.types:
        data = blocks_for(name, n, rng)
        call_c, out = ggml_dequant_fn(name, data, n)
        call_c()
        rust_d = c_d = float("inf")
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(data)
            f.flush()

            def rust(reps: int, quant_reps: int) -> dict:
                return json.loads(subprocess.run([str(exe), name, f.name, str(reps), str(quant_reps)],
                                                 check=True, capture_output=True, text=True).stdout)

            for _ in range(a.reps):
                rust_d = min(rust_d, rust(1, 0)["dequant_s"])
                c_d = min(c_d, best(call_c, 1))
            r = rust(1, 2)
        r["dequant_s"] = rust_d
        gd = c_d
        gq = None
        if name not in NEEDS_IMATRIX and int(qt_of(name)) != Q8_K:
            gq = best(lambda: ggml.quantize(int(qt_of(name)), out, 4096), 2)
        qt = gguf.GGMLQuantizationType[name]
        npd = None
        if int(qt) != Q8_K:
            npd = best(lambda: gguf_dequantize(np.frombuffer(data, dtype=np.uint8), qt), 1)
        fmt = lambda s: "—" if s is None else f"{gb / s:.2f}"  # noqa: E731
        print(f"| {name} | {fmt(r['dequant_s'])} | {fmt(gd)} | {fmt(npd)} | {fmt(r['quant_s'])} | {fmt(gq)} |",
              flush=True)


if __name__ == "__main__":
    main()
