"""Ops that move or view data without arithmetic: 0 FLOPs on purpose, memory counted.

Gathers read only the rows they take (an embedding lookup does not read its whole table);
Shape and Size read only metadata.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need
from nascost.predictors.costs.registry import OpCost, register_cost, register_free
from nascost.predictors.graph import Node

register_free(
    "data movement or view: no arithmetic",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice",
    "Identity", "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth", "Dropout",
    "GatherElements", "GatherND", "ScatterND", "ScatterElements", "Scatter", "Where",
    "Cast", "CastLike", "Compress", "ReverseSequence", "Trilu", "OneHot", "Col2Im",
    "SplitToSequence", "ConcatFromSequence", "SequenceAt", "SequenceConstruct",
    "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength", "Optional",
    "OptionalGetElement", "OptionalHasElement", "CenterCropPad", "TensorScatter",
)
register_free("reinterprets the bits of a tensor: no arithmetic", "BitCast")
register_free(
    "string processing: no floating-point operations",
    "StringConcat", "StringNormalizer", "StringSplit", "RegexFullMatch",
)
register_free(
    "creates a constant or index tensor: no arithmetic on data",
    "Constant", "ConstantOfShape", "Range", "EyeLike", "NonZero",
)
register_free(
    "integer/boolean logic: no floating-point operations",
    "And", "Or", "Xor", "Not", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
)


@register_cost("Shape", "Size")
def metadata(node: Node) -> OpCost:
    """Reads only the input's shape, not its data."""
    return OpCost(read_bytes=0, weight_read_bytes=0)


@register_cost("Gather")
def gather(node: Node) -> OpCost:
    """Reads the indices and only the slices it takes (= the output's bytes)."""
    data = need(node, 0)
    indices = need(node, 1)
    taken = node.out(0).nbytes
    if data.is_weight or data.is_constant:
        return OpCost(read_bytes=indices.nbytes, weight_read_bytes=taken)
    return OpCost(read_bytes=indices.nbytes + taken, weight_read_bytes=0)
