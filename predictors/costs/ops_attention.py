"""Attention-family ops of ai.onnx: Attention (opset 23+), RotaryEmbedding, LinearAttention.

**Attention.** ``Q`` is ``(B, Hq, Sq, D)`` or 3-D ``(B, Sq, Hq*D)`` (heads from
``q_num_heads``); ``K`` ``(B, Hkv, Skv, D)``, ``V`` ``(B, Hkv, Skv, Dv)`` (3-D likewise with
``kv_num_heads``); ``past_key``/``past_value`` add ``P`` positions: ``T = P + Skv``.
Grouped-query / multi-query attention (``Hkv < Hq``) shares K and V between query heads
but every query head still does its own products, so with ``N = B * Hq * Sq * T`` scores:

* MACs = ``N * D`` (``Q K^T``) + ``N * Dv`` (``softmax(.) V``); they count toward the
  torchvision convention (ViT's attention matmuls are part of its published ``_ops``).
* FLOPs besides the MACs, per score: scale 1; softcap 3 (div, tanh, mul) when
  ``softcap != 0``; mask 1 when an ``attn_mask``, ``is_causal``, ``nonpad_kv_seqlen`` or a
  sliding window applies (an add or a select); softmax 5 (as the Softmax handler).
* Causal masking is counted dense (a dense kernel computes the masked scores too); the
  node's note says so.

**RotaryEmbedding.** Each rotated element is ``x1 cos - x2 sin`` (or ``x2 cos + x1 sin``): 3
FLOPs per rotated element (2 multiplies, 1 add); elements past ``rotary_embedding_dim``
are copied (0).

**LinearAttention** (opset 27), per batch row and token, with state ``S`` of
``d_k x d_v`` per KV head:

* MACs: ``Hkv * dk * dv`` for the outer-product update ``k (x) v`` (``delta`` rules: the
  update ``k (x) (beta (v - S^T k))`` plus ``Hkv * dk * dv`` more for ``S^T k``), and
  ``Hq * dk * dv`` for the readout ``q^T S``.
* FLOPs: ``gated`` rules: ``exp(g)`` per decay element and ``Hkv * dk * dv`` decay
  multiplies; ``delta`` rules: ``2 * Hkv * dv`` (subtract, times beta); output scale
  ``Hq * dv``.
"""

from __future__ import annotations

from nascost.predictors.costs.common import need, prod
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node

SOFTMAX_FLOPS_PER_ELEMENT = 5
SOFTCAP_FLOPS_PER_ELEMENT = 3
ROTARY_FLOPS_PER_ELEMENT = 3


def _heads_and_size(dims: tuple[int, ...], heads_attr: int, what: str) -> tuple[int, int, int, int]:
    """(batch, heads, seq, head_size) of a 3-D or 4-D attention operand."""
    if len(dims) == 4:
        return dims[0], dims[1], dims[2], dims[3]
    if len(dims) == 3:
        if heads_attr <= 0:
            raise ValueError(f"3-D {what} needs the num_heads attribute")
        if dims[2] % heads_attr:
            raise ValueError(f"{what} hidden size {dims[2]} is not divisible by {heads_attr} heads")
        return dims[0], heads_attr, dims[1], dims[2] // heads_attr
    raise ValueError(f"{what} must be 3-D or 4-D, got shape {dims}")


@register_cost("Attention")
def attention(node: Node) -> OpCost:
    """``macs = B Hq Sq T (D + Dv)``; scale, softcap, mask and softmax per score."""
    q_heads_attr = node.attrs.get_int("q_num_heads", 0)
    kv_heads_attr = node.attrs.get_int("kv_num_heads", 0)
    b, hq, sq, d = _heads_and_size(need(node, 0).dims, q_heads_attr, "Q")
    _, hkv, skv, dk = _heads_and_size(need(node, 1).dims, kv_heads_attr, "K")
    _, _, _, dv = _heads_and_size(need(node, 2).dims, kv_heads_attr, "V")
    if d != dk:
        raise ValueError(f"Q head size {d} differs from K head size {dk}")
    if hkv and hq % hkv:
        raise ValueError(f"q heads {hq} are not a multiple of kv heads {hkv}")
    past = node.input(4)
    total = skv + (past.dims[2] if past is not None else 0)
    scores = b * hq * sq * total
    macs = scores * (d + dv)
    flops = scores  # scale
    if node.attrs.get_float("softcap", 0.0) != 0.0:
        flops += SOFTCAP_FLOPS_PER_ELEMENT * scores
    causal = bool(node.attrs.get_int("is_causal", 0))
    windowed = node.attrs.get_int("left_window_size", -1) >= 0 or node.attrs.get_int("right_window_size", -1) >= 0
    if node.input(3) is not None or causal or node.input(6) is not None or windowed:
        flops += scores
    flops += SOFTMAX_FLOPS_PER_ELEMENT * scores
    note = "causal mask counted dense (all scores computed)" if causal else ""
    return OpCost(macs=macs, flops=flops, torchvision=True, note=note)


@register_cost("RotaryEmbedding")
def rotary_embedding(node: Node) -> OpCost:
    """3 FLOPs per rotated element: ``numel * rotary_dim / head_size`` of them."""
    x = need(node, 0).dims
    if len(x) == 4:
        head_size = x[3]
    elif len(x) == 3:
        heads = node.attrs.get_int("num_heads", 0)
        if heads <= 0:
            raise ValueError("3-D RotaryEmbedding input needs num_heads")
        head_size = x[2] // heads
    else:
        raise ValueError(f"RotaryEmbedding input must be 3-D or 4-D, got {x}")
    rot = node.attrs.get_int("rotary_embedding_dim", 0) or head_size
    rotated = prod(x) // head_size * rot
    return OpCost(flops=ROTARY_FLOPS_PER_ELEMENT * rotated)


@register_cost("LinearAttention")
def linear_attention(node: Node) -> OpCost:
    """Recurrent (linear) attention: state update and readout per token (module docstring)."""
    hq = node.attrs.get_int("q_num_heads", 0)
    hkv = node.attrs.get_int("kv_num_heads", 0)
    if hq <= 0 or hkv <= 0:
        raise ValueError("LinearAttention needs q_num_heads and kv_num_heads")
    b, t, qdim = need(node, 0).dims
    vdim = need(node, 2).dims[2]
    dk = qdim // hq
    dv = vdim // hkv
    rule = node.attrs.get_string("update_rule", "gated_delta")
    state = hkv * dk * dv
    macs_per_token = state + hq * dk * dv
    flops_per_token = hq * dv
    if "delta" in rule:
        macs_per_token += state
        flops_per_token += 2 * hkv * dv
    tokens = b * t
    flops = tokens * flops_per_token
    if rule.startswith("gated"):
        decay = node.input(4)
        flops += tokens * state + (decay.numel if decay is not None else tokens * hkv)
    return OpCost(macs=tokens * macs_per_token, flops=flops)
