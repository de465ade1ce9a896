"""Elementwise arithmetic and activations: FLOPs per output element.

Per-element costs (FLOPs), counting one per add/mul/compare/elementary function:

=================  ====  =====================================================
op                 cost  as
=================  ====  =====================================================
Add Sub Mul Div     1    the operation
Pow Mod             1    one elementary function
comparisons         1    Equal Greater Less (OrEqual) on floats
Relu Abs Neg Sign   1    max / sign flip
Sqrt Exp Log Erf    1    one elementary function (also trig, Reciprocal, rounding)
Tanh Sigmoid        1/3  tanh; sigmoid = exp, add, div
LeakyRelu PRelu     2    compare + mul
Clip                2    min + max
HardSigmoid         4    mul, add, min, max
HardSwish           5    HardSigmoid + mul
Elu Celu            4    compare, exp, sub, mul
Selu                5    Elu + scale
Softplus            3    exp, add, log
Softsign            3    abs, add, div
Mish                5    softplus + tanh + mul
Gelu (erf)          5    div, erf, add, mul, mul
Gelu (tanh)         9    x^3 (2), mul, add, mul, tanh, add, mul, mul
ThresholdedRelu     1    compare
Shrink              2    compare + add
Swish / SiLU        4    sigmoid + mul
SwiGLU              5    Swish(A) (4) + mul by B
=================  ====  =====================================================

Variadic Sum/Max/Min add ``(inputs - 1)`` per element, Mean one more (the divide).
Integer and boolean outputs (shape arithmetic, masks) cost 0 FLOPs.
"""

from __future__ import annotations

from nascost.predictors.costs.common import float_out_numel
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node

_PER_ELEMENT: dict[str, int] = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Pow": 1, "Mod": 1,
    "Equal": 1, "Greater": 1, "Less": 1, "GreaterOrEqual": 1, "LessOrEqual": 1,
    "Relu": 1, "Abs": 1, "Neg": 1, "Sign": 1, "Sqrt": 1, "Exp": 1, "Log": 1, "Erf": 1,
    "Reciprocal": 1, "Floor": 1, "Ceil": 1, "Round": 1, "IsNaN": 1, "IsInf": 1,
    "Sin": 1, "Cos": 1, "Tan": 1, "Asin": 1, "Acos": 1, "Atan": 1,
    "Sinh": 1, "Cosh": 1, "Asinh": 1, "Acosh": 1, "Atanh": 1,
    "Tanh": 1, "Sigmoid": 3, "LeakyRelu": 2, "PRelu": 2, "Clip": 2,
    "HardSigmoid": 4, "HardSwish": 5, "Elu": 4, "Celu": 4, "Selu": 5, "Softplus": 3,
    "Softsign": 3, "Mish": 5, "ThresholdedRelu": 1, "Shrink": 2, "Swish": 4, "SwiGLU": 5,
}


def _elementwise(node: Node) -> OpCost:
    return OpCost(flops=_PER_ELEMENT[node.op_type] * float_out_numel(node))


register_cost(*_PER_ELEMENT)(_elementwise)


@register_cost("Gelu")
def gelu(node: Node) -> OpCost:
    per = 9 if node.attrs.get_string("approximate", "none") == "tanh" else 5
    return OpCost(flops=per * float_out_numel(node))


@register_cost("Sum", "Max", "Min", "Mean")
def variadic(node: Node) -> OpCost:
    k = sum(1 for t in node.inputs if t is not None)
    n = float_out_numel(node)
    return OpCost(flops=(k - 1) * n + (n if node.op_type == "Mean" else 0))
