"""gguf-py's view of a GGUF file, as JSON (run with the project .venv).

  gguf_dump.py MODEL -> {"metadata": {key: {"type": NAME, "value": V}},
                         "tensors": {name: {"type": NAME, "shape": [...], "sha256": HEX}}}

Values: numbers and bools as JSON, strings as text, arrays as lists (element type in
"element"). The tensor hash covers the tensor's raw data bytes exactly as gguf-py reads them,
so two files with byte-identical tensors give the same hashes whatever their header.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as V


def scalar(x):
    if isinstance(x, (bytes, bytearray)):
        return x.decode("utf-8", "replace")
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def field_value(f: gguf.ReaderField):
    types = f.types
    if not types:
        return None
    if types[0] == V.ARRAY:
        if len(types) > 1 and types[1] == V.STRING:
            return [bytes(f.parts[i]).decode("utf-8", "replace") for i in f.data]
        if len(types) > 1 and types[1] == V.ARRAY:
            return None  # nested arrays: not needed by the tests
        return [scalar(np.asarray(f.parts[i]).tolist()[0]) for i in f.data]
    if types[0] == V.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8", "replace")
    return scalar(np.asarray(f.parts[f.data[0]]).tolist()[0])


def main() -> None:
    r = gguf.GGUFReader(sys.argv[1])
    meta = {}
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        entry = {"type": f.types[0].name, "value": field_value(f)}
        if f.types and f.types[0] == V.ARRAY and len(f.types) > 1:
            entry["element"] = f.types[1].name
        meta[name] = entry
    tensors = {}
    for t in r.tensors:
        raw = np.asarray(t.data).tobytes()
        tensors[t.name] = {
            "type": t.tensor_type.name,
            "shape": [int(x) for x in t.shape],
            "sha256": hashlib.sha256(raw).hexdigest(),
        }
    json.dump({"metadata": meta, "tensors": tensors}, sys.stdout)


if __name__ == "__main__":
    main()
