"""Control flow: If, Loop, Scan, SequenceMap, counted from their subgraphs.

Each subgraph is analysed with :func:`nascost.predictors.analysis.analyze` at the shapes
ONNX inference gives its values (one iteration's shapes for a body).

* **If**: both branches are counted and reported (``branches``). ``flops_min`` /
  ``flops_max`` are the cheaper and the dearer branch; the node's ``macs``/``flops`` are
  those of the **dearer** branch (a static count cannot know the condition), unless the
  condition is a constant, in which case only the taken branch is counted.
* **Loop**: ``body x M`` when the trip count ``M`` is a constant; when the loop also has a
  data-dependent condition, ``M`` is an upper bound (noted). Without a constant ``M`` the
  trip count is unknown: one iteration is counted and the note says so
  (``trip_count=None``).
* **Scan**: ``body x`` the scan axis length of the first scan input (known from shapes).
* **SequenceMap**: ``body x`` the number of sequence elements, which a static graph does
  not know: one iteration is counted and noted.
* Bodies' ``flops_min`` / ``flops_max`` (an If inside a Loop) are multiplied by the trip
  count like their ``flops``.

Memory traffic of the subgraph (its inputs read, outputs and weights, times the trip
count, the dearer branch for If) is passed as ``extra_read_bytes``: the analysis adds it to
the node's activation reads, on top of the node's own inputs, so ``memory_access_bytes`` of
the node includes its body's. The torchvision-convention MACs of the subgraph (conv,
linear, matmul) are passed up as ``torchvision_macs``, multiplied like the MACs.
The weights a subgraph reads (from the enclosing scope or its own initializers) are
counted as params by the analysis, at the control-flow node, once; their zeros reduce the
node's effective FLOPs (``effective_macs``) as they would outside a subgraph.
Ops inside a subgraph that lack a handler or a shape are named in the node's note.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nascost.predictors.costs.common import need
from nascost.predictors.costs.convention import FLOPS_PER_MAC
from nascost.predictors.costs.registry import Branch, OpCost, register_cost
from nascost.predictors.graph import Graph, Node

if TYPE_CHECKING:
    from nascost.predictors.analysis import Analysis


def _analyze(graph: Graph) -> Analysis:
    from nascost.predictors.analysis import analyze  # the engine imports the registry

    return analyze(graph)


def _gaps(name: str, a: Analysis) -> list[str]:
    """What the subgraph's count leaves out, for the node's note."""
    out = []
    if a.unsupported:
        kinds = ", ".join(f"{d + '.' if d else ''}{op}" for d, op in sorted(a.unsupported))
        out.append(f"{name}: ops without a handler ({kinds})")
    unresolved = [n.name for n in a.nodes if n.unresolved]
    if unresolved:
        out.append(f"{name}: {len(unresolved)} node(s) with unknown shapes not counted")
    return out


def _body_cost(node: Node, body: Graph, trips: int | None, label: str, notes: list[str]) -> OpCost:
    a = _analyze(body)
    notes.extend(_gaps(label, a))
    n = trips if trips is not None else 1
    if trips is None:
        notes.insert(0, "trip count not known statically: one iteration counted")
    mem = a.memory_access_bytes * n
    branch = Branch(f"{label} x {trips if trips is not None else '?'}", a.macs * n, a.flops * n, mem,
                    a.torchvision_macs * n)
    macs = a.macs * n
    return OpCost(
        macs=macs,
        flops=a.flops * n - _mac_flops(macs),
        effective_macs=_effective_macs(a, n),
        torchvision_macs=a.torchvision_macs * n,
        extra_read_bytes=mem,
        branches=(branch,),
        flops_min=a.flops_min * n,
        flops_max=a.flops_max * n,
        trip_count=trips,
        note="; ".join(notes),
    )


def _mac_flops(macs: int) -> int:
    return FLOPS_PER_MAC * macs


def _effective_macs(a: Analysis, n: int) -> int:
    """The subgraph's MACs that touch non-zero weights, times ``n``: its effective FLOPs
    differ from its FLOPs only by ``FLOPS_PER_MAC`` per skipped MAC."""
    return (a.macs * FLOPS_PER_MAC - (a.flops - a.effective_flops)) * n // FLOPS_PER_MAC


@register_cost("If")
def if_(node: Node) -> OpCost:
    """Both branches reported; the dearer one counted (or the taken one, when constant)."""
    names = [k for k in ("then_branch", "else_branch") if k in node.subgraphs]
    if len(names) != 2:
        raise ValueError("If needs then_branch and else_branch subgraphs")
    results = {k: _analyze(node.subgraphs[k]) for k in names}
    notes: list[str] = []
    for k in names:
        notes.extend(_gaps(k, results[k]))
    branches = tuple(
        Branch(k, a.macs, a.flops, a.memory_access_bytes, a.torchvision_macs) for k, a in results.items()
    )
    cond = need(node, 0)
    if cond.value is not None and cond.value.size == 1:
        taken = "then_branch" if bool(cond.value.reshape(-1)[0]) else "else_branch"
        notes.insert(0, f"condition is constant: {taken} counted")
        chosen = results[taken]
        lo = hi = chosen.flops
    else:
        chosen = max(results.values(), key=lambda a: (a.flops, a.macs))
        lo = min(a.flops for a in results.values())
        hi = chosen.flops
        if lo != hi:
            notes.insert(0, "dearer branch counted")
    return OpCost(
        macs=chosen.macs,
        flops=chosen.flops - _mac_flops(chosen.macs),
        effective_macs=_effective_macs(chosen, 1),
        torchvision_macs=chosen.torchvision_macs,
        extra_read_bytes=chosen.memory_access_bytes,
        branches=branches,
        flops_min=lo,
        flops_max=hi,
        note="; ".join(notes),
    )


@register_cost("Loop")
def loop(node: Node) -> OpCost:
    """Body x trip count ``M`` when ``M`` is constant; else one iteration, noted."""
    body = node.subgraphs.get("body")
    if body is None:
        raise ValueError("Loop needs a body subgraph")
    m = node.input(0)
    cond = node.input(1)
    trips: int | None = None
    notes: list[str] = []
    if m is not None and m.value is not None and m.value.size == 1:
        trips = max(int(m.value.reshape(-1)[0]), 0)
        cond_fixed = cond is None or (cond.value is not None and bool(cond.value.reshape(-1)[0]))
        body_cond_const = _body_condition_is_identity(body)
        if not (cond_fixed and body_cond_const):
            notes.append(f"trip count M={trips} is an upper bound (loop has a condition)")
    return _body_cost(node, body, trips, "body", notes)


def _body_condition_is_identity(body: Graph) -> bool:
    """Whether the body's condition output is its condition input passed through."""
    if len(body.inputs) < 2 or not body.outputs:
        return False
    cond_in, cond_out = body.inputs[1].name, body.outputs[0].name
    if cond_in == cond_out:
        return True
    return any(
        n.op_type == "Identity" and n.outputs and n.outputs[0].name == cond_out
        and n.inputs and n.inputs[0] is not None and n.inputs[0].name == cond_in
        for n in body.nodes
    )


@register_cost("Scan")
def scan(node: Node) -> OpCost:
    """Body x length of the scanned axis of the first scan input."""
    body = node.subgraphs.get("body")
    if body is None:
        raise ValueError("Scan needs a body subgraph")
    n_scan = node.attrs.get_int("num_scan_inputs", 0)
    if n_scan <= 0:
        raise ValueError("Scan needs num_scan_inputs >= 1")
    n_state = len(node.inputs) - n_scan
    first = need(node, n_state)
    axes = node.attrs.get_ints("scan_input_axes") or (0,)
    axis = axes[0] + first.rank if axes[0] < 0 else axes[0]
    trips = first.dims[axis]
    return _body_cost(node, body, trips, "body", [])


@register_cost("SequenceMap")
def sequence_map(node: Node) -> OpCost:
    """Body once per sequence element; the count of elements is not static (one counted)."""
    body = node.subgraphs.get("body")
    if body is None:
        raise ValueError("SequenceMap needs a body subgraph")
    return _body_cost(node, body, None, "body", [])
