"""onnxruntime's contrib ops (``com.microsoft``, ``com.microsoft.nchwc``): the fused and
quantized ops its graph optimizer emits, counted by the same convention as their ai.onnx
parts (a fused op costs what its unfused subgraph costs; fusion saves memory traffic, not
arithmetic).

Semantics follow onnxruntime's ``docs/ContribOperators.md``. Per-element costs reuse the
ai.onnx table (:mod:`~nascost.predictors.costs.ops_elementwise`): Relu 1, Sigmoid 3,
Tanh 1, LeakyRelu 2, Clip 2, HardSigmoid 4, erf-Gelu 5, tanh-Gelu 9.

* **FusedConv / nchwc.Conv**: Conv MACs (``numel(Y) * C_in/group * prod(kernel)``); bias 1,
  ``Sum`` input 1 and the activation's cost per output element. nchwc tensors are
  channel-padded to the block (8 or 16), so their MACs count the padded channels: what the
  kernel computes.
* **FusedMatMul**: MatMul MACs (after ``transA``/``transB``); ``alpha != 1`` adds 1 per
  output. **FusedGemm**: Gemm, plus the activation per output.
* **Attention** (packed-weight BERT attention): input projection ``B S Hin (Dq+Dk+Dv)``
  MACs plus bias, then per score (``B N S T``, ``T = past + S``) ``Dq/N + Dv/N`` MACs,
  scale 1, mask 1 (mask, unidirectional or bias input), softmax 5.
  **MultiHeadAttention** / **GroupQueryAttention**: the score part only (projections are
  separate MatMuls); bias inputs 1 per element; GQA's rotary 3 per rotated element.
* **SkipLayerNormalization**: skip add 1 (+ bias 1) per element, then LayerNormalization
  (5 per element, +1 for gamma, +1 for beta, 4 per row). **SkipSimplified** /
  **SimplifiedLayerNormalization**: the add(s), then RMS normalization (4 per element, 3
  per row).
* **Gelu** 5, **FastGelu** 9 (+1 with bias), **BiasGelu** 6, **QuickGelu**
  ``x * sigmoid(alpha x)`` 5, **BiasAdd** 2, **BiasSoftmax** 1 + 5 per element.
* **EmbedLayerNormalization**: gathers are free (memory: only the rows read), adds 1 per
  extra table, then LayerNormalization with gamma and beta (7 per element, 4 per row).
* **MatMulNBits**: ``M N K`` MACs; dequantization of the weight ``2 N K`` (subtract zero
  point, scale) per call; bias 1 per output. **DynamicQuantizeMatMul**: MACs, A's dynamic
  quantization ``7 numel(A) + 6`` (as DynamicQuantizeLinear), output rescale 1 per output,
  bias 1. **MatMulIntegerToFloat**: MACs, zero points 1 per operand element, rescale 1
  per output, bias 1.
* **QLinear* elementwise/pooling** (QLinearAdd, QLinearMul, QLinearSigmoid,
  QLinearLeakyRelu, QLinearSoftmax, QLinearGlobalAveragePool, QLinearAveragePool,
  QLinearConcat): dequantize each input element 2, the float op as in ai.onnx, requantize
  each output element 5 (as QLinearConv).
* **RotaryEmbedding**: 3 per rotated element (as ai.onnx RotaryEmbedding).
* **nchwc pooling** as ai.onnx pooling; **ReorderInput/ReorderOutput** copy (free, memory
  only); **nchwc.Upsample** nearest free, linear 3 per output element per spatial axis.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, prod
from nascost.predictors.costs.ops_linear import gemm
from nascost.predictors.costs.ops_pool import global_pool, pool
from nascost.predictors.costs.registry import OpCost, register_cost, register_free
from nascost.predictors.graph import Node

CONTRIB = "com.microsoft"
NCHWC = "com.microsoft.nchwc"

ACTIVATION_FLOPS: dict[str, int] = {
    "": 0, "Relu": 1, "Sigmoid": 3, "Tanh": 1, "LeakyRelu": 2, "Clip": 2, "HardSigmoid": 4,
}
SOFTMAX_FLOPS_PER_ELEMENT = 5
ROTARY_FLOPS_PER_ELEMENT = 3
DEQUANTIZE_FLOPS_PER_ELEMENT = 2
REQUANTIZE_FLOPS_PER_ELEMENT = 5
LAYER_NORM_FLOPS_PER_ELEMENT = 5
LAYER_NORM_FLOPS_PER_ROW = 4
RMS_NORM_FLOPS_PER_ELEMENT = 4
RMS_NORM_FLOPS_PER_ROW = 3
GELU_ERF_FLOPS = 5
GELU_TANH_FLOPS = 9
QUICK_GELU_FLOPS = 5


def _activation(node: Node) -> int:
    name = node.attrs.get_string("activation", "")
    if name not in ACTIVATION_FLOPS:
        raise ValueError(f"unknown fused activation {name!r}")
    return ACTIVATION_FLOPS[name]


# --------------------------------------------------------------------------- conv / matmul


@register_cost("FusedConv", domain=CONTRIB)
@register_cost("Conv", domain=NCHWC)
def fused_conv(node: Node) -> OpCost:
    """Conv MACs; bias, Sum input and activation per output element."""
    w = need(node, 1).dims
    y = node.out(0).numel
    macs = y * prod(w[1:])
    per = _activation(node)
    if node.input(2) is not None:
        per += 1
    if node.input(3) is not None:
        per += 1
    return OpCost(macs=macs, flops=per * y, torchvision=True, sparse_input=1)


@register_cost("FusedMatMul", domain=CONTRIB)
def fused_matmul(node: Node) -> OpCost:
    """``alpha * op(A) op(B)``: ``numel(Y) * K`` MACs (+ ``numel(Y)`` when alpha != 1)."""
    a = need(node, 0).dims
    if node.attrs.get_int("transBatchA", 0):
        raise ValueError("FusedMatMul with transBatchA is not supported")
    k = a[-2] if node.attrs.get_int("transA", 0) and len(a) >= 2 else a[-1]
    y = node.out(0).numel
    flops = y if node.attrs.get_float("alpha", 1.0) != 1.0 else 0
    weight = 1 if node.input(1) is not None and node.inputs[1] is not None and node.inputs[1].is_weight else None
    return OpCost(macs=y * k, flops=flops, torchvision=True, sparse_input=weight)


@register_cost("FusedGemm", domain=CONTRIB)
def fused_gemm(node: Node) -> OpCost:
    base = gemm(node)
    return OpCost(
        macs=base.macs,
        flops=base.flops + _activation(node) * node.out(0).numel,
        torchvision=True,
        sparse_input=base.sparse_input,
    )


# --------------------------------------------------------------------------- attention


def _scores_cost(scores: int, masked: bool) -> int:
    return scores * (1 + (1 if masked else 0) + SOFTMAX_FLOPS_PER_ELEMENT)


@register_cost("Attention", domain=CONTRIB)
def contrib_attention(node: Node) -> OpCost:
    """Projection ``B S Hin (Dq+Dk+Dv)`` + scores ``B N S T (Dq+Dv)/N`` MACs."""
    b, s, hin = need(node, 0).dims
    w = need(node, 1).dims
    heads = node.attrs.get_int("num_heads", 0)
    if heads <= 0:
        raise ValueError("Attention needs num_heads")
    sizes = node.attrs.get_ints("qkv_hidden_sizes")
    dq, dk, dv = sizes if len(sizes) == 3 else (w[1] // 3,) * 3
    if dq != dk:
        raise ValueError(f"Attention q hidden {dq} differs from k hidden {dk}")
    past = node.input(4)
    total = s + (past.dims[3] if past is not None else 0)
    proj = b * s * hin * (dq + dk + dv)
    scores = b * heads * s * total
    macs = proj + scores * (dq + dv) // heads
    flops = b * s * (dq + dk + dv) if node.input(2) is not None else 0
    masked = node.input(3) is not None or node.attrs.get_int("unidirectional", 0) == 1 or node.input(5) is not None
    flops += _scores_cost(scores, masked)
    return OpCost(macs=macs, flops=flops, torchvision=True, sparse_input=1)


@register_cost("MultiHeadAttention", domain=CONTRIB)
def multi_head_attention(node: Node) -> OpCost:
    """Scores ``B N S T`` with ``T = past + kv length``; ``(Dq + Dv) / N`` MACs each."""
    heads = node.attrs.get_int("num_heads", 0)
    if heads <= 0:
        raise ValueError("MultiHeadAttention needs num_heads")
    q = need(node, 0).dims
    k = node.input(1)
    v = node.input(2)
    if len(q) == 5:  # packed (B, S, N, 3, H)
        b, s, _, _, head = q
        kv_len, head_v = s, head
    else:
        b, s, dq = q
        head = dq // heads
        if k is None:
            raise ValueError("MultiHeadAttention without key needs packed 5-D query")
        kd = k.dims
        if len(kd) == 5:  # packed KV (B, L, N, 2, H)
            kv_len, head_v = kd[1], kd[4]
        elif len(kd) == 4:  # (B, N, L, H), already projected
            kv_len = kd[2]
            head_v = need(node, 2).dims[3]
        else:
            kv_len = kd[1]
            head_v = need(node, 2).dims[2] // heads if v is not None else head
    past = node.input(6)
    total = kv_len + (past.dims[2] if past is not None else 0)
    scores = b * heads * s * total
    macs = scores * (head + head_v)
    bias = node.input(3)
    flops = b * s * need(node, 3).dims[0] if bias is not None else 0
    masked = node.input(4) is not None or node.input(5) is not None or node.attrs.get_int("unidirectional", 0) == 1
    flops += _scores_cost(scores, masked)
    return OpCost(macs=macs, flops=flops, torchvision=True)


@register_cost("GroupQueryAttention", domain=CONTRIB)
def group_query_attention(node: Node) -> OpCost:
    """Every query head scores ``T`` keys (``T`` = total_sequence_length, else past + S);
    causal mask counted dense; rotary 3 per rotated q/k element when ``do_rotary``."""
    heads = node.attrs.get_int("num_heads", 0)
    kv_heads = node.attrs.get_int("kv_num_heads", 0)
    if heads <= 0 or kv_heads <= 0:
        raise ValueError("GroupQueryAttention needs num_heads and kv_num_heads")
    b, s, hidden = need(node, 0).dims
    packed = node.input(1) is None
    head = hidden // (heads + 2 * kv_heads) if packed else hidden // heads
    total_t = node.input(6)
    past = node.input(3)
    if total_t is not None and total_t.value is not None and total_t.value.size == 1:
        total = int(total_t.value.reshape(-1)[0])
    else:
        total = s + (past.dims[2] if past is not None else 0)
    scores = b * heads * s * total
    macs = scores * 2 * head
    flops = _scores_cost(scores, True)
    if node.attrs.get_int("do_rotary", 0):
        rotated = b * s * (heads + kv_heads) * head
        flops += ROTARY_FLOPS_PER_ELEMENT * rotated
    note = "causal mask counted dense (all scores computed)"
    return OpCost(macs=macs, flops=flops, torchvision=True, note=note)


@register_cost("RotaryEmbedding", domain=CONTRIB)
def contrib_rotary(node: Node) -> OpCost:
    """3 FLOPs per rotated element (``rotary_embedding_dim`` of each head, all if 0)."""
    x = need(node, 0).dims
    if len(x) == 4:  # (B, N, S, H)
        head = x[3]
    else:
        heads = node.attrs.get_int("num_heads", 0)
        cos = need(node, 2).dims
        head = x[2] // heads if heads > 0 else 2 * cos[-1]
    rot = node.attrs.get_int("rotary_embedding_dim", 0) or head
    return OpCost(flops=ROTARY_FLOPS_PER_ELEMENT * (prod(x) // head) * rot)


# --------------------------------------------------------------------------- normalization


def _rows(x: tuple[int, ...], axis: int) -> int:
    axis = axis + len(x) if axis < 0 else axis
    return prod(x[:axis])


@register_cost("SkipLayerNormalization", domain=CONTRIB)
def skip_layer_norm(node: Node) -> OpCost:
    x = need(node, 0).dims
    n = prod(x)
    adds = 1 + (1 if node.input(4) is not None else 0)
    per = LAYER_NORM_FLOPS_PER_ELEMENT + 1 + (1 if node.input(3) is not None else 0)
    return OpCost(flops=(adds + per) * n + LAYER_NORM_FLOPS_PER_ROW * _rows(x, -1))


@register_cost("SkipSimplifiedLayerNormalization", domain=CONTRIB)
def skip_simplified_layer_norm(node: Node) -> OpCost:
    x = need(node, 0).dims
    n = prod(x)
    adds = 1 + (1 if node.input(3) is not None else 0)
    return OpCost(flops=(adds + RMS_NORM_FLOPS_PER_ELEMENT) * n + RMS_NORM_FLOPS_PER_ROW * _rows(x, -1))


@register_cost("SimplifiedLayerNormalization", domain=CONTRIB)
@register_cost("SimplifiedLayerNormalization")
def simplified_layer_norm(node: Node) -> OpCost:
    """RMS normalization as onnxruntime names it (in the ai.onnx domain, opset 1)."""
    x = need(node, 0).dims
    rows = _rows(x, node.attrs.get_int("axis", -1))
    return OpCost(flops=RMS_NORM_FLOPS_PER_ELEMENT * prod(x) + RMS_NORM_FLOPS_PER_ROW * rows)


@register_cost("LayerNormalization", domain=CONTRIB)
def contrib_layer_norm(node: Node) -> OpCost:
    x = need(node, 0).dims
    rows = _rows(x, node.attrs.get_int("axis", -1))
    per = LAYER_NORM_FLOPS_PER_ELEMENT + (1 if node.input(1) is not None else 0) + (1 if node.input(2) is not None else 0)
    return OpCost(flops=per * prod(x) + LAYER_NORM_FLOPS_PER_ROW * rows)


@register_cost("EmbedLayerNormalization", domain=CONTRIB)
def embed_layer_norm(node: Node) -> OpCost:
    """Row gathers (free), table adds, LayerNormalization with gamma and beta."""
    b, s = need(node, 0).dims
    hidden = need(node, 2).dims[1]
    tables = 1 + sum(1 for i in (3, 4) if node.input(i) is not None)
    n = b * s * hidden
    flops = (tables - 1) * n + (LAYER_NORM_FLOPS_PER_ELEMENT + 2) * n + LAYER_NORM_FLOPS_PER_ROW * b * s
    itemsize = need(node, 2).nbytes // max(need(node, 2).numel, 1)
    gathered = tables * n * itemsize
    norm = sum(t.nbytes for t in (node.input(5), node.input(6)) if t is not None and t.known)
    return OpCost(flops=flops, weight_read_bytes=gathered + norm)


# --------------------------------------------------------------------------- activations


def _numel0(node: Node) -> int:
    return need(node, 0).numel


@register_cost("Gelu", domain=CONTRIB)
def contrib_gelu(node: Node) -> OpCost:
    return OpCost(flops=GELU_ERF_FLOPS * _numel0(node))


@register_cost("FastGelu", domain=CONTRIB)
def fast_gelu(node: Node) -> OpCost:
    per = GELU_TANH_FLOPS + (1 if node.input(1) is not None else 0)
    return OpCost(flops=per * _numel0(node))


@register_cost("BiasGelu", domain=CONTRIB)
def bias_gelu(node: Node) -> OpCost:
    return OpCost(flops=(1 + GELU_ERF_FLOPS) * _numel0(node))


@register_cost("QuickGelu", domain=CONTRIB)
def quick_gelu(node: Node) -> OpCost:
    return OpCost(flops=QUICK_GELU_FLOPS * _numel0(node))


@register_cost("BiasAdd", domain=CONTRIB)
def bias_add(node: Node) -> OpCost:
    return OpCost(flops=2 * _numel0(node))


@register_cost("BiasSoftmax", domain=CONTRIB)
def bias_softmax(node: Node) -> OpCost:
    return OpCost(flops=(1 + SOFTMAX_FLOPS_PER_ELEMENT) * _numel0(node))


# --------------------------------------------------------------------------- quantized


@register_cost("MatMulNBits", domain=CONTRIB)
def matmul_nbits(node: Node) -> OpCost:
    """``M N K`` MACs; weight dequantization ``2 N K``; bias ``M N``."""
    a = need(node, 0).dims
    k = node.attrs.get_int("K", 0) or a[-1]
    n = node.attrs.get_int("N", 0)
    if n <= 0:
        raise ValueError("MatMulNBits needs the N attribute")
    m = prod(a[:-1])
    flops = DEQUANTIZE_FLOPS_PER_ELEMENT * n * k + (m * n if node.input(5) is not None else 0)
    return OpCost(macs=m * n * k, flops=flops, torchvision=True)


def _matmul_mnk(node: Node) -> tuple[int, int]:
    """(output elements, K) of a numpy-semantics matmul of inputs 0 and 1."""
    a = need(node, 0).dims
    return node.out(0).numel, a[-1]


@register_cost("DynamicQuantizeMatMul", domain=CONTRIB)
def dynamic_quantize_matmul(node: Node) -> OpCost:
    y, k = _matmul_mnk(node)
    flops = 7 * _numel0(node) + 6 + y + (y if node.input(4) is not None else 0)
    return OpCost(macs=y * k, flops=flops, torchvision=True)


@register_cost("MatMulIntegerToFloat", domain=CONTRIB)
def matmul_integer_to_float(node: Node) -> OpCost:
    y, k = _matmul_mnk(node)
    flops = y + (y if node.input(6) is not None else 0)
    if node.input(4) is not None:
        flops += _numel0(node)
    if node.input(5) is not None:
        flops += need(node, 1).numel
    return OpCost(macs=y * k, flops=flops, torchvision=True)


def _qlinear(node: Node, quantized_inputs: tuple[int, ...], op_flops: int) -> OpCost:
    deq = sum(need(node, i).numel for i in quantized_inputs if node.input(i) is not None)
    return OpCost(flops=DEQUANTIZE_FLOPS_PER_ELEMENT * deq + op_flops + REQUANTIZE_FLOPS_PER_ELEMENT * node.out(0).numel)


@register_cost("QLinearAdd", "QLinearMul", domain=CONTRIB)
def qlinear_binary(node: Node) -> OpCost:
    return _qlinear(node, (0, 3), node.out(0).numel)


@register_cost("QLinearSigmoid", domain=CONTRIB)
def qlinear_sigmoid(node: Node) -> OpCost:
    return _qlinear(node, (0,), 3 * node.out(0).numel)


@register_cost("QLinearLeakyRelu", domain=CONTRIB)
def qlinear_leaky_relu(node: Node) -> OpCost:
    return _qlinear(node, (0,), 2 * node.out(0).numel)


@register_cost("QLinearSoftmax", domain=CONTRIB)
def qlinear_softmax(node: Node) -> OpCost:
    return _qlinear(node, (0,), SOFTMAX_FLOPS_PER_ELEMENT * node.out(0).numel)


@register_cost("QLinearGlobalAveragePool", domain=CONTRIB)
def qlinear_global_average_pool(node: Node) -> OpCost:
    return _qlinear(node, (0,), _numel0(node) + node.out(0).numel)


@register_cost("QLinearAveragePool", domain=CONTRIB)
def qlinear_average_pool(node: Node) -> OpCost:
    y = node.out(0).numel
    window = prod(node.attrs.get_ints("kernel_shape"))
    return _qlinear(node, (0,), y * window + y)


@register_cost("QLinearConcat", domain=CONTRIB)
def qlinear_concat(node: Node) -> OpCost:
    """Each input requantized to the output's scale: dequantize 2 + requantize 5."""
    return _qlinear(node, tuple(range(2, len(node.inputs), 3)), 0)


# --------------------------------------------------------------------------- nchwc layout


register_cost("MaxPool", "AveragePool", domain=NCHWC)(pool)
register_cost("GlobalAveragePool", "GlobalMaxPool", domain=NCHWC)(global_pool)
register_free("layout change between NCHW and NCHWc: a copy, memory traffic only", "ReorderInput", "ReorderOutput", domain=NCHWC)


@register_cost("Upsample", domain=NCHWC)
def nchwc_upsample(node: Node) -> OpCost:
    """Nearest: copies (0 FLOPs); linear: one lerp (3 FLOPs) per output per scaled axis."""
    if node.attrs.get_string("mode", "nearest") == "nearest":
        return OpCost()
    scaled_axes = sum(1 for s in node.attrs.get_ints("scales") if s != 1)
    return OpCost(flops=3 * scaled_axes * node.out(0).numel)
