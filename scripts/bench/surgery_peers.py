#!/usr/bin/env python3
"""Model surgery beside its peers, in one run.

  rewrite   `hotpatch convert MODEL --type 'blk.*=Q8_0' --out F` (every byte of the model read
            and written through the streaming writer, fsynced and renamed) against file size,
            beside `cp` + `sync` of the same file to the same folder: what the disk allows.
  merge     `hotpatch merge A B --method linear --t 0.5 --out F` on two Q8_0 models (the
            real-size fixture and its perturbed "finetune"), beside the same merge in numpy
            through gguf-py (GGUFReader, dequantize, (a+b)/2, quantize Q8_0, GGUFWriter) —
            and the two outputs compared tensor by tensor.

Fixtures come from scripts/make_big_model.py (a Q8_0 token embedding of ROWS × 640 holding most
of the file); they and every output live under --dir (default /var/tmp/hotpatch-surgery-bench,
a real disk, not tmpfs: the write path is what is measured). Each row is the best of REPS runs
of the whole process (start to file renamed), the inputs in the page cache.

Usage: .venv/bin/python scripts/bench/surgery_peers.py HOTPATCH [--dir DIR] [--reps 3]
       [--rows 32768,262144,1048576]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parents[2]


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def best(reps: int, f) -> float:
    return min(f() for _ in range(reps))


def fixture(d: Path, rows: int, perturb: bool = False) -> Path:
    p = d / f"big-{rows}{'-ft' if perturb else ''}.gguf"
    if not p.exists():
        extra = ["--perturb"] if perturb else []
        subprocess.run([sys.executable, str(ROOT / "scripts/make_big_model.py"), str(p), "--rows", str(rows), *extra],
                       check=True, stdout=subprocess.DEVNULL)
    return p


def warm(p: Path) -> None:
    with open(p, "rb") as f:
        while f.read(1 << 24):
            pass


def cp_sync(src: Path, dst: Path) -> float:
    t0 = time.perf_counter()
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    return time.perf_counter() - t0


def numpy_merge(a: Path, b: Path, out: Path) -> float:
    """The same linear merge in numpy through gguf-py, in process (Python start not counted)."""
    t0 = time.perf_counter()
    ra, rb = gguf.GGUFReader(str(a)), gguf.GGUFReader(str(b))
    arch = bytes(ra.fields["general.architecture"].parts[-1]).decode()
    w = gguf.GGUFWriter(str(out), arch)
    for name, f in ra.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            sub = f.types[1]
            if sub == gguf.GGUFValueType.STRING:
                val = [bytes(f.parts[i]).decode() for i in f.data]
            else:
                val = [f.parts[i].tolist()[0] for i in f.data]
            w.add_array(name, val)
        elif vt == gguf.GGUFValueType.STRING:
            w.add_string(name, bytes(f.parts[-1]).decode())
        else:
            w.add_key_value(name, f.parts[-1].tolist()[0], vt)
    tb = {t.name: t for t in rb.tensors}
    for t in ra.tensors:
        ty = gguf.GGMLQuantizationType(int(t.tensor_type))
        va = gguf.quants.dequantize(np.asarray(t.data), ty)
        vb = gguf.quants.dequantize(np.asarray(tb[t.name].data), ty)
        m = ((va + vb) * 0.5).astype(np.float32)
        if ty == gguf.GGMLQuantizationType.F32:
            w.add_tensor(t.name, m)
        else:
            q = gguf.quants.quantize(m, ty)
            w.add_tensor(t.name, q, raw_dtype=ty)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return time.perf_counter() - t0


def compare(x: Path, y: Path) -> tuple[int, int, float]:
    """Tensors identical byte for byte, tensors in all, and the largest |Δ| of the rest."""
    rx, ry = gguf.GGUFReader(str(x)), gguf.GGUFReader(str(y))
    ty = {t.name: t for t in ry.tensors}
    same, worst = 0, 0.0
    for t in rx.tensors:
        u = ty[t.name]
        if np.array_equal(np.asarray(t.data), np.asarray(u.data)):
            same += 1
            continue
        k = gguf.GGMLQuantizationType(int(t.tensor_type))
        d = np.abs(gguf.quants.dequantize(np.asarray(t.data), k) - gguf.quants.dequantize(np.asarray(u.data), k))
        worst = max(worst, float(d.max()))
    return same, len(rx.tensors), worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("hotpatch")
    ap.add_argument("--dir", type=Path, default=Path("/var/tmp/hotpatch-surgery-bench"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", default="32768,262144,1048576")
    a = ap.parse_args()
    a.dir.mkdir(parents=True, exist_ok=True)
    hp = a.hotpatch
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f}; best of {a.reps}; dir {a.dir}")
    print()
    print("| rewrite (`convert --type 'blk.*=Q8_0'`) | file | hotpatch | MB/s | `cp` + fsync | MB/s | hotpatch / cp |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for rows in [int(r) for r in a.rows.split(",")]:
        src = fixture(a.dir, rows)
        size = src.stat().st_size
        warm(src)
        out = a.dir / "out.gguf"
        t_hp = best(a.reps, lambda: wall([hp, "convert", str(src), "--type", "blk.*=Q8_0", "--out", str(out)]))
        t_cp = best(a.reps, lambda: cp_sync(src, a.dir / "copy.gguf"))
        mb = size / 1e6
        print(f"| {rows} rows | {mb:.0f} MB | {t_hp * 1e3:.0f} ms | {mb / t_hp:.0f} | {t_cp * 1e3:.0f} ms | {mb / t_cp:.0f} | {t_hp / t_cp:.2f}× |")
        for f in (out, a.dir / "copy.gguf"):
            f.unlink(missing_ok=True)
    print()
    rows = 262144
    x, y = fixture(a.dir, rows), fixture(a.dir, rows, perturb=True)
    warm(x)
    warm(y)
    out_hp, out_np = a.dir / "merge-hotpatch.gguf", a.dir / "merge-numpy.gguf"
    t_hp = best(a.reps, lambda: wall([hp, "merge", str(x), str(y), "--method", "linear", "--t", "0.5", "--out", str(out_hp)]))
    t_np = best(a.reps, lambda: numpy_merge(x, y, out_np))
    same, n, worst = compare(out_hp, out_np)
    mb = x.stat().st_size / 1e6
    print(f"| linear merge t=0.5 of two Q8_0 models ({mb:.0f} MB each) | time | speed-up |")
    print("|---|---:|---:|")
    print(f"| hotpatch `merge` (whole process) | {t_hp * 1e3:.0f} ms | {t_np / t_hp:.1f}× |")
    print(f"| numpy through gguf-py (in process) | {t_np * 1e3:.0f} ms | 1.0× |")
    print()
    print(f"outputs: {same} of {n} tensors byte-identical; largest |Δ| elsewhere {worst:.3g}")
    for f in (out_hp, out_np):
        f.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
