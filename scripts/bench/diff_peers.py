#!/usr/bin/env python3
"""Benchmark of `hotpatch diff` against numpy (gguf-py dequantize + compare) and memcpy.

Builds two model pairs in DIR (kept between runs):
  same-type: F16 vs F16, half of the tensors perturbed (the others take the identical-bytes path
             in hotpatch; numpy has no such path and compares every tensor)
  cross-type: F16 vs Q8_0 of the same weights (every tensor dequantized on both sides)
Each pair: N_TENSORS tensors of 4096x4096. Times, in the same run:
  - numpy: GGUFReader both files, dequantize each tensor with gguf.quants / astype(float32),
    compute max_abs, mean_abs, rmse, cosine, snr (float64 sums, as gguf-py users do);
  - hotpatch diff --json (release binary given as argument), 1 and 2 threads;
  - memcpy bandwidth: numpy copy of a 512 MiB array (the machine's memory limit).
GB/s = bytes of tensor data of both files / wall time (best of REPEAT runs).

Usage: .venv/bin/python scripts/bench/diff_peers.py HOTPATCH_BIN [DIR] [N_TENSORS]
"""
from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

REPEAT = 3


def build(path: Path, n: int, qtype: T, perturb: set[int]) -> None:
    if path.exists():
        return
    rng = np.random.default_rng(42)
    w = gguf.GGUFWriter(str(path), "llama")
    for i in range(n):
        v = (rng.standard_normal((4096, 4096), dtype=np.float32) * 0.05).astype(np.float32)
        if i in perturb:
            v = v + np.random.default_rng(i).standard_normal(v.shape, dtype=np.float32) * 0.005
        if qtype == T.F16:
            w.add_tensor(f"t{i}.weight", v.astype(np.float16))
        else:
            w.add_tensor(f"t{i}.weight", gguf.quants.quantize(v, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def values(t) -> np.ndarray:
    qt = T(int(t.tensor_type))
    raw = np.asarray(t.data)
    if qt == T.F16:
        return raw.astype(np.float32)
    return gguf.quants.dequantize(raw, qt).astype(np.float32)


def numpy_diff(a: Path, b: Path) -> list:
    ra, rb = gguf.GGUFReader(str(a)), gguf.GGUFReader(str(b))
    tb = {t.name: t for t in rb.tensors}
    out = []
    for t in ra.tensors:
        x = values(t).astype(np.float64).reshape(-1)
        y = values(tb[t.name]).astype(np.float64).reshape(-1)
        d = x - y
        ss, aa, bb = float(d @ d), float(x @ x), float(y @ y)
        out.append((t.name, float(np.abs(d).max()), float(np.abs(d).mean()), math.sqrt(ss / d.size),
                    float(x @ y) / math.sqrt(aa * bb), 10 * math.log10(aa / ss) if ss else math.inf))
    return out


def data_bytes(p: Path) -> int:
    return sum(int(t.n_bytes) for t in gguf.GGUFReader(str(p)).tensors)


def best(f) -> float:
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    exe = sys.argv[1]
    d = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/hotpatch-diff-bench")
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    d.mkdir(parents=True, exist_ok=True)
    a = d / f"a-f16-{n}.gguf"
    b = d / f"b-f16-perturbed-{n}.gguf"
    c = d / f"c-q8_0-{n}.gguf"
    build(a, n, T.F16, set())
    build(b, n, T.F16, set(range(0, n, 2)))
    build(c, n, T.Q8_0, set())

    buf = np.ones(512 << 18, dtype=np.float32)  # 512 MiB
    dst = np.empty_like(buf)
    t = best(lambda: np.copyto(dst, buf))
    print(f"memcpy (numpy copyto, 512 MiB): {buf.nbytes / t / 1e9:.2f} GB/s")

    for label, x, y in [("F16 vs F16 (half perturbed)", a, b), ("F16 vs Q8_0", a, c)]:
        total = data_bytes(x) + data_bytes(y)
        print(f"\n{label}: {n} tensors 4096x4096, {total / 1e6:.0f} MB of tensor data")
        for threads in (1, 2):
            cmd = [exe, "diff", str(x), str(y), "--json", "--threads", str(threads)]
            subprocess.run(cmd, check=True, capture_output=True)  # warm the page cache
            t = best(lambda: subprocess.run(cmd, check=True, capture_output=True))
            print(f"  hotpatch diff --threads {threads}: {t:.3f} s  {total / t / 1e9:.2f} GB/s")
        t = best(lambda: numpy_diff(x, y))
        print(f"  numpy (gguf-py dequantize + compare): {t:.3f} s  {total / t / 1e9:.2f} GB/s")


if __name__ == "__main__":
    main()
