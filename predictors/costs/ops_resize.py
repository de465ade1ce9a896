"""Interpolation and sampling: Resize, Upsample, GridSample, AffineGrid, RoiAlign.

Counted as *taps*: the input values one output element is interpolated from. A tap costs
2 FLOPs (weight multiply and accumulate), so ``flops = 2 * taps * numel(Y)``.

* **Resize / Upsample.** Only axes whose size changes are interpolated (``k`` of them).
  ``nearest``: a gather, 0 FLOPs (the node's note says so). ``linear``: 2 taps per
  interpolated axis, ``cubic``: 4, so ``2^k`` / ``4^k`` taps per output. With
  ``antialias=1`` a downsampled axis (scale ``s < 1``) widens the filter to
  ``ceil(taps_axis / s)`` taps.
* **GridSample.** Every output element samples ``2^r`` (bilinear) or ``4^r`` (bicubic) taps
  of its channel, ``r`` = spatial rank; ``nearest`` 0. The grid coordinates are
  unnormalized once per grid point and axis: 2 FLOPs (multiply, add) each.
* **AffineGrid.** The reference is a batched matmul of the homogeneous base grid
  ``(H*W, r+1)`` with ``theta^T``: ``numel(grid) * (r + 1)`` MACs.
* **RoiAlign.** ``sampling_ratio`` ``s`` points per bin axis (``0`` = adaptive, which
  depends on the ROI sizes: counted as 2 and noted), each a 4-tap bilinear sample (8 FLOPs)
  plus 1 to pool it: ``numel(Y) * s^2 * 9`` + one divide per output in ``avg`` mode.
"""

from __future__ import annotations

import math

from nascost.predictors.costs.common import need
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node

FLOPS_PER_TAP = 2
_TAPS_PER_AXIS = {"nearest": 0, "linear": 2, "bilinear": 2, "cubic": 4, "bicubic": 4}
ROI_ALIGN_ADAPTIVE_SAMPLES = 2


def _mode(node: Node) -> str:
    mode = node.attrs.get_string("mode", "nearest").lower()
    if mode not in _TAPS_PER_AXIS:
        raise ValueError(f"unknown interpolation mode {mode!r}")
    return mode


@register_cost("Resize", "Upsample")
def resize(node: Node) -> OpCost:
    """``2 * prod(taps per changed axis) * numel(Y)``; nearest is a gather (0)."""
    x = need(node, 0).dims
    y = node.out(0).dims
    mode = _mode(node)
    per_axis = _TAPS_PER_AXIS[mode]
    if per_axis == 0:
        return OpCost(note="nearest: a gather, no arithmetic")
    antialias = node.attrs.get_int("antialias", 0)
    taps = 1
    for xi, yi in zip(x, y, strict=True):
        if xi == yi:
            continue
        scale = yi / xi
        taps *= math.ceil(per_axis / scale) if antialias and scale < 1 else per_axis
    return OpCost(flops=FLOPS_PER_TAP * taps * node.out(0).numel)


@register_cost("GridSample")
def grid_sample(node: Node) -> OpCost:
    """``2 * taps * numel(Y)`` + 2 per grid coordinate."""
    grid = need(node, 1)
    rank = grid.dims[-1]
    mode = node.attrs.get_string("mode", "linear").lower()
    if mode not in _TAPS_PER_AXIS:
        raise ValueError(f"unknown GridSample mode {mode!r}")
    taps = _TAPS_PER_AXIS[mode] ** rank if _TAPS_PER_AXIS[mode] else 0
    return OpCost(flops=FLOPS_PER_TAP * taps * node.out(0).numel + 2 * grid.numel)


@register_cost("AffineGrid")
def affine_grid(node: Node) -> OpCost:
    """``numel(grid) * (r + 1)`` MACs (homogeneous base grid times ``theta^T``)."""
    theta = need(node, 0).dims  # (N, r, r+1)
    return OpCost(macs=node.out(0).numel * theta[2])


@register_cost("RoiAlign")
def roi_align(node: Node) -> OpCost:
    """``numel(Y) * s^2 * 9`` (+ ``numel(Y)`` for avg)."""
    y = node.out(0).numel
    s = node.attrs.get_int("sampling_ratio", 0)
    note = ""
    if s <= 0:
        s = ROI_ALIGN_ADAPTIVE_SAMPLES
        note = f"adaptive sampling_ratio depends on ROI sizes: counted as {s} per bin axis"
    flops = y * s * s * (4 * FLOPS_PER_TAP + 1)
    if node.attrs.get_string("mode", "avg") == "avg":
        flops += y
    return OpCost(flops=flops, note=note)
