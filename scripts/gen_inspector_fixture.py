#!/usr/bin/env python3
"""Writes ui/src/lib/bytes/inspector.fixture.json: byte strings and how numpy reads them.

The Bytes screen's inspector decodes the bytes at the cursor as u8..i64, f16, bf16, f32 and
f64 in either byte order; its vitest checks each reading against these values, computed here
independently with numpy. Run from the repo root: .venv/bin/python scripts/gen_inspector_fixture.py
"""
import json
import math
import sys

import numpy as np

rng = np.random.default_rng(7)
cases = [bytes(rng.integers(0, 256, 8, dtype=np.uint8)) for _ in range(40)]
# Special bit patterns: zeros, ones, f16 subnormal/min/max/inf/nan, bf16 of 1.0 and -2.5,
# f32 of pi, f64 of 1/3, sign bits.
specials = [
    "0000000000000000", "ffffffffffffffff", "0100000000000000", "ff03000000000000",
    "0004000000000000", "ff7b000000000000", "007c000000000000", "00fc000000000000",
    "017e000000000000", "803f000000000000", "20c0000000000000", "db0f4940db0f4940",
    "555555555555d53f", "0080000000000000", "0000008000000080", "3c00000000003ff0",
]
cases += [bytes.fromhex(h) for h in specials]


def num(x):
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0 and math.copysign(1, x) < 0:
        return "-0"
    return x


out = []
for b in cases:
    row = {"hex": b.hex()}
    for order, e in (("le", "<"), ("be", ">")):
        u16 = np.frombuffer(b[:2], dtype=e + "u2")[0]
        row[order] = {
            "u8": str(b[0]),
            "i8": str(np.frombuffer(b[:1], dtype="i1")[0]),
            "u16": str(u16),
            "i16": str(np.frombuffer(b[:2], dtype=e + "i2")[0]),
            "u32": str(np.frombuffer(b[:4], dtype=e + "u4")[0]),
            "i32": str(np.frombuffer(b[:4], dtype=e + "i4")[0]),
            "u64": str(np.frombuffer(b, dtype=e + "u8")[0]),
            "i64": str(np.frombuffer(b, dtype=e + "i8")[0]),
            "f16": num(np.frombuffer(b[:2], dtype=e + "f2")[0]),
            "bf16": num(np.array([np.uint32(u16) << 16], dtype=np.uint32).view(np.float32)[0]),
            "f32": num(np.frombuffer(b[:4], dtype=e + "f4")[0]),
            "f64": num(np.frombuffer(b, dtype=e + "f8")[0]),
        }
    out.append(row)

path = sys.argv[1] if len(sys.argv) > 1 else "ui/src/lib/bytes/inspector.fixture.json"
with open(path, "w") as f:
    json.dump({"generator": "scripts/gen_inspector_fixture.py (numpy " + np.__version__ + ")", "cases": out}, f, indent=1)
    f.write("\n")
print(f"wrote {len(out)} cases to {path}")
