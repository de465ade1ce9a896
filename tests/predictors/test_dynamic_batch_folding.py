"""Dynamic-batch torch exports: shape subgraphs folded, every dim resolved at any batch.

A ViT written with ``cls.expand(x.shape[0], -1, -1)`` and exported with a dynamic batch
(legacy exporter) computes its shapes at run time: Shape -> Gather -> Unsqueeze -> Concat
-> Equal/Where -> Expand, and ``d // h`` as Div + Cast, which ONNX's data propagation does
not resolve. The references are torch's own FlopCounterMode at each batch and linearity in
the batch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto as T
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torchnets

from nascost.predictors.analysis import analyze
from nascost.predictors.costs import shapes
from nascost.predictors.graph import Node, ShapeRequest, TensorInfo, load_graph, load_graph_bytes


class DynamicBatchViT(torchnets.TinyViT):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x)[:, 0])


@pytest.fixture(scope="module")
def dynamic_vit() -> tuple[torch.nn.Module, bytes]:
    torch.manual_seed(0)
    module = torchnets.randomize(DynamicBatchViT())
    data = torchnets.export(module, torch.randn(2, 3, 32, 32), input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    return module, data


def test_export_holds_the_runtime_shape_subgraph(dynamic_vit: tuple[torch.nn.Module, bytes]) -> None:
    import onnx

    ops = {n.op_type for n in onnx.load_from_string(dynamic_vit[1]).graph.node}
    assert {"Shape", "Gather", "Unsqueeze", "Concat", "Equal", "Where", "Expand", "Div", "Cast"} <= ops


@pytest.mark.parametrize("how", ["dim_values", "input_shapes"])
def test_macs_scale_with_batch_and_match_torch(dynamic_vit: tuple[torch.nn.Module, bytes], how: str) -> None:
    module, data = dynamic_vit
    macs = {}
    for batch in (1, 8):
        req = (ShapeRequest(dim_values={"batch": batch}) if how == "dim_values"
               else ShapeRequest(input_shapes={"x": (batch, 3, 32, 32)}))
        a = analyze(load_graph_bytes(data, req))
        assert a.unresolved_dims == ()
        assert not any(n.unresolved for n in a.nodes)
        unknown = [n.name for n in a.nodes if 0 in n.output_shape]
        assert not unknown
        assert a.macs == torchnets.torch_macs(module, torch.randn(batch, 3, 32, 32))
        macs[batch] = a.macs
    assert macs[8] == 8 * macs[1]


def test_without_a_batch_the_dim_stays_reported(dynamic_vit: tuple[torch.nn.Module, bytes]) -> None:
    a = analyze(load_graph_bytes(dynamic_vit[1]))
    assert "batch" in a.unresolved_dims or any("batch" in w for w in a.warnings)


def _info(name: str, value: np.ndarray) -> TensorInfo:
    return TensorInfo(name, T.INT64, value.shape, value=value)


def _node(op: str, inputs: list[TensorInfo | None], n_out: int = 1) -> Node:
    from nascost.predictors.graph import Attributes

    proto = helper.make_node(op, [], [])
    outs = tuple(TensorInfo(f"o{i}", T.UNDEFINED, None) for i in range(n_out))
    return Node(op, op, "", tuple(inputs), outs, Attributes(proto.attribute))


def test_fold_rules_against_numpy() -> None:
    v = np.array([8, 17, 96], np.int64)
    (out,) = shapes.fold(_node("Div", [_info("a", v), _info("b", np.array(-3, np.int64))])) or [None]
    assert out is not None and out.tolist() == [-2, -5, -32]  # truncation toward zero, as ONNX
    (out,) = shapes.fold(_node("Slice", [_info("a", v), _info("s", np.array([1])), _info("e", np.array([99]))])) or [None]
    assert out is not None and out.tolist() == [17, 96]
    cond = _node("Equal", [_info("a", np.array([8, -1, -1])), _info("b", np.array([-1, -1, -1]))])
    (eq,) = shapes.fold(cond) or [None]
    assert eq is not None and eq.tolist() == [False, True, True]
    where = _node("Where", [TensorInfo("c", T.BOOL, (3,), value=eq), _info("x", np.ones(3, np.int64)),
                            _info("y", np.array([8, -1, -1]))])
    (w,) = shapes.fold(where) or [None]
    assert w is not None and w.tolist() == [8, 1, 1]
    # weights (float values) are never folded, nor are tensors past the size limit
    assert shapes.fold(_node("Neg", [TensorInfo("f", T.FLOAT, (2,), value=np.ones(2, np.float32))])) is None
    big = _node("ConstantOfShape", [_info("s", np.array([100, 100], np.int64))])
    assert shapes.fold(big) is None


def test_folded_reshape_target_resolves_a_graph_onnx_cannot() -> None:
    """Reshape(x, Concat(Div(Shape(x)[0], 1), -1)): Div stops ONNX's data propagation."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Div", ["b", "one"], ["b2"]),
        helper.make_node("Unsqueeze", ["b2", "axes0"], ["b3"]),
        helper.make_node("Concat", ["b3", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
        helper.make_node("MatMul", ["y", "w"], ["z"]),
    ]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array(1, np.int64), "one"),
             numpy_helper.from_array(np.array([0], np.int64), "axes0"), numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
             numpy_helper.from_array(np.ones((12, 5), np.float32), "w")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 3, 4])],
                          [helper.make_tensor_value_info("z", T.FLOAT, None)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    for n in (1, 6):
        a = analyze(load_graph(model, ShapeRequest(dim_values={"N": n})))
        (mm,) = [r for r in a.nodes if r.op_type == "MatMul"]
        assert mm.output_shape == (n, 5)
        assert mm.macs == n * 12 * 5
