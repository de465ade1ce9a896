"""Node order: graphs whose nodes are not listed in execution order, cycles, SSA breaks.

The builder tries the graph's own order first and falls back to a topological order; the
reference is the same graph listed in execution order.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nascost.predictors.analysis import analyze
from nascost.predictors.errors import InvalidModelError
from nascost.predictors.graph import load_graph

F32 = T.FLOAT


def _model(nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", F32, [2, 3]), helper.make_tensor_value_info("c", T.BOOL, [])],
        [helper.make_tensor_value_info("y", F32, [2, 4])],
        [numpy_helper.from_array(np.ones((3, 4), np.float32), "w")],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


def _nodes() -> list[onnx.NodeProto]:
    then_g = helper.make_graph([helper.make_node("Relu", ["m"], ["t_out"])], "then", [],
                               [helper.make_tensor_value_info("t_out", F32, [2, 4])])
    else_g = helper.make_graph([helper.make_node("Neg", ["m"], ["e_out"])], "else", [],
                               [helper.make_tensor_value_info("e_out", F32, [2, 4])])
    return [
        helper.make_node("Sigmoid", ["x"], ["s"], name="sig"),
        helper.make_node("MatMul", ["s", "w"], ["m"], name="mm"),
        helper.make_node("If", ["c"], ["i"], name="if", then_branch=then_g, else_branch=else_g),  # reads m implicitly
        helper.make_node("Tanh", ["i"], ["y"], name="tanh"),
    ]


@pytest.mark.parametrize("perm", [(3, 2, 1, 0), (2, 0, 3, 1), (0, 2, 1, 3)])
def test_any_listing_order_gives_the_execution_order_counts(perm: tuple[int, ...]) -> None:
    ref = analyze(load_graph(_model(_nodes())))
    nodes = _nodes()
    got = analyze(load_graph(_model([nodes[i] for i in perm])))
    assert [n.op_type for n in got.nodes] == ["Sigmoid", "MatMul", "If", "Tanh"]
    assert got == ref
    assert got.depth == 4 and got.macs == 2 * 3 * 4


def test_cycle_is_refused() -> None:
    nodes = [helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("MatMul", ["x", "w"], ["y"])]
    with pytest.raises(InvalidModelError, match="cycle"):
        load_graph(_model(nodes))


def test_tensor_produced_twice_is_refused() -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["y"])]
    with pytest.raises(InvalidModelError, match="produced twice"):
        load_graph(_model(nodes))


def test_undefined_tensor_is_refused() -> None:
    nodes = [helper.make_node("MatMul", ["x", "nowhere"], ["y"])]
    with pytest.raises(InvalidModelError, match="no node, input or initializer defines"):
        load_graph(_model(nodes))
