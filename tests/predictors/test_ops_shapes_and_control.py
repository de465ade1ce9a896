"""Symbolic dims through the new handlers, and nested control flow."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto as T
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goldenlib import F32, In, Init, floats, make_model, single

from nascost.predictors.analysis import analyze
from nascost.predictors.graph import ShapeRequest, load_graph


def _lstm(seq: str | int):
    return single(
        "LSTM",
        [In("x", [seq, 2, 3]), Init("w", floats(1, 16, 3)), Init("r", floats(1, 16, 4))],
        {"hidden_size": 4},
        n_outputs=1,
    )()


def test_symbolic_sequence_length_is_reported_then_resolved() -> None:
    a = analyze(load_graph(_lstm("S")))
    (node,) = [n for n in a.nodes if n.op_type == "LSTM"]
    assert node.unresolved and node.macs == 0
    assert "S" in a.unresolved_dims
    for s in (7, 14):
        b = analyze(load_graph(_lstm("S"), ShapeRequest(dim_values={"S": s})))
        assert b.macs == s * 2 * 16 * (3 + 4)  # linear in sequence length
        assert b.macs == analyze(load_graph(_lstm(s))).macs


def test_attention_flops_grow_quadratically_with_sequence() -> None:
    """ViT patch-size halving: 4x tokens -> 16x attention MACs."""

    def attn(s: int) -> int:
        qkv = [In(n, [1, 4, s, 16]) for n in ("q", "k", "v")]
        return analyze(load_graph(single("Attention", qkv)())).macs

    assert attn(64) == 16 * attn(16)


def _matmul_body(name: str) -> tuple:
    inputs = [helper.make_tensor_value_info(f"{name}_i", T.INT64, []), helper.make_tensor_value_info(f"{name}_c", T.BOOL, [])]
    outputs = [helper.make_tensor_value_info(f"{name}_co", T.BOOL, [])]
    nodes = [helper.make_node("Identity", [f"{name}_c"], [f"{name}_co"])]
    return inputs, outputs, nodes


def test_nested_loops_multiply_trip_counts() -> None:
    """Loop(3) { Loop(4) { MatMul (2x3)(3x4) } } = 3 * 4 * 24 MACs."""
    ii, io, inn = _matmul_body("in")
    inner_body = helper.make_graph(
        [*inn, helper.make_node("MatMul", ["x", "w"], ["mm"])], "inner", ii,
        [*io, helper.make_tensor_value_info("mm", F32, [2, 4])],
    )
    oi, oo, onn = _matmul_body("out")
    outer_body = helper.make_graph(
        [*onn, helper.make_node("Loop", ["m4", "t"], ["acc"], body=inner_body)], "outer", oi,
        [*oo, helper.make_tensor_value_info("acc", F32, [4, 2, 4])],
    )
    loop = helper.make_node("Loop", ["m3", "t"], ["y"], body=outer_body)
    model = make_model(
        [loop],
        [In("x", [2, 3]), Init("w", floats(3, 4)), Init("m3", np.array(3, np.int64)), Init("m4", np.array(4, np.int64)),
         Init("t", np.array(True))],
        ["y"],
    )
    a = analyze(load_graph(model))
    (node,) = a.nodes
    assert node.macs == 3 * 4 * 24
    assert a.control_flow[0].trip_count == 3


def test_if_inside_loop_counts_dearer_branch_per_iteration() -> None:
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["t_out"])], "then", [],
                               [helper.make_tensor_value_info("t_out", F32, [2, 4])])
    else_g = helper.make_graph([helper.make_node("Relu", ["z"], ["e_out"])], "else", [],
                               [helper.make_tensor_value_info("e_out", F32, [2, 4])])
    bi, bo, bn = _matmul_body("b")
    body = helper.make_graph(
        [*bn, helper.make_node("If", ["c"], ["r"], then_branch=then_g, else_branch=else_g)], "body", bi,
        [*bo, helper.make_tensor_value_info("r", F32, [2, 4])],
    )
    loop = helper.make_node("Loop", ["m", "t"], ["y"], body=body)
    model = make_model(
        [loop],
        [In("x", [2, 3]), In("z", [2, 4]), In("c", [], T.BOOL), Init("w", floats(3, 4)), Init("m", np.array(5, np.int64)),
         Init("t", np.array(True))],
        ["y"],
    )
    a = analyze(load_graph(model))
    assert a.macs == 5 * 24
    assert a.flops == a.flops_max == 5 * 48
    assert a.flops_min == 5 * 8
