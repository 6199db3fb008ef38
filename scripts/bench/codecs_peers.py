#!/usr/bin/env python3
"""Codec throughput of the peers — gguf-py (numpy) and ggml C (libggml-base.so) — next to
hotpatch-quant's criterion results, on the same tensor size, in one run.

    .venv/bin/python scripts/bench/codecs_peers.py            # runs the Rust bench first
    .venv/bin/python scripts/bench/codecs_peers.py --no-rust  # peers only (reuses old results)

The Rust figures come from `cargo bench -p hotpatch-quant --bench codecs` (run by this script
unless --no-rust), read back from `$CARGO_TARGET_DIR/criterion/<group>/<TYPE>/new/estimates.json`
(median). Every figure is GB/s of f32 (1e9 bytes/s): f32 written by dequantize, f32 read by
quantize, for a ROWS x COLS tensor (1024 x 4096 = 4 Mi elements, 16 MiB of f32), single thread,
timed in thread CPU time, best of N (as the criterion bench does).

- numpy: `gguf.quants.dequantize` / `gguf.quants.quantize` (gguf==0.19.0); plain types through
  numpy `astype`. Best of --repeat runs.
- ggml C: the type traits' `to_float` and `from_float_ref` (ggml's `quantize_row_*_ref`) called
  once over the whole buffer through ctypes (the call itself is timed, not the buffer setup).
  Best of --repeat runs.
Prints a Markdown table (and the machine) for docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

# numpy madvises its big buffers onto transparent huge pages (THP is "madvise" on this machine);
# ggml writing into such a buffer looks up to 1.5x faster on memory-bound types than Rust writing
# into an ordinary Vec. Turn the hint off so every side writes into the same kind of memory.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

import numpy as np  # noqa: E402
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import ggml  # noqa: E402

# Types whose ggml from_float_ref runs without an importance matrix or grid setup.
C_QUANTIZE_OK = {"Q8_1", "NVFP4", "IQ4_NL", "IQ4_XS", "Q1_0"}
PLAIN = {"F64": np.float64, "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64}
NAMES = {"F32", "F16", "BF16"} | set(PLAIN)
TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64)
FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_float), ctypes.c_void_p, ctypes.c_int64)


def best(fn, repeat: int) -> float:
    """Fastest of `repeat` runs, in thread CPU time (immune to preemption on a busy machine)."""
    times = []
    for _ in range(repeat):
        t = time.thread_time()
        fn()
        times.append(time.thread_time() - t)
    return min(times)


def rust_results(target: Path) -> dict[tuple[str, str], float]:
    out = {}
    for group in ("dequantize", "quantize"):
        d = target / "criterion" / group
        if not d.is_dir():
            continue
        for sub in d.iterdir():
            est = sub / "new" / "estimates.json"
            if est.exists():
                ns = json.loads(est.read_text())["median"]["point_estimate"]
                out[(group, sub.name)] = ns * 1e-9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-rust", action="store_true", help="do not run cargo bench; reuse its last results")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    n = args.rows * args.cols
    gbs = lambda secs: n * 4 / secs / 1e9  # noqa: E731

    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not args.no_rust:
        subprocess.run(["cargo", "bench", "-p", "hotpatch-quant", "--bench", "codecs"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    rust = rust_results(target)

    rng = np.random.default_rng(1)
    w = (rng.standard_normal((args.rows, args.cols)) * 0.02).astype(np.float32)
    rows = []
    for t in T:
        name = t.name
        bs, ts = GGML_QUANT_SIZES[t]
        row_bytes = args.cols // bs * ts
        c = ggml.traits(int(t))
        # Encoded input: quantized weights where someone can quantize, else random bytes.
        enc = None
        try:
            enc = np.ascontiguousarray(quantize(w, t)).view(np.uint8).reshape(args.rows, -1)
        except NotImplementedError:
            if c.from_float_ref and (name.endswith("_K") or name in C_QUANTIZE_OK):
                buf = ctypes.create_string_buffer(args.rows * row_bytes)
                FROM_FLOAT(c.from_float_ref)(w.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), buf, n)
                enc = np.frombuffer(buf.raw, dtype=np.uint8).reshape(args.rows, -1)
        if enc is None:
            enc = rng.integers(0, 256, (args.rows, row_bytes), dtype=np.uint8)
        r = {"type": name}
        # numpy dequantize
        try:
            if name in PLAIN:
                f = lambda: enc.view(PLAIN[name]).astype(np.float32)  # noqa: E731
            elif name == "F32":
                f = lambda: enc.view(np.float32).copy()  # noqa: E731  (gguf-py returns a view)
            else:
                dequantize(enc[:2], t)
                f = lambda: dequantize(enc, t)  # noqa: E731
            r["np_deq"] = gbs(best(f, args.repeat))
        except NotImplementedError:
            pass
        # ggml dequantize
        if c.to_float:
            src = ctypes.create_string_buffer(enc.tobytes(), enc.nbytes)
            dst = np.empty(n, dtype=np.float32)
            fn = TO_FLOAT(c.to_float)
            p = dst.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            r["c_deq"] = gbs(best(lambda: fn(src, p, n), args.repeat))
        # numpy quantize
        if name not in PLAIN and name != "F32":  # gguf-py's F32 "quantize" returns its input
            try:
                quantize(w[:1], t)
                r["np_q"] = gbs(best(lambda: quantize(w, t), args.repeat))
            except NotImplementedError:
                pass
        # ggml quantize
        if c.from_float_ref and ("quantize", name) in rust and name != "F32":
            dst = ctypes.create_string_buffer(args.rows * row_bytes)
            fn = FROM_FLOAT(c.from_float_ref)
            p = w.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            r["c_q"] = gbs(best(lambda: fn(p, dst, n), 1 if name.endswith("_K") or name.startswith("IQ") else args.repeat))
        if ("dequantize", name) in rust:
            r["rs_deq"] = gbs(rust[("dequantize", name)])
        if ("quantize", name) in rust:
            r["rs_q"] = gbs(rust[("quantize", name)])
        rows.append(r)

    fmt = lambda v: f"{v:.2f}" if v is not None else "–"  # noqa: E731
    ratio = lambda a, b: f"{a / b:.1f}×" if a and b else "–"  # noqa: E731
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    print(f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
          f"numpy {np.__version__}; tensor {args.rows}x{args.cols} f32; GB/s of f32, single thread.\n")
    print("| type | Rust deq | ggml C deq | numpy deq | Rust/C | Rust/numpy | Rust q | ggml C q | numpy q |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if not any(k in r for k in ("rs_deq", "rs_q")):
            continue
        g = r.get
        print(f"| {r['type']} | {fmt(g('rs_deq'))} | {fmt(g('c_deq'))} | {fmt(g('np_deq'))} | "
              f"{ratio(g('rs_deq'), g('c_deq'))} | {ratio(g('rs_deq'), g('np_deq'))} | "
              f"{fmt(g('rs_q'))} | {fmt(g('c_q'))} | {fmt(g('np_q'))} |")


if __name__ == "__main__":
    main()
