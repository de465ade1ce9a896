"""Einsum, counted from its equation.

Let ``P`` be the product of the sizes of all distinct indices of the equation (the
iteration space of the naive nested loop; ``...`` dimensions broadcast, right-aligned,
and count as indices too) and ``k`` the number of operands. An index that appears in
the inputs but not in the output is *contracted*.

* ``k >= 2`` with a contraction (matmul, bmm, tensordot, attention ``bhqd,bhkd->bhqk``):
  ``macs = (k - 1) * P``: for two operands exactly the matmul count (``M N K``), for more
  the naive one-loop count (a contraction path computed pairwise may be cheaper; the
  node notes that). These MACs count toward the torchvision convention (they are matmuls).
* ``k >= 2`` without a contraction (outer or elementwise products): ``(k - 1) * P``
  multiplies as FLOPs.
* ``k == 1``: a sum over contracted indices is ``P`` adds (``ij->i``); a transpose or a
  diagonal (``ij->ji``, ``ii->i``) has no arithmetic.

Without ``->`` the output is, as numpy defines it, ``...`` followed by the indices that
appear exactly once, in alphabetical order.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, weight_index
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node


def _split_terms(equation: str) -> tuple[list[str], str | None]:
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->", 1)
        return lhs.split(","), rhs
    return eq.split(","), None


def einsum_space(equation: str, shapes: list[tuple[int, ...]]) -> tuple[dict[str, int], set[str], set[str]]:
    """Index sizes, input indices and output indices of an einsum.

    Ellipsis dimensions are named ``.0``, ``.1``, ... counted from the right.

    Raises:
        ValueError: the equation does not match the operands.
    """
    terms, rhs = _split_terms(equation)
    if len(terms) != len(shapes):
        raise ValueError(f"einsum equation {equation!r} names {len(terms)} operands, node has {len(shapes)}")
    sizes: dict[str, int] = {}
    counts: dict[str, int] = {}
    ell_rank = 0
    for term, shape in zip(terms, shapes, strict=True):
        letters = term.replace("...", "")
        if "..." in term:
            n_ell = len(shape) - len(letters)
            if n_ell < 0:
                raise ValueError(f"einsum term {term!r} has more indices than operand rank {len(shape)}")
            ell_rank = max(ell_rank, n_ell)
            before = term.index("...")
            labels = list(letters[:before]) + [f".{n_ell - 1 - j}" for j in range(n_ell)] + list(letters[before:])
        else:
            if len(letters) != len(shape):
                raise ValueError(f"einsum term {term!r} does not match operand rank {len(shape)}")
            labels = list(letters)
        for label, dim in zip(labels, shape, strict=True):
            prev = sizes.get(label)
            if prev is None or prev == 1:
                sizes[label] = dim
            elif dim not in (1, prev):
                raise ValueError(f"einsum index {label!r} has sizes {prev} and {dim}")
            if not label.startswith("."):
                counts[label] = counts.get(label, 0) + 1
    inputs = set(sizes)
    ellipsis = {f".{j}" for j in range(ell_rank)}
    if rhs is None:
        outputs = {c for c, n in counts.items() if n == 1} | ellipsis
    else:
        outputs = set(rhs.replace("...", ""))
        if "..." in rhs:
            outputs |= ellipsis
        unknown = outputs - inputs
        if unknown:
            raise ValueError(f"einsum output indices {sorted(unknown)} appear in no input")
    return sizes, inputs, outputs


@register_cost("Einsum")
def einsum(node: Node) -> OpCost:
    """``(k-1) * P`` MACs with a contraction; see the module docstring."""
    equation = node.attrs.get_string("equation")
    shapes = [need(node, i).dims for i in range(len(node.inputs))]
    sizes, inputs, outputs = einsum_space(equation, shapes)
    space = 1
    for s in sizes.values():
        space *= s
    k = len(shapes)
    contracted = inputs - outputs
    if k == 1:
        return OpCost(flops=space if contracted else 0)
    if not contracted:
        return OpCost(flops=(k - 1) * space)
    note = "naive single-loop count over all operands" if k > 2 else ""
    return OpCost(macs=(k - 1) * space, torchvision=True, note=note, sparse_input=weight_index(node, range(k)))
