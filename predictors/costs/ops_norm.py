"""Normalization and softmax.

* BatchNormalization (inference): ``(x - mean) * inv_std * scale + bias`` = 4 per
  element, plus ``sqrt(var + eps)`` and its reciprocal per channel (3 per channel).
  ``training_mode=1`` also computes the batch statistics (mean sum, subtract, square,
  variance sum: 4 per element) and updates the running ones (6 per channel).
* MeanVarianceNormalization: as LayerNormalization without scale and bias, 5 per
  element and 4 per normalized group (the groups are the kept axes).
* LRN: the sum of squares over ``size`` channels (``2 * size`` per element), then
  ``x / (bias + alpha/size * sum)^beta`` (4 per element).
* Layer/Instance/Group normalization: mean (1), subtract (1), square (1), variance sum
  (1), normalize (1) per element; scale and bias 1 each per element when present; per
  normalized group: two divides, eps add, sqrt (4).
* RMSNormalization: square, sum, normalize, scale = 4 per element; per row 3.
* Softmax: max, subtract, exp, sum, divide = 5 per element. LogSoftmax: 4 per element
  and a log per row.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, prod
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node


@register_cost("BatchNormalization")
def batch_norm(node: Node) -> OpCost:
    x = need(node, 0)
    channels = x.dims[1] if x.rank > 1 else 1
    if node.attrs.get_int("training_mode", 0):
        return OpCost(flops=8 * x.numel + 9 * channels)
    return OpCost(flops=4 * x.numel + 3 * channels)


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


@register_cost("LayerNormalization")
def layer_norm(node: Node) -> OpCost:
    x = need(node, 0)
    axis = _axis(node.attrs.get_int("axis", -1), x.rank)
    rows = prod(x.dims[:axis])
    per = 5 + (1 if node.input(1) is not None else 0) + (1 if node.input(2) is not None else 0)
    return OpCost(flops=per * x.numel + 4 * rows)


@register_cost("InstanceNormalization")
def instance_norm(node: Node) -> OpCost:
    x = need(node, 0)
    groups = x.dims[0] * x.dims[1]
    return OpCost(flops=7 * x.numel + 4 * groups)


@register_cost("GroupNormalization")
def group_norm(node: Node) -> OpCost:
    x = need(node, 0)
    groups = x.dims[0] * node.attrs.get_int("num_groups", 1)
    return OpCost(flops=7 * x.numel + 4 * groups)


@register_cost("RMSNormalization")
def rms_norm(node: Node) -> OpCost:
    x = need(node, 0)
    axis = _axis(node.attrs.get_int("axis", -1), x.rank)
    return OpCost(flops=4 * x.numel + 3 * prod(x.dims[:axis]))


@register_cost("LpNormalization")
def lp_norm(node: Node) -> OpCost:
    x = need(node, 0)
    axis = _axis(node.attrs.get_int("axis", -1), x.rank)
    rows = x.numel // max(x.dims[axis], 1)
    # |x| or x^2, sum, divide per element; root per row
    return OpCost(flops=3 * x.numel + rows)


@register_cost("Softmax")
def softmax(node: Node) -> OpCost:
    return OpCost(flops=5 * need(node, 0).numel)


@register_cost("LogSoftmax")
def log_softmax(node: Node) -> OpCost:
    x = need(node, 0)
    axis = _axis(node.attrs.get_int("axis", -1), x.rank)
    return OpCost(flops=4 * x.numel + x.numel // max(x.dims[axis], 1))


@register_cost("Hardmax")
def hardmax(node: Node) -> OpCost:
    return OpCost(flops=need(node, 0).numel)


@register_cost("MeanVarianceNormalization")
def mean_variance_norm(node: Node) -> OpCost:
    x = need(node, 0)
    axes = node.attrs.get_ints("axes", (0, 2, 3))
    reduced = prod([x.dims[_axis(a, x.rank)] for a in axes])
    return OpCost(flops=5 * x.numel + 4 * (x.numel // max(reduced, 1)))


@register_cost("LRN")
def lrn(node: Node) -> OpCost:
    x = need(node, 0)
    size = node.attrs.get_int("size", 1)
    return OpCost(flops=(2 * size + 4) * x.numel)
