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
    batch_a = [1] * (rank - len(batch_a)) + batch_a
    batch_b = [1] * (rank - len(batch_b)) + batch_b
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
    if len(q.shape) == 5:  # packed QKV (B, S, N, 3, H)
        dv = q.shape[2] * q.shape[4] if None not in q.shape else None
    elif v is not None and v.shape is not None:
        dv = v.shape[2] if len(v.shape) == 3 else (v.shape[1] * v.shape[3] if None not in v.shape else None)
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
