"""Small ONNX models built with onnx.helper for the measurement tests (no downloads)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper


def _model(graph: onnx.GraphProto, opset: int = 17) -> bytes:
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return bytes(m.SerializeToString())


def _weight(name: str, shape: list[int], rng: np.random.Generator) -> onnx.TensorProto:
    data = (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, shape, data.tobytes(), raw=True)


def mlp(width: int = 256, layers: int = 4, batch: str | int = "N", seed: int = 0) -> bytes:
    """MatMul + Add + Relu layers on input ``x`` of shape [batch, width]."""
    rng = np.random.default_rng(seed)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])
    nodes, inits = [], []
    cur = "x"
    for i in range(layers):
        inits += [_weight(f"w{i}", [width, width], rng), _weight(f"b{i}", [width], rng)]
        out = "y" if i == layers - 1 else f"r{i}"
        nodes += [
            helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"], name=f"mm{i}"),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"add{i}"),
            helper.make_node("Relu", [f"a{i}"], [out], name=f"relu{i}"),
        ]
        cur = out
    return _model(helper.make_graph(nodes, "mlp", [x], [y], inits))


def convnet(channels: int = 16, size: int = 32, seed: int = 0) -> bytes:
    """Conv + Relu, Conv + Relu, GlobalAveragePool on [N, 3, size, size]."""
    rng = np.random.default_rng(seed)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", channels, 1, 1])
    inits = [
        _weight("w1", [channels, 3, 3, 3], rng),
        _weight("b1", [channels], rng),
        _weight("w2", [channels, channels, 3, 3], rng),
        _weight("b2", [channels], rng),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["y"], name="gap"),
    ]
    return _model(helper.make_graph(nodes, "convnet", [x], [y], inits))


def mixed_inputs() -> bytes:
    """Inputs of several dtypes and symbolic dims: float x[N,S,8], int64 ids[N,S], bool mask[N,S].

    Output: Gather(emb, ids) + x, masked by mask (Where). ids index a 4-row table, so any id
    outside [0, 4) makes onnxruntime fail: the runner's safe integer range is checked.
    """
    rng = np.random.default_rng(1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "S", 8])
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", "S"])
    mask = helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", "S"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "S", 8])
    emb = _weight("emb", [4, 8], rng)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["g"], name="gather"),
        helper.make_node("Add", ["g", "x"], ["s"], name="add"),
        helper.make_node("Unsqueeze", ["mask", "axes"], ["m3"], name="unsq"),
        helper.make_node("Where", ["m3", "s", "zero"], ["y"], name="where"),
    ]
    return _model(helper.make_graph(nodes, "mixed", [x, ids, mask], [y], [emb, axes, zero]))


def huge_expand(elements_log2: int = 31) -> bytes:
    """Expand a [1] float input to 2**elements_log2 floats (8 GiB at 31): exhausts memory."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    half = elements_log2 // 2
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1 << half, 1 << (elements_log2 - half)])
    nodes = [
        helper.make_node("Expand", ["x", "shape"], ["e"], name="expand"),
        helper.make_node("ReduceSum", ["e"], ["y"], name="sum", keepdims=0),
    ]
    return _model(helper.make_graph(nodes, "huge", [x], [y], [shape]))


def endless_loop(trip_count: int = 1 << 50) -> bytes:
    """A Loop adding 1 to a scalar ``trip_count`` times: runs far past any timeout."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "one"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1]),
        ],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    inits = [
        helper.make_tensor("M", TensorProto.INT64, [], [trip_count]),
        helper.make_tensor("cond", TensorProto.BOOL, [], [True]),
    ]
    loop = helper.make_node("Loop", ["M", "cond", "x"], ["y"], name="loop", body=body)
    return _model(helper.make_graph([loop], "endless", [x], [y], inits))


def external_data(location: str = "../../../../etc/passwd") -> bytes:
    """A model whose weight lives in an external file (it must be refused unopened)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    w = onnx.TensorProto()
    w.name = "w"
    w.data_type = TensorProto.FLOAT
    w.dims.extend([4])
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    node = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    return _model(helper.make_graph([node], "ext", [x], [y], [w]))


def unknown_op() -> bytes:
    """A well-formed protobuf with an op onnxruntime does not know."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    node = helper.make_node("NoSuchOperator", ["x"], ["y"], name="bogus")
    return _model(helper.make_graph([node], "bogus", [x], [y]))
