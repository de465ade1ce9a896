"""Named numeric features of graphs and of runtime kernels, for the learned predictors.

Two levels:

* **graph** (:func:`graph_features`): totals of an :class:`Analysis` (FLOPs, MACs, memory
  bytes, arithmetic intensity, depth, width) and per op-category counts, FLOPs and bytes,
  plus the roofline time on the calibrated device when given.
* **kernel** (:func:`kernel_features`): one executed kernel, as onnxruntime's per-node
  profile reports it (op type, input and output shapes) — or, at prediction time, as
  :func:`pseudo_kernels` derives it from the user's graph with the fusions onnxruntime's
  CPU provider applies (activation and residual-add folded into the preceding Conv,
  constant nodes removed). MACs are computed from shapes, so a profile record needs no
  graph; when the optimized graph's :class:`NodeResult` of the same name is at hand its
  FLOPs and bytes are used.

Feature names are fixed lists (``GRAPH_FEATURES``, ``KERNEL_FEATURES``): a vector is always
built from its names, never by position.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nascost.predictors.analysis import Analysis, NodeResult
from nascost.predictors.graph import Graph

logger = logging.getLogger(__name__)

# op type (any domain; "Fused" prefixes stripped) -> category
_CATEGORY: dict[str, str] = {
    "Conv": "conv",
    "ConvTranspose": "conv",
    "MatMul": "matmul",
    "Gemm": "matmul",
    "MatMulNBits": "matmul",
    "Attention": "matmul",
    "Softmax": "softmax",
    "LogSoftmax": "softmax",
    "LayerNormalization": "norm",
    "SkipLayerNormalization": "norm",
    "SimplifiedLayerNormalization": "norm",
    "BatchNormalization": "norm",
    "InstanceNormalization": "norm",
    "GroupNormalization": "norm",
    "MaxPool": "pool",
    "AveragePool": "pool",
    "GlobalAveragePool": "global_pool",
    "GlobalMaxPool": "global_pool",
    "ReduceMean": "global_pool",
    "ReduceSum": "global_pool",
    "Relu": "activation",
    "Clip": "activation",
    "Sigmoid": "activation",
    "HardSwish": "activation",
    "HardSigmoid": "activation",
    "Gelu": "activation",
    "BiasGelu": "activation",
    "FastGelu": "activation",
    "QuickGelu": "activation",
    "Erf": "activation",
    "Tanh": "activation",
    "LeakyRelu": "activation",
    "Add": "elementwise",
    "Sub": "elementwise",
    "Mul": "elementwise",
    "Div": "elementwise",
    "Sum": "elementwise",
    "Pow": "elementwise",
    "Sqrt": "elementwise",
    "Transpose": "transpose",
    "Reshape": "reshape",
    "Flatten": "reshape",
    "Squeeze": "reshape",
    "Unsqueeze": "reshape",
    "Gather": "gather",
    "Concat": "copy",
    "Split": "copy",
    "Slice": "copy",
    "ReorderInput": "reorder",
    "ReorderOutput": "reorder",
}
CATEGORIES: tuple[str, ...] = (
    "conv",
    "conv_depthwise",
    "matmul",
    "softmax",
    "norm",
    "pool",
    "global_pool",
    "activation",
    "elementwise",
    "transpose",
    "reshape",
    "gather",
    "copy",
    "reorder",
    "other",
)
_NO_KERNEL = frozenset({"Constant", "Shape", "Size", "ConstantOfShape", "Identity", "Dropout"})
_CONV_FUSABLE = frozenset({"Relu", "Clip", "Sigmoid", "LeakyRelu", "HardSigmoid", "Tanh", "HardSwish"})
# kernels that run on a blocked (NCHWc) tensor as it is: no reorder before or after them
_NCHWC_PASSTHROUGH = frozenset({"QuickGelu"})
_BLOCKED_POOLS = frozenset({"MaxPool", "AveragePool"})


def op_category(op_type: str, *, depthwise: bool = False) -> str:
    base = op_type[5:] if op_type.startswith("Fused") else op_type
    cat = _CATEGORY.get(base, "other")
    if cat == "conv" and depthwise:
        return "conv_depthwise"
    return cat


def _log(v: float) -> float:
    return math.log1p(max(float(v), 0.0))


# --------------------------------------------------------------------------- kernels


@dataclass(frozen=True, slots=True)
class KernelRecord:
    """One executed kernel: from an onnxruntime profile, or derived from a graph.

    Attributes:
        name: node name in the (optimized) graph.
        op_type: op type as the runtime reports it (``Conv``, ``FusedConv``, ``ReorderInput``, ...).
        input_shapes: shapes of its inputs (weights included), in input order.
        output_shapes: shapes of its outputs.
        latency_us: measured time per run (median over runs), when measured.
        fused: number of graph nodes folded into this kernel besides the main one.
        blocked: whether it runs in the NCHWc blocked layout (profile names end in ``_nchwc``).
        activation: the activation op folded into a Conv (``Relu``, ``Clip``, ...), or "".
            A profile does not say it; :func:`with_activations` reads it from the graph.
    """

    name: str
    op_type: str
    input_shapes: tuple[tuple[int, ...], ...]
    output_shapes: tuple[tuple[int, ...], ...]
    latency_us: float | None = None
    fused: int = 0
    blocked: bool = False  # runs in onnxruntime's NCHWc blocked layout
    activation: str = ""


def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(d) for d in shape)


def _shape_from_profile(entry: Any) -> tuple[int, ...]:
    # onnxruntime writes [{"float": [2, 3, 32, 32]}, ...]
    if isinstance(entry, Mapping):
        for v in entry.values():
            return tuple(int(d) for d in v)
        return ()
    return tuple(int(d) for d in entry)


def kernels_from_profile(events: Iterable[Mapping[str, Any]], *, skip_runs: int = 0) -> list[KernelRecord]:
    """Median per-kernel time from onnxruntime Chrome-trace events (``cat == "Node"``).

    Args:
        events: the parsed profile JSON (a list of events).
        skip_runs: leading occurrences of each kernel to drop (warm-up runs).
    """
    durs: dict[str, list[float]] = {}
    meta: dict[str, KernelRecord] = {}
    for e in events:
        if e.get("cat") != "Node":
            continue
        name = str(e.get("name", ""))
        if not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        args = e.get("args") or {}
        durs.setdefault(node, []).append(float(e.get("dur", 0.0)))
        if node not in meta:
            meta[node] = KernelRecord(
                name=node,
                op_type=str(args.get("op_name", "")),
                input_shapes=tuple(_shape_from_profile(s) for s in args.get("input_type_shape", []) or []),
                output_shapes=tuple(_shape_from_profile(s) for s in args.get("output_type_shape", []) or []),
                blocked=node.endswith("_nchwc"),
            )
    out = []
    for node, rec in meta.items():
        d = durs[node][skip_runs:] or durs[node]
        out.append(
            KernelRecord(
                rec.name,
                rec.op_type,
                rec.input_shapes,
                rec.output_shapes,
                float(statistics.median(d)),
                rec.fused,
                rec.blocked,
                rec.activation,
            )
        )
    return out


def with_activations(kernels: Sequence[KernelRecord], graph: Graph) -> list[KernelRecord]:
    """Profiled kernels with the activation onnxruntime folded into each Conv, from ``graph``.

    A profile does not say which activation a Conv absorbed; its names do. onnxruntime
    names a blocked (NCHWc) Conv after the output tensor of the last node it absorbed
    (``clip_15_nchwc``: Conv + Clip), except that a Conv that absorbed a residual Add, or a
    HardSwish, keeps its own output's name (``conv_9_nchwc``: Conv + Add + Relu); a
    ``FusedConv`` is named after the Conv node. The
    activation matters: on this CPU a depthwise 3x3 Conv over (8, 32, 112, 112) took
    1.0-1.3 ms with Relu folded in and 2.3-3.5 ms with Clip (ReLU6).
    """
    by_name = {n.name: n for n in graph.nodes}
    producer, readers = _graph_links(graph)

    def sole_reader(node: Any) -> Any:
        users = readers.get(node.outputs[0].name, []) if node.outputs else []
        return users[0] if len(users) == 1 else None

    out = []
    for k in kernels:
        act = k.activation
        # an unblocked plain "Conv" absorbed nothing (onnxruntime runs it as FusedConv if it did)
        if not act and (k.op_type == "FusedConv" or (k.op_type == "Conv" and k.name.endswith("_nchwc"))):
            node = producer.get(k.name[: -len("_nchwc")]) if k.name.endswith("_nchwc") else by_name.get(k.name)
            if node is not None and node.op_type in _CONV_FUSABLE:
                act = node.op_type
            elif node is not None and node.op_type == "Conv":
                # its sole reader, past a residual Add it absorbed (named after the Conv too;
                # the Add's other operand is then one more input of the kernel)
                user = sole_reader(node)
                if user is not None and user.op_type == "Add":
                    n_in = sum(1 for t in node.inputs if t is not None)
                    user = sole_reader(user) if len(k.input_shapes) > n_in else None
                if user is not None and user.op_type in _CONV_FUSABLE:
                    act = user.op_type
        out.append(k if act == k.activation else dataclasses.replace(k, activation=act))
    return out


def _graph_links(graph: Graph) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(tensor -> the node producing it, tensor -> the nodes reading it, one entry per read)."""
    producer: dict[str, Any] = {}
    users: dict[str, list[Any]] = {}
    for n in graph.nodes:
        for t in n.inputs:
            if t is not None:
                users.setdefault(t.name, []).append(n)
        for o in n.outputs:
            producer[o.name] = n
    return producer, users


def _silu_sigmoid(mul: Any, producer: Mapping[str, Any], users: Mapping[str, list[Any]]) -> Any | None:
    """The Sigmoid of ``mul`` when ``mul`` is ``x * Sigmoid(x)`` and reads the Sigmoid's
    output alone (onnxruntime runs the pair as one QuickGelu), else None."""
    if mul.op_type != "Mul":
        return None
    ins = [t for t in mul.inputs if t is not None]
    if len(ins) != 2:
        return None
    for x, s in ((ins[0], ins[1]), (ins[1], ins[0])):
        sig = producer.get(s.name)
        if (
            sig is not None
            and sig.op_type == "Sigmoid"
            and sig.inputs
            and sig.inputs[0] is not None
            and sig.inputs[0].name == x.name
            and len(users.get(s.name, [])) == 1
        ):
            return sig
    return None


def _blocked_source(
    tensor: str, conv_of: Mapping[str, str], producer_of: Mapping[str, Any], users: Mapping[str, list[Any]], block: int
) -> bool:
    """Whether onnxruntime computes ``tensor`` in the blocked layout: a Conv's output (with
    what it absorbed), a pool's, or a SiLU's (``x * Sigmoid(x)``, run as QuickGelu). Without
    the blocked layout (``block`` 0) nothing is (a rule not checked against such a host)."""
    if block < 2:
        return False
    if tensor in conv_of:
        return True
    node = producer_of.get(tensor)
    if node is None:
        return False
    if node.op_type in _BLOCKED_POOLS and node.inputs and node.inputs[0] is not None:
        xs: Sequence[int | None] = node.inputs[0].shape or ()  # blocked on whole blocks of channels only
        return node.inputs[0].name in conv_of and len(xs) > 1 and (xs[1] or 0) % block == 0
    return _silu_sigmoid(node, producer_of, users) is not None


def _dims(t: Any) -> tuple[int, ...]:
    """A known tensor's shape as ints (unknown dims 0)."""
    s = t.shape
    if s is not None and None not in s:
        return s  # type: ignore[no-any-return]
    return tuple(int(d or 0) for d in (s or ()))


def _known_shapes(tensors: Iterable[Any]) -> tuple[tuple[int, ...], ...]:
    """The shapes of the tensors among ``tensors`` whose every dim is known, in order."""
    return tuple(s for t in tensors if (s := t.shape) is not None and None not in s)


def pseudo_kernels(graph: Graph, *, nchwc_block: int | None = None) -> list[KernelRecord]:
    """The kernels onnxruntime's CPU provider would run for ``graph``, approximately.

    Folds an activation (and a residual ``Add``) into the Conv before it when the Conv's
    output has no other consumer, and drops nodes whose inputs are all constants and
    metadata-only ops (the runtime folds them away).

    Args:
        nchwc_block: the channel block of onnxruntime's NCHWc layout on the device whose
            kernels these describe (16 with AVX-512, 8 with AVX2, 0 where nothing runs
            blocked); default this host's (:func:`host_nchwc_block`). A learned predictor
            passes the block its training profiles showed.
    """
    block = host_nchwc_block() if nchwc_block is None else int(nchwc_block)
    producer_of, users = _graph_links(graph)
    consumers = {t: len(u) for t, u in users.items()}
    out_names = {t.name for t in graph.outputs}
    conv_of: dict[str, str] = {}  # tensor -> the Conv kernel that produces it (after folding)
    for n in graph.nodes:
        if n.op_type == "Conv":
            for t in n.outputs:
                conv_of[t.name] = n.name
    folded: set[str] = set()
    fused_ops: dict[str, list[str]] = {}
    extra_inputs: dict[str, list[tuple[int, ...]]] = {}
    final_out: dict[str, tuple[tuple[int, ...], ...]] = {}
    for n in graph.nodes:
        if n.op_type in _CONV_FUSABLE:
            candidates = [n.inputs[0]] if n.inputs and n.inputs[0] is not None else []
        elif n.op_type == "Add":
            candidates = [t for t in n.inputs if t is not None and not t.is_constant]
            # onnxruntime folds a residual Add into a blocked Conv only when the other operand
            # is blocked too: from a Conv, a pool or a SiLU, not from (say) a squeeze-excitation's
            # Mul (an Add of a constant folds into the Conv's bias)
            if len(candidates) == 2 and not all(
                _blocked_source(t.name, conv_of, producer_of, users, block) for t in candidates
            ):
                continue
        else:
            continue
        for t in candidates:
            conv = conv_of.get(t.name)
            if conv is None or consumers.get(t.name, 0) != 1 or t.name in out_names:
                continue
            done = fused_ops.get(conv, [])
            if n.op_type in done or (n.op_type == "Add" and done) or len(done) >= 2:
                continue
            folded.add(n.name)
            fused_ops.setdefault(conv, []).append(n.op_type)
            if n.op_type == "Add":
                extra_inputs.setdefault(conv, []).extend(
                    _dims(o)
                    for o in n.inputs
                    if o is not None and o.name != t.name and o.known
                )
            final_out[conv] = _known_shapes(n.outputs)
            for o in n.outputs:
                conv_of[o.name] = conv
            break
    fused_count = {k: len(v) for k, v in fused_ops.items()}
    rename: dict[str, str] = {}
    _fold_gelu_and_matmul(
        graph, consumers, out_names, folded, fused_count, final_out, rename, producer_of, users, extra_inputs
    )
    nchwc = _nchwc_nodes(graph, folded, conv_of, producer_of, rename, block) if block > 1 else set()
    depthwise_convs = _depthwise_nodes(graph)
    recs = []
    reordered_in: set[str] = set()
    reordered_out: set[str] = set()
    for n in graph.nodes:
        if n.name in folded or n.op_type in _NO_KERNEL:
            continue
        ins = [t for t in n.inputs if t is not None]
        if ins and all(t.is_constant for t in ins):
            continue
        in_shapes = _known_shapes(ins) + tuple(extra_inputs.get(n.name, ()))
        out_shapes = final_out.get(n.name) or _known_shapes(n.outputs)
        if len(ins) == 1 and _to_channels_last(n) and ins[0].known and _effective_producer(ins[0].name, conv_of, producer_of) in nchwc:
            # a blocked tensor transposed to NHWC: one ReorderOutput writes it channels-last
            recs.append(KernelRecord(n.name, "ReorderOutput", (_pad_channels(_dims(ins[0]), block),), out_shapes))
            continue
        op_type = rename.get(n.name, n.op_type)
        if op_type == "Conv" and n.name in fused_ops and n.name not in nchwc:
            op_type = "FusedConv"  # what onnxruntime runs for an unblocked Conv that absorbed nodes
        passthrough = op_type in _NCHWC_PASSTHROUGH
        if passthrough:
            in_shapes = in_shapes[:1]
        if n.name in nchwc and n.op_type == "Conv":
            x = n.inputs[0]
            src = _effective_producer(x.name, conv_of, producer_of) if x is not None else None
            cin = (x.shape[1] or 0) if x is not None and x.shape and len(x.shape) > 1 else 0
            if x is not None and x.known and src not in nchwc and cin >= block and x.name not in reordered_in:
                reordered_in.add(x.name)
                recs.append(KernelRecord(f"{x.name}_reorder_in", "ReorderInput", (_dims(x),), (_dims(x),)))
            depthwise = n.name in depthwise_convs
            if (
                x is not None
                and x.known
                and src in nchwc
                and cin < block
                and not depthwise
                and x.name not in reordered_out
            ):
                # a narrow input is read in NCHW: the blocked producer's output is reordered back
                reordered_out.add(x.name)
                padded = _pad_channels(_dims(x), block)
                recs.append(KernelRecord(f"{x.name}_reorder_out", "ReorderOutput", (padded,), (_dims(x),)))
            in_shapes, out_shapes = _nchwc_padded(in_shapes, out_shapes, cin, depthwise, block)
        recs.append(
            KernelRecord(
                n.name,
                op_type,
                in_shapes,
                out_shapes,
                None,
                fused_count.get(n.name, 0),
                n.name in nchwc and not passthrough,
                next((op for op in fused_ops.get(n.name, ()) if op != "Add"), ""),
            )
        )
        if n.name not in nchwc:
            for t in ins:
                if (
                    _effective_producer(t.name, conv_of, producer_of) in nchwc
                    and t.name not in reordered_out
                    and t.known
                ):
                    reordered_out.add(t.name)
                    recs.append(
                        KernelRecord(
                            f"{t.name}_reorder_out", "ReorderOutput", (_pad_channels(_dims(t), block),), (_dims(t),)
                        )
                    )
    for t in graph.outputs:  # blocked results leave the graph in NCHW
        if _effective_producer(t.name, conv_of, producer_of) in nchwc and t.name not in reordered_out and t.known:
            reordered_out.add(t.name)
            recs.append(
                KernelRecord(f"{t.name}_reorder_out", "ReorderOutput", (_pad_channels(_dims(t), block),), (_dims(t),))
            )
    return recs


def _to_channels_last(node: Any) -> bool:
    """Whether ``node`` is a Transpose from NCHW to NHWC (``perm = [0, 2, 3, 1]``): onnxruntime's
    NCHWc transformer replaces one that reads a blocked tensor by a channels-last
    ReorderOutput (ConvNeXt's Conv -> Transpose -> LayerNorm runs one kernel where the
    graph has two)."""
    return node.op_type == "Transpose" and node.attrs.get_ints("perm") == (0, 2, 3, 1)


@functools.cache
def host_nchwc_block() -> int:
    """The NCHWc channel block of this host's onnxruntime CPU provider: 16 with AVX-512, 8
    with AVX2, 0 where it runs nothing blocked (or onnxruntime is not installed).

    Read from the runtime itself, not from CPU flags: one 8 -> 8 channel Conv is profiled,
    and onnxruntime pads a blocked Conv's output channels to its block (MLAS chooses the
    block by the instruction set it dispatches to). About 20 ms, once per process.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        logger.warning("onnxruntime is not installed: pseudo kernels assume no NCHWc layout")
        return 0
    import json
    import os
    import tempfile

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])
    w = numpy_helper.from_array(np.ones((8, 8, 3, 3), dtype=np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    model = helper.make_model(
        helper.make_graph([conv], "nchwc_probe", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 13)]
    )
    model.ir_version = min(model.ir_version, onnx.IR_VERSION)
    with tempfile.TemporaryDirectory(prefix="nascost-nchwc-") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "p")
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        sess.run(None, {"x": np.ones((1, 8, 6, 6), dtype=np.float32)})
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    # the probe's 8 output channels as the blocked Conv ran them: padded to the block (8 or
    # 16); not blocked: 0. (nchwc_block_from_kernels cannot tell 16 from a width that is a
    # multiple of 16 in a model; here the width is known to be 8.)
    widths = _blocked_conv_channels(kernels_from_profile(events))
    return widths[0] if widths and widths[0] in (8, 16) else 0


_CONV_KERNELS = frozenset({"Conv", "FusedConv"})  # a profile's convolution kernels


def nchwc_block_from_kernels(kernels: Iterable[KernelRecord]) -> int | None:
    """The NCHWc block of the onnxruntime that profiled ``kernels``, where they tell: 8 when
    a blocked Conv's output channels (padded to the block) are not a multiple of 16, 0 when
    Convs ran but none blocked. None when they cannot tell: no Conv ran, or every blocked
    Conv is a multiple of 16 wide, which both blocks pad alike (then compare the graphs'
    pseudo kernels with the profile, see :func:`nchwc_block_from_examples`)."""
    convs = [k for k in kernels if k.op_type in _CONV_KERNELS]
    channels = _blocked_conv_channels(convs)
    if any(c % 16 for c in channels):
        return 8
    return None if channels or not convs else 0


def _blocked_conv_channels(kernels: Iterable[KernelRecord]) -> list[int]:
    """Output channels (as padded) of the blocked Convs among ``kernels``, sorted."""
    return sorted(
        k.output_shapes[0][1]
        for k in kernels
        if k.op_type in _CONV_KERNELS and k.blocked and k.output_shapes and len(k.output_shapes[0]) > 1
    )


def nchwc_block_from_examples(examples: Iterable[tuple[Graph, Sequence[KernelRecord]]]) -> int | None:
    """The NCHWc block (16 or 8) under which the pseudo kernels of a graph show the blocked
    Conv widths its profile shows, from the first graph where the two blocks differ (a Conv
    whose width is not a multiple of 16: padded to 16 or not); None when no graph tells."""
    for graph, kernels in examples:
        if not any(
            n.op_type == "Conv" and len(n.inputs) > 1 and n.inputs[1] is not None and int((n.inputs[1].shape or (0,))[0] or 0) % 16
            for n in graph.nodes
        ):
            continue
        shown = _blocked_conv_channels(kernels)
        as16 = _blocked_conv_channels(pseudo_kernels(graph, nchwc_block=16))
        as8 = _blocked_conv_channels(pseudo_kernels(graph, nchwc_block=8))
        if as16 != as8 and shown in (as16, as8):
            return 16 if shown == as16 else 8
    return None


def _pad_channels(shape: tuple[int, ...], block: int, axis: int = 1) -> tuple[int, ...]:
    """``shape`` with dim ``axis`` rounded up to the NCHWc ``block``."""
    if len(shape) <= axis:
        return shape
    c = shape[axis]
    if c % block == 0:
        return shape  # already whole blocks (most channel counts): no new tuple
    return (*shape[:axis], -(-c // block) * block, *shape[axis + 1 :])


def _nchwc_padded(
    in_shapes: tuple[tuple[int, ...], ...],
    out_shapes: tuple[tuple[int, ...], ...],
    cin: int,
    depthwise: bool,
    block: int,
) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
    """A blocked Conv's shapes as onnxruntime runs (and profiles) them: output channels
    padded to the block, and input channels too when the input is blocked (>= one block
    wide) or the conv is depthwise."""
    if len(in_shapes) < 2 or len(in_shapes[0]) != 4 or len(in_shapes[1]) != 4:
        return in_shapes, out_shapes
    x, w, *rest = in_shapes
    if (
        w[0] % block == 0
        and (x[1] % block == 0 or not (depthwise or cin >= block))
        and (w[1] % block == 0 or depthwise or cin < block)
        and all(len(r) < 1 or r[0 if len(r) == 1 else 1] % block == 0 for r in rest)
        and all(len(o) < 2 or o[1] % block == 0 for o in out_shapes)
    ):
        # whole blocks already (most Convs): the rules below would pad nothing (this mirrors
        # them; ~0.1 ms of ResNet-50's prediction; pseudo kernels of 686 graphs equal either way)
        return in_shapes, out_shapes
    if depthwise or cin >= block:
        x = _pad_channels(x, block)
    w = _pad_channels(w, block, 0)
    if not depthwise and cin >= block:
        w = _pad_channels(w, block, 1)
    rest = [_pad_channels(r, block, 0) if len(r) == 1 else _pad_channels(r, block) for r in rest]
    return (x, w, *rest), tuple(_pad_channels(o, block) for o in out_shapes)


def _effective_producer(tensor: str, conv_of: Mapping[str, str], producer_of: Mapping[str, Any]) -> str | None:
    if tensor in conv_of:
        return conv_of[tensor]
    p = producer_of.get(tensor)
    return p.name if p is not None else None


_NCHWC_FOLLOWERS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})


def _nchwc_nodes(
    graph: Graph,
    folded: set[str],
    conv_of: Mapping[str, str],
    producer: Mapping[str, Any],
    rename: Mapping[str, str],
    block: int,
) -> set[str]:
    """Nodes onnxruntime's NCHWc transformer would run in the blocked layout of ``block`` channels."""
    out: set[str] = set()
    for n in graph.nodes:
        if n.op_type == "Conv" and len(n.inputs) > 1 and n.inputs[1] is not None and n.inputs[1].shape:
            w = n.inputs[1].shape
            cout, cin_g = w[0] or 0, w[1] or 0
            groups = n.attrs.get_int("group", 1)
            ok = cout % 4 == 0 and (
                (groups == 1 and (cin_g % 4 == 0 or cin_g < block))
                or (groups == cout and cin_g == 1)
                or (groups > 1 and cin_g % block == 0 and (cout // groups) % block == 0)
            )
            if ok:
                out.add(n.name)
        elif rename.get(n.name) in _NCHWC_PASSTHROUGH and n.inputs and n.inputs[0] is not None:
            p = producer.get(n.inputs[0].name)
            if conv_of.get(n.inputs[0].name, p.name if p is not None else "") in out:
                out.add(n.name)
        elif n.op_type in _NCHWC_FOLLOWERS and n.inputs and n.inputs[0] is not None:
            x = n.inputs[0]
            p = producer.get(x.name)
            src = conv_of.get(x.name, p.name if p is not None else "")
            # a pool stays blocked only on whole blocks of channels (else it reads NCHW)
            xs = x.shape or ()
            whole = len(xs) > 1 and (xs[1] or 0) % block == 0
            if src in out and whole:
                out.add(n.name)
    return out


def _fold_gelu_and_matmul(
    graph: Graph,
    consumers: Mapping[str, int],
    out_names: set[str],
    folded: set[str],
    fused_count: dict[str, int],
    final_out: dict[str, tuple[tuple[int, ...], ...]],
    rename: dict[str, str],
    producer: Mapping[str, Any],
    users: Mapping[str, list[Any]],
    extra_inputs: dict[str, list[tuple[int, ...]]],
) -> None:
    """Erf-based GELU (+ a bias Add before it) -> one Gelu/BiasGelu kernel; x * Sigmoid(x) ->
    QuickGelu; MatMul + scale/Transpose -> FusedMatMul."""
    for n in graph.nodes:
        if n.op_type != "Erf" or n.name in folded or not n.inputs or n.inputs[0] is None:
            continue
        div = producer.get(n.inputs[0].name)
        if div is None or div.op_type not in ("Div", "Mul") or not div.inputs or div.inputs[0] is None:
            continue
        x = div.inputs[0]
        add1 = users.get(n.outputs[0].name, [])
        if len(add1) != 1 or add1[0].op_type != "Add":
            continue
        final = users.get(add1[0].outputs[0].name, [])
        if len(final) != 1 or final[0].op_type != "Mul":
            continue
        half = [u for u in users.get(x.name, []) if u.op_type == "Mul" and u is not final[0]]
        group = [div, add1[0], final[0], *half[:1]]
        for g in group:
            folded.add(g.name)
        fused_count[n.name] = len(group)
        rename[n.name] = "Gelu"
        final_out[n.name] = _known_shapes(final[0].outputs)
        bias = producer.get(x.name)
        if (
            bias is not None
            and bias.op_type == "Add"
            and any(t is not None and t.is_constant for t in bias.inputs)
            and all(u.name in {g.name for g in group} for u in users.get(x.name, []))
            and x.name not in out_names
        ):
            folded.add(bias.name)
            fused_count[n.name] += 1
            rename[n.name] = "BiasGelu"
            extra_inputs.setdefault(n.name, []).extend(
                _dims(t) for t in bias.inputs if t is not None and t.is_constant and t.known
            )
    for n in graph.nodes:  # x * Sigmoid(x) (SiLU / Swish) -> QuickGelu(alpha=1)
        sig = _silu_sigmoid(n, producer, users) if n.name not in folded else None
        if sig is None or sig.name in folded or sig.outputs[0].name in out_names:
            continue
        folded.add(sig.name)
        fused_count[n.name] = fused_count.get(n.name, 0) + 1
        rename[n.name] = "QuickGelu"
    for n in graph.nodes:
        if n.op_type != "MatMul" or n.name in folded:
            continue
        for t in n.inputs:
            p = producer.get(t.name) if t is not None else None
            if p is not None and p.op_type == "Transpose" and consumers.get(t.name, 0) == 1 and p.name not in folded:  # type: ignore[union-attr]
                folded.add(p.name)
                fused_count[n.name] = fused_count.get(n.name, 0) + 1
                rename[n.name] = "FusedMatMul"
        u = users.get(n.outputs[0].name, [])
        if (
            len(u) == 1
            and u[0].op_type in ("Mul", "Div")
            and any(t is not None and t.is_constant and t.known and t.numel == 1 for t in u[0].inputs)
        ):
            folded.add(u[0].name)
            fused_count[n.name] = fused_count.get(n.name, 0) + 1
            rename[n.name] = "FusedMatMul"
            final_out[n.name] = _known_shapes(u[0].outputs)


KERNEL_FEATURES: tuple[str, ...] = (
    *(f"cat_{c}" for c in CATEGORIES),
    "log_macs",
    "log_flops",
    "log_in_elems",
    "log_weight_elems",
    "log_out_elems",
    "log_bytes",
    "arith_intensity",
    "n_inputs",
    "fused_op",
    "conv_kernel",
    "conv_stride",
    "log_conv_cin",
    "log_conv_cout",
    "log_conv_groups",
    "log_conv_out_hw",
    "log_mm_m",
    "log_mm_k",
    "log_mm_n",
    "log_mm_batch",
    "out_rank",
    "log_last_dim",
    "log_rows",
    "blocked_layout",
    "channels_mod16",
    "act_relu",
    "act_clip",
    "act_sigmoid",
    "act_other",
    "elem_flops",
    "log_reuse_ms",
)


_KIDX: dict[str, int] = {k: i for i, k in enumerate(KERNEL_FEATURES)}
# Kernels whose weights are at least this big take ``log_reuse_ms``: the time between two
# uses of their weights (the model's latency; runs follow each other), during which the
# weights leave the core's caches. On this CPU (2 MiB L2 per core) a classifier Gemm
# (8, 1280) -> 1000 took 0.29-0.33 ms in 3-6 ms models and 0.7-1.7 ms in 25-58 ms ones;
# over four 20-minute data sets the weight-streaming rate of Gemms with >= 1 MB of weights
# fell with the model's latency (Spearman -0.80 to -0.89 at batch 8) more than with its
# bytes. A gate rather than a column for every kernel: a per-model value on every row lets
# the trees tell training families apart. On six data sets 1 MB gave the lowest held-out
# MAPE (batch 1 / 8, mean: 4.67 / 4.33 %; 0.5 MB 4.67 / 4.55, 1 MiB 4.92 / 4.33 -- it
# leaves out a 256 -> 1000 classifier, 1.02 MB --, 2 MB 5.10 / 4.58, none 5.08 / 4.82).
REUSE_MIN_WEIGHT_BYTES = 1_000_000
# A Conv reads its weights once per image (onnxruntime's CPU convolutions loop over the
# batch outside the weights): at batch N, weights that do not stay in the core's cache
# are streamed N times, and a kernel roofline that reads them once put such kernels 2x
# too fast. Batch-8 Convs of the kept calibrations with >= 1 MB of weights, where streaming
# them eight times at the measured bandwidth takes longer than the FLOPs at the peak (the
# late stages of wide networks at small resolutions, 494 training and 149 held-out
# kernels of seeds 331-491): measured / roofline median 2.30 (weights once) against 1.05
# (once per image). A 33 ms held-out ResNet-like at batch 8 (64 px, 2048 channels at 2 x 2)
# was 28.5 % too fast with the weights read once. So a Conv's ``log_bytes`` counts its
# weights once per image from this size on: the L2 of one core on the Xeon host (2 MiB).
# Ten kept calibrations (411-501), booster seeds 0 and 1, each refit scored on all ten's
# 156 references per batch size, within ±10 % at batch 1 / 8: weights once 77.1 / 82.4
# and 78.2 / 82.5 %, per image from 1 MB 82.0 / 82.4 and 81.7 / 82.7 %, from 2 MB 81.0 /
# 84.0 and 81.5 / 83.7 % (own references 82.1 / 87.2 and 81.4 / 87.9 -> 85.2 / 88.7 and
# 84.7 / 88.8 %), every Conv at batch > 1: 81.7 / 80.7 %.
WEIGHT_STREAM_MIN_BYTES = 2_000_000
_ACT_COL = {"Relu": "act_relu", "Clip": "act_clip", "Sigmoid": "act_sigmoid"}
# FLOPs per element of a standalone activation's function, roughly (max: 1; min and max: 2;
# exp, add, divide: 4; erf ~8 plus scale and multiply). Sizes alone do not tell a BiasGelu
# from a QuickGelu: above the largest BiasGelu of a calibration (8 x 196 x 1536), the trees
# took held-out ConvNeXt-like BiasGelus for SiLUs and predicted them 2.8x too fast.
_ELEM_FLOPS = {
    "Relu": 1.0,
    "LeakyRelu": 2.0,
    "Clip": 2.0,
    "HardSigmoid": 3.0,
    "Sigmoid": 4.0,
    "HardSwish": 5.0,
    "QuickGelu": 5.0,
    "Tanh": 6.0,
    "Erf": 8.0,
    "FastGelu": 9.0,
    "Gelu": 10.0,
    "BiasGelu": 11.0,
}
# onnxruntime kernels that stand for several graph nodes. Whether a kernel is fused is read
# from its op type only: a profile does not say how many nodes a kernel replaced, so a count
# would differ between training (profiles) and prediction (pseudo kernels).
_FUSED_OPS = frozenset({"BiasGelu", "Gelu", "FastGelu", "QuickGelu", "SkipLayerNormalization", "BiasSoftmax"})
_SPATIAL = frozenset({"conv", "conv_depthwise", "pool", "global_pool", "reorder"})
# columns holding log1p(max(v, 0)) of a raw count (applied to the whole matrix at once)
_KLOG_COLS = np.asarray([i for i, k in enumerate(KERNEL_FEATURES) if k.startswith("log_")], dtype=np.intp)
CATEGORY_COLUMN: dict[str, int] = {c: _KIDX[f"cat_{c}"] for c in CATEGORIES}  # category -> its one-hot column


def _kernel_raw_row(rec: KernelRecord, node: NodeResult | None, reuse_ms: float = 0.0) -> list[float]:
    """One kernel's features in :data:`KERNEL_FEATURES` order, ``log_*`` columns still raw."""
    ins = rec.input_shapes
    outs = rec.output_shapes
    prod = math.prod
    out0 = outs[0] if outs else ()
    out_elems = sum(prod(s) for s in outs)
    in_elems = sum(prod(s) for s in ins)
    row = [0.0] * len(KERNEL_FEATURES)
    ix = _KIDX
    macs = 0
    weight_elems = 0
    images = 1  # a Conv's batch: each image reads the weights again
    depthwise = False
    op = rec.op_type
    fused_prefix = op.startswith("Fused")
    base = op[5:] if fused_prefix else op
    if base == "Conv" and len(ins) >= 2 and len(ins[0]) >= 3 and len(ins[1]) == len(ins[0]):
        x, w = ins[0], ins[1]
        groups = max(1, x[1] // max(w[1], 1))
        depthwise = w[1] == 1 and groups > 1
        macs = prod(out0) * w[1] * prod(w[2:])
        weight_elems = prod(w)
        images = x[0]
        row[ix["conv_kernel"]] = float(w[2]) if len(w) > 2 else 1.0
        row[ix["conv_stride"]] = float(x[2] / out0[2]) if len(out0) > 2 and out0[2] else 1.0
        row[ix["log_conv_cin"]] = x[1]
        row[ix["log_conv_cout"]] = w[0]
        row[ix["log_conv_groups"]] = groups
        row[ix["log_conv_out_hw"]] = prod(out0[2:])
    elif base in ("MatMul", "Gemm") and ins and ins[0] and (len(ins) >= 2 or out0):
        a = ins[0]
        kdim = a[-1]
        if len(ins) >= 2 and len(ins[1]) >= 2:
            b = ins[1]
            n_ = b[0] if base == "Gemm" and b and len(b) == 2 and b[0] != kdim else b[-1]
        else:
            # onnxruntime's profile leaves out pre-packed constant weights (a Gemm's bias
            # stays): (K, N) from the shapes
            n_ = out0[-1]
            b = (kdim, n_)
            in_elems += kdim * n_
        macs = prod(out0) * kdim if out0 else prod(a[:-1]) * kdim * n_
        weight_elems = prod(b)
        if len(b) == 2:  # a 2-D right operand: one GEMM over every leading dim of a
            row[ix["log_mm_m"]] = prod(a[:-1])
            row[ix["log_mm_batch"]] = 1
        else:
            row[ix["log_mm_m"]] = a[-2] if len(a) >= 2 else 1
            row[ix["log_mm_batch"]] = prod(out0[:-2]) if len(out0) > 2 else 1
        row[ix["log_mm_k"]] = kdim
        row[ix["log_mm_n"]] = n_
    flops = 2 * macs + out_elems
    mem_bytes = 4 * (in_elems + out_elems)
    if node is not None:
        flops = max(flops, node.flops)
        mem_bytes = node.memory_access_bytes or mem_bytes
    if images > 1 and 4 * weight_elems >= WEIGHT_STREAM_MIN_BYTES:
        mem_bytes += (images - 1) * 4 * weight_elems  # each image streams the weights again
    cat = _CATEGORY.get(base, "other")
    if cat == "conv" and depthwise:
        cat = "conv_depthwise"
    row[CATEGORY_COLUMN[cat]] = 1.0
    row[ix["log_macs"]] = macs
    row[ix["log_flops"]] = flops
    row[ix["log_in_elems"]] = in_elems
    row[ix["log_weight_elems"]] = weight_elems
    row[ix["log_out_elems"]] = out_elems
    row[ix["log_bytes"]] = mem_bytes
    row[ix["arith_intensity"]] = flops / mem_bytes if mem_bytes else 0.0
    row[ix["n_inputs"]] = float(max(len(ins), 2 if base in ("MatMul", "Gemm") else 0))
    row[ix["fused_op"]] = float(fused_prefix or base in _FUSED_OPS)
    if cat == "activation":
        row[ix["elem_flops"]] = _ELEM_FLOPS.get(base, 3.0)
    else:
        # An activation's time follows its size and function; with rows and row length the trees
        # split on the layouts seen in training: ConvNeXt's (8, 40, 40, 192) BiasGelu took
        # as long as a transformer's (8, 196, 1536) one but was predicted 2.9x faster (held-out
        # ConvNeXt-like at batch 8 within ±10 %: 60 % with these columns, 80 % without).
        row[ix["log_last_dim"]] = out0[-1] if out0 else 0.0
        row[ix["log_rows"]] = out_elems // out0[-1] if out0 and out0[-1] else 0
    row[ix["blocked_layout"]] = float(rec.blocked)
    if 4 * weight_elems >= REUSE_MIN_WEIGHT_BYTES:
        row[ix["log_reuse_ms"]] = reuse_ms
    if rec.activation:  # folded into a Conv: Relu runs inside the conv kernel, others apart
        row[ix[_ACT_COL.get(rec.activation, "act_other")]] = 1.0
    if cat in _SPATIAL:  # NCHW layouts; elsewhere the rank says nothing the sizes do not
        row[ix["out_rank"]] = float(len(out0))
        row[ix["channels_mod16"]] = float(out0[1] % 16) if len(out0) == 4 else -1.0
    else:
        row[ix["channels_mod16"]] = -1.0
    return row


def kernel_matrix(
    recs: Sequence[KernelRecord],
    nodes: Sequence[NodeResult | None] | None = None,
    *,
    reuse_ms: Sequence[float] | np.ndarray | float = 0.0,
    dtype: Any = np.float32,
) -> np.ndarray:
    """Features of many kernels at once: a ``(len(recs), len(KERNEL_FEATURES))`` matrix.

    The same values as :func:`kernel_features` row by row (one implementation), with the
    ``log1p`` of the count columns taken on the whole matrix.
    """
    reuse = [float(reuse_ms)] * len(recs) if isinstance(reuse_ms, (int, float)) else list(reuse_ms)
    if len(reuse) != len(recs):
        raise ValueError(f"reuse_ms: {len(reuse)} values for {len(recs)} kernels")
    if nodes is None:
        rows = [_kernel_raw_row(r, None, t) for r, t in zip(recs, reuse, strict=True)]
    else:
        rows = [_kernel_raw_row(r, n, t) for r, n, t in zip(recs, nodes, reuse, strict=True)]
    m = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(KERNEL_FEATURES))
    m[:, _KLOG_COLS] = np.log1p(np.maximum(m[:, _KLOG_COLS], 0.0))
    return m.astype(dtype, copy=False)


def kernel_features(rec: KernelRecord, node: NodeResult | None = None) -> dict[str, float]:
    """Features of one kernel. ``node`` (the optimized graph's result of the same name) is optional."""
    row = kernel_matrix([rec], [node], dtype=np.float64)[0]
    return {k: float(v) for k, v in zip(KERNEL_FEATURES, row, strict=True)}


# --------------------------------------------------------------------------- graphs

GRAPH_FEATURES: tuple[str, ...] = (
    "log_flops",
    "log_macs",
    "log_memory_bytes",
    "log_activation_read_bytes",
    "log_weight_read_bytes",
    "log_write_bytes",
    "log_peak_activation_bytes",
    "log_params",
    "arith_intensity",
    "log_nodes",
    "depth",
    "max_width",
    "log_batch",
    "log_roofline_ms",
    "roofline_compute_fraction",
    "log_kernel_sum_ms",
    "log_n_kernels",
    *(f"n_{c}" for c in CATEGORIES),
    *(f"log_flops_{c}" for c in CATEGORIES),
    *(f"log_bytes_{c}" for c in CATEGORIES),
)


def _depthwise_nodes(graph: Graph | None) -> set[str]:
    if graph is None:
        return set()
    out = set()
    for n in graph.nodes:
        if n.op_type == "Conv" and n.attrs.get_int("group", 1) > 1:
            w = n.input(1)
            if w is not None and w.shape is not None and len(w.shape) > 1 and w.shape[1] == 1:
                out.add(n.name)
    return out


def graph_features(
    analysis: Analysis,
    *,
    graph: Graph | None = None,
    batch_size: int = 1,
    roofline_ms: float = 0.0,
    roofline_compute_fraction: float = 0.0,
    kernel_sum_ms: float = 0.0,
    n_kernels: int = 0,
) -> dict[str, float]:
    """Graph-level features of ``analysis`` (``graph`` adds the depthwise-conv category)."""
    dw = _depthwise_nodes(graph)
    f: dict[str, float] = dict.fromkeys(GRAPH_FEATURES, 0.0)
    counts: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    flops: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    nbytes: dict[str, float] = dict.fromkeys(CATEGORIES, 0.0)
    n_nodes = 0
    for n in analysis.nodes:
        if n.op_type in _NO_KERNEL:
            continue
        n_nodes += 1
        c = op_category(n.op_type, depthwise=n.name in dw)
        counts[c] += 1
        flops[c] += n.flops
        nbytes[c] += n.memory_access_bytes
    f.update(
        {
            "log_flops": _log(analysis.flops),
            "log_macs": _log(analysis.macs),
            "log_memory_bytes": _log(analysis.memory_access_bytes),
            "log_activation_read_bytes": _log(analysis.activation_read_bytes),
            "log_weight_read_bytes": _log(analysis.weight_read_bytes),
            "log_write_bytes": _log(analysis.write_bytes),
            "log_peak_activation_bytes": _log(analysis.peak_activation_bytes),
            "log_params": _log(analysis.params.trainable),
            "arith_intensity": analysis.arithmetic_intensity,
            "log_nodes": _log(n_nodes),
            "depth": float(analysis.depth),
            "max_width": float(analysis.max_width),
            "log_batch": _log(batch_size),
            "log_roofline_ms": _log(roofline_ms),
            "roofline_compute_fraction": roofline_compute_fraction,
            "log_kernel_sum_ms": _log(kernel_sum_ms),
            "log_n_kernels": _log(n_kernels),
        }
    )
    for c in CATEGORIES:
        f[f"n_{c}"] = counts[c]
        f[f"log_flops_{c}"] = _log(flops[c])
        f[f"log_bytes_{c}"] = _log(nbytes[c])
    return f


def to_matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str]) -> np.ndarray:
    """Rows of named features -> a float32 matrix in ``names`` order (missing names are 0)."""
    return np.asarray([[float(r.get(k, 0.0)) for k in names] for r in rows], dtype=np.float32).reshape(
        len(rows), len(names)
    )
