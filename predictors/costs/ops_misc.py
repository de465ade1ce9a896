"""The rest of ai.onnx: selection, scans, signal processing, detection, linear algebra,
random numbers, losses, text features and image decoding.

Comparisons count one FLOP each whatever the dtype (as ArgMax); ``log2`` terms round up.

* **TopK**: ``rows * n * max(1, ceil(log2 k))`` comparisons (heap selection of ``k`` of
  ``n`` along the axis).
* **Unique**: a sort and a pass: ``n * ceil(log2 n) + n`` comparisons of elements (of
  slices along ``axis``, each comparison ``numel / n`` wide).
* **CumSum / CumProd**: 1 per element.
* **DFT**: ``5 N log2 N`` per complex transform of length ``N`` (the FFTW / Cooley-Tukey
  count), ``2.5 N log2 N`` for a real signal; ``inverse`` adds the ``1/N`` scaling (1 per
  output component, i.e. 2 per complex element).
* **STFT**: per frame, the window multiply (``N`` x components) and one DFT of the frame.
* **HannWindow / HammingWindow**: 5 per element (angle 2, cos 1, ``a0 - a1 cos`` 2);
  **BlackmanWindow** 9 (two cosines). **MelWeightMatrix**: 4 per element.
* **NonMaxSuppression** (data-dependent; an upper bound, noted): per batch and class,
  sort ``N log2 N``, score threshold ``N``, and 13 FLOPs per IoU test (4 min/max, 2 sub,
  2 clamps, 1 mul, union 2, divide 1, compare 1) for ``K * N`` pairs, ``K`` =
  ``min(max_output_boxes_per_class, N)`` when constant (0 when absent), else ``N``.
* **Det**: LU factorization ``floor(2 M^3 / 3)`` + ``M`` for the diagonal product per matrix.
* **Random numbers**: one draw 1 op; RandomUniform(Like) 3 per element (draw, scale,
  shift); RandomNormal(Like) 7 (Box-Muller: log, sqrt, cos, 2 mul, then scale and shift);
  Bernoulli 2 (draw, compare); Multinomial ``2 C`` per batch row (exp, cumulative sum) and
  ``1 + ceil(log2 C)`` per sample (draw, binary search).
* **NegativeLogLikelihoodLoss**, per target element: negate 1, class weight 1 (when
  given), reduction 1 (unless ``none``), weighted mean +1 (weight sum); mean +1 divide.
  **SoftmaxCrossEntropyLoss**: LogSoftmax over the class axis (4 per element + 1 log per
  row, as the LogSoftmax handler) and the same NLL terms.
* **TfIdfVectorizer**: n-gram matching is integer/string work (0); IDF/TFIDF weighting
  1 multiply per output element.
* **ImageDecoder**: the cost depends on the encoded bytes (entropy decoding, IDCT), which
  shapes cannot tell: not counted, and the node says so.
"""

from __future__ import annotations

import math

from nascost.predictors.costs.common import int_const, need, prod
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node

IOU_FLOPS = 13


def _log2_ceil(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def fft_flops(n: int, transforms: int, *, real: bool) -> int:
    """``5 N log2 N`` per complex transform (``2.5 N log2 N`` for a real signal)."""
    if n <= 1:
        return 0
    per = 5.0 * n * math.log2(n)
    if real:
        per /= 2
    return round(per * transforms)


@register_cost("TopK")
def topk(node: Node) -> OpCost:
    x = need(node, 0)
    axis = _axis(node.attrs.get_int("axis", -1), x.rank)
    n = x.dims[axis]
    k = node.out(0).dims[axis]
    rows = x.numel // max(n, 1)
    return OpCost(flops=rows * n * max(1, _log2_ceil(k)))


@register_cost("Unique")
def unique(node: Node) -> OpCost:
    x = need(node, 0)
    if "axis" in node.attrs:
        n = x.dims[_axis(node.attrs.get_int("axis"), x.rank)]
        width = x.numel // max(n, 1)
    else:
        n, width = x.numel, 1
    return OpCost(flops=(n * _log2_ceil(n) + n) * width, note="sort-based count")


@register_cost("CumSum", "CumProd")
def cumulative(node: Node) -> OpCost:
    return OpCost(flops=need(node, 0).numel)


@register_cost("DFT")
def dft(node: Node) -> OpCost:
    """``5 N log2 N`` per complex transform; see the module docstring."""
    x = need(node, 0).dims
    if node.opset and node.opset < 20:
        axis = node.attrs.get_int("axis", 1)
    else:
        given = int_const(node, 2)
        axis = given[0] if given else -2
    axis = _axis(axis, len(x))
    given_len = int_const(node, 1)
    n = given_len[0] if given_len else x[axis]
    real = x[-1] == 1
    transforms = prod(x[:-1]) // max(x[axis], 1)
    flops = fft_flops(n, transforms, real=real)
    if node.attrs.get_int("inverse", 0):
        flops += node.out(0).numel  # 1/N scaling: one multiply per real component
    return OpCost(flops=flops)


@register_cost("STFT")
def stft(node: Node) -> OpCost:
    """Per frame: window multiply + one DFT of the frame length."""
    x = need(node, 0).dims  # [batch, length, 1|2]
    y = node.out(0).dims  # [batch, frames, bins, 2]
    window = node.input(2)
    if window is not None:
        n = window.dims[0]
    else:
        fl = int_const(node, 3)
        if not fl:
            raise ValueError("STFT needs a window or a constant frame_length")
        n = fl[0]
    frames = x[0] * y[1]
    flops = fft_flops(n, frames, real=x[-1] == 1)
    if window is not None:
        flops += frames * n * x[-1]
    return OpCost(flops=flops)


_WINDOW_FLOPS = {"HannWindow": 5, "HammingWindow": 5, "BlackmanWindow": 9}


@register_cost(*_WINDOW_FLOPS)
def window(node: Node) -> OpCost:
    return OpCost(flops=_WINDOW_FLOPS[node.op_type] * node.out(0).numel)


@register_cost("MelWeightMatrix")
def mel_weight_matrix(node: Node) -> OpCost:
    return OpCost(flops=4 * node.out(0).numel)


@register_cost("NonMaxSuppression")
def non_max_suppression(node: Node) -> OpCost:
    """Sort, threshold and ``K * N`` IoU tests per batch and class (upper bound)."""
    b, n, _ = need(node, 0).dims
    _, classes, _ = need(node, 1).dims
    if node.input(2) is None:  # absent: 0 boxes per class are kept
        k = 0
    else:
        max_out = int_const(node, 2)
        k = n if max_out is None else min(max(max_out[0], 0), n)
    per_class = n * _log2_ceil(n) + n + IOU_FLOPS * k * n
    return OpCost(flops=b * classes * per_class, note="data-dependent: upper bound")


@register_cost("Det")
def det(node: Node) -> OpCost:
    x = need(node, 0).dims
    m = x[-1]
    return OpCost(flops=prod(x[:-2]) * ((2 * m**3) // 3 + m))


_RANDOM_FLOPS = {
    "RandomUniform": 3, "RandomUniformLike": 3, "RandomNormal": 7, "RandomNormalLike": 7, "Bernoulli": 2,
}


@register_cost(*_RANDOM_FLOPS)
def random(node: Node) -> OpCost:
    return OpCost(flops=_RANDOM_FLOPS[node.op_type] * node.out(0).numel)


@register_cost("Multinomial")
def multinomial(node: Node) -> OpCost:
    batch, classes = need(node, 0).dims
    samples = node.attrs.get_int("sample_size", 1)
    return OpCost(flops=batch * 2 * classes + batch * samples * (1 + _log2_ceil(classes)))


def _nll_flops(node: Node, targets: int, weight_index: int) -> int:
    weighted = node.input(weight_index) is not None
    reduction = node.attrs.get_string("reduction", "mean")
    flops = targets * (1 + (1 if weighted else 0))
    if reduction != "none":
        flops += targets
    if reduction == "mean":
        flops += 1 + (targets if weighted else 0)
    return flops


@register_cost("NegativeLogLikelihoodLoss")
def nll_loss(node: Node) -> OpCost:
    return OpCost(flops=_nll_flops(node, need(node, 1).numel, 2))


@register_cost("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy(node: Node) -> OpCost:
    scores = need(node, 0)
    rows = scores.numel // scores.dims[1]
    return OpCost(flops=4 * scores.numel + rows + _nll_flops(node, rows, 2))


@register_cost("TfIdfVectorizer")
def tfidf(node: Node) -> OpCost:
    mode = node.attrs.get_string("mode", "TF")
    flops = node.out(0).numel if mode in ("IDF", "TFIDF") else 0
    return OpCost(flops=flops, note="n-gram matching is integer work (not FLOPs)")


@register_cost("ImageDecoder")
def image_decoder(node: Node) -> OpCost:
    return OpCost(note="decoding cost depends on the encoded bytes: not counted")
