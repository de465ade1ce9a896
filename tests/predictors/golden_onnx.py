"""Golden cases of the ai.onnx domain: one (or more) per registered standard op.

Every expected number is written here in closed form from the op's documented formula
(the module docstrings of ``nascost.predictors.costs.ops_*``), never computed by calling
the handler. ``flops`` is the total (``2 * macs`` + other FLOPs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from goldenlib import F32, I64, GoldenCase, In, Init, InputSpec, floats, ints, make_model, single
from onnx import TensorProto as T
from onnx import helper

from nascost.predictors.analysis import Analysis

GOLDEN_CASES: list[GoldenCase] = []


def case(op: str, build, name: str = "", check=None, note: str = "", **expect: int) -> None:
    GOLDEN_CASES.append(GoldenCase("", op, build, expect, name=name, check=check, note_contains=note))


X = In("x", [2, 3, 4])  # 24 elements
N = 24
X2 = In("x2", [2, 3, 4])

# --------------------------------------------------------------------------- elementwise
UNARY = {
    "Relu": 1, "Abs": 1, "Neg": 1, "Sign": 1, "Sqrt": 1, "Exp": 1, "Log": 1, "Erf": 1,
    "Reciprocal": 1, "Floor": 1, "Ceil": 1, "Round": 1, "IsNaN": 1, "IsInf": 1,
    "Sin": 1, "Cos": 1, "Tan": 1, "Asin": 1, "Acos": 1, "Atan": 1, "Sinh": 1, "Cosh": 1,
    "Asinh": 1, "Acosh": 1, "Atanh": 1, "Tanh": 1, "Sigmoid": 3, "LeakyRelu": 2, "Clip": 2,
    "HardSigmoid": 4, "HardSwish": 5, "Elu": 4, "Celu": 4, "Selu": 5, "Softplus": 3,
    "Softsign": 3, "Mish": 5, "ThresholdedRelu": 1, "Shrink": 2, "Swish": 4,
}
BINARY = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Mod": 1, "Equal": 1, "Greater": 1,
    "Less": 1, "GreaterOrEqual": 1, "LessOrEqual": 1, "PRelu": 2, "SwiGLU": 5,
}
for op, per in UNARY.items():
    case(op, single(op, [X]), flops=per * N, macs=0, write_bytes=N * (1 if op in ("IsNaN", "IsInf") else 4))
for op, per in BINARY.items():
    attrs = {"fmod": 1} if op == "Mod" else None
    case(op, single(op, [X, X2], attrs), flops=per * N, activation_read_bytes=2 * N * 4)
case("Add", single("Add", [X, In("b", [4])]), name="broadcast", flops=N)
case("Add", single("Add", [In("i", [2, 3], I64), In("j", [2, 3], I64)]), name="int64-shape-arith", flops=0)
case("Gelu", single("Gelu", [X]), flops=5 * N)
case("Gelu", single("Gelu", [X], {"approximate": "tanh"}), name="tanh", flops=9 * N)
for op in ("Sum", "Max", "Min", "Mean"):
    extra = N if op == "Mean" else 0
    case(op, single(op, [X, X2, In("x3", [2, 3, 4])]), flops=2 * N + extra)

# --------------------------------------------------------------------------- linear
# Conv: Y (1,6,4,4) = 96, each a dot of (C/group=2) * 3*3.
case("Conv", single("Conv", [In("x", [1, 4, 8, 8]), Init("w", floats(6, 2, 3, 3)), Init("b", floats(6))],
                    {"group": 2, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
     macs=96 * 18, flops=2 * 96 * 18 + 96, torchvision_macs=96 * 18, params=6 * 2 * 9 + 6)
# ConvTranspose: every input element scatters into (M/group) * k*k outputs.
case("ConvTranspose", single("ConvTranspose", [In("x", [1, 4, 5, 5]), Init("w", floats(4, 3, 3, 3))],
                             {"group": 2, "strides": [2, 2], "dilations": [2, 2]}),
     macs=100 * 27, flops=2 * 100 * 27, torchvision_macs=100 * 27)
# Gemm: A' (5x4), B' (4x3): M N K = 60; alpha, C, beta: 15 each.
case("Gemm", single("Gemm", [In("a", [4, 5]), Init("b", floats(3, 4)), Init("c", floats(3))],
                    {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}),
     macs=60, flops=120 + 45, torchvision_macs=60)
case("MatMul", single("MatMul", [In("a", [2, 1, 4, 5]), In("b", [3, 5, 6])]), macs=2 * 3 * 4 * 6 * 5,
     flops=2 * 720, torchvision_macs=720)

# --------------------------------------------------------------------------- normalization
BN_IN: list[InputSpec] = [In("x", [2, 3, 4, 5]), Init("s", floats(3)), Init("b", floats(3)), Init("m", floats(3)), Init("v", np.ones(3, np.float32))]
case("BatchNormalization", single("BatchNormalization", BN_IN), flops=4 * 120 + 3 * 3)
case("BatchNormalization", single("BatchNormalization", BN_IN, {"training_mode": 1}, n_outputs=3),
     name="training", flops=8 * 120 + 9 * 3)
case("LayerNormalization", single("LayerNormalization", [X, Init("s", floats(4)), Init("b", floats(4))]), flops=7 * N + 4 * 6)
case("InstanceNormalization", single("InstanceNormalization", [X, Init("s", floats(3)), Init("b", floats(3))]), flops=7 * N + 4 * 6)
case("GroupNormalization", single("GroupNormalization", [In("x", [2, 4, 3]), Init("s", floats(4)), Init("b", floats(4))],
                                  {"num_groups": 2}), flops=7 * N + 4 * 4)
case("RMSNormalization", single("RMSNormalization", [X, Init("s", floats(4))]), flops=4 * N + 3 * 6)
case("LpNormalization", single("LpNormalization", [X]), flops=3 * N + 6)
case("Softmax", single("Softmax", [X]), flops=5 * N)
case("LogSoftmax", single("LogSoftmax", [X]), flops=4 * N + 6)
case("Hardmax", single("Hardmax", [X]), flops=N)
case("MeanVarianceNormalization", single("MeanVarianceNormalization", [In("x", [2, 3, 4, 5])]), flops=5 * 120 + 4 * 3)
case("LRN", single("LRN", [In("x", [1, 5, 2, 2])], {"size": 3}), flops=(2 * 3 + 4) * 20)

# --------------------------------------------------------------------------- pooling, reductions
P_IN = [In("x", [1, 2, 6, 6])]
P_ATTR = {"kernel_shape": [3, 3], "strides": [3, 3]}
case("MaxPool", single("MaxPool", P_IN, P_ATTR), flops=8 * 9)
case("AveragePool", single("AveragePool", P_IN, P_ATTR), flops=8 * 9 + 8)
case("LpPool", single("LpPool", P_IN, P_ATTR), flops=2 * 8 * 9 + 8)
G_IN = [In("x", [1, 2, 3, 3])]
case("GlobalMaxPool", single("GlobalMaxPool", G_IN), flops=18)
case("GlobalAveragePool", single("GlobalAveragePool", G_IN), flops=18 + 2)
case("GlobalLpPool", single("GlobalLpPool", G_IN), flops=36 + 2)
REDUCE = {  # (per input element, per output element)
    "ReduceSum": (1, 0), "ReduceMean": (1, 1), "ReduceMax": (1, 0), "ReduceMin": (1, 0), "ReduceProd": (1, 0),
    "ReduceL1": (2, 0), "ReduceL2": (2, 1), "ReduceLogSum": (1, 1), "ReduceLogSumExp": (2, 1), "ReduceSumSquare": (2, 0),
}
for op, (pi, po) in REDUCE.items():
    case(op, single(op, [X, Init("axes", ints(1))]), flops=pi * N + po * 8)
case("ReduceSum", single("ReduceSum", [In("i", [2, 3], I64), Init("axes", ints(1))]), name="int64", flops=0)
case("ArgMax", single("ArgMax", [X], {"axis": 1}), flops=N)
case("ArgMin", single("ArgMin", [X], {"axis": 1}), flops=N)
case("MaxUnpool", single("MaxUnpool", [In("x", [1, 1, 2, 2]), In("i", [1, 1, 2, 2], I64)],
                         {"kernel_shape": [2, 2], "strides": [2, 2]}), flops=0, write_bytes=16 * 4)
case("MaxRoiPool", single("MaxRoiPool", [In("x", [1, 2, 8, 8]), In("r", [3, 5])], {"pooled_shape": [2, 2]}),
     flops=3 * 2 * 64, note="upper bound")

# --------------------------------------------------------------------------- data movement (free)
S23 = In("x", [2, 3])
SEQ = [helper.make_node("SequenceConstruct", ["x", "x2"], ["seq"])]
OPT = [helper.make_node("Optional", ["x"], ["opt"])]
FREE: list[tuple[str, list[InputSpec], dict[str, Any], int, Sequence[onnx.NodeProto]]] = [
    ("Reshape", [X, Init("shape", ints(4, 6))], {}, 1, ()),
    ("Flatten", [X], {"axis": 1}, 1, ()),
    ("Squeeze", [In("x", [2, 1, 4]), Init("axes", ints(1))], {}, 1, ()),
    ("Unsqueeze", [X, Init("axes", ints(0))], {}, 1, ()),
    ("Transpose", [X], {"perm": [2, 0, 1]}, 1, ()),
    ("Concat", [X, X2], {"axis": 0}, 1, ()),
    ("Split", [X], {"axis": 2, "num_outputs": 2}, 2, ()),
    ("Slice", [X, Init("st", ints(0)), Init("en", ints(1)), Init("ax", ints(0))], {}, 1, ()),
    ("Identity", [X], {}, 1, ()),
    ("Expand", [In("x", [1, 4]), Init("shape", ints(3, 4))], {}, 1, ()),
    ("Tile", [S23, Init("rep", ints(2, 1))], {}, 1, ()),
    ("Pad", [S23, Init("pads", ints(1, 1, 1, 1))], {}, 1, ()),
    ("DepthToSpace", [In("x", [1, 4, 2, 2])], {"blocksize": 2}, 1, ()),
    ("SpaceToDepth", [In("x", [1, 1, 4, 4])], {"blocksize": 2}, 1, ()),
    ("Dropout", [X], {}, 1, ()),
    ("GatherElements", [S23, Init("i", np.zeros((2, 3), np.int64))], {}, 1, ()),
    ("GatherND", [S23, Init("i", np.array([[0], [1]], np.int64))], {}, 1, ()),
    ("ScatterND", [S23, Init("i", np.array([[0]], np.int64)), In("u", [1, 3])], {}, 1, ()),
    ("ScatterElements", [S23, Init("i", np.zeros((1, 3), np.int64)), In("u", [1, 3])], {}, 1, ()),
    ("Where", [In("c", [2, 3], T.BOOL), S23, In("x2", [2, 3])], {}, 1, ()),
    ("Cast", [S23], {"to": T.FLOAT16}, 1, ()),
    ("CastLike", [S23, In("t", [1], T.FLOAT16)], {}, 1, ()),
    ("Compress", [S23, Init("c", np.array([True, False]))], {"axis": 0}, 1, ()),
    ("ReverseSequence", [In("x", [3, 2, 4]), Init("l", ints(3, 2))], {"batch_axis": 1, "time_axis": 0}, 1, ()),
    ("Trilu", [In("x", [3, 3])], {}, 1, ()),
    ("OneHot", [Init("i", ints(0, 2, 1)), Init("d", np.array(4, np.int64)), Init("v", np.array([0.0, 1.0], np.float32))], {}, 1, ()),
    ("SplitToSequence", [S23], {}, 1, ()),
    ("SequenceConstruct", [S23, In("x2", [2, 3])], {}, 1, ()),
    ("SequenceEmpty", [], {}, 1, ()),
    ("Optional", [S23], {}, 1, ()),
    ("CenterCropPad", [In("x", [4, 5]), Init("s", ints(3, 6))], {}, 1, ()),
    ("TensorScatter", [In("past", [2, 3, 8, 4]), In("u", [2, 3, 2, 4])], {}, 1, ()),
    ("Constant", [], {"value": helper.make_tensor("c", F32, [2], [1.0, 2.0])}, 1, ()),
    ("ConstantOfShape", [Init("s", ints(2, 3))], {}, 1, ()),
    ("Range", [Init("a", np.array(0.0, np.float32)), Init("b", np.array(5.0, np.float32)), Init("d", np.array(1.0, np.float32))], {}, 1, ()),
    ("EyeLike", [In("x", [3, 3])], {}, 1, ()),
    ("NonZero", [S23], {}, 1, ()),
    ("And", [In("a", [2, 3], T.BOOL), In("b", [2, 3], T.BOOL)], {}, 1, ()),
    ("Or", [In("a", [2, 3], T.BOOL), In("b", [2, 3], T.BOOL)], {}, 1, ()),
    ("Xor", [In("a", [2, 3], T.BOOL), In("b", [2, 3], T.BOOL)], {}, 1, ()),
    ("Not", [In("a", [2, 3], T.BOOL)], {}, 1, ()),
    ("BitShift", [In("a", [2, 3], T.UINT8), In("b", [2, 3], T.UINT8)], {"direction": "LEFT"}, 1, ()),
    ("BitwiseAnd", [In("a", [2, 3], T.INT32), In("b", [2, 3], T.INT32)], {}, 1, ()),
    ("BitwiseOr", [In("a", [2, 3], T.INT32), In("b", [2, 3], T.INT32)], {}, 1, ()),
    ("BitwiseXor", [In("a", [2, 3], T.INT32), In("b", [2, 3], T.INT32)], {}, 1, ()),
    ("BitwiseNot", [In("a", [2, 3], T.INT32)], {}, 1, ()),
    ("BitCast", [S23], {"to": T.INT32}, 1, ()),
    ("StringConcat", [In("a", [2], T.STRING), In("b", [2], T.STRING)], {}, 1, ()),
    ("StringNormalizer", [In("a", [3], T.STRING)], {"case_change_action": "LOWER"}, 1, ()),
    ("StringSplit", [In("a", [2], T.STRING)], {"delimiter": ","}, 2, ()),
    ("RegexFullMatch", [In("a", [2], T.STRING)], {"pattern": "a.*"}, 1, ()),
    ("ConcatFromSequence", ["seq"], {"axis": 0}, 1, SEQ),
    ("SequenceAt", ["seq", Init("p", np.array(0, np.int64))], {}, 1, SEQ),
    ("SequenceErase", ["seq"], {}, 1, SEQ),
    ("SequenceInsert", ["seq", S23], {}, 1, SEQ),
    ("SequenceLength", ["seq"], {}, 1, SEQ),
    ("OptionalGetElement", ["opt"], {}, 1, OPT),
    ("OptionalHasElement", ["opt"], {}, 1, OPT),
]
for op, ins, attrs, n_out, pre in FREE:
    if pre is SEQ:
        seq_extra = [i for i in ins if not isinstance(i, str) and i is not S23]
        names = [i if isinstance(i, str) else i.name for i in ins]

        def build(op=op, attrs=attrs, names=names, seq_extra=seq_extra):
            node = helper.make_node(op, names, ["y0"], **attrs)
            return make_model([*SEQ, node], [S23, In("x2", [2, 3]), *seq_extra], ["y0"])

        case(op, build, flops=0, macs=0)
        continue
    if pre is OPT:
        def build_opt(op=op):
            return make_model([*OPT, helper.make_node(op, ["opt"], ["y0"])], [S23], ["y0"])

        case(op, build_opt, flops=0, macs=0)
        continue
    case(op, single(op, ins, attrs, n_outputs=n_out), flops=0, macs=0)
# Scatter with a reduction combines each update with the data: 1 per update element.
case("ScatterND", single("ScatterND", [S23, Init("i", np.array([[0]], np.int64)), In("u", [1, 3])], {"reduction": "add"}),
     name="reduction-add", flops=3)
case("ScatterElements", single("ScatterElements", [S23, Init("i", np.zeros((1, 3), np.int64)), In("u", [1, 3])],
                               {"reduction": "max"}), name="reduction-max", flops=3)
# Col2Im: (1, 1*2*2, 4) columns summed into a 3x3 image: 1 add per input element.
case("Col2Im", single("Col2Im", [In("x", [1, 4, 4]), Init("img", ints(3, 3)), Init("blk", ints(2, 2))]), flops=16)
# Scatter is deprecated since opset 11: build it at opset 10.
case("Scatter", single("Scatter", [S23, Init("i", np.zeros((1, 3), np.int64)), In("u", [1, 3])], opset=10), flops=0)
# Identity's memory: reads its input once, writes its output once.
case("Identity", single("Identity", [X]), name="memory", activation_read_bytes=96, write_bytes=96, memory_access_bytes=192)
case("Shape", single("Shape", [X]), flops=0, activation_read_bytes=0, write_bytes=3 * 8)
case("Size", single("Size", [X]), flops=0, activation_read_bytes=0, write_bytes=8)
# Gather from a (10, 4) embedding table: reads 3 indices and only the 3 rows it takes.
case("Gather", single("Gather", [Init("table", floats(10, 4)), In("idx", [3], I64)]), flops=0,
     weight_read_bytes=3 * 4 * 4, activation_read_bytes=3 * 8, write_bytes=3 * 4 * 4, params=40)

# --------------------------------------------------------------------------- recurrent
# RNN: D*S*B*G*H*(I+H) MACs; bias 2*G*H per step-row; gates H + tanh(H) per step-row.
S_, B_, I_, H_ = 5, 2, 3, 4
case("RNN", single("RNN", [In("x", [S_, B_, I_]), Init("w", floats(1, H_, I_)), Init("r", floats(1, H_, H_)), Init("b", floats(1, 2 * H_))],
                   {"hidden_size": H_}, n_outputs=2),
     macs=S_ * B_ * H_ * (I_ + H_), flops=2 * S_ * B_ * H_ * (I_ + H_) + S_ * B_ * 2 * H_ + S_ * B_ * 2 * H_,
     torchvision_macs=S_ * B_ * H_ * (I_ + H_))
case("RNN", single("RNN", [In("x", [S_, B_, I_]), Init("w", floats(2, H_, I_)), Init("r", floats(2, H_, H_))],
                   {"hidden_size": H_, "direction": "bidirectional"}, n_outputs=2), name="bidirectional",
     macs=2 * S_ * B_ * H_ * (I_ + H_), flops=2 * 2 * S_ * B_ * H_ * (I_ + H_) + 2 * S_ * B_ * 2 * H_)
case("GRU", single("GRU", [In("x", [S_, B_, I_]), Init("w", floats(1, 3 * H_, I_)), Init("r", floats(1, 3 * H_, H_)), Init("b", floats(1, 6 * H_))],
                   {"hidden_size": H_}, n_outputs=2),
     macs=S_ * B_ * 3 * H_ * (I_ + H_), flops=2 * S_ * B_ * 3 * H_ * (I_ + H_) + S_ * B_ * 6 * H_ + S_ * B_ * 15 * H_)
LSTM_MACS = S_ * B_ * 4 * H_ * (I_ + H_)
case("LSTM", single("LSTM", [In("x", [S_, B_, I_]), Init("w", floats(1, 4 * H_, I_)), Init("r", floats(1, 4 * H_, H_)), Init("b", floats(1, 8 * H_))],
                    {"hidden_size": H_}, n_outputs=3),
     macs=LSTM_MACS, flops=2 * LSTM_MACS + S_ * B_ * 8 * H_ + S_ * B_ * 19 * H_)
case("LSTM", single("LSTM", [In("x", [B_, S_, I_]), Init("w", floats(1, 4 * H_, I_)), Init("r", floats(1, 4 * H_, H_)), "", "", "", "",
                             Init("p", floats(1, 3 * H_))], {"hidden_size": H_, "layout": 1}, n_outputs=1), name="layout1-peephole",
     macs=LSTM_MACS, flops=2 * LSTM_MACS + S_ * B_ * (19 + 6) * H_)
case("LSTM", single("LSTM", [In("x", [S_, B_, I_]), Init("w", floats(1, 4 * H_, I_)), Init("r", floats(1, 4 * H_, H_)), "", In("lens", [B_], T.INT32)],
                    {"hidden_size": H_}, n_outputs=1), name="sequence-lens",
     macs=LSTM_MACS, flops=2 * LSTM_MACS + S_ * B_ * 19 * H_, note="upper bound")

# --------------------------------------------------------------------------- attention
SC = 2 * 4 * 8 * 10  # B Hq Sq T scores
case("Attention", single("Attention", [In("q", [2, 4, 8, 16]), In("k", [2, 2, 10, 16]), In("v", [2, 2, 10, 8])]), name="gqa-4d",
     macs=SC * (16 + 8), flops=2 * SC * 24 + SC * (1 + 5), torchvision_macs=SC * 24)
case("Attention", single("Attention", [In("q", [2, 8, 64]), In("k", [2, 10, 32]), In("v", [2, 10, 32])],
                         {"q_num_heads": 4, "kv_num_heads": 2, "is_causal": 1, "softcap": 30.0}), name="3d-causal-softcap",
     macs=SC * 32, flops=2 * SC * 32 + SC * (1 + 3 + 1 + 5), note="dense")
case("Attention", single("Attention", [In("q", [1, 2, 1, 8]), In("k", [1, 2, 1, 8]), In("v", [1, 2, 1, 8]), "",
                                       In("pk", [1, 2, 5, 8]), In("pv", [1, 2, 5, 8])], n_outputs=3), name="kv-cache",
     macs=2 * 6 * 16, flops=2 * 2 * 6 * 16 + 2 * 6 * 6)
case("RotaryEmbedding", single("RotaryEmbedding", [In("x", [2, 4, 3, 8]), Init("cos", floats(8, 4)), Init("sin", floats(8, 4)), In("pos", [2, 3], I64)]),
     flops=3 * 2 * 4 * 3 * 8)
case("RotaryEmbedding", single("RotaryEmbedding", [In("x", [2, 3, 16]), Init("cos", floats(8, 2)), Init("sin", floats(8, 2)), In("pos", [2, 3], I64)],
                               {"num_heads": 2, "rotary_embedding_dim": 4}), name="partial-3d", flops=3 * (96 // 8) * 4)
# LinearAttention: B=2, T=3, Hq=4, Hkv=2, dk=8, dv=4; state Hkv*dk*dv = 64.
case("LinearAttention", single("LinearAttention", [In("q", [2, 3, 32]), In("k", [2, 3, 16]), In("v", [2, 3, 8])],
                               {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "linear"}, n_outputs=2), name="linear",
     macs=6 * (64 + 128), flops=2 * 6 * 192 + 6 * 16)
case("LinearAttention", single("LinearAttention", [In("q", [2, 3, 32]), In("k", [2, 3, 16]), In("v", [2, 3, 8]), "", In("g", [2, 3, 2]), In("beta", [2, 3, 2])],
                               {"q_num_heads": 4, "kv_num_heads": 2}, n_outputs=2), name="gated-delta",
     macs=6 * (64 + 128 + 64), flops=2 * 6 * 256 + 6 * (16 + 16) + 6 * 64 + 12)

# --------------------------------------------------------------------------- einsum
case("Einsum", single("Einsum", [In("a", [2, 3, 4]), In("b", [2, 4, 5])], {"equation": "bij,bjk->bik"}), name="bmm",
     macs=120, flops=240, torchvision_macs=120)
case("Einsum", single("Einsum", [In("a", [2, 3, 4]), In("b", [4, 5])], {"equation": "...ij,jk"}), name="implicit-ellipsis", macs=120, flops=240)
case("Einsum", single("Einsum", [In("a", [2, 3]), In("b", [3, 4]), In("c", [4, 5])], {"equation": "ij,jk,kl->il"}), name="three-operands",
     macs=2 * 120, flops=4 * 120, note="naive")
# Half of the weight's entries are zero: effective (sparsity-aware) MACs halve.
_W_HALF = floats(3, 4)
_W_HALF.reshape(-1)[:6] = 0.0
case("Einsum", single("Einsum", [In("a", [2, 3]), Init("w", _W_HALF)], {"equation": "ij,jk->ik"}), name="sparse-weight",
     macs=24, flops=48, effective_flops=24)
case("Einsum", single("Einsum", [In("a", [3, 4])], {"equation": "ij->i"}), name="sum", flops=12, macs=0)
case("Einsum", single("Einsum", [In("a", [3, 4]), In("b", [3, 4])], {"equation": "ij,ij->ij"}), name="hadamard", flops=12, macs=0)
case("Einsum", single("Einsum", [In("a", [3, 4])], {"equation": "ij->ji"}), name="transpose", flops=0)
case("Einsum", single("Einsum", [In("a", [3, 3])], {"equation": "ii->i"}), name="diagonal", flops=0)

# --------------------------------------------------------------------------- resize and sampling
R_IN: list[InputSpec] = [In("x", [1, 2, 4, 4]), "", Init("scales", np.array([1, 1, 2, 2], np.float32))]
case("Resize", single("Resize", R_IN, {"mode": "nearest"}), name="nearest", flops=0, note="nearest")
case("Resize", single("Resize", R_IN, {"mode": "linear"}), name="linear", flops=2 * 4 * 128)
case("Resize", single("Resize", R_IN, {"mode": "cubic"}), name="cubic", flops=2 * 16 * 128)
case("Resize", single("Resize", [In("x", [1, 1, 8, 8]), "", Init("scales", np.array([1, 1, 0.5, 0.5], np.float32))],
                      {"mode": "linear", "antialias": 1}), name="antialias-down", flops=2 * (4 * 4) * 16)
case("Upsample", single("Upsample", [In("x", [1, 1, 2, 2]), Init("scales", np.array([1, 1, 2, 2], np.float32))], {"mode": "linear"}, opset=9),
     flops=2 * 4 * 16)
case("GridSample", single("GridSample", [In("x", [1, 2, 4, 4]), In("g", [1, 3, 3, 2])]), flops=2 * 4 * 18 + 2 * 18)
case("GridSample", single("GridSample", [In("x", [1, 2, 4, 4]), In("g", [1, 3, 3, 2])], {"mode": "nearest"}), name="nearest", flops=2 * 18)
case("AffineGrid", single("AffineGrid", [In("t", [2, 2, 3]), Init("size", ints(2, 1, 4, 5))]), macs=80 * 3, flops=2 * 80 * 3)
ROI: list[InputSpec] = [In("x", [1, 2, 8, 8]), In("r", [3, 4]), In("bi", [3], I64)]
case("RoiAlign", single("RoiAlign", ROI, {"output_height": 2, "output_width": 2, "sampling_ratio": 2}), flops=24 * 4 * 9 + 24)
case("RoiAlign", single("RoiAlign", ROI, {"output_height": 2, "output_width": 2, "mode": "max"}), name="adaptive-max",
     flops=24 * 4 * 9, note="adaptive")
case("DeformConv", single("DeformConv", [In("x", [1, 2, 5, 5]), Init("w", floats(4, 2, 3, 3)), In("off", [1, 18, 3, 3])]),
     macs=36 * 18, flops=2 * 36 * 18 + 162 * 10, torchvision_macs=36 * 18)
case("DeformConv", single("DeformConv", [In("x", [1, 2, 5, 5]), Init("w", floats(4, 2, 3, 3)), In("off", [1, 18, 3, 3]), Init("b", floats(4)),
                                         In("mask", [1, 9, 3, 3])]), name="bias-mask", macs=36 * 18, flops=2 * 36 * 18 + 162 * 11 + 36)
case("CausalConvWithState", single("CausalConvWithState", [In("x", [2, 3, 10]), Init("w", floats(3, 1, 4)), Init("b", floats(3))],
                                   {"activation": "silu"}, n_outputs=2), macs=60 * 4, flops=2 * 240 + 60 + 4 * 60)

# --------------------------------------------------------------------------- quantization
Q_SCALE = Init("s", np.array(0.1, np.float32))
Q_ZP = Init("zp", np.array(3, np.uint8))
case("QuantizeLinear", single("QuantizeLinear", [X, Q_SCALE, Q_ZP]), flops=5 * N)
case("QuantizeLinear", single("QuantizeLinear", [X, Q_SCALE]), name="no-zero-point", flops=4 * N)
case("DequantizeLinear", single("DequantizeLinear", [In("q", [2, 3, 4], T.UINT8), Q_SCALE, Q_ZP]), flops=2 * N)
case("DynamicQuantizeLinear", single("DynamicQuantizeLinear", [X], n_outputs=3), flops=7 * N + 6)


def _qparams(prefix: str) -> list:
    return [Init(prefix + "s", np.array(0.05, np.float32)), Init(prefix + "z", np.array(2, np.uint8))]


case("QLinearConv", single("QLinearConv", [In("x", [1, 2, 5, 5], T.UINT8), *_qparams("x"),
                                           Init("w", np.ones((3, 2, 3, 3), np.uint8)), *_qparams("w"), *_qparams("y"),
                                           Init("b", np.zeros(3, np.int32))]),
     macs=27 * 18, flops=2 * 27 * 18 + 5 * 27 + 27, torchvision_macs=27 * 18)
case("QLinearMatMul", single("QLinearMatMul", [In("a", [2, 3], T.UINT8), *_qparams("a"), Init("b", np.ones((3, 4), np.uint8)),
                                               *_qparams("b"), *_qparams("y")]), macs=24, flops=48 + 5 * 8)
case("ConvInteger", single("ConvInteger", [In("x", [1, 2, 5, 5], T.UINT8), Init("w", np.ones((3, 2, 3, 3), np.uint8)),
                                           Init("xz", np.array(1, np.uint8))]), macs=27 * 18, flops=2 * 27 * 18 + 50)
case("MatMulInteger", single("MatMulInteger", [In("a", [2, 3], T.UINT8), Init("b", np.ones((3, 4), np.uint8)),
                                               Init("az", np.array(1, np.uint8)), Init("bz", np.array(1, np.uint8))]),
     macs=24, flops=48 + 6 + 12)

# --------------------------------------------------------------------------- misc
case("TopK", single("TopK", [In("x", [2, 3, 16]), Init("k", ints(4))], n_outputs=2), flops=6 * 16 * 2)
case("Unique", single("Unique", [In("x", [10])]), flops=10 * 4 + 10)
case("CumSum", single("CumSum", [S23, Init("ax", np.array(1, np.int64))]), flops=6)
case("CumProd", single("CumProd", [S23, Init("ax", np.array(1, np.int64))]), flops=6)
case("DFT", single("DFT", [In("x", [2, 8, 2])]), flops=2 * 5 * 8 * 3)
case("DFT", single("DFT", [In("x", [2, 8, 2])], {"inverse": 1}), name="inverse", flops=2 * 5 * 8 * 3 + 32)
case("DFT", single("DFT", [In("x", [2, 8, 1])]), name="real", flops=2 * 5 * 8 * 3 // 2)
# STFT: 16 samples, frame 8, step 4 -> 3 frames of a real signal, Hann-like window multiply.
case("STFT", single("STFT", [In("s", [1, 16, 1]), Init("step", np.array(4, np.int64)), Init("win", floats(8))]),
     flops=3 * 8 * 3 * 5 // 2 + 3 * 8)
for op, per in (("HannWindow", 5), ("HammingWindow", 5), ("BlackmanWindow", 9)):
    case(op, single(op, [Init("n", np.array(10, np.int64))]), flops=per * 10)
case("MelWeightMatrix", single("MelWeightMatrix", [Init("m", np.array(4, np.int64)), Init("d", np.array(16, np.int64)),
                                                   Init("r", np.array(8000, np.int64)), Init("lo", np.array(0.0, np.float32)),
                                                   Init("hi", np.array(4000.0, np.float32))]), flops=4 * 9 * 4)
case("NonMaxSuppression", single("NonMaxSuppression", [In("b", [1, 6, 4]), In("s", [1, 2, 6]), Init("m", ints(3))]),
     flops=2 * (6 * 3 + 6 + 13 * 3 * 6), note="upper bound")
case("Det", single("Det", [In("x", [2, 3, 3])]), flops=2 * (18 + 3))
for op, per in (("RandomUniform", 3), ("RandomNormal", 7)):
    case(op, single(op, [], {"shape": [2, 3]}), flops=per * 6)
for op, per in (("RandomUniformLike", 3), ("RandomNormalLike", 7), ("Bernoulli", 2)):
    case(op, single(op, [S23]), flops=per * 6)
case("Multinomial", single("Multinomial", [In("x", [2, 5])], {"sample_size": 3}), flops=2 * 2 * 5 + 2 * 3 * (1 + 3))
NLL_T = Init("t", ints(0, 4, 2))
case("NegativeLogLikelihoodLoss", single("NegativeLogLikelihoodLoss", [In("x", [3, 5]), NLL_T, Init("w", floats(5))]),
     flops=3 * 2 + 3 + 1 + 3)
case("NegativeLogLikelihoodLoss", single("NegativeLogLikelihoodLoss", [In("x", [3, 5]), NLL_T], {"reduction": "sum"}),
     name="sum", flops=3 + 3)
case("SoftmaxCrossEntropyLoss", single("SoftmaxCrossEntropyLoss", [In("x", [3, 5]), NLL_T]), flops=4 * 15 + 3 + 3 + 3 + 1)
case("TfIdfVectorizer", single("TfIdfVectorizer", [In("x", [2, 6], I64)],
                               {"mode": "TFIDF", "pool_int64s": [2, 3, 5, 4], "ngram_counts": [0, 4], "ngram_indexes": [0, 1, 2, 3],
                                "min_gram_length": 1, "max_gram_length": 1, "max_skip_count": 0}), flops=8)
case("ImageDecoder", single("ImageDecoder", [In("img", [100], T.UINT8)]), flops=0, note="encoded bytes")


# --------------------------------------------------------------------------- control flow
def _if_model(cond: In | Init):
    def build():
        then_g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["t_out"])], "then", [],
                                   [helper.make_tensor_value_info("t_out", F32, [2, 4])])
        else_g = helper.make_graph([helper.make_node("Relu", ["z"], ["e_out"])], "else", [],
                                   [helper.make_tensor_value_info("e_out", F32, [2, 4])])
        node = helper.make_node("If", [cond.name], ["y0"], then_branch=then_g, else_branch=else_g)
        return make_model([node], [cond, In("x", [2, 3]), In("z", [2, 4]), Init("w", floats(3, 4))], ["y0"])

    return build


def _check_if(a: Analysis) -> None:
    (cf,) = a.control_flow
    assert cf.branch_names == ("then_branch", "else_branch")
    assert cf.branch_flops == (2 * 24, 8)


# then: MatMul (2x3)(3x4) = 24 MACs = 48 FLOPs; else: Relu on 8 elements = 8 FLOPs.
case("If", _if_model(In("c", [], T.BOOL)), macs=24, flops=48, flops_min=8, flops_max=48, check=_check_if, note="dearer")
case("If", _if_model(Init("c", np.array(False))), name="constant-cond", macs=0, flops=8, flops_min=8, flops_max=8, note="constant")


def _loop_model(trips: Init | None, cond: In | Init):
    def build():
        body = helper.make_graph(
            [helper.make_node("Add", ["x_in", "one"], ["x_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
            [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("c_in", T.BOOL, []),
             helper.make_tensor_value_info("x_in", F32, [3, 4])],
            [helper.make_tensor_value_info("c_out", T.BOOL, []), helper.make_tensor_value_info("x_out", F32, [3, 4])])
        node = helper.make_node("Loop", [trips.name if trips else "", cond.name, "x"], ["y0"], body=body)
        ins = [*([trips] if trips else []), cond, In("x", [3, 4]), Init("one", np.ones(1, np.float32))]
        return make_model([node], ins, ["y0"])

    return build


def _check_loop(trips: int | None, body_flops: int = 12):
    def check(a: Analysis) -> None:
        (cf,) = a.control_flow
        assert cf.trip_count == trips
        assert cf.branch_flops == (body_flops * (trips or 1),)

    return check


# body: Add on 12 elements (12 FLOPs); memory per iteration: Add 48 + 4 (weight) + 48,
# Identity 1 + 1 = 102 bytes; the Loop node itself reads x (48 bytes).
case("Loop", _loop_model(Init("m", np.array(5, np.int64)), Init("c", np.array(True))), flops=5 * 12,
     activation_read_bytes=48 + 5 * 102, check=_check_loop(5))
case("Loop", _loop_model(None, In("c", [], T.BOOL)), name="unknown-trips", flops=12, check=_check_loop(None), note="not known")


def _scan_model():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_in"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["y_out"])], "body",
        [helper.make_tensor_value_info("s_in", F32, [2]), helper.make_tensor_value_info("x_in", F32, [2])],
        [helper.make_tensor_value_info("s_out", F32, [2]), helper.make_tensor_value_info("y_out", F32, [2])])
    node = helper.make_node("Scan", ["s", "xs"], ["y0", "y1"], body=body, num_scan_inputs=1)
    return make_model([node], [In("s", [2]), In("xs", [5, 2])], ["y0", "y1"])


case("Scan", _scan_model, flops=5 * 2, check=_check_loop(5, body_flops=2))


def _sequence_map_model():
    body = helper.make_graph([helper.make_node("Relu", ["e"], ["r"])], "body",
                             [helper.make_tensor_value_info("e", F32, [2, 3])], [helper.make_tensor_value_info("r", F32, [2, 3])])
    node = helper.make_node("SequenceMap", ["seq"], ["y0"], body=body)
    return make_model([*SEQ, node], [S23, In("x2", [2, 3])], ["y0"])


case("SequenceMap", _sequence_map_model, flops=6, note="not known")


# --------------------------------------------------------------------------- older opsets (13+)
# Same counts where the op's inputs/attributes moved between versions.
case("ReduceMean", single("ReduceMean", [X], {"axes": [1]}, opset=13), name="opset13-axes-attr", flops=N + 8)
case("Resize", single("Resize", [In("x", [1, 2, 4, 4]), Init("roi", np.zeros(0, np.float32)),
                                 Init("scales", np.array([1, 1, 2, 2], np.float32))], {"mode": "linear"}, opset=13),
     name="opset13", flops=2 * 4 * 128)
# DFT-17: axis is an attribute (default 1), onesided output.
case("DFT", single("DFT", [In("x", [2, 8, 1])], {"onesided": 1}, opset=17), name="opset17-onesided", flops=2 * 5 * 8 * 3 // 2)
case("LSTM", single("LSTM", [In("x", [S_, B_, I_]), Init("w", floats(1, 4 * H_, I_)), Init("r", floats(1, 4 * H_, H_))],
                    {"hidden_size": H_}, n_outputs=1, opset=14), name="opset14", macs=LSTM_MACS, flops=2 * LSTM_MACS + S_ * B_ * 19 * H_)
case("Split", single("Split", [X, Init("sp", ints(1, 3))], {"axis": 2}, n_outputs=2, opset=13), name="opset13", flops=0)
case("Clip", single("Clip", [X, Init("lo", np.array(0.0, np.float32)), Init("hi", np.array(6.0, np.float32))], opset=13),
     name="opset13-inputs", flops=2 * N)


# --------------------------------------------------------------------------- attribute variants
# LSTM with HardSigmoid gates (4 FLOPs): 4H + 3*4H + H + 3H + H + H = 22H per step-row.
case("LSTM", single("LSTM", [In("x", [S_, B_, I_]), Init("w", floats(1, 4 * H_, I_)), Init("r", floats(1, 4 * H_, H_))],
                    {"hidden_size": H_, "activations": ["HardSigmoid", "Tanh", "Tanh"]}, n_outputs=1), name="hardsigmoid-gates",
     macs=LSTM_MACS, flops=2 * LSTM_MACS + S_ * B_ * 22 * H_)
# GRU with linear_before_reset and clip: same MACs; clip adds 2 per gate pre-activation (2*3H).
case("GRU", single("GRU", [In("x", [S_, B_, I_]), Init("w", floats(1, 3 * H_, I_)), Init("r", floats(1, 3 * H_, H_))],
                   {"hidden_size": H_, "linear_before_reset": 1, "clip": 5.0}, n_outputs=1), name="lbr-clip",
     macs=S_ * B_ * 3 * H_ * (I_ + H_), flops=2 * S_ * B_ * 3 * H_ * (I_ + H_) + S_ * B_ * (15 + 6) * H_)
# Attention with a float additive mask: +1 per score.
case("Attention", single("Attention", [In("q", [1, 2, 3, 4]), In("k", [1, 2, 5, 4]), In("v", [1, 2, 5, 4]), In("m", [3, 5])]),
     name="float-mask", macs=30 * 8, flops=2 * 30 * 8 + 30 * (1 + 1 + 5))
# Resize by output sizes instead of scales: (1,2,4,4) -> (1,2,4,6): one axis changes, 2 taps.
case("Resize", single("Resize", [In("x", [1, 2, 4, 4]), "", "", Init("sizes", ints(1, 2, 4, 6))], {"mode": "linear"}),
     name="sizes-one-axis", flops=2 * 2 * 48)
# STFT of a complex signal without a window: frame_length 8, step 8 -> 2 frames, complex FFT.
case("STFT", single("STFT", [In("s", [1, 16, 2]), Init("step", np.array(8, np.int64)), "", Init("fl", np.array(8, np.int64))],
                    {"onesided": 0}), name="complex-no-window", flops=2 * 5 * 8 * 3)


def _loop_with_data_condition():
    body = helper.make_graph(
        [helper.make_node("Add", ["x_in", "x_in"], ["x_out"]), helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
        [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("c_in", T.BOOL, []),
         helper.make_tensor_value_info("x_in", F32, [3, 4])],
        [helper.make_tensor_value_info("c_out", T.BOOL, []), helper.make_tensor_value_info("x_out", F32, [3, 4])])
    node = helper.make_node("Loop", ["m", "c", "x"], ["y0"], body=body)
    return make_model([node], [Init("m", np.array(4, np.int64)), In("c", [], T.BOOL), In("x", [3, 4])], ["y0"])


case("Loop", _loop_with_data_condition, name="data-condition", flops=4 * 12, note="upper bound")
