"""Pooling and reductions.

* Max/Average pooling: one compare or add per window element read
  (``numel(Y) * prod(kernel)``); average adds one divide per output. LpPool: 2 per window
  element plus a root per output.
* Global pooling: one per input element (+ one divide per output for average).
* Reductions: one per input element; ReduceMean/L2/LogSum add one per output (divide,
  sqrt, log); SumSquare/L2/LogSumExp/L1 add one per input element (square, exp or abs).
  Integer reductions cost 0 FLOPs (shape arithmetic).
* MaxRoiPool: a bin's window depends on the ROI coordinates (data), so the count is the
  upper bound of every ROI covering the whole feature map: ``rois * C * H * W``
  compares (noted). MaxUnpool is a scatter: no arithmetic.
* ArgMax/ArgMin: one compare per input element.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, prod
from nascost.predictors.costs.registry import OpCost, register_cost, register_free
from nascost.predictors.graph import Node


@register_cost("MaxPool", "AveragePool", "LpPool")
def pool(node: Node) -> OpCost:
    y = node.out(0).numel
    window = prod(node.attrs.get_ints("kernel_shape"))
    if node.op_type == "MaxPool":
        return OpCost(flops=y * window)
    if node.op_type == "AveragePool":
        return OpCost(flops=y * window + y)
    return OpCost(flops=2 * y * window + y)


@register_cost("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(node: Node) -> OpCost:
    x = need(node, 0).numel
    y = node.out(0).numel
    if node.op_type == "GlobalMaxPool":
        return OpCost(flops=x)
    if node.op_type == "GlobalAveragePool":
        return OpCost(flops=x + y)
    return OpCost(flops=2 * x + y)


_REDUCE_EXTRA_PER_INPUT = {"ReduceSumSquare": 1, "ReduceL2": 1, "ReduceLogSumExp": 1, "ReduceL1": 1}
_REDUCE_EXTRA_PER_OUTPUT = {"ReduceMean": 1, "ReduceL2": 1, "ReduceLogSum": 1, "ReduceLogSumExp": 1}


@register_cost(
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
)
def reduce(node: Node) -> OpCost:
    x = need(node, 0)
    if not x.is_float:
        return OpCost()
    y = node.out(0).numel
    per_in = 1 + _REDUCE_EXTRA_PER_INPUT.get(node.op_type, 0)
    return OpCost(flops=per_in * x.numel + _REDUCE_EXTRA_PER_OUTPUT.get(node.op_type, 0) * y)


@register_cost("ArgMax", "ArgMin")
def arg_reduce(node: Node) -> OpCost:
    return OpCost(flops=need(node, 0).numel)


register_free("scatter of values to their recorded indices: no arithmetic", "MaxUnpool")


@register_cost("MaxRoiPool")
def max_roi_pool(node: Node) -> OpCost:
    """Upper bound ``rois * C * H * W`` compares (ROI extents are data)."""
    _, c, h, w = need(node, 0).dims
    rois = need(node, 1).dims[0]
    return OpCost(flops=rois * c * h * w, note="ROI extents are data: upper bound (each ROI = whole map)")
