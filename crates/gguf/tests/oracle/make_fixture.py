"""Writes a GGUF fixture with gguf-py (the reference writer) for hotpatch's tests.

Every metadata value type (scalars, strings, arrays of each, nested arrays, empty arrays,
non-ASCII strings), and tensors of many ggml types: F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1
quantized by gguf-py from random values; K-quant, IQ, TQ and MXFP4 tensors as raw random
blocks (any bytes are a valid encoding; scales may come out non-finite, on purpose);
integer and F64 tensors.

usage: make_fixture.py OUT.gguf [--seed N] [--alignment N] [--split-max-tensors N]
"""
import argparse
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--alignment", type=int, default=0)
ap.add_argument("--split-max-tensors", type=int, default=0)
ap.add_argument("--small", action="store_true", help="only a few float tensors")
a = ap.parse_args()
rng = np.random.default_rng(a.seed)

w = gguf.GGUFWriter(a.out, "llama", split_max_tensors=a.split_max_tensors)
if a.alignment:
    w.add_custom_alignment(a.alignment)
w.add_name("hotpatch fixture ✓")
w.add_block_count(2)
w.add_head_count(4)
w.add_head_count_kv(2)
w.add_embedding_length(64)
w.add_uint8("test.u8", 200)
w.add_int8("test.i8", -100)
w.add_uint16("test.u16", 65000)
w.add_int16("test.i16", -32000)
w.add_uint32("test.u32", 4_000_000_000)
w.add_int32("test.i32", -2_000_000_000)
w.add_float32("test.f32", 3.14159)
w.add_float64("test.f64", -2.718281828459045)
w.add_uint64("test.u64", 18_446_744_073_709_551_615)
w.add_int64("test.i64", -9_223_372_036_854_775_808)
w.add_bool("test.bool_true", True)
w.add_bool("test.bool_false", False)
w.add_string("test.empty_string", "")
w.add_string("tokenizer.chat_template", "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}")
w.add_key_value("test.arr_u8", [0, 1, 255], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT8)
w.add_key_value("test.arr_i16", [-5, 7], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT16)
w.add_key_value("test.arr_u64", [2**64 - 1, 0], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT64)
w.add_key_value("test.arr_i64", [-(2**63), 2**63 - 1], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT64)
w.add_key_value("test.arr_f64", [0.1, -1e300], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT64)
w.add_key_value("test.arr_bool", [True, False, True], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.BOOL)
w.add_array("test.arr_empty", [])
w.add_array("test.nested", [[1, 2, 3], [4]])
w.add_array("test.nested_str", [["a", "bé"], ["c"]])
tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + ["▁the", "▁a", "日本"]
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores([float(-i) for i in range(len(tokens))])
w.add_token_types([1] * len(tokens))

def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)

tensors = []
tensors.append(("token_embd.weight", f32(8, 64), Q.F32))
tensors.append(("output_norm.weight", f32(64), Q.F32))
if not a.small:
    for qt in (Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.TQ1_0, Q.TQ2_0, Q.MXFP4):
        tensors.append((f"quant.{qt.name.lower()}.weight", f32(4, 256), qt))
    for qt in (Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.IQ2_XXS, Q.IQ2_XS, Q.IQ2_S, Q.IQ3_XXS,
               Q.IQ3_S, Q.IQ1_S, Q.IQ1_M, Q.IQ4_NL, Q.IQ4_XS):
        bs, ts = gguf.GGML_QUANT_SIZES[qt]
        raw = rng.integers(0, 256, size=(2, 512 // bs * ts), dtype=np.uint8)
        tensors.append((f"raw.{qt.name.lower()}.weight", raw, qt))
    tensors.append(("int.i8", rng.integers(-128, 128, size=(3, 5), dtype=np.int8), Q.I8))
    tensors.append(("int.i16", rng.integers(-30000, 30000, size=(7,), dtype=np.int16), Q.I16))
    tensors.append(("int.i32", rng.integers(-2**31, 2**31, size=(2, 3, 4), dtype=np.int32), Q.I32))
    tensors.append(("int.i64", rng.integers(-2**62, 2**62, size=(5,), dtype=np.int64), Q.I64))
    tensors.append(("float.f64", rng.standard_normal((3, 4)), Q.F64))
    nf = f32(32)
    nf[:4] = [np.nan, np.inf, -np.inf, -0.0]
    tensors.append(("float.nonfinite", nf, Q.F32))
    tensors.append(("blk.0.attn_q.weight", f32(1, 2, 3, 32), Q.F16))

for name, arr, qt in tensors:
    if qt in (Q.F32, Q.I8, Q.I16, Q.I32, Q.I64, Q.F64):
        w.add_tensor(name, arr)
    elif arr.dtype == np.uint8 and qt not in (Q.F16, Q.BF16):
        w.add_tensor(name, arr, raw_dtype=qt)
    else:
        w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print("ok", file=sys.stderr)
