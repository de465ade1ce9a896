"""Golden cases of onnxruntime's contrib domains (``com.microsoft``, ``com.microsoft.nchwc``).

Every expected number is written in closed form from the formulas in the docstring of
``nascost.predictors.costs.ops_contrib`` (never by calling a handler). ``flops`` is the
total (``2 * macs`` + other FLOPs). ``write_bytes`` checks the output shapes that the
contrib shape functions give (onnx infers none of these ops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from goldenlib import GoldenCase, In, Init, floats, ints, single
from onnx import TensorProto as T

MS = "com.microsoft"
NCHWC = "com.microsoft.nchwc"
OPSETS = {MS: 1, NCHWC: 1}

GOLDEN_CASES: list[GoldenCase] = []


def case(domain: str, op: str, build: Callable[[], onnx.ModelProto], name: str = "", **expect: int) -> None:
    GOLDEN_CASES.append(GoldenCase(domain, op, build, expect, name=name))


def ms(op: str, inputs: list[Any], attrs: dict[str, Any] | None = None, *, n_outputs: int = 1, domain: str = MS) -> Callable[[], onnx.ModelProto]:
    return single(op, inputs, attrs, n_outputs=n_outputs, domain=domain, extra_opsets=OPSETS)


# --------------------------------------------------------------------------- conv / matmul
# X (1, 4, 8, 8), W (6, 4, 3, 3), pads 1 -> Y (1, 6, 8, 8) = 384; MACs 384 * 36 = 13824
X = In("x", [1, 4, 8, 8])
W = Init("w", floats(6, 4, 3, 3))
B6 = Init("b", floats(6))
case(MS, "FusedConv", ms("FusedConv", [X, W, B6], {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3], "activation": "Relu"}),
     macs=13824, flops=2 * 13824 + (1 + 1) * 384, write_bytes=384 * 4)
case(MS, "FusedConv", ms("FusedConv", [X, W, "", In("z", [1, 6, 8, 8])],
                         {"pads": [1, 1, 1, 1], "activation": "Sigmoid"}), name="sum_sigmoid",
     macs=13824, flops=2 * 13824 + (1 + 3) * 384)

# A (2, 3, 5, 4) x B (4, 6) transposed: transA -> A^T is (.., 4, 5)? use transB: B given (6, 4)
case(MS, "FusedMatMul", ms("FusedMatMul", [In("a", [2, 3, 5, 4]), Init("bm", floats(6, 4))], {"transB": 1, "alpha": 0.5}),
     macs=2 * 3 * 5 * 6 * 4, flops=2 * 720 + 2 * 3 * 5 * 6, write_bytes=180 * 4)
case(MS, "FusedMatMul", ms("FusedMatMul", [In("a", [4, 5]), In("b2", [4, 7])], {"transA": 1}), name="transA",
     macs=5 * 7 * 4, flops=2 * 140, write_bytes=35 * 4)
# Gemm (3, 4) x (4, 5) + C, LeakyRelu: MACs 60; C add 15; activation 2 * 15
case(MS, "FusedGemm", ms("FusedGemm", [In("a", [3, 4]), Init("bg", floats(4, 5)), Init("cg", floats(5))],
                         {"activation": "LeakyRelu", "activation_alpha": 0.1}),
     macs=60, flops=120 + 15 + 30, write_bytes=15 * 4)

# --------------------------------------------------------------------------- attention
# B=2, S=5, Hin=8, heads 2, hidden 8 each: projection 2*5*8*24 = 1920 MACs; scores 2*2*5*5 = 100
# score MACs 100 * (8 + 8) / 2 = 800; bias 2*5*24 = 240; mask: 100; scale 100; softmax 500
case(MS, "Attention", ms("Attention", [In("x", [2, 5, 8]), Init("wa", floats(8, 24)), Init("ba", floats(24)),
                                       In("mask", [2, 5], T.INT32)], {"num_heads": 2}),
     macs=1920 + 800, flops=2 * 2720 + 240 + 100 * (1 + 1 + 5), write_bytes=2 * 5 * 8 * 4)
# past (2, B=1, N=2, P=3, H=4), S=2 -> T=5; scores 1*2*2*5 = 20; projection 1*2*8*24 = 384; no bias, no mask
case(MS, "Attention", ms("Attention", [In("x", [1, 2, 8]), Init("wa", floats(8, 24)), "", "", In("past", [2, 1, 2, 3, 4])],
                         {"num_heads": 2}, n_outputs=2), name="past",
     macs=384 + 20 * 16 // 2, flops=2 * (384 + 160) + 20 * 6, write_bytes=1 * 2 * 8 * 4 + 2 * 1 * 2 * 5 * 4 * 4)
# MHA: q (2, 4, 8), k/v (2, 6, 8), heads 2 -> head 4; scores 2*2*4*6 = 96; MACs 96 * 8
case(MS, "MultiHeadAttention", ms("MultiHeadAttention", [In("q", [2, 4, 8]), In("k", [2, 6, 8]), In("v", [2, 6, 8])],
                                  {"num_heads": 2}),
     macs=96 * 8, flops=2 * 768 + 96 * 6, write_bytes=2 * 4 * 8 * 4)
# GQA: q (1, 3, 8) heads 4 (head 2), kv heads 2: k/v (1, 3, 4); no past: T = 3; scores 1*4*3*3 = 36;
# MACs 36 * 2 * 2 = 144; mask (causal) + scale + softmax 7 per score
case(MS, "GroupQueryAttention", ms("GroupQueryAttention", [In("q", [1, 3, 8]), In("k", [1, 3, 4]), In("v", [1, 3, 4])],
                                   {"num_heads": 4, "kv_num_heads": 2}),
     macs=144, flops=288 + 36 * 7, write_bytes=1 * 3 * 8 * 4)
# RotaryEmbedding contrib: x (1, 2, 4, 8) (B, N, S, H), rotary dim 4: 1*2*4 rows * 4 rotated * 3
case(MS, "RotaryEmbedding", ms("RotaryEmbedding", [In("x", [1, 2, 4, 8]), In("pos", [1, 4], T.INT64),
                                                   In("cos", [16, 2]), In("sin", [16, 2])], {"rotary_embedding_dim": 4}),
     flops=8 * 4 * 3, write_bytes=64 * 4)

# --------------------------------------------------------------------------- normalization
# x (2, 3, 8): 48 elements, 6 rows
XN = In("x", [2, 3, 8])
G8, BT8 = Init("g", floats(8)), Init("bt", floats(8))
case(MS, "SkipLayerNormalization", ms("SkipLayerNormalization", [XN, In("skip", [2, 3, 8]), G8, BT8, Init("bs", floats(8))]),
     flops=(2 + 7) * 48 + 4 * 6, write_bytes=48 * 4)
case(MS, "SkipSimplifiedLayerNormalization", ms("SkipSimplifiedLayerNormalization", [XN, In("skip", [2, 3, 8]), G8]),
     flops=(1 + 4) * 48 + 3 * 6, write_bytes=48 * 4)
case(MS, "SimplifiedLayerNormalization", ms("SimplifiedLayerNormalization", [XN, G8], {"axis": -1}),
     flops=4 * 48 + 3 * 6, write_bytes=48 * 4)
case("", "SimplifiedLayerNormalization", ms("SimplifiedLayerNormalization", [XN, G8], {"axis": 1}, domain=""),
     flops=4 * 48 + 3 * 2, write_bytes=48 * 4)
case(MS, "LayerNormalization", ms("LayerNormalization", [XN, G8, BT8]),
     flops=7 * 48 + 4 * 6, write_bytes=48 * 4)
# ids (2, 3), word (10, 8), pos (16, 8), segment (2, 8): 2 adds; LN 7 per element, 4 per row
case(MS, "EmbedLayerNormalization", ms("EmbedLayerNormalization", [
    In("ids", [2, 3], T.INT32), In("seg", [2, 3], T.INT32), Init("we", floats(10, 8)), Init("pe", floats(16, 8)),
    Init("se", floats(2, 8)), G8, BT8], n_outputs=2),
     flops=2 * 48 + 7 * 48 + 4 * 6, write_bytes=48 * 4 + 2 * 4,
     weight_read_bytes=3 * 48 * 4 + 2 * 8 * 4)

# --------------------------------------------------------------------------- activations
case(MS, "Gelu", ms("Gelu", [XN]), flops=5 * 48, write_bytes=48 * 4)
case(MS, "FastGelu", ms("FastGelu", [XN, Init("bf", floats(8))]), flops=10 * 48, write_bytes=48 * 4)
case(MS, "BiasGelu", ms("BiasGelu", [XN, Init("bb", floats(8))]), flops=6 * 48, write_bytes=48 * 4)
case(MS, "QuickGelu", ms("QuickGelu", [XN], {"alpha": 1.702}), flops=5 * 48, write_bytes=48 * 4)
case(MS, "BiasAdd", ms("BiasAdd", [XN, Init("bb", floats(8)), In("skip", [2, 3, 8])]), flops=2 * 48, write_bytes=48 * 4)
case(MS, "BiasSoftmax", ms("BiasSoftmax", [XN, In("bias", [2, 3, 8])], {"axis": -1}), flops=6 * 48, write_bytes=48 * 4)

# --------------------------------------------------------------------------- quantized
# A (2, 3, 32) x 4-bit B for N=16, K=32, block 32: MACs 6*16*32; dequant 2*16*32; no bias
case(MS, "MatMulNBits", ms("MatMulNBits", [In("a", [2, 3, 32]), Init("qb", np.zeros((16, 1, 16), np.uint8)),
                                           Init("sc", floats(16))], {"K": 32, "N": 16, "bits": 4, "block_size": 32}),
     macs=6 * 16 * 32, flops=2 * 3072 + 2 * 512, write_bytes=6 * 16 * 4)
# A (4, 8) float, B int8 (8, 5): MACs 160; quantize A 7*32+6; rescale 20; bias 20
case(MS, "DynamicQuantizeMatMul", ms("DynamicQuantizeMatMul", [
    In("a", [4, 8]), Init("qb", np.ones((8, 5), np.int8)), Init("bsc", np.ones(1, np.float32)), "", Init("bias", floats(5))]),
     macs=160, flops=320 + 7 * 32 + 6 + 20 + 20, write_bytes=20 * 4)
# A uint8 (4, 8), B int8 (8, 5), scales; a zero point (1 per A element); rescale 20
case(MS, "MatMulIntegerToFloat", ms("MatMulIntegerToFloat", [
    In("a", [4, 8], T.UINT8), Init("qb", np.ones((8, 5), np.int8)), Init("as", np.ones(1, np.float32)),
    Init("bsc", np.ones(1, np.float32)), Init("azp", np.zeros(1, np.uint8))]),
     macs=160, flops=320 + 20 + 32, write_bytes=20 * 4)

S1, Z1 = Init("s", np.ones((), np.float32)), Init("z", np.zeros((), np.uint8))
QA = In("qa", [2, 3, 8], T.UINT8)
for op in ("QLinearAdd", "QLinearMul"):
    case(MS, op, ms(op, [QA, S1, Z1, In("qb", [8], T.UINT8), S1, Z1, S1, Z1]),
         flops=2 * (48 + 8) + 48 + 5 * 48, write_bytes=48)
case(MS, "QLinearSigmoid", ms("QLinearSigmoid", [QA, S1, Z1, S1, Z1]), flops=(2 + 3 + 5) * 48, write_bytes=48)
case(MS, "QLinearLeakyRelu", ms("QLinearLeakyRelu", [QA, S1, Z1, S1, Z1], {"alpha": 0.1}), flops=(2 + 2 + 5) * 48, write_bytes=48)
case(MS, "QLinearSoftmax", ms("QLinearSoftmax", [QA, S1, Z1, S1, Z1], {"axis": -1, "opset": 13}),
     flops=(2 + 5 + 5) * 48, write_bytes=48)
QX = In("qx", [1, 4, 6, 6], T.UINT8)
case(MS, "QLinearGlobalAveragePool", ms("QLinearGlobalAveragePool", [QX, S1, Z1, S1, Z1]),
     flops=2 * 144 + 144 + 4 + 5 * 4, write_bytes=4)
# 2x2 stride 2: Y (1, 4, 3, 3) = 36; window 4
case(MS, "QLinearAveragePool", ms("QLinearAveragePool", [QX, S1, Z1, S1, Z1], {"kernel_shape": [2, 2], "strides": [2, 2]}),
     flops=2 * 144 + 36 * 4 + 36 + 5 * 36, write_bytes=36)
# concat (1, 4, 6, 6) and (1, 2, 6, 6) on axis 1: 144 + 72 in, 216 out
case(MS, "QLinearConcat", ms("QLinearConcat", [S1, Z1, QX, S1, Z1, In("qy", [1, 2, 6, 6], T.UINT8), S1, Z1], {"axis": 1}),
     flops=2 * 216 + 5 * 216, write_bytes=216)

# --------------------------------------------------------------------------- nchwc (block 8 or 16)
# weights (16, 8, 3, 3): output channels 16 -> block 16. X blocked (1, 8, 6, 6)? use NCHW 8 ch.
XB = In("xb", [1, 16, 6, 6])
case(NCHWC, "Conv", ms("Conv", [XB, Init("wn", floats(16, 16, 3, 3)), Init("bn", floats(16))],
                       {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "activation": "Relu"}, domain=NCHWC),
     macs=576 * 144, flops=2 * 576 * 144 + 2 * 576, write_bytes=576 * 4)
case(NCHWC, "MaxPool", ms("MaxPool", [XB], {"kernel_shape": [2, 2], "strides": [2, 2]}, domain=NCHWC),
     flops=144 * 4, write_bytes=144 * 4)
case(NCHWC, "AveragePool", ms("AveragePool", [XB], {"kernel_shape": [2, 2], "strides": [2, 2]}, domain=NCHWC),
     flops=144 * 4 + 144, write_bytes=144 * 4)
case(NCHWC, "GlobalAveragePool", ms("GlobalAveragePool", [XB], domain=NCHWC), flops=576 + 16, write_bytes=16 * 4)
case(NCHWC, "GlobalMaxPool", ms("GlobalMaxPool", [XB], domain=NCHWC), flops=576, write_bytes=16 * 4)
# ReorderInput of 3 channels: padded to the default block 8 (no nchwc Conv weights in the graph)
case(NCHWC, "ReorderInput", ms("ReorderInput", [In("x3", [1, 3, 4, 4])], domain=NCHWC), flops=0, write_bytes=8 * 16 * 4)
case(NCHWC, "ReorderInput", ms("ReorderInput", [In("x3", [1, 4, 4, 3])], {"channels_last": 1}, domain=NCHWC),
     name="channels_last", flops=0, write_bytes=8 * 16 * 4)
case(NCHWC, "ReorderOutput", ms("ReorderOutput", [XB], {"channels": 12}, domain=NCHWC), flops=0, write_bytes=12 * 36 * 4)
case(NCHWC, "Upsample", ms("Upsample", [XB], {"scales": [1, 1, 2, 2]}, domain=NCHWC), flops=0, write_bytes=576 * 4 * 4)
case(NCHWC, "Upsample", ms("Upsample", [XB], {"scales": [1, 1, 2, 2], "mode": "linear"}, domain=NCHWC), name="linear",
     flops=3 * 2 * 2304, write_bytes=2304 * 4)

_ = ints  # re-exported helper, unused here
