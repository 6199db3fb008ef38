"""Oracle for the K-quant / IQ codec tests: runs the real ggml (tests/oracle/ggml.py) and gguf-py.

usage: oracle.py OP TYPE_ID IN OUT
  quantize      IN = little-endian f32 values, OUT = ggml's quantize_row_*_ref bytes
  dequant_ggml  IN = blocks, OUT = f32 from ggml's C to_float
  dequant_gguf  IN = blocks, OUT = f32 from gguf-py's numpy dequantizer
"""
import ctypes
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
import ggml  # noqa: E402

Q8_K = 15
QK_K = 256


def main() -> None:
    op, type_id, src, dst = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    data = src.read_bytes()
    if op == "quantize":
        x = np.frombuffer(data, dtype=np.float32)
        if type_id == Q8_K:
            # ggml_quantize_chunk has no Q8_K case; call the reference row quantizer directly.
            lib = ggml.lib()
            out = ctypes.create_string_buffer(x.size // QK_K * 292)
            lib.quantize_row_q8_K_ref.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            xc = np.ascontiguousarray(x)
            lib.quantize_row_q8_K_ref(xc.ctypes.data, out, x.size)
            dst.write_bytes(out.raw)
        else:
            blck = ggml.traits(type_id).blck_size
            dst.write_bytes(ggml.quantize(type_id, x, blck))
    elif op == "dequant_ggml":
        if type_id == Q8_K:
            lib = ggml.lib()
            n = len(data) // 292 * QK_K
            out = np.empty(n, dtype=np.float32)
            buf = ctypes.create_string_buffer(data, len(data))
            lib.dequantize_row_q8_K.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            lib.dequantize_row_q8_K(buf, out.ctypes.data, n)
        else:
            out = ggml.dequantize(type_id, data)
        dst.write_bytes(out.astype("<f4").tobytes())
    elif op == "dequant_gguf":
        import gguf
        from gguf.quants import dequantize

        qt = gguf.GGMLQuantizationType(type_id)
        out = dequantize(np.frombuffer(data, dtype=np.uint8), qt)
        dst.write_bytes(np.asarray(out, dtype="<f4").reshape(-1).tobytes())
    else:
        raise SystemExit(f"unknown op {op}")


if __name__ == "__main__":
    main()
