"""Quantization ops of ai.onnx.

Integer multiply-accumulates count as MACs like float ones (the MAC is the unit of work;
the weight dtype is reported separately in weight bytes by dtype). Per-element costs:

* **QuantizeLinear**: divide by scale 1, round 1, add zero point 1 (when given),
  saturate 2 (min, max): 4-5 per element.
* **DequantizeLinear**: subtract zero point 1 (when given), multiply by scale 1.
* **DynamicQuantizeLinear**: min and max over the input (2 per element), scale and zero
  point (6 scalar ops), then quantize with a zero point (5 per element): ``7 n + 6``.
* **QLinearConv / QLinearMatMul**: the MACs of Conv / MatMul, then a requantization per
  output element: rescale 1, round 1, add zero point 1, saturate 2 = 5; QLinearConv's
  int32 bias adds 1 per output element. They count toward the torchvision convention.
* **ConvInteger / MatMulInteger**: the MACs of Conv / MatMul; a zero-point input costs one
  subtract per element of the operand it applies to.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, prod
from nascost.predictors.costs.ops_linear import matmul_macs
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node

REQUANTIZE_FLOPS_PER_ELEMENT = 5


@register_cost("QuantizeLinear")
def quantize_linear(node: Node) -> OpCost:
    n = need(node, 0).numel
    per = 4 + (1 if node.input(2) is not None else 0)
    return OpCost(flops=per * n)


@register_cost("DequantizeLinear")
def dequantize_linear(node: Node) -> OpCost:
    n = need(node, 0).numel
    per = 1 + (1 if node.input(2) is not None else 0)
    return OpCost(flops=per * n)


@register_cost("DynamicQuantizeLinear")
def dynamic_quantize_linear(node: Node) -> OpCost:
    n = need(node, 0).numel
    return OpCost(flops=7 * n + 6)


def _conv_macs(node: Node, w_index: int) -> int:
    w = need(node, w_index).dims  # [M, C/group, k...]
    return node.out(0).numel * prod(w[1:])


@register_cost("QLinearConv")
def qlinear_conv(node: Node) -> OpCost:
    y = node.out(0).numel
    flops = REQUANTIZE_FLOPS_PER_ELEMENT * y + (y if node.input(8) is not None else 0)
    return OpCost(macs=_conv_macs(node, 3), flops=flops, torchvision=True)


@register_cost("QLinearMatMul")
def qlinear_matmul(node: Node) -> OpCost:
    y = node.out(0).numel
    macs = matmul_macs(need(node, 0).dims, need(node, 3).dims, y)
    return OpCost(macs=macs, flops=REQUANTIZE_FLOPS_PER_ELEMENT * y, torchvision=True)


def _zero_point_flops(node: Node) -> int:
    flops = 0
    if node.input(2) is not None:
        flops += need(node, 0).numel
    if node.input(3) is not None:
        flops += need(node, 1).numel
    return flops


@register_cost("ConvInteger")
def conv_integer(node: Node) -> OpCost:
    return OpCost(macs=_conv_macs(node, 1), flops=_zero_point_flops(node), torchvision=True)


@register_cost("MatMulInteger")
def matmul_integer(node: Node) -> OpCost:
    macs = matmul_macs(need(node, 0).dims, need(node, 1).dims, node.out(0).numel)
    return OpCost(macs=macs, flops=_zero_point_flops(node), torchvision=True)
