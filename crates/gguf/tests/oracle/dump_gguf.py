"""Prints what gguf-py's GGUFReader sees in a GGUF file, as JSON, for hotpatch's tests.

{"data_offset", "alignment", "metadata": [{"key", "offset", "types", "raw_hex", "value"}],
 "tensors": [{"name", "type", "dims", "offset", "nbytes", "data_sha256", "values"?}]}

raw_hex: the entry's bytes from its type id to its end (gguf-py's parts after the key).
value: gguf-py's contents() (nested arrays are flattened by gguf-py; compare raw_hex there).
With --values, each tensor gets its dequantized values (gguf.quants.dequantize) where gguf-py
can dequantize the type, non-finite values as "NaN" / "Infinity" / "-Infinity".
"""
import hashlib
import json
import math
import sys

import numpy as np
import gguf

path = sys.argv[1]
with_values = "--values" in sys.argv[2:]
r = gguf.GGUFReader(path)


def jf(x):
    if isinstance(x, float):
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "Infinity" if x > 0 else "-Infinity"
    return x


meta = []
for f in r.fields.values():
    raw = b"".join(bytes(p.tobytes()) for p in f.parts[2:])
    try:
        v = f.contents()
        if isinstance(v, list):
            v = [jf(x) for x in v]
        else:
            v = jf(v)
    except Exception as e:  # gguf-py cannot decode (e.g. bad UTF-8)
        v = {"error": str(e)}
    meta.append({"key": f.name, "offset": int(f.offset), "types": [t.name for t in f.types],
                 "raw_hex": raw.hex(), "value": v})

tensors = []
for t in r.tensors:
    d = {"name": t.name, "type": t.tensor_type.name, "dims": [int(x) for x in t.shape],
         "offset": int(t.data_offset), "nbytes": int(t.n_bytes),
         "data_sha256": hashlib.sha256(bytes(t.data.tobytes())).hexdigest()}
    if with_values:
        try:
            vals = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
            d["values"] = [jf(float(x)) for x in vals]
        except NotImplementedError:
            if t.tensor_type.name in ("I8", "I16", "I32", "I64", "F64"):
                d["values"] = [jf(float(x)) for x in np.asarray(t.data).reshape(-1)]
    tensors.append(d)

align = r.fields.get("general.alignment")
print(json.dumps({"data_offset": int(r.data_offset),
                  "alignment": int(align.contents()) if align else 32,
                  "metadata": meta, "tensors": tensors}))
