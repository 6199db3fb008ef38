"""Times gguf-py's GGUFReader opening GGUF files (the peer of hotpatch's GgufFile::open).

usage: gguf_open.py FILE... ; prints one line per file: size, median and min of N runs.
Run by `cargo bench -p hotpatch-gguf --bench open` on the same files, in the same run.
"""
import os
import statistics
import sys
import time

import gguf

RUNS = int(os.environ.get("GGUF_OPEN_RUNS", "3"))
for path in sys.argv[1:]:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        r = gguf.GGUFReader(path)
        n = len(r.tensors)
        times.append(time.perf_counter() - t0)
        del r
    size = os.path.getsize(path)
    print(f"gguf-py GGUFReader {os.path.basename(path)}: {size} bytes, {n} tensors, "
          f"median {statistics.median(times) * 1e3:.1f} ms, min {min(times) * 1e3:.1f} ms ({RUNS} runs)")
