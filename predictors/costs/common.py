"""Small helpers shared by the cost handlers: shape arithmetic, no protobuf."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nascost.predictors.graph import Node, TensorInfo


def prod(dims: Sequence[int]) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def out_numel(node: Node, i: int = 0) -> int:
    return node.out(i).numel


def need(node: Node, i: int) -> TensorInfo:
    """Input ``i``, which the op requires; a missing one is a malformed node."""
    t = node.input(i)
    if t is None:
        raise ValueError(f"{node.op_type} node {node.name!r} lacks required input {i}")
    return t


def any_float_input(node: Node) -> bool:
    return any(t is not None and t.is_float for t in node.inputs)


def float_out_numel(node: Node) -> int:
    """Output elements when the op computes on floats, else 0 (int64 shape arithmetic)."""
    if node.out(0).is_float or any_float_input(node):
        return out_numel(node)
    return 0


def int_const(node: Node, i: int) -> list[int] | None:
    """Small constant input ``i`` as a list of ints, or None when not constant."""
    t = node.input(i)
    if t is None or t.value is None:
        return None
    return [int(v) for v in np.asarray(t.value).reshape(-1)]


def weight_index(node: Node, candidates: Sequence[int]) -> int | None:
    """First of ``candidates`` whose input is a weight (for sparsity-aware MACs)."""
    for i in candidates:
        t = node.input(i)
        if t is not None and t.is_weight:
            return i
    return None
