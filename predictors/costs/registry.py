"""The per-op cost registry: one way in, keyed by ``(domain, op_type)``.

Handlers are pure functions of a :class:`~nascost.predictors.graph.Node` returning an
:class:`OpCost`. They see shapes, dtypes, attributes and small constant inputs, never
weight payloads. Register with::

    @register_cost("Conv", "ConvTranspose")
    def conv(node: Node) -> OpCost: ...

A second registration of the same op is an error. An op without a handler is reported by
the analysis as unsupported (never counted as zero in silence); ops that cost nothing on
purpose (Shape, Identity, ...) are registered with :func:`register_free` and say why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nascost.predictors.graph import Node

CONTRIB_DOMAIN = "com.microsoft"
NCHWC_DOMAIN = "com.microsoft.nchwc"


@dataclass(frozen=True, slots=True)
class Branch:
    """Cost of one branch of a control-flow node (If then/else, a Loop body x trips).

    Attributes:
        name: ``"then_branch"``, ``"else_branch"``, or ``"body x <trips>"``.
        macs: multiply-accumulates of the branch (times the trip count for a body).
        flops: the branch's **total** FLOPs, ``FLOPS_PER_MAC * macs`` included (unlike
            :attr:`OpCost.flops`, which excludes the MACs).
        memory_access_bytes: the branch's reads, writes and weight reads.
        torchvision_macs: the part of ``macs`` the torchvision ``_ops`` convention counts.
    """

    name: str
    macs: int
    flops: int
    memory_access_bytes: int
    torchvision_macs: int = 0


@dataclass(frozen=True, slots=True)
class OpCost:
    """What one node costs, counted.

    Attributes:
        macs: multiply-accumulates.
        flops: floating-point operations *other than* the MACs (the total is
            ``FLOPS_PER_MAC * macs + flops``).
        torchvision: whether the MACs count toward the torchvision ``_ops`` convention.
        torchvision_macs: the torchvision-convention MACs when they are not simply
            "``macs`` if ``torchvision`` else 0" (a control-flow node passes up its
            subgraphs' conv/linear/matmul MACs); ``None`` = use ``torchvision``.
        read_bytes: activation bytes read, when not simply "every non-weight input once".
        extra_read_bytes: bytes added to the node's activation reads on top of its own
            inputs (a control-flow node's subgraph traffic: reads, writes and weights of
            the executed body, times the trip count).
        weight_read_bytes: weight bytes read, when not "every weight input once".
        sparse_input: index of the weight input whose zeros a sparse kernel would skip.
        effective_macs: the MACs that touch a non-zero weight, when the node works it out
            itself (a control-flow node: its subgraphs' sparsity); ``None`` = derive them
            from ``sparse_input``.
        branches: control-flow branches (If/Loop/Scan), for reporting.
        trip_count: Loop/Scan trip count used; None when not known statically.
        note: a remark shown with the node.
    """

    macs: int = 0
    flops: int = 0
    torchvision: bool = False
    torchvision_macs: int | None = None
    read_bytes: int | None = None
    extra_read_bytes: int = 0
    weight_read_bytes: int | None = None
    sparse_input: int | None = None
    effective_macs: int | None = None
    branches: tuple[Branch, ...] = ()
    flops_min: int | None = None
    flops_max: int | None = None
    trip_count: int | None = None
    note: str = ""


CostFn = Callable[[Node], OpCost]
_FREE_COST = OpCost()  # immutable: one instance serves every free node

_REGISTRY: dict[tuple[str, str], CostFn] = {}
_FREE_REASONS: dict[tuple[str, str], str] = {}


def _key(domain: str, op_type: str) -> tuple[str, str]:
    return ("" if domain == "ai.onnx" else domain, op_type)


def register_cost(*op_types: str, domain: str = "") -> Callable[[CostFn], CostFn]:
    """Register ``fn`` as the cost handler of ``op_types`` in ``domain``."""
    if not op_types:
        raise ValueError("register_cost needs at least one op type")

    def deco(fn: CostFn) -> CostFn:
        for op in op_types:
            k = _key(domain, op)
            if k in _REGISTRY:
                raise ValueError(f"cost handler for {k} registered twice ({_REGISTRY[k].__name__}, {fn.__name__})")
            _REGISTRY[k] = fn
        return fn

    return deco


def register_free(reason: str, *op_types: str, domain: str = "") -> None:
    """Register ops that do no arithmetic on purpose (memory traffic is still counted)."""

    def free(node: Node) -> OpCost:
        return _FREE_COST


    free.__name__ = "free_" + "_".join(op_types)
    register_cost(*op_types, domain=domain)(free)
    for op in op_types:
        _FREE_REASONS[_key(domain, op)] = reason


def lookup(domain: str, op_type: str) -> CostFn | None:
    _ensure_loaded()
    return _REGISTRY.get(_key(domain, op_type))


def registered() -> dict[tuple[str, str], CostFn]:
    """Every registered ``(domain, op_type)`` and its handler."""
    _ensure_loaded()
    return dict(_REGISTRY)


def free_reason(domain: str, op_type: str) -> str | None:
    _ensure_loaded()
    return _FREE_REASONS.get(_key(domain, op_type))


_loaded = False


def _ensure_loaded() -> None:
    """Import the handler modules once (they register themselves)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from nascost.predictors.costs import handlers  # noqa: F401
