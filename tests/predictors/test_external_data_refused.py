"""Tensors that point at external data are refused wherever they sit in the model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nascost.predictors.errors import UnsafeModelError
from nascost.predictors.graph import load_graph_bytes


def _external(name: str) -> onnx.TensorProto:
    t = numpy_helper.from_array(np.zeros((2, 2), np.float32), name)
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    return t


def _model(where: str) -> bytes:
    inits = [numpy_helper.from_array(np.ones((2, 2), np.float32), "w")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"])]
    then_inits: list[onnx.TensorProto] = []
    if where == "initializer":
        inits = [_external("w")]
    elif where == "constant":
        nodes.insert(0, helper.make_node("Constant", [], ["k"], value=_external("k")))
    elif where == "branch":
        then_inits = [_external("bw")]
    then_g = helper.make_graph([helper.make_node("Add", ["m", "bw" if then_inits else "m"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", T.FLOAT, [2, 2])], then_inits)
    else_g = helper.make_graph([helper.make_node("Neg", ["m"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", T.FLOAT, [2, 2])])
    nodes.append(helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, [2, 2]),
                                       helper.make_tensor_value_info("c", T.BOOL, [])],
                          [helper.make_tensor_value_info("y", T.FLOAT, [2, 2])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()


@pytest.mark.parametrize("where", ["initializer", "constant", "branch"])
def test_external_data_is_refused(where: str) -> None:
    with pytest.raises(UnsafeModelError, match="external data"):
        load_graph_bytes(_model(where))


def test_the_same_model_without_external_data_loads() -> None:
    assert load_graph_bytes(_model("none")).nodes
