"""Ops that move or view data without arithmetic: 0 FLOPs on purpose, memory counted.

Gathers read only the rows they take (an embedding lookup does not read its whole table);
Shape and Size read only metadata.

Two movers do arithmetic and are counted: ScatterND / ScatterElements with a
``reduction`` (add, mul, max, min) cost 1 per update element; Col2Im sums overlapping
blocks, 1 add per input element (on floats).
"""

from __future__ import annotations

from nascost.predictors.costs.common import float_out_numel, need
from nascost.predictors.costs.registry import OpCost, register_cost, register_free
from nascost.predictors.graph import Node

register_free(
    "data movement or view: no arithmetic",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice",
    "Identity", "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth", "Dropout",
    "GatherElements", "GatherND", "Scatter", "Where",
    "Cast", "CastLike", "Compress", "ReverseSequence", "Trilu", "OneHot",
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


@register_cost("ScatterND", "ScatterElements")
def scatter(node: Node) -> OpCost:
    """A copy, unless ``reduction`` combines each update with the data: 1 per update."""
    if node.attrs.get_string("reduction", "none") == "none":
        return OpCost()
    updates = need(node, 2)
    return OpCost(flops=updates.numel if updates.is_float else 0)


@register_cost("Col2Im")
def col2im(node: Node) -> OpCost:
    """Overlapping blocks are summed: 1 add per input element."""
    x = need(node, 0)
    return OpCost(flops=x.numel if float_out_numel(node) else 0)
