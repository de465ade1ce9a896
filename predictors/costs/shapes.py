"""Output shapes for nodes ONNX shape inference leaves unknown.

ONNX infers the standard ops in one pass over the graph, but stops at ops it has no
schema for (``com.microsoft.nchwc.Conv``, ``com.microsoft.FusedConv``, ...) and at
everything downstream of them. The graph builder calls :func:`infer` on such nodes in
topological order: a shape function registered here for the contrib op, otherwise
ONNX's own per-node inference (which now sees the upstream shapes).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper

from nascost.predictors.graph import Attributes, Node, TensorInfo

logger = logging.getLogger(__name__)

# (elem_type, shape) per output, None where unknown.
OutputShapes = list[tuple[int, tuple[int | None, ...]] | None]
ShapeFn = Callable[[Node], OutputShapes]

_SHAPE_FNS: dict[tuple[str, str], ShapeFn] = {}


def register_shape(*op_types: str, domain: str) -> Callable[[ShapeFn], ShapeFn]:
    """Register the output-shape function of contrib ops (duplicates are an error)."""

    def deco(fn: ShapeFn) -> ShapeFn:
        for op in op_types:
            key = (domain, op)
            if key in _SHAPE_FNS:
                raise ValueError(f"shape function for {key} registered twice")
            _SHAPE_FNS[key] = fn
        return fn

    return deco


def _onnx_node_inference(node: Node) -> OutputShapes | None:
    try:
        schema = onnx.defs.get_schema(node.op_type, node.opset or onnx.defs.onnx_opset_version(), node.domain)
    except onnx.defs.SchemaError:
        return None
    proto = helper.make_node(
        node.op_type,
        [t.name if t is not None else "" for t in node.inputs],
        [t.name for t in node.outputs],
        domain=node.domain,
    )
    proto.attribute.extend(node.attrs._attrs.values())
    types = {}
    data = {}
    for t in node.inputs:
        if t is None or t.shape is None:
            continue
        types[t.name] = helper.make_tensor_type_proto(t.elem_type, [d if d is not None else None for d in t.shape])
        if t.value is not None:
            with contextlib.suppress(Exception):  # a value we cannot re-encode is simply not passed
                data[t.name] = onnx.numpy_helper.from_array(t.value, t.name)
    try:
        out = onnx.shape_inference.infer_node_outputs(schema, proto, types, data)
    except Exception as e:  # ONNX raises several types; the node then stays unknown
        logger.debug("per-node inference failed for %s: %s", node.name, e)
        return None
    result: OutputShapes = []
    for o in node.outputs:
        tp = out.get(o.name)
        if tp is None or tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.HasField("shape"):
            result.append(None)
            continue
        dims = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tp.tensor_type.shape.dim)
        result.append((tp.tensor_type.elem_type, dims))
    return result


def infer(node: Node) -> OutputShapes | None:
    """Shapes of ``node``'s outputs, or None when nothing is known."""
    fn = _SHAPE_FNS.get((node.domain, node.op_type))
    if fn is not None:
        try:
            return fn(node)
        except Exception as e:  # a malformed contrib node stays unknown and is reported
            logger.debug("shape function failed for %s: %s", node.name, e)
            return None
    if node.domain == "" and node.op_type in _FAST_OPS:
        out = fast_infer(node)
        if out is not None and None not in out:
            return out
    return _onnx_node_inference(node)


# --------------------------------------------------------------------------- contrib ops
#
# onnx knows no schema for com.microsoft / com.microsoft.nchwc ops, so every contrib op an
# onnxruntime-optimized graph holds gets its output shapes here. Where a contrib op has a
# standard twin (FusedConv ~ Conv, FusedMatMul ~ MatMul, nchwc.MaxPool ~ MaxPool) the
# twin's ONNX inference is reused on a renamed node.

CONTRIB = "com.microsoft"
NCHWC = "com.microsoft.nchwc"
# onnxruntime's NCHWc block: 8 channels with AVX2, 16 with AVX-512. The graph builder sets
# the value a graph's nchwc weights show (see :func:`nchwc_block_from_weights`).
DEFAULT_NCHWC_BLOCK = 8
_nchwc_block: contextvars.ContextVar[int] = contextvars.ContextVar("nchwc_block", default=DEFAULT_NCHWC_BLOCK)


def set_nchwc_block(block: int) -> contextvars.Token[int]:
    """Set the NCHWc channel block for the shape functions (returns a reset token)."""
    return _nchwc_block.set(block)


def reset_nchwc_block(token: contextvars.Token[int]) -> None:
    _nchwc_block.reset(token)


def nchwc_block_from_weights(out_channels: Sequence[int]) -> int:
    """The block size onnxruntime used, from the output channels of its nchwc Conv weights
    (each padded to a multiple of the block): 16 when all are multiples of 16, else 8."""
    g = 0
    for c in out_channels:
        g = math.gcd(g, int(c))
    return 16 if g and g % 16 == 0 else DEFAULT_NCHWC_BLOCK


def _round_up(c: int, block: int) -> int:
    return (c + block - 1) // block * block


def _as_standard(node: Node, op_type: str, *, drop_attrs: Sequence[str] = (), n_inputs: int | None = None) -> OutputShapes | None:
    """ONNX's inference for ``op_type`` (ai.onnx) applied to ``node``'s inputs and attributes."""
    attrs = {k: v for k, v in node.attrs._attrs.items() if k not in drop_attrs}
    inputs = node.inputs if n_inputs is None else node.inputs[:n_inputs]
    elem = inputs[0].elem_type if inputs and inputs[0] is not None else onnx.TensorProto.FLOAT
    # the twin's type constraints may not admit the contrib op's (quantized) types
    as_float = tuple(
        None if t is None else TensorInfo(t.name, onnx.TensorProto.FLOAT, t.shape, value=t.value, symbolic=t.symbolic)
        for t in inputs
    )
    twin = Node(node.name, op_type, "", as_float, node.outputs[:1], Attributes(attrs.values()), {}, 0)
    out = _onnx_node_inference(twin)
    if out is None or not out or out[0] is None:
        return None
    return [(elem, out[0][1]), *([None] * (len(node.outputs) - 1))]


def _same_as_input(node: Node, i: int = 0) -> OutputShapes:
    x = node.inputs[i]
    if x is None or x.shape is None:
        return [None] * len(node.outputs)
    return [(x.elem_type, x.shape), *([None] * (len(node.outputs) - 1))]


def _float_type(node: Node) -> int:
    for t in node.inputs:
        if t is not None and t.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            return t.elem_type
    return onnx.TensorProto.FLOAT


@register_shape("Conv", domain=NCHWC)
@register_shape("FusedConv", domain=CONTRIB)
def _conv_like(node: Node) -> OutputShapes:
    out = _as_standard(node, "Conv", drop_attrs=("activation", "activation_params"), n_inputs=3)
    if out is None:
        return [None] * len(node.outputs)
    return out


@register_shape("MaxPool", "AveragePool", domain=NCHWC)
def _pool_like(node: Node) -> OutputShapes:
    return _as_standard(node, node.op_type) or [None] * len(node.outputs)


@register_shape("GlobalAveragePool", "GlobalMaxPool", domain=NCHWC)
def _global_pool(node: Node) -> OutputShapes:
    x = node.inputs[0]
    if x is None or x.shape is None:
        return [None]
    return [(x.elem_type, (*x.shape[:2], *([1] * (len(x.shape) - 2))))]


@register_shape("ReorderInput", domain=NCHWC)
def _reorder_input(node: Node) -> OutputShapes:
    """NCHW (or NHWC with ``channels_last``) -> NCHWc: channels padded to the block."""
    x = node.inputs[0]
    if x is None or x.shape is None or len(x.shape) < 3:
        return [None]
    if node.attrs.get_int("channels_last", 0):
        n, c, spatial = x.shape[0], x.shape[-1], x.shape[1:-1]
    else:
        n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    c_pad = _round_up(c, _nchwc_block.get()) if c is not None else None
    return [(x.elem_type, (n, c_pad, *spatial))]


@register_shape("ReorderOutput", domain=NCHWC)
def _reorder_output(node: Node) -> OutputShapes:
    """NCHWc -> NCHW (or NHWC) with the ``channels`` attribute's real channel count."""
    x = node.inputs[0]
    if x is None or x.shape is None or len(x.shape) < 3:
        return [None]
    c = node.attrs.get_int("channels", 0) or x.shape[1]
    if node.attrs.get_int("channels_last", 0):
        return [(x.elem_type, (x.shape[0], *x.shape[2:], c))]
    return [(x.elem_type, (x.shape[0], c, *x.shape[2:]))]


@register_shape("Upsample", domain=NCHWC)
def _nchwc_upsample(node: Node) -> OutputShapes:
    x = node.inputs[0]
    scales = node.attrs.get_ints("scales")
    if x is None or x.shape is None or len(scales) != len(x.shape):
        return [None]
    return [(x.elem_type, tuple(d * s if d is not None else None for d, s in zip(x.shape, scales, strict=True)))]


@register_shape(
    "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd", "BiasSoftmax", "RotaryEmbedding",
    "QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax", "LayerNormalization",
    "SimplifiedLayerNormalization", "SkipLayerNormalization", "SkipSimplifiedLayerNormalization",
    domain=CONTRIB,
)
def _elementwise_like(node: Node) -> OutputShapes:
    out = _same_as_input(node, 0)
    x = node.inputs[0]
    if node.op_type.startswith("Skip") and x is not None and x.shape is not None:
        stat = (*x.shape[:-1], 1)
        ftype = onnx.TensorProto.FLOAT
        # output, mean, inv_std_var, input_skip_bias_sum
        extra = [(ftype, stat), (ftype, stat), (x.elem_type, x.shape)]
        if node.op_type == "SkipSimplifiedLayerNormalization":
            extra = [(ftype, stat), (ftype, stat), (x.elem_type, x.shape)]
        out = [out[0], *extra[: len(node.outputs) - 1]]
    elif node.op_type in ("LayerNormalization", "SimplifiedLayerNormalization") and x is not None and x.shape is not None:
        axis = node.attrs.get_int("axis", -1)
        axis = axis + len(x.shape) if axis < 0 else axis
        stat = (*x.shape[:axis], *([1] * (len(x.shape) - axis)))
        out = [out[0], *[(onnx.TensorProto.FLOAT, stat)] * (len(node.outputs) - 1)]
    return out


@register_shape("SimplifiedLayerNormalization", domain="")
def _simplified_ln_onnx_domain(node: Node) -> OutputShapes:
    return _elementwise_like(node)


@register_shape("FusedMatMul", domain=CONTRIB)
def _fused_matmul(node: Node) -> OutputShapes:
    a, b = node.inputs[0], node.inputs[1]
    if a is None or b is None or a.shape is None or b.shape is None or len(a.shape) < 2 or len(b.shape) < 2:
        return _as_standard(node, "MatMul", drop_attrs=tuple(node.attrs)) or [None]
    if node.attrs.get_int("transBatchA", 0) or node.attrs.get_int("transBatchB", 0):
        return [None]
    sa = list(a.shape)
    sb = list(b.shape)
    if node.attrs.get_int("transA", 0):
        sa[-1], sa[-2] = sa[-2], sa[-1]
    if node.attrs.get_int("transB", 0):
        sb[-1], sb[-2] = sb[-2], sb[-1]
    batch_a, batch_b = sa[:-2], sb[:-2]
    rank = max(len(batch_a), len(batch_b))
    ones: list[int | None] = [1] * rank
    batch_a = ones[: rank - len(batch_a)] + batch_a
    batch_b = ones[: rank - len(batch_b)] + batch_b
    batch = [x if y == 1 else y for x, y in zip(batch_a, batch_b, strict=True)]
    return [(a.elem_type, (*batch, sa[-2], sb[-1]))]


@register_shape("FusedGemm", domain=CONTRIB)
def _fused_gemm(node: Node) -> OutputShapes:
    return _as_standard(node, "Gemm", drop_attrs=("activation", "activation_alpha", "activation_beta", "activation_gamma")) or [None]


def _matmul_n(node: Node, n: int | None) -> OutputShapes:
    a = node.inputs[0]
    if a is None or a.shape is None or n is None:
        return [None] * len(node.outputs)
    return [(_float_type(node), (*a.shape[:-1], n))]


@register_shape("MatMulNBits", domain=CONTRIB)
def _matmul_nbits(node: Node) -> OutputShapes:
    return _matmul_n(node, node.attrs.get_int("N", 0) or None)


@register_shape("DynamicQuantizeMatMul", "MatMulIntegerToFloat", domain=CONTRIB)
def _matmul_to_float(node: Node) -> OutputShapes:
    b = node.inputs[1]
    n = b.shape[-1] if b is not None and b.shape is not None else None
    out = _matmul_n(node, n)
    if out[0] is not None:
        scale = node.inputs[2]
        elem = scale.elem_type if scale is not None and scale.elem_type else onnx.TensorProto.FLOAT
        a = node.inputs[0]
        b_shape = b.shape if b is not None and b.shape is not None else ()
        if a is not None and a.shape is not None and len(b_shape) > 2:
            batch = a.shape[:-2] if len(a.shape) >= len(b_shape) else b_shape[:-2]
            return [(elem, (*batch, a.shape[-2], n))]
        return [(elem, out[0][1])]
    return out


@register_shape("Attention", domain=CONTRIB)
def _contrib_attention(node: Node) -> OutputShapes:
    x, w = node.inputs[0], node.inputs[1]
    if x is None or w is None or x.shape is None or w.shape is None:
        return [None] * len(node.outputs)
    sizes = node.attrs.get_ints("qkv_hidden_sizes")
    v_hidden = sizes[2] if len(sizes) == 3 else (w.shape[1] // 3 if w.shape[1] is not None else None)
    out: OutputShapes = [(x.elem_type, (x.shape[0], x.shape[1], v_hidden))]
    past = node.input(4)
    if len(node.outputs) > 1:
        heads = node.attrs.get_int("num_heads", 1)
        k_hidden = sizes[1] if len(sizes) == 3 else v_hidden
        past_len = past.shape[3] if past is not None and past.shape is not None and len(past.shape) == 5 else 0
        total = None if x.shape[1] is None or past_len is None else x.shape[1] + past_len
        head = k_hidden // heads if k_hidden is not None else None
        out.append((x.elem_type, (2, x.shape[0], heads, total, head)))
    return out


@register_shape("MultiHeadAttention", domain=CONTRIB)
def _mha(node: Node) -> OutputShapes:
    q = node.inputs[0]
    if q is None or q.shape is None:
        return [None] * len(node.outputs)
    heads = node.attrs.get_int("num_heads", 1)
    v = node.input(2)
    dv: int | None
    if len(q.shape) == 5:  # packed QKV (B, S, N, 3, H)
        n_heads, head_size = q.shape[2], q.shape[4]
        dv = n_heads * head_size if n_heads is not None and head_size is not None else None
    elif v is not None and v.shape is not None:
        if len(v.shape) == 3:
            dv = v.shape[2]
        else:
            v1, v3 = v.shape[1], v.shape[3]
            dv = v1 * v3 if v1 is not None and v3 is not None else None
    else:
        dv = q.shape[2]
    out: OutputShapes = [(q.elem_type, (q.shape[0], q.shape[1], dv))]
    k = node.input(1)
    past_k = node.input(6)
    for i, pk in ((1, past_k), (2, node.input(7))):
        if len(node.outputs) <= i:
            break
        if pk is None or pk.shape is None or k is None or k.shape is None or len(k.shape) != 3:
            out.append(None)
            continue
        head = pk.shape[3]
        out.append((q.elem_type, (pk.shape[0], heads, pk.shape[2] + k.shape[1] if pk.shape[2] and k.shape[1] else None, head)))
    return out


@register_shape("GroupQueryAttention", domain=CONTRIB)
def _gqa(node: Node) -> OutputShapes:
    q = node.inputs[0]
    if q is None or q.shape is None or len(q.shape) != 3:
        return [None] * len(node.outputs)
    heads = node.attrs.get_int("num_heads", 1)
    kv_heads = node.attrs.get_int("kv_num_heads", heads)
    k = node.input(1)
    hidden = q.shape[2]
    head: int | None
    if k is None and hidden is not None:  # packed QKV
        head = hidden // (heads + 2 * kv_heads)
    else:
        head = hidden // heads if hidden is not None else None
    out: OutputShapes = [(q.elem_type, (q.shape[0], q.shape[1], heads * head if head is not None else None))]
    past = node.input(3)
    total = _scalar(node.input(6))
    present_len: int | None
    if past is not None and past.shape is not None and past.shape[2] is not None:
        present_len = max(past.shape[2], total) if total is not None else past.shape[2] + (q.shape[1] or 0)
    else:
        present_len = total if total is not None else q.shape[1]
    for _ in range(len(node.outputs) - 1):
        out.append((q.elem_type, (q.shape[0], kv_heads, present_len, head)))
    return out


def _scalar(t: TensorInfo | None) -> int | None:
    if t is None or t.value is None or t.value.size != 1:
        return None
    return int(t.value.reshape(-1)[0])


@register_shape("EmbedLayerNormalization", domain=CONTRIB)
def _embed_ln(node: Node) -> OutputShapes:
    ids, word = node.inputs[0], node.input(2)
    if ids is None or ids.shape is None or word is None or word.shape is None or len(ids.shape) != 2:
        return [None] * len(node.outputs)
    et = word.elem_type
    out: OutputShapes = [(et, (ids.shape[0], ids.shape[1], word.shape[1]))]
    if len(node.outputs) > 1:
        out.append((onnx.TensorProto.INT32, (ids.shape[0],)))
    if len(node.outputs) > 2:
        out.append((et, (ids.shape[0], ids.shape[1], word.shape[1])))
    return out


@register_shape("QLinearAdd", "QLinearMul", domain=CONTRIB)
def _qlinear_binary(node: Node) -> OutputShapes:
    a, b = node.inputs[0], node.input(3)
    if a is None or b is None or a.shape is None or b.shape is None:
        return [None]
    rank = max(len(a.shape), len(b.shape))
    sa = (1,) * (rank - len(a.shape)) + tuple(a.shape)
    sb = (1,) * (rank - len(b.shape)) + tuple(b.shape)
    dims = tuple(x if y == 1 else y for x, y in zip(sa, sb, strict=True))
    return [(a.elem_type, dims)]


@register_shape("QLinearGlobalAveragePool", domain=CONTRIB)
def _qlinear_gap(node: Node) -> OutputShapes:
    x = node.inputs[0]
    if x is None or x.shape is None:
        return [None]
    if node.attrs.get_int("channels_last", 0):
        return [(x.elem_type, (x.shape[0], *([1] * (len(x.shape) - 2)), x.shape[-1]))]
    return [(x.elem_type, (*x.shape[:2], *([1] * (len(x.shape) - 2))))]


@register_shape("QLinearAveragePool", domain=CONTRIB)
def _qlinear_avgpool(node: Node) -> OutputShapes:
    if node.attrs.get_int("channels_last", 0):
        return [None]
    return _as_standard(node, "AveragePool", drop_attrs=("channels_last",), n_inputs=1) or [None]


@register_shape("QLinearConcat", domain=CONTRIB)
def _qlinear_concat(node: Node) -> OutputShapes:
    xs = [node.inputs[i] for i in range(2, len(node.inputs), 3)]
    if not xs or any(x is None or x.shape is None for x in xs):
        return [None]
    axis = node.attrs.get_int("axis", 0)
    first = xs[0]
    assert first is not None and first.shape is not None
    rank = len(first.shape)
    axis = axis + rank if axis < 0 else axis
    total = 0
    for x in xs:
        assert x is not None and x.shape is not None
        d = x.shape[axis]
        if d is None:
            return [None]
        total += d
    return [(first.elem_type, (*first.shape[:axis], total, *first.shape[axis + 1:]))]


# --------------------------------------------------------------------------- folding
#
# Exporters compute shapes at run time: torch's ``x.expand(x.shape[0], -1, -1)`` becomes
# Shape -> Gather -> Unsqueeze -> Concat -> Equal/Where -> Expand, ``d // h`` a Div and a
# Cast. ONNX's data propagation stops at several of these ops, so a dim that depends on a
# dynamic batch stays unknown downstream even when the request fixes the batch. Once the
# input shapes are concrete these small integer tensors are known: :func:`fold` evaluates
# them with numpy (never on weights: every input must be a small value already, except the
# tensor whose shape Shape/Size read), and the graph builder passes the values on, so
# that Reshape/Expand/... get concrete output shapes.

FOLD_MAX_ELEMENTS = 4096
FoldFn = Callable[[Node, list[np.ndarray]], list[np.ndarray]]
_FOLD_FNS: dict[str, FoldFn] = {}


def _folds(*op_types: str) -> Callable[[FoldFn], FoldFn]:
    def deco(fn: FoldFn) -> FoldFn:
        for op in op_types:
            _FOLD_FNS[op] = fn
        return fn

    return deco


def fold_ops() -> frozenset[str]:
    """ai.onnx op types :func:`fold` evaluates."""
    return frozenset(_FOLD_FNS)


def foldable(node: Node) -> bool:
    """Whether :func:`fold` has a rule for this node's op (ai.onnx only)."""
    return node.domain == "" and node.op_type in _FOLD_FNS


def fold(node: Node) -> list[np.ndarray] | None:
    """Values of ``node``'s outputs when every input is a known small integer or bool value
    (Shape/Size: a known shape); ``None`` when not foldable or too large."""
    fn = _FOLD_FNS.get(node.op_type) if node.domain == "" else None
    if fn is None:
        return None
    vals: list[np.ndarray] = []
    if node.op_type in ("Shape", "Size"):
        x = node.inputs[0] if node.inputs else None
        if x is None or not x.known:
            return None
        vals.append(np.asarray(x.dims, dtype=np.int64))
    else:
        for t in node.inputs:
            if t is None:
                vals.append(np.empty(0))  # omitted optional input: rules check sizes
                continue
            if t.value is None or t.value.dtype.kind not in "biu":  # integers and bools only
                return None
            vals.append(t.value)
    try:
        out = fn(node, vals)
    except Exception as e:  # malformed small tensors: left to shape inference
        logger.debug("folding %s failed: %s", node.name, e)
        return None
    if any(o.size > FOLD_MAX_ELEMENTS for o in out):
        return None
    return out


def _guard(numel: int) -> None:
    if numel > FOLD_MAX_ELEMENTS:
        raise ValueError(f"folded tensor of {numel} elements is too large")


@_folds("Shape")
def _f_shape(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    dims = v[0]
    start = node.attrs.get_int("start", 0)
    end = node.attrs.get_int("end", len(dims)) if "end" in node.attrs else len(dims)
    return [dims[start:end]]


@_folds("Size")
def _f_size(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    return [np.array(int(np.prod(v[0])), dtype=np.int64)]


@_folds("Identity")
def _f_identity(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    return [v[0]]


@_folds("Gather")
def _f_gather(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    return [np.take(v[0], v[1].astype(np.int64), axis=node.attrs.get_int("axis", 0))]


@_folds("Concat")
def _f_concat(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    return [np.concatenate([x for x in v], axis=node.attrs.get_int("axis", 0))]


def _axes(node: Node, v: list[np.ndarray], i: int) -> tuple[int, ...] | None:
    if len(v) > i and v[i].size:
        return tuple(int(a) for a in v[i].reshape(-1))
    if "axes" in node.attrs:
        return node.attrs.get_ints("axes")
    return None


@_folds("Unsqueeze")
def _f_unsqueeze(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    axes = _axes(node, v, 1) or ()
    rank = v[0].ndim + len(axes)
    out = v[0]
    for a in sorted(a + rank if a < 0 else a for a in axes):
        out = np.expand_dims(out, a)
    return [out]


@_folds("Squeeze")
def _f_squeeze(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    axes = _axes(node, v, 1)
    return [np.squeeze(v[0]) if axes is None else np.squeeze(v[0], axis=axes)]


@_folds("Slice")
def _f_slice(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    x = v[0]
    starts, ends = v[1].reshape(-1), v[2].reshape(-1)
    axes = v[3].reshape(-1) if len(v) > 3 and v[3].size else np.arange(len(starts))
    steps = v[4].reshape(-1) if len(v) > 4 and v[4].size else np.ones(len(starts), dtype=np.int64)
    index: list[slice] = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = int(a) + x.ndim if a < 0 else int(a)
        index[a] = slice(int(s), int(e), int(st))  # numpy clamps out-of-range ends like ONNX
    return [x[tuple(index)]]


@_folds("Cast")
def _f_cast(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    return [v[0].astype(helper.tensor_dtype_to_np_dtype(node.attrs.get_int("to", onnx.TensorProto.FLOAT)))]


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        q = np.abs(a) // np.abs(b)  # ONNX integer Div truncates toward zero
        return (q * np.sign(a) * np.sign(b)).astype(np.result_type(a, b))
    return np.asarray(a / b, dtype=np.result_type(a, b))


_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _int_div,
    "Equal": np.equal, "Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
    "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or,
    "Max": np.maximum, "Min": np.minimum, "Mod": np.mod,
}


@_folds(*_BINARY)
def _f_binary(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    fn = _BINARY[node.op_type]
    out = v[0]
    _guard(int(np.prod(np.broadcast_shapes(*(x.shape for x in v)))))
    for x in v[1:]:  # Max/Min are variadic
        out = fn(out, x)
    dtype = np.bool_ if node.op_type in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or") \
        else v[0].dtype
    return [np.asarray(out).astype(dtype)]


_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Neg": np.negative, "Abs": np.abs, "Not": np.logical_not, "Floor": np.floor, "Ceil": np.ceil,
    "Sqrt": np.sqrt, "Reciprocal": np.reciprocal,
}


@_folds(*_UNARY)
def _f_unary(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(_UNARY[node.op_type](v[0])).astype(v[0].dtype)]


@_folds("Where")
def _f_where(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    _guard(int(np.prod(np.broadcast_shapes(*(x.shape for x in v)))))
    return [np.where(v[0].astype(bool), v[1], v[2])]


@_folds("ConstantOfShape")
def _f_constant_of_shape(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    shape = tuple(int(d) for d in v[0].reshape(-1))
    _guard(math.prod(shape))
    fill = node.attrs.get("value")
    value = onnx.numpy_helper.to_array(fill).reshape(-1) if fill is not None else np.zeros(1, np.float32)
    return [np.full(shape, value[0], dtype=value.dtype)]


@_folds("Range")
def _f_range(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    start, limit, delta = (x.reshape(-1)[0] for x in v[:3])
    _guard(max(int(np.ceil((limit - start) / delta)), 0))
    return [np.arange(start, limit, delta, dtype=v[0].dtype)]


@_folds("Reshape")
def _f_reshape(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    x, shape = v[0], [int(d) for d in v[1].reshape(-1)]
    if not node.attrs.get_int("allowzero", 0):
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return [x.reshape(shape)]


@_folds("Expand")
def _f_expand(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    shape = np.broadcast_shapes(v[0].shape, tuple(int(d) for d in v[1].reshape(-1)))
    _guard(math.prod(shape))
    return [np.broadcast_to(v[0], shape).copy()]


@_folds("ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin")
def _f_reduce(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    axes = _axes(node, v, 1)
    keep = bool(node.attrs.get_int("keepdims", 1))
    if axes is None and node.attrs.get_int("noop_with_empty_axes", 0):
        return [v[0]]
    fns: dict[str, Callable[..., Any]] = {"ReduceProd": np.prod, "ReduceSum": np.sum, "ReduceMax": np.max,
                                          "ReduceMin": np.min}
    fn = fns[node.op_type]
    return [np.asarray(fn(v[0], axis=axes, keepdims=keep)).astype(v[0].dtype)]


@_folds("Tile")
def _f_tile(node: Node, v: list[np.ndarray]) -> list[np.ndarray]:
    reps = tuple(int(r) for r in v[1].reshape(-1))
    _guard(v[0].size * math.prod(reps))
    return [np.tile(v[0], reps)]


# --------------------------------------------------------------------------- fast shapes
#
# Output shapes of the common ai.onnx ops, computed here from concrete input shapes. ONNX's
# whole-graph inference costs a protobuf round trip of the graph (~1 ms for ResNet-50) and
# reading its answer back field by field costs more; these functions let the graph builder
# skip it for graphs made only of these ops (see ``graph.FAST_SHAPE_OPS``). Each returns
# ``None`` where it is not sure (an unusual attribute, an unknown dim, a missing value): the
# caller then asks ONNX's per-node inference. The test suite checks them against ONNX's
# inference on every golden graph and every torch-exported network.

_T = onnx.TensorProto
_BOOL_OUT = frozenset({"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not",
                       "IsNaN", "IsInf"})
FAST_SAME = frozenset({
    "Relu", "Sigmoid", "Tanh", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Softmax", "LogSoftmax", "Gelu",
    "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Reciprocal", "Floor",
    "Ceil", "Round", "Sin", "Cos", "Identity", "Mish", "Clip", "Not", "Sign", "ThresholdedRelu", "Shrink", "IsNaN",
    "IsInf", "BatchNormalization", "InstanceNormalization", "LpNormalization", "Hardmax", "PRelu",
})
FAST_BROADCAST = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Less",
                            "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Mod", "Where"})
_FastFn = Callable[[Node], "OutputShapes | None"]
_FAST: dict[str, _FastFn] = {}


def _fast(*op_types: str) -> Callable[[_FastFn], _FastFn]:
    def deco(fn: _FastFn) -> _FastFn:
        for op in op_types:
            _FAST[op] = fn
        return fn

    return deco


def _dims(t: TensorInfo | None) -> tuple[int, ...] | None:
    if t is None or t.shape is None or None in t.shape:
        return None
    return t.shape  # type: ignore[return-value]


def _ints(t: TensorInfo | None) -> list[int] | None:
    if t is None or t.value is None:
        return None
    return [int(v) for v in t.value.reshape(-1)]


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        d = 1
        for s in shapes:
            k = i - rank + len(s)
            if k < 0:
                continue
            v = s[k]
            if v == d or v == 1:
                continue
            if d != 1:
                return None  # not broadcastable: leave it to ONNX (which reports it)
            d = v
        out.append(d)
    return tuple(out)


def fast_infer(node: Node) -> OutputShapes | None:
    """Output (elem_type, shape) of a common ai.onnx op from concrete inputs, else None."""
    if node.domain != "":
        return None
    op = node.op_type
    if op in FAST_SAME:
        x = node.inputs[0] if node.inputs else None
        s = _dims(x)
        if s is None or len(node.outputs) != 1:
            return None
        assert x is not None
        return [(_T.BOOL if op in _BOOL_OUT else x.elem_type, s)]
    if op in FAST_BROADCAST:
        ins = [t for t in node.inputs if t is not None]
        shapes_ = [_dims(t) for t in ins]
        if not ins or any(s is None for s in shapes_) or len(node.outputs) != 1:
            return None
        b = _broadcast(*shapes_)  # type: ignore[arg-type]
        if b is None:
            return None
        elem = _T.BOOL if op in _BOOL_OUT else (ins[1].elem_type if op == "Where" else ins[0].elem_type)
        return [(elem, b)]
    fn = _FAST.get(op)
    if fn is None:
        return None
    return fn(node)


@_fast("Cast")
def _s_cast(node: Node) -> OutputShapes | None:
    s = _dims(node.inputs[0])
    return None if s is None else [(node.attrs.get_int("to", 0), s)]


@_fast("Dropout")
def _s_dropout(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    s = _dims(x)
    if s is None or x is None:
        return None
    out: OutputShapes = [(x.elem_type, s), (_T.BOOL, s)]
    return out[: len(node.outputs)]


@_fast("LayerNormalization")
def _s_layer_norm(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    s = _dims(x)
    if s is None or x is None:
        return None
    axis = node.attrs.get_int("axis", -1)
    axis = axis + len(s) if axis < 0 else axis
    stat = (*s[:axis], *([1] * (len(s) - axis)))
    stash = node.attrs.get_int("stash_type", _T.FLOAT)
    out: OutputShapes = [(x.elem_type, s), (stash, stat), (stash, stat)]
    return out[: len(node.outputs)]


@_fast("MatMul")
def _s_matmul(node: Node) -> OutputShapes | None:
    a, b = node.inputs[0], node.inputs[1]
    sa, sb = _dims(a), _dims(b)
    if sa is None or sb is None or a is None or not sa or not sb:
        return None
    ma = (1, *sa) if len(sa) == 1 else sa
    mb = (*sb, 1) if len(sb) == 1 else sb
    if ma[-1] != mb[-2]:
        return None
    batch = _broadcast(ma[:-2], mb[:-2])
    if batch is None:
        return None
    out = [*batch]
    if len(sa) > 1:
        out.append(ma[-2])
    if len(sb) > 1:
        out.append(mb[-1])
    return [(a.elem_type, tuple(out))]


@_fast("Gemm")
def _s_gemm(node: Node) -> OutputShapes | None:
    a, b = node.inputs[0], node.inputs[1]
    sa, sb = _dims(a), _dims(b)
    if sa is None or sb is None or a is None or len(sa) != 2 or len(sb) != 2:
        return None
    m = sa[1] if node.attrs.get_int("transA", 0) else sa[0]
    n = sb[0] if node.attrs.get_int("transB", 0) else sb[1]
    return [(a.elem_type, (m, n))]


def _spatial(node: Node, x: tuple[int, ...], kernel: Sequence[int], *, ceil: bool = False) -> tuple[int, ...] | None:
    n = len(kernel)
    auto_pad = node.attrs.get_string("auto_pad", "NOTSET")
    strides = node.attrs.get_ints("strides") or (1,) * n
    dil = node.attrs.get_ints("dilations") or (1,) * n
    pads = node.attrs.get_ints("pads") or (0,) * (2 * n)
    if len(strides) != n or len(dil) != n or len(pads) != 2 * n or len(x) != n + 2 or ceil:
        return None
    out = []
    for i in range(n):
        size = x[2 + i]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(-(-size // strides[i]))
            continue
        p = 0 if auto_pad == "VALID" else pads[i] + pads[i + n]
        if auto_pad not in ("NOTSET", "VALID"):
            return None
        eff = dil[i] * (kernel[i] - 1) + 1
        o = (size + p - eff) // strides[i] + 1
        if o < 1:
            return None
        out.append(o)
    return tuple(out)


@_fast("Conv")
def _s_conv(node: Node) -> OutputShapes | None:
    x, w = node.inputs[0], node.inputs[1]
    sx, sw = _dims(x), _dims(w)
    if sx is None or sw is None or x is None or len(sw) != len(sx):
        return None
    kernel = node.attrs.get_ints("kernel_shape") or sw[2:]
    sp = _spatial(node, sx, kernel)
    return None if sp is None else [(x.elem_type, (sx[0], sw[0], *sp))]


@_fast("MaxPool", "AveragePool", "LpPool")
def _s_pool(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    kernel = node.attrs.get_ints("kernel_shape")
    if sx is None or x is None or not kernel:
        return None
    sp = _spatial(node, sx, kernel, ceil=bool(node.attrs.get_int("ceil_mode", 0)))
    if sp is None:
        return None
    shape = (sx[0], sx[1], *sp)
    out: OutputShapes = [(x.elem_type, shape), (_T.INT64, shape)]
    return out[: len(node.outputs)]


@_fast("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def _s_global_pool(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    if sx is None or x is None or len(sx) < 2:
        return None
    return [(x.elem_type, (*sx[:2], *([1] * (len(sx) - 2))))]


@_fast("Flatten")
def _s_flatten(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    if sx is None or x is None:
        return None
    axis = node.attrs.get_int("axis", 1)
    axis = axis + len(sx) if axis < 0 else axis
    return [(x.elem_type, (math.prod(sx[:axis]), math.prod(sx[axis:])))]


@_fast("Reshape")
def _s_reshape(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx, target = _dims(x), _ints(node.input(1))
    if sx is None or x is None or target is None:
        return None
    allowzero = node.attrs.get_int("allowzero", 0)
    out = [sx[i] if d == 0 and not allowzero and i < len(sx) else d for i, d in enumerate(target)]
    if out.count(-1) > 1 or any(d < -1 for d in out):
        return None
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or math.prod(sx) % known:
            return None
        out[out.index(-1)] = math.prod(sx) // known
    if math.prod(out) != math.prod(sx):
        return None
    return [(x.elem_type, tuple(out))]


@_fast("Transpose")
def _s_transpose(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    if sx is None or x is None:
        return None
    perm = node.attrs.get_ints("perm") or tuple(range(len(sx) - 1, -1, -1))
    if sorted(perm) != list(range(len(sx))):
        return None
    return [(x.elem_type, tuple(sx[p] for p in perm))]


@_fast("Concat")
def _s_concat(node: Node) -> OutputShapes | None:
    shapes_ = [_dims(t) for t in node.inputs]
    first = node.inputs[0] if node.inputs else None
    if not shapes_ or first is None or any(s is None for s in shapes_):
        return None
    s0 = shapes_[0]
    assert s0 is not None
    axis = node.attrs.get_int("axis", 0)
    axis = axis + len(s0) if axis < 0 else axis
    total = 0
    for s in shapes_:
        assert s is not None
        if len(s) != len(s0) or s[:axis] != s0[:axis] or s[axis + 1:] != s0[axis + 1:]:
            return None
        total += s[axis]
    return [(first.elem_type, (*s0[:axis], total, *s0[axis + 1:]))]


def _axes_of(node: Node, i: int) -> tuple[int, ...] | bool | None:
    """Axes from input ``i`` (a known value) or the ``axes`` attribute; None when given by
    an input whose value is unknown; False when not given at all."""
    t = node.input(i)
    if t is not None:
        vals = _ints(t)
        return None if vals is None else tuple(vals)
    if "axes" in node.attrs:
        return node.attrs.get_ints("axes")
    return False


@_fast("Squeeze")
def _s_squeeze(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    axes = _axes_of(node, 1)
    if sx is None or x is None or axes is None:
        return None
    if axes is False:
        return [(x.elem_type, tuple(d for d in sx if d != 1))]
    assert not isinstance(axes, bool)
    norm = {a + len(sx) if a < 0 else a for a in axes}
    if any(sx[a] != 1 for a in norm if 0 <= a < len(sx)):
        return None
    return [(x.elem_type, tuple(d for i, d in enumerate(sx) if i not in norm))]


@_fast("Unsqueeze")
def _s_unsqueeze(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    axes = _axes_of(node, 1)
    if sx is None or x is None or axes is None or axes is False:
        return None
    assert not isinstance(axes, bool)
    rank = len(sx) + len(axes)
    norm = sorted(a + rank if a < 0 else a for a in axes)
    out = list(sx)
    for a in norm:
        out.insert(a, 1)
    return [(x.elem_type, tuple(out))]


@_fast("Gather")
def _s_gather(node: Node) -> OutputShapes | None:
    x, idx = node.inputs[0], node.inputs[1]
    sx, si = _dims(x), _dims(idx)
    if sx is None or si is None or x is None or not sx:
        return None
    axis = node.attrs.get_int("axis", 0)
    axis = axis + len(sx) if axis < 0 else axis
    return [(x.elem_type, (*sx[:axis], *si, *sx[axis + 1:]))]


@_fast("Split")
def _s_split(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    if sx is None or x is None:
        return None
    axis = node.attrs.get_int("axis", 0)
    axis = axis + len(sx) if axis < 0 else axis
    n = len(node.outputs)
    sizes: list[int] | None
    if node.input(1) is not None:
        sizes = _ints(node.input(1))
    elif "split" in node.attrs:
        sizes = list(node.attrs.get_ints("split"))
    elif sx[axis] % n == 0:
        sizes = [sx[axis] // n] * n
    else:
        return None  # uneven num_outputs split: ONNX's rule
    if sizes is None or len(sizes) != n or sum(sizes) != sx[axis]:
        return None
    return [(x.elem_type, (*sx[:axis], s, *sx[axis + 1:])) for s in sizes]


@_fast("Slice")
def _s_slice(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    starts, ends = _ints(node.input(1)), _ints(node.input(2))
    if sx is None or x is None or starts is None or ends is None:
        return None
    axes = _ints(node.input(3)) if node.input(3) is not None else list(range(len(starts)))
    steps = _ints(node.input(4)) if node.input(4) is not None else [1] * len(starts)
    if axes is None or steps is None or not len(starts) == len(ends) == len(axes) == len(steps) or 0 in steps:
        return None
    out = list(sx)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a = a + len(sx) if a < 0 else a
        out[a] = len(range(sx[a])[slice(s, e, st)])
    return [(x.elem_type, tuple(out))]


@_fast("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
       "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
def _s_reduce(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx = _dims(x)
    axes = _axes_of(node, 1)
    if sx is None or x is None or axes is None:
        return None
    keep = node.attrs.get_int("keepdims", 1)
    if axes is False or axes == ():
        if node.attrs.get_int("noop_with_empty_axes", 0):
            return [(x.elem_type, sx)]
        norm = set(range(len(sx)))
    else:
        assert not isinstance(axes, bool)
        norm = {a + len(sx) if a < 0 else a for a in axes}
    out = tuple(1 if i in norm else d for i, d in enumerate(sx) if keep or i not in norm)
    return [(x.elem_type, out)]


@_fast("Expand")
def _s_expand(node: Node) -> OutputShapes | None:
    x = node.inputs[0]
    sx, target = _dims(x), _ints(node.input(1))
    if sx is None or x is None or target is None:
        return None
    b = _broadcast(sx, tuple(target))
    return None if b is None else [(x.elem_type, b)]


@_fast("ConstantOfShape")
def _s_constant_of_shape(node: Node) -> OutputShapes | None:
    target = _ints(node.input(0))
    if target is None:
        return None
    elem: int = _T.FLOAT
    if "value" in node.attrs:
        elem = node.attrs._attrs["value"].t.data_type
    return [(elem, tuple(target))]


@_fast("Constant")
def _s_constant(node: Node) -> OutputShapes | None:
    attrs = node.attrs._attrs
    if "value" in attrs:
        t = attrs["value"].t
        return [(t.data_type, tuple(int(d) for d in t.dims))]
    for key, elem, scalar in (("value_int", _T.INT64, True), ("value_ints", _T.INT64, False),
                              ("value_float", _T.FLOAT, True), ("value_floats", _T.FLOAT, False)):
        if key in attrs:
            return [(elem, () if scalar else (len(node.attrs.get_ints(key) if elem == _T.INT64
                                                    else node.attrs.get_floats(key)),))]
    return None


def fast_ops() -> frozenset[str]:
    """ai.onnx op types :func:`fast_infer` knows."""
    return FAST_SAME | FAST_BROADCAST | frozenset(_FAST)


_FAST_OPS = fast_ops()
