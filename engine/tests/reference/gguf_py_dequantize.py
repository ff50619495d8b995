"""Reference dequantization by gguf-py (the numpy port of ggml's dequantizers, maintained in the
llama.cpp repository), for engine/tests/ggml.rs.

    gguf_py_dequantize.py blocks TYPE IN OUT     raw blocks of TYPE in IN -> f32 values in OUT
    gguf_py_dequantize.py tensors GGUF ROWS DIR NAME...   the first ROWS rows of each tensor
                                                           NAME -> DIR/NAME.f32
"""
import sys

import numpy as np
import gguf
from gguf.quants import dequantize


def blocks(type_name, src, dst):
    qtype = gguf.GGMLQuantizationType[type_name]
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = np.fromfile(src, dtype=np.uint8).reshape(-1, type_size)
    dequantize(raw, qtype).astype(np.float32).tofile(dst)


def tensors(path, rows, out_dir, *names):
    by_name = {t.name: t for t in gguf.GGUFReader(path).tensors}
    for name in names:
        t = by_name[name]
        data = t.data.reshape(t.data.shape[0] if t.data.ndim > 1 else 1, -1)[: int(rows)]
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            data = np.ascontiguousarray(data).view(np.uint8)
        dequantize(data, t.tensor_type).astype(np.float32).tofile(f"{out_dir}/{name}.f32")


if __name__ == "__main__":
    {"blocks": blocks, "tensors": tensors}[sys.argv[1]](*sys.argv[2:])
