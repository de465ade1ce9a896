"""Graph -> per-node costs -> graph totals (the counted indicators).

One pure function, :func:`analyze`, over a shape-resolved
:class:`~nascost.predictors.graph.Graph`. The counting convention is in
:mod:`nascost.predictors.costs.convention`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from nascost.predictors.costs import registry
from nascost.predictors.costs.convention import FLOPS_PER_MAC
from nascost.predictors.costs.registry import OpCost
from nascost.predictors.errors import InvalidModelError
from nascost.predictors.graph import (
    Graph,
    Node,
    TensorInfo,
    UnresolvedShapeError,
    WeightInfo,
    dtype_name,
)

logger = logging.getLogger(__name__)

# Inputs of these ops that hold statistics, not trainable weights.
_BUFFER_INPUTS: dict[tuple[str, str], tuple[int, ...]] = {("", "BatchNormalization"): (3, 4)}
# Inputs of these ops that are embedding tables when they are weights.
_EMBEDDING_INPUTS: dict[tuple[str, str], tuple[int, ...]] = {("", "Gather"): (0,)}


@dataclass(frozen=True, slots=True)
class NodeResult:
    name: str
    op_type: str
    domain: str
    macs: int
    flops: int
    effective_flops: int
    torchvision_macs: int
    activation_read_bytes: int
    weight_read_bytes: int
    write_bytes: int
    params: int
    depth: int
    output_shape: tuple[int, ...]
    unsupported: bool = False
    unresolved: bool = False
    note: str = ""
    flops_min: int = 0
    flops_max: int = 0
    dtype: str = "float32"  # arithmetic dtype: the node's first float input or output

    @property
    def memory_access_bytes(self) -> int:
        return self.activation_read_bytes + self.weight_read_bytes + self.write_bytes

    @property
    def arithmetic_intensity(self) -> float:
        mem = self.memory_access_bytes
        return self.flops / mem if mem else 0.0


@dataclass(frozen=True, slots=True)
class ParamCounts:
    trainable: int = 0
    buffers: int = 0
    shape_constants: int = 0
    embedding: int = 0
    nonzero: int = 0
    derived_constants: int = 0
    deduplicated: int = 0
    has_weight_data: bool = False


@dataclass(frozen=True, slots=True)
class ControlFlow:
    node_name: str
    op_type: str
    branch_names: tuple[str, ...]
    branch_flops: tuple[int, ...]
    trip_count: int | None


_TOTAL_FIELDS: tuple[str, ...] = (
    "macs",
    "flops",
    "flops_min",
    "flops_max",
    "effective_flops",
    "torchvision_macs",
    "activation_read_bytes",
    "weight_read_bytes",
    "write_bytes",
)


@dataclass(frozen=True, slots=True)
class NodeTotals:
    """Sums of the per-node counts over every node of an :class:`Analysis`."""

    macs: int = 0
    flops: int = 0
    flops_min: int = 0
    flops_max: int = 0
    effective_flops: int = 0
    torchvision_macs: int = 0
    activation_read_bytes: int = 0
    weight_read_bytes: int = 0
    write_bytes: int = 0

    @classmethod
    def of(cls, nodes: tuple[NodeResult, ...]) -> NodeTotals:
        sums = [0] * len(_TOTAL_FIELDS)
        for n in nodes:
            for i, attr in enumerate(_TOTAL_FIELDS):
                sums[i] += getattr(n, attr)
        return cls(*sums)


def node_dtype(node: Node) -> str:
    """The dtype ``node``'s arithmetic runs in: its first float input or output (else its
    first input's dtype, else float32)."""
    for t in node.inputs:
        if t is not None and t.is_float:
            return t.dtype
    for t in node.outputs:
        if t.is_float:
            return t.dtype
    for t in node.inputs:
        if t is not None:
            return t.dtype
    return "float32"


@dataclass(frozen=True, slots=True)
class Analysis:
    """Every counted indicator of one graph at one set of input shapes."""

    nodes: tuple[NodeResult, ...]
    params: ParamCounts
    weight_bytes_by_dtype: dict[str, tuple[int, int]]  # dtype -> (elements, bytes)
    peak_activation_bytes: int
    depth: int
    critical_path_flops: int
    max_width: int
    unsupported: dict[tuple[str, str], int]
    unresolved_dims: tuple[str, ...]
    control_flow: tuple[ControlFlow, ...] = ()
    warnings: tuple[str, ...] = ()
    input_shapes: dict[str, tuple[int | None, ...]] = field(default_factory=dict)
    # sums over ``nodes``, computed once at construction (the nodes are immutable)
    totals: NodeTotals = field(default_factory=NodeTotals, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "totals", NodeTotals.of(self.nodes))

    @property
    def macs(self) -> int:
        return self.totals.macs

    @property
    def flops(self) -> int:
        return self.totals.flops

    @property
    def flops_min(self) -> int:
        return self.totals.flops_min

    @property
    def flops_max(self) -> int:
        return self.totals.flops_max

    @property
    def effective_flops(self) -> int:
        return self.totals.effective_flops

    @property
    def torchvision_macs(self) -> int:
        return self.totals.torchvision_macs

    @property
    def activation_read_bytes(self) -> int:
        return self.totals.activation_read_bytes

    @property
    def weight_read_bytes(self) -> int:
        return self.totals.weight_read_bytes

    @property
    def write_bytes(self) -> int:
        return self.totals.write_bytes

    @property
    def memory_access_bytes(self) -> int:
        return self.activation_read_bytes + self.weight_read_bytes + self.write_bytes

    @property
    def arithmetic_intensity(self) -> float:
        mem = self.memory_access_bytes
        return self.flops / mem if mem else 0.0

    @property
    def weight_bytes(self) -> int:
        return sum(b for _, b in self.weight_bytes_by_dtype.values())


def _known_nbytes(t: TensorInfo | None) -> int:
    if t is None:
        return 0
    s = t.shape
    if s is None or None in s:
        return 0
    return t.nbytes


def _shape_or_zeros(t: TensorInfo | None) -> tuple[int, ...]:
    """A node's output shape for reporting: unknown dims as 0, unknown rank as ()."""
    if t is None or not t.shape:
        return ()
    s = t.shape
    return s if None not in s else tuple(x or 0 for x in s)  # type: ignore[return-value]


def _node_cost(node: Node, fn: registry.CostFn | None) -> tuple[OpCost | None, str, bool]:
    """(cost, note, unresolved). cost None means no handler."""
    if fn is None:
        return None, "no cost handler: not counted (memory traffic only)", False
    try:
        return fn(node), "", False
    except UnresolvedShapeError as e:
        return OpCost(), f"not counted: {e}", True
    except (ValueError, IndexError, KeyError, TypeError, ZeroDivisionError) as e:
        raise InvalidModelError(f"node {node.name!r} ({node.op_type}): {e}") from e


def analyze(graph: Graph) -> Analysis:
    """Count every indicator of ``graph``, per node and in total."""
    results: list[NodeResult] = []
    unsupported: Counter[tuple[str, str]] = Counter()
    unresolved_syms: set[str] = set()
    control_flow: list[ControlFlow] = []
    tally = _ParamTally()
    # per tensor: (depth in ops, critical-path flops) ending at its producer
    depth_cp: dict[str, tuple[int, int]] = {}
    size_of: dict[str, int] = {}  # bytes of each tensor whose shape is known, else 0
    scopes = (graph.weights,)
    width: Counter[int] = Counter()
    handlers: dict[tuple[str, str], registry.CostFn | None] = {}
    weights = graph.weights
    outer_weights = graph.outer_weights  # a subgraph's view of its enclosing graphs' weights

    for node in graph.nodes:
        key = (node.domain, node.op_type)
        if key in handlers:
            fn = handlers[key]
        else:
            fn = handlers[key] = registry.lookup(*key)
        cost, note, unresolved = _node_cost(node, fn)
        no_handler = cost is None
        if cost is None:
            unsupported[(node.domain, node.op_type)] += 1
            cost = OpCost()
        if unresolved:
            for t in (*node.inputs, *node.outputs):
                if t is not None:
                    unresolved_syms.update(t.symbolic)
        if cost.note:
            note = f"{note}; {cost.note}" if note else cost.note

        # params: each unique float weight once, at its first consumer (for a control-flow
        # node: the weights its subgraphs read, outer or their own, counted once)
        act_read = wt_read = 0
        for t in node.inputs:
            if t is None:
                continue
            size = size_of.get(t.name)
            if size is None:
                size = size_of[t.name] = _known_nbytes(t)
            if t.is_constant:
                wt_read += size
            else:
                act_read += size
        node_params = tally.node(node, scopes)

        # memory traffic
        if cost.read_bytes is not None:
            act_read = cost.read_bytes
        act_read += cost.extra_read_bytes
        if cost.weight_read_bytes is not None:
            wt_read = cost.weight_read_bytes
        write = 0
        for t in node.outputs:
            size = size_of[t.name] = _known_nbytes(t)
            write += size
            if t.symbolic and not t.known:
                unresolved_syms.update(t.symbolic)

        flops = FLOPS_PER_MAC * cost.macs + cost.flops
        eff_macs = cost.macs if cost.effective_macs is None else cost.effective_macs
        if cost.sparse_input is not None:
            sw = node.input(cost.sparse_input)
            winfo = (weights.get(sw.name) or outer_weights.get(sw.name)) if sw is not None else None
            if winfo is not None and winfo.nonzero is not None and winfo.numel:
                eff_macs = cost.macs * winfo.nonzero // winfo.numel

        # parallelism: depth in ops, critical path in flops
        d = cp = 0
        for t in node.inputs:
            if t is not None:
                dc = depth_cp.get(t.name)
                if dc is not None:
                    d = dc[0] if dc[0] > d else d
                    cp = dc[1] if dc[1] > cp else cp
        for t in node.implicit_inputs:
            dc = depth_cp.get(t.name)
            if dc is not None:
                d, cp = max(d, dc[0]), max(cp, dc[1])
        counts_depth = not (node.op_type == "Constant" and node.domain == "")
        if counts_depth:
            d += 1
            width[d] += 1
        cp += flops
        for t in node.outputs:
            depth_cp[t.name] = (d, cp)

        if cost.branches:
            control_flow.append(
                ControlFlow(
                    node.name,
                    node.op_type,
                    tuple(b.name for b in cost.branches),
                    tuple(b.flops for b in cost.branches),
                    cost.trip_count,
                )
            )
        out0 = node.outputs[0] if node.outputs else None
        results.append(
            NodeResult(
                name=node.name,
                op_type=node.op_type,
                domain=node.domain,
                macs=cost.macs,
                flops=flops,
                effective_flops=FLOPS_PER_MAC * eff_macs + cost.flops,
                torchvision_macs=(
                    cost.torchvision_macs if cost.torchvision_macs is not None else cost.macs if cost.torchvision else 0
                ),
                activation_read_bytes=act_read,
                weight_read_bytes=wt_read,
                write_bytes=write,
                params=node_params,
                depth=d,
                output_shape=_shape_or_zeros(out0),
                unsupported=no_handler,
                unresolved=unresolved,
                note=note,
                flops_min=cost.flops_min if cost.flops_min is not None else flops,
                flops_max=cost.flops_max if cost.flops_max is not None else flops,
                dtype=node_dtype(node),
            )
        )

    all_weights = list(_all_weights(graph))
    shape_consts = sum(w.numel for w in all_weights if not w.is_float)
    derived = sum(w.numel for w in all_weights if w.is_float and w.from_constant_node)
    unused = [w.name for w in all_weights if w.name not in tally.seen and not w.from_constant_node]
    warnings = list(graph.warnings)
    if unused:
        warnings.append(f"{len(unused)} initializer(s) no node reads (not counted as params): {', '.join(unused[:5])}")
    if tally.buffers:
        warnings.append(f"{tally.buffers} buffer elements (BatchNormalization statistics) are not counted as params")
    if unsupported:
        kinds = ", ".join(f"{d + '.' if d else ''}{op} x{n}" for (d, op), n in sorted(unsupported.items()))
        warnings.append(f"ops without a cost handler (their compute is not counted): {kinds}")
    params = ParamCounts(
        trainable=tally.trainable,
        buffers=tally.buffers,
        shape_constants=shape_consts,
        embedding=tally.embedding,
        nonzero=tally.nonzero if tally.nonzero_known else 0,
        derived_constants=derived,
        deduplicated=tally.dedup,
        has_weight_data=graph.has_weight_data and tally.nonzero_known,
    )
    return Analysis(
        nodes=tuple(results),
        params=params,
        weight_bytes_by_dtype={k: (v[0], v[1]) for k, v in sorted(tally.by_dtype.items())},
        peak_activation_bytes=peak_activation_bytes(graph, size_of),
        depth=max((d for d, _ in depth_cp.values()), default=0),
        critical_path_flops=max((c for _, c in depth_cp.values()), default=0),
        max_width=max(width.values(), default=0),
        unsupported=dict(unsupported),
        unresolved_dims=tuple(sorted(unresolved_syms)),
        control_flow=tuple(control_flow),
        warnings=tuple(warnings),
        input_shapes={t.name: t.shape or () for t in graph.inputs},
    )


def _all_weights(graph: Graph) -> Iterator[WeightInfo]:
    """The weights of ``graph`` and of every subgraph in it (each scope's own initializers)."""
    yield from graph.weights.values()
    for node in graph.nodes:
        for sg in node.subgraphs.values():
            yield from _all_weights(sg)


class _ParamTally:
    """Counts each unique float weight once, at its first consumer, by kind.

    A control-flow node's params are the weights its subgraphs' nodes read (from an
    enclosing scope or the subgraph's own initializers), classified by the reading op
    (BatchNormalization statistics are buffers, a Gather table is an embedding), and
    counted once however many times a body runs.
    """

    __slots__ = ("buffers", "by_dtype", "dedup", "embedding", "nonzero", "nonzero_known", "seen", "trainable")

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.trainable = self.buffers = self.embedding = self.nonzero = self.dedup = 0
        self.nonzero_known = True
        self.by_dtype: dict[str, list[int]] = {}

    def node(self, node: Node, scopes: tuple[Mapping[str, WeightInfo], ...]) -> int:
        """Count ``node``'s not yet seen weights; return the trainable params it adds.

        ``scopes`` are the weight tables visible to the node, innermost first.
        """
        added = 0
        key = (node.domain, node.op_type)
        for i, t in enumerate(node.inputs):
            if t is not None and t.is_constant and t.name not in self.seen:
                added += self._weight(t.name, key, i, scopes)
        for sg in node.subgraphs.values():
            inner = (sg.weights, *scopes)
            for sub in sg.nodes:
                added += self.node(sub, inner)
        return added

    def _weight(self, name: str, key: tuple[str, str], i: int, scopes: tuple[Mapping[str, WeightInfo], ...]) -> int:
        w = next((s[name] for s in scopes if name in s), None)
        if w is None:
            return 0
        self.seen.add(name)
        if not w.is_float or w.from_constant_node:
            return 0
        if w.duplicate_of is not None and w.duplicate_of in self.seen:
            self.dedup += w.numel
            return 0
        if w.duplicate_of is not None:
            self.seen.add(w.duplicate_of)
        if i in _BUFFER_INPUTS.get(key, ()):
            self.buffers += w.numel
            return 0
        if i in _EMBEDDING_INPUTS.get(key, ()):
            self.embedding += w.numel
        if w.nonzero is None:
            self.nonzero_known = False
        else:
            self.nonzero += w.nonzero
        entry = self.by_dtype.setdefault(dtype_name(w.elem_type), [0, 0])
        entry[0] += w.numel
        entry[1] += w.nbytes
        self.trainable += w.numel
        return w.numel


def peak_activation_bytes(graph: Graph, sizes: Mapping[str, int] | None = None) -> int:
    """Peak of live activation bytes when nodes run in the graph's topological order.

    A tensor is live from its producer (graph inputs: from the start) until its last
    consumer has run; graph outputs stay live to the end. Weights and constants are not
    activations. While a node runs, its inputs and outputs are live together.
    ``sizes`` may give tensors' byte sizes already computed (name -> bytes).
    """
    known = sizes or {}
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for t in node.inputs:
            if t is not None and not t.is_constant:
                last_use[t.name] = i
        for t in node.implicit_inputs:  # read by a subgraph: live until the node has run
            if not t.is_constant:
                last_use[t.name] = i
    end = len(graph.nodes)
    for t in graph.outputs:
        last_use[t.name] = end
    size: dict[str, int] = {}
    live = 0
    for t in graph.inputs:
        size[t.name] = b = known[t.name] if t.name in known else _known_nbytes(t)
        live += b
    peak = live
    for i, node in enumerate(graph.nodes):
        for t in node.outputs:
            if t.is_constant or t.name in size:
                continue
            size[t.name] = b = known[t.name] if t.name in known else _known_nbytes(t)
            live += b
        peak = max(peak, live)
        for group in (node.inputs, node.implicit_inputs, node.outputs):
            for t in group:
                if t is not None and t.name in size and last_use.get(t.name, -1) <= i:
                    live -= size.pop(t.name)  # popped: a tensor read twice is freed once
    return peak
