"""Weights and torchvision MACs inside control-flow subgraphs (If branches, Loop bodies).

Closed-form references: the weights are built here with known sizes, so params are sums
of their element counts; MACs of MatMul (m x k)(k x n) are m*k*n.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nascost.predictors.analysis import analyze
from nascost.predictors.graph import load_graph

F32 = T.FLOAT
OPSET = [helper.make_opsetid("", 21)]


def _init(name: str, *shape: int, value: float | None = None) -> onnx.TensorProto:
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    arr = rng.standard_normal(shape).astype(np.float32) if value is None else np.full(shape, value, np.float32)
    return numpy_helper.from_array(arr, name)


def _if_outer_weights() -> onnx.ModelProto:
    """If(c) { x @ w_then (3x4) } else { relu(x) @ w_else (3x4) + b_else }: all outer."""
    then_g = helper.make_graph(
        [helper.make_node("MatMul", ["x_act", "w_then"], ["t_out"])], "then", [],
        [helper.make_tensor_value_info("t_out", F32, [2, 4])])
    else_g = helper.make_graph(
        [helper.make_node("Relu", ["x_act"], ["e_r"]), helper.make_node("MatMul", ["e_r", "w_else"], ["e_m"]),
         helper.make_node("Add", ["e_m", "b_else"], ["e_out"])], "else", [],
        [helper.make_tensor_value_info("e_out", F32, [2, 4])])
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["x_act"]),  # the If reads x_act only through its branches
        helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("c", T.BOOL, []), helper.make_tensor_value_info("x", F32, [2, 3])],
        [helper.make_tensor_value_info("y", F32, [2, 4])],
        [_init("w_then", 3, 4), _init("w_else", 3, 4), _init("b_else", 4)],
    )
    return helper.make_model(g, opset_imports=OPSET)


def test_if_branches_reading_outer_weights_count_them_once() -> None:
    a = analyze(load_graph(_if_outer_weights()))
    assert a.params.trainable == 12 + 12 + 4
    assert not any("no node reads" in w for w in a.warnings), a.warnings
    (if_node,) = [n for n in a.nodes if n.op_type == "If"]
    assert if_node.params == 28
    assert a.weight_bytes_by_dtype == {"float32": (28, 28 * 4)}
    # Both branches do one (2x3)(3x4) MatMul = 24 MACs; torchvision counts matmul MACs.
    assert if_node.macs == 24
    assert if_node.torchvision_macs == 24 == a.torchvision_macs
    # The If depends on Sigmoid through its branches: depth 2, not 1.
    assert if_node.depth == 2
    assert a.depth == 2


def test_implicit_inputs_name_the_outer_tensors() -> None:
    g = load_graph(_if_outer_weights())
    (if_node,) = [n for n in g.nodes if n.op_type == "If"]
    by_name = {t.name: t for t in if_node.implicit_inputs}
    assert sorted(by_name) == ["b_else", "w_else", "w_then", "x_act"]  # each once
    assert len(if_node.implicit_inputs) == 4
    assert [n for n, t in sorted(by_name.items()) if not t.is_constant] == ["x_act"]
    assert by_name["x_act"].shape == (2, 3)
    assert by_name["w_then"].shape == (3, 4)


def test_outer_activation_read_by_a_branch_stays_live() -> None:
    """x_act (24 B) is read only inside the branches: it must be live while the If runs."""
    a = analyze(load_graph(_if_outer_weights()))
    # Sigmoid: c (1) + x (24) + x_act (24) = 49; If: c (1) + x_act (24) + y (32) = 57.
    # (Were x_act freed after Sigmoid, the If step would hold 33 and the peak be 49.)
    assert a.peak_activation_bytes == 57


def _loop_with_own_weight(trips: int) -> onnx.ModelProto:
    """Loop(M) { x = relu(x @ w_body) } with w_body (4x4) an initializer of the body,
    plus an outer BatchNormalization-free scale read in the body."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("MatMul", ["x_in", "w_body"], ["m"]),
         helper.make_node("Mul", ["m", "scale"], ["s"]),
         helper.make_node("Relu", ["s"], ["x_out"])],
        "body",
        [helper.make_tensor_value_info("i", T.INT64, []), helper.make_tensor_value_info("c_in", T.BOOL, []),
         helper.make_tensor_value_info("x_in", F32, [2, 4])],
        [helper.make_tensor_value_info("c_out", T.BOOL, []), helper.make_tensor_value_info("x_out", F32, [2, 4])],
        [_init("w_body", 4, 4)],
    )
    g = helper.make_graph(
        [helper.make_node("Loop", ["m_trips", "cond", "x"], ["y"], body=body)], "g",
        [helper.make_tensor_value_info("x", F32, [2, 4])],
        [helper.make_tensor_value_info("y", F32, [2, 4])],
        [numpy_helper.from_array(np.array(trips, np.int64), "m_trips"),
         numpy_helper.from_array(np.array(True), "cond"), _init("scale", 4)],
    )
    return helper.make_model(g, opset_imports=OPSET)


def test_loop_body_initializer_counted_once_whatever_the_trip_count() -> None:
    for trips in (1, 3, 7):
        a = analyze(load_graph(_loop_with_own_weight(trips)))
        assert a.params.trainable == 16 + 4, trips  # w_body once, outer scale once
        assert not any("no node reads" in w for w in a.warnings), a.warnings
        assert a.macs == trips * 2 * 4 * 4
        assert a.torchvision_macs == a.macs
        (cf,) = a.control_flow
        assert cf.trip_count == trips


def test_loop_body_weight_reads_are_memory_traffic_per_iteration() -> None:
    one = analyze(load_graph(_loop_with_own_weight(1)))
    five = analyze(load_graph(_loop_with_own_weight(5)))
    own = 2 * 4 * 4  # the Loop reads x itself once
    assert five.activation_read_bytes - own == 5 * (one.activation_read_bytes - own)
    # one iteration reads at least w_body (64 B) and scale (16 B)
    assert one.activation_read_bytes - own >= 64 + 16


def test_batchnorm_statistics_inside_a_branch_are_buffers() -> None:
    """BatchNormalization in a branch reads outer scale/bias (params) and mean/var (buffers)."""
    c = 3
    bn = helper.make_node("BatchNormalization", ["x", "bn_s", "bn_b", "bn_m", "bn_v"], ["t_out"])
    then_g = helper.make_graph([bn], "then", [], [helper.make_tensor_value_info("t_out", F32, [1, c, 2, 2])])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e_out"])], "else", [],
                               [helper.make_tensor_value_info("e_out", F32, [1, c, 2, 2])])
    g = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)], "g",
        [helper.make_tensor_value_info("cond", T.BOOL, []), helper.make_tensor_value_info("x", F32, [1, c, 2, 2])],
        [helper.make_tensor_value_info("y", F32, [1, c, 2, 2])],
        [_init("bn_s", c), _init("bn_b", c), _init("bn_m", c), _init("bn_v", c, value=1.0)],
    )
    a = analyze(load_graph(helper.make_model(g, opset_imports=OPSET)))
    assert a.params.trainable == 2 * c
    assert a.params.buffers == 2 * c


def _pruned(name: str, *shape: int) -> onnx.TensorProto:
    """A weight whose first half of elements (in memory order) is zero."""
    arr = np.arange(1, int(np.prod(shape)) + 1, dtype=np.float32).reshape(shape)
    arr.reshape(-1)[: arr.size // 2] = 0.0
    return numpy_helper.from_array(arr, name)


def test_zeros_of_outer_weights_in_a_branch_cut_effective_flops() -> None:
    model = _if_outer_weights()
    for i, t in enumerate(model.graph.initializer):
        if t.name in ("w_then", "w_else"):
            model.graph.initializer[i].CopyFrom(_pruned(t.name, 3, 4))
    a = analyze(load_graph(model))
    (if_node,) = [n for n in a.nodes if n.op_type == "If"]
    # dearer branch (else): Relu 6 + MatMul 24 MACs + Add 8; half of w_else is zero
    assert if_node.flops == 6 + 2 * 24 + 8
    assert if_node.effective_flops == 6 + 2 * 12 + 8
    assert a.params.nonzero == 6 + 6 + 4


def test_zeros_of_a_body_initializer_cut_effective_flops_per_trip() -> None:
    trips = 3
    model = _loop_with_own_weight(trips)
    body = next(a.g for a in model.graph.node[0].attribute if a.name == "body")
    body.initializer[0].CopyFrom(_pruned("w_body", 4, 4))
    a = analyze(load_graph(model))
    macs = 2 * 4 * 4
    per_trip_other = 8 + 8  # Mul and Relu on 2x4
    assert a.flops == trips * (2 * macs + per_trip_other)
    assert a.effective_flops == trips * (2 * macs // 2 + per_trip_other)
