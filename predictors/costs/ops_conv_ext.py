"""Convolutions beyond Conv/ConvTranspose: DeformConv, CausalConvWithState.

* **DeformConv** (``X (N, C, H, W)``, ``W (M, C/group, kh, kw)``, offsets per output
  position): the MACs of the equivalent Conv, ``numel(Y) * (C/group) * kh * kw``, plus the
  bilinear sampling of every input value the kernel reads at a fractional position:
  ``N * C * kh * kw * oh * ow`` samples of 4 taps (8 FLOPs) and 2 FLOPs for the sample's
  coordinates (base + offset, per axis); a ``mask`` adds 1 multiply per sample; a bias 1
  per output element.
* **CausalConvWithState** (depthwise, ``X (B, C, L)``, ``W (C, 1, k)``):
  ``macs = B * C * L * k``; bias 1 per output element; ``activation=silu/swish`` 4 per
  output element (as the Swish handler).
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, prod
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node

SILU_FLOPS_PER_ELEMENT = 4


@register_cost("DeformConv")
def deform_conv(node: Node) -> OpCost:
    """Conv MACs + ``samples * (8 + 2 [+ 1 mask])`` + bias."""
    x = need(node, 0).dims
    w = need(node, 1).dims
    y = node.out(0).dims
    macs = prod(y) * prod(w[1:])
    samples = x[0] * x[1] * prod(w[2:]) * prod(y[2:])
    per_sample = 8 + 2 + (1 if node.input(4) is not None else 0)
    flops = samples * per_sample + (prod(y) if node.input(3) is not None else 0)
    return OpCost(macs=macs, flops=flops, torchvision=True, sparse_input=1)


@register_cost("CausalConvWithState")
def causal_conv_with_state(node: Node) -> OpCost:
    """Depthwise causal conv: ``B*C*L*k`` MACs; bias and SiLU per output element."""
    y = need(node, 0).numel
    k = need(node, 1).dims[-1]
    flops = y if node.input(2) is not None else 0
    if node.attrs.get_string("activation", "none").lower() in ("silu", "swish"):
        flops += SILU_FLOPS_PER_ELEMENT * y
    return OpCost(macs=y * k, flops=flops, torchvision=True, sparse_input=1)
