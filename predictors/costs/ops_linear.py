"""Conv, ConvTranspose, Gemm, MatMul: the MAC-heavy ops.

MACs = output elements x reduction length. Bias adds are non-MAC FLOPs (one per output
element). All of these count toward the torchvision ``_ops`` convention.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, prod, weight_index
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node


@register_cost("Conv")
def conv(node: Node) -> OpCost:
    """``macs = numel(Y) * (C_in / group) * prod(kernel)``; bias: ``numel(Y)``."""
    w = need(node, 1).dims
    y = node.out(0).numel
    macs = y * prod(w[1:])  # w = [M, C/group, k1, k2, ...]
    bias = node.input(2)
    return OpCost(macs=macs, flops=y if bias is not None else 0, torchvision=True, sparse_input=1)


@register_cost("ConvTranspose")
def conv_transpose(node: Node) -> OpCost:
    """Each input element scatters into ``(M / group) * prod(kernel)`` outputs:
    ``macs = numel(X) * (M / group) * prod(kernel)`` whatever stride, dilation and
    padding are (onnx-tool multiplies by the output size instead and overcounts)."""
    x = need(node, 0).numel
    w = need(node, 1).dims  # [C, M/group, k1, k2, ...]
    macs = x * prod(w[1:])
    bias = node.input(2)
    return OpCost(macs=macs, flops=node.out(0).numel if bias is not None else 0, torchvision=True, sparse_input=1)


@register_cost("Gemm")
def gemm(node: Node) -> OpCost:
    """``Y = alpha * A' B' + beta * C``: ``macs = M N K``; alpha != 1 adds ``M N``, a C
    input adds ``M N`` (and ``M N`` more when beta != 1)."""
    a = need(node, 0).dims
    b = need(node, 1).dims
    k = a[0] if node.attrs.get_int("transA") else a[1]
    n = b[0] if node.attrs.get_int("transB") else b[1]
    m = a[1] if node.attrs.get_int("transA") else a[0]
    macs = m * n * k
    flops = 0
    if node.attrs.get_float("alpha", 1.0) != 1.0:
        flops += m * n
    if node.input(2) is not None:
        flops += m * n
        if node.attrs.get_float("beta", 1.0) != 1.0:
            flops += m * n
    return OpCost(macs=macs, flops=flops, torchvision=True, sparse_input=weight_index(node, (1, 0)))


def matmul_macs(a: tuple[int, ...], b: tuple[int, ...], out_numel: int) -> int:
    """numpy-semantics matmul: every output element is a dot product of length K."""
    k = a[-1]
    if len(b) == 1:
        if b[0] != k:
            raise ValueError(f"matmul inner dims differ: {a} x {b}")
    elif b[-2] != k:
        raise ValueError(f"matmul inner dims differ: {a} x {b}")
    return out_numel * k


@register_cost("MatMul")
def matmul(node: Node) -> OpCost:
    macs = matmul_macs(need(node, 0).dims, need(node, 1).dims, node.out(0).numel)
    return OpCost(macs=macs, torchvision=True, sparse_input=weight_index(node, (1, 0)))
