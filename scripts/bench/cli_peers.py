#!/usr/bin/env python3
"""The CLI's big-tensor paths beside their peers, in one run (issue "Real models at full size",
items 7–10), on the real-size fixture of scripts/make_big_model.py (a 262,144 × 640 Q8_0 token
embedding, 70 %+ of the file) and, when given, a real model (SmolLM2-135M-Instruct Q4_1).

  tensor --raw-f32   hotpatch (whole process)  vs  gguf-py numpy (GGUFReader + dequantize +
                     tofile, in-process)  vs  ggml C (libggml-base.so to_float into one buffer
                     + one write; GGUF parsing and Python start not counted: a lower bound)
  diff               hotpatch --threads 1 vs --threads 2, A vs its perturbed copy
  search             hotpatch vs ripgrep (`rg -c -a` with the same bytes), with minor page faults
  inspect --json     hotpatch (streamed) vs the --before binary

Every row is a best of REPS runs, files in the page cache, outputs to fresh files under
/dev/shm (tmpfs: the CPU path, not the disk). With --before BIN the same commands also run on
an older hotpatch binary, interleaved with the new one.

Usage: .venv/bin/python scripts/bench/cli_peers.py HOTPATCH [--before OLD] [--dir DIR]
       [--smol SmolLM2-135M-Instruct.Q4_1.gguf] [--reps 7]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))


CPU = {}


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall time and minor page faults of one run of `cmd` (stdout discarded); its CPU time
    (user + system, all threads) is kept in CPU[wall]."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # rg exits 1 when nothing matches
        raise SystemExit(f"{cmd} exited {code}")
    CPU[dt] = ru.ru_utime + ru.ru_stime
    return dt, ru.ru_minflt


def best(reps: int, f) -> tuple[float, int]:
    out = [f() for _ in range(reps)]
    return min(out, key=lambda x: x[0])


def fixture(d: Path, name: str, extra: list[str]) -> Path:
    p = d / name
    if not p.exists():
        subprocess.run([sys.executable, str(ROOT / "scripts/make_big_model.py"), str(p), *extra],
                       check=True)
    return p


def tensor_of(path: Path, name: str):
    return next(t for t in gguf.GGUFReader(str(path)).tensors if t.name == name)


def numpy_raw(path: Path, name: str, out: Path) -> float:
    t0 = time.perf_counter()
    t = tensor_of(path, name)
    v = gguf.quants.dequantize(np.asarray(t.data), gguf.GGMLQuantizationType(int(t.tensor_type)))
    v.astype("<f4", copy=False).tofile(out)
    return time.perf_counter() - t0


def ggml_raw(path: Path, name: str, out: Path) -> float:
    import ctypes
    import ggml

    t = tensor_of(path, name)
    raw = np.ascontiguousarray(np.asarray(t.data))
    tr = ggml.traits(int(t.tensor_type))
    to_float = ggml._TO_FLOAT(tr.to_float)
    n = raw.nbytes // tr.type_size * tr.blck_size
    t0 = time.perf_counter()
    buf = np.empty(n, dtype=np.float32)
    to_float(raw.ctypes.data, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), n)
    with open(out, "wb") as f:
        f.write(memoryview(buf))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("hotpatch")
    ap.add_argument("--before")
    ap.add_argument("--dir", type=Path, default=Path("/dev/shm/hotpatch-big"))
    ap.add_argument("--smol", type=Path)
    ap.add_argument("--reps", type=int, default=7)
    a = ap.parse_args()
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    a.dir.mkdir(parents=True, exist_ok=True)
    big = fixture(a.dir, "big.gguf", [])
    big_b = fixture(a.dir, "big-perturbed.gguf", ["--perturb"])
    bins = [("hotpatch", a.hotpatch)] + ([("hotpatch (before)", a.before)] if a.before else [])
    shm = Path("/dev/shm")
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load[0]:.1f}; {big.name} {big.stat().st_size / 1e6:.0f} MB; "
          f"best of {a.reps}\n")

    # Item 7: --raw-f32 of the token embedding (167.8 M values, 671 MB of f32).
    name = "token_embd.weight"
    out = shm / "hotpatch-bench.f32"
    rows = []
    for label, exe in bins:
        def once(exe=exe):
            out.unlink(missing_ok=True)
            return run([exe, "tensor", str(big), name, "--raw-f32", str(out)])
        rows.append((f"{label} `tensor --raw-f32`", best(a.reps, once)[0]))
    for label, f in [("ggml C to_float + one write", ggml_raw), ("gguf-py numpy", numpy_raw)]:
        def once(f=f):
            out.unlink(missing_ok=True)
            return (f(big, name, out), 0)
        rows.append((label, best(max(2, a.reps // 2), once)[0]))
    out.unlink(missing_ok=True)
    f32 = 262144 * 640 * 4
    print("| token_embd → raw f32 (671 MB) | time | GB/s of f32 |\n|---|---:|---:|")
    for label, t in rows:
        print(f"| {label} | {t * 1000:.0f} ms | {f32 / t / 1e9:.2f} |")

    # Item 8: diff on 1 and 2 threads.
    print("\n| `diff A B --json` (A vs its perturbed copy) | 1 thread | 2 threads | speed-up |\n"
          "|---|---:|---:|---:|")
    for label, exe in bins:
        t = [best(a.reps, lambda th=th: run([exe, "diff", str(big), str(big_b), "--json",
                                             "--threads", str(th)]))[0] for th in (1, 2)]
        print(f"| {label} | {t[0] * 1000:.0f} ms | {t[1] * 1000:.0f} ms | {t[0] / t[1]:.2f}× |")

    # Item 9: search against ripgrep, same bytes (no match: the whole file is read).
    models = [big] + ([a.smol] if a.smol else [])
    print("\n| `search` DE AD BE EF (whole file read) | file | wall | GB/s | CPU (user+sys) | minor faults |\n"
          "|---|---|---:|---:|---:|---:|")
    for m in models:
        size = m.stat().st_size
        cmds = [(label, [exe, "search", str(m), "de ad be ef"]) for label, exe in bins]
        cmds.append(("ripgrep " + subprocess.run(["rg", "--version"], capture_output=True,
                                                text=True).stdout.split()[1],
                     ["rg", "-c", "-a", r"(?-u)\xDE\xAD\xBE\xEF", str(m)]))
        for label, cmd in cmds:
            t, flt = best(a.reps * 2, lambda cmd=cmd: run(cmd))
            print(f"| {label} | {m.name} | {t * 1000:.1f} ms | {size / t / 1e9:.2f} | "
                  f"{CPU[t] * 1000:.1f} ms | {flt} |")

    # Item 10: inspect --json.
    print("\n| `inspect --json` | file | time | minor faults |\n|---|---|---:|---:|")
    for m in models:
        for label, exe in bins:
            t, flt = best(a.reps * 2, lambda exe=exe, m=m: run([exe, "inspect", str(m), "--json"]))
            print(f"| {label} | {m.name} | {t * 1000:.1f} ms | {flt} |")


if __name__ == "__main__":
    main()
