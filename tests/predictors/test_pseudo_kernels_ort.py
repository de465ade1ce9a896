"""Pseudo kernels against onnxruntime's own profile of the same graph.

The learned predictor trains its kernel model on profiled kernels and predicts from
pseudo kernels derived from the user's graph, so the two must describe the same kernels:
the same op types, the same blocked (NCHWc) convolutions with the same padded channel
counts, the same reorders. Each model here exercises one rule; the reference is the
kernel list onnxruntime (1 thread, default optimizations) profiles for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
from ortprofile import ort_measure

from nascost.predictors.features import (
    KernelRecord,
    host_nchwc_block,
    kernel_features,
    kernels_from_profile,
    nchwc_block_from_examples,
    nchwc_block_from_kernels,
    pseudo_kernels,
    with_activations,
)
from nascost.predictors.graph import ShapeRequest, load_graph
from nascost.predictors.sampler import INPUT_NAME, _Builder


def _both(build: Callable[[_Builder], str], chw: tuple[int, ...]) -> tuple[list[KernelRecord], list[KernelRecord]]:
    b = _Builder(np.random.default_rng(0))
    model = b.model(build(b), chw, "t")
    real = kernels_from_profile(ort_measure(model.SerializeToString(), 1)[1])
    pseudo = pseudo_kernels(load_graph(model, ShapeRequest(dim_values={"N": 1})))
    return real, pseudo


def _ops(recs: list[KernelRecord]) -> Counter[tuple[str, bool]]:
    return Counter((r.op_type, r.blocked) for r in recs if r.op_type not in ("Flatten", "Reshape"))


def _convs(recs: list[KernelRecord]) -> list[tuple[tuple[int, ...], ...]]:
    return [r.input_shapes[:2] + r.output_shapes for r in recs if r.op_type == "Conv"]


def test_silu_is_one_quickgelu_on_the_blocked_tensor() -> None:
    def build(b: _Builder) -> str:
        x, hw = b.conv(INPUT_NAME, 3, 32, 3, 16)
        x = b.act(x, "silu")
        x, _ = b.conv(x, 32, 32, 3, hw, groups=32)
        x = b.act(x, "silu")
        x, _ = b.conv(x, 32, 32, 1, hw)
        return b.op("GlobalAveragePool", [x])

    real, pseudo = _both(build, (3, 16, 16))
    assert _ops(pseudo) == _ops(real)
    assert ("QuickGelu", False) in _ops(real) and not any(r.op_type in ("Sigmoid", "Mul") for r in pseudo)


def test_hardswish_folds_into_the_conv_and_grouped_convs_run_blocked() -> None:
    def build(b: _Builder) -> str:
        x, hw = b.conv(INPUT_NAME, 3, 32, 3, 16)
        x = b.act(x, "hardswish")
        x, _ = b.conv(x, 32, 32, 3, hw, groups=2)  # 16 channels per group: blocked
        x = b.act(x, "hardswish")
        return b.op("GlobalAveragePool", [x])

    real, pseudo = _both(build, (3, 16, 16))
    assert _ops(pseudo) == _ops(real)
    assert _ops(real)[("Conv", True)] == 2 and not any(r.op_type == "HardSwish" for r in real)


def test_narrow_blocked_convs_are_padded_and_reordered_like_onnxruntime() -> None:
    block = host_nchwc_block()  # 16 with AVX-512, 8 with AVX2: the rules hold for either
    if block not in (8, 16):
        # only where onnxruntime really runs nothing blocked (the probe once read 0 on an
        # AVX-512 host, and this test skipped instead of failing)
        def conv(b: _Builder) -> str:
            return b.conv(INPUT_NAME, 3, 32, 3, 16)[0]

        real, _ = _both(conv, (3, 16, 16))
        assert not any(k.blocked for k in real)
        pytest.skip(f"this host's onnxruntime runs no NCHWc kernels (block {block})")
    narrow = block // 2

    def build(b: _Builder) -> str:
        x, hw = b.conv(INPUT_NAME, 3, narrow, 3, 16)  # half a block of output channels: padded to one block
        x = b.act(x, "relu6")
        x, _ = b.conv(x, narrow, narrow, 3, hw, groups=narrow)  # depthwise on the padded tensor
        x = b.act(x, "relu6")
        x, _ = b.conv(x, narrow, 24, 1, hw)  # fewer input channels than a block: reads NCHW, after a reorder
        return b.op("GlobalAveragePool", [x])

    real, pseudo = _both(build, (3, 16, 16))
    assert _ops(pseudo) == _ops(real)
    assert _convs(pseudo) == _convs(real)
    assert _convs(real)[0][1][0] == block  # the padding is onnxruntime's, not ours
    assert _ops(real)[("ReorderOutput", False)] >= 1
    # the block the profile shows is the one the host probe found: a block of 8 from the
    # profile alone (24 is no multiple of 16), a block of 16 beside the graph's own widths
    # (16 and 32 are what a block of 8 would show for 16- and 32-wide Convs too)
    b = _Builder(np.random.default_rng(0))
    graph = load_graph(b.model(build(b), (3, 16, 16), "t"), ShapeRequest(dim_values={"N": 1}))
    shown = nchwc_block_from_kernels(real)
    assert shown == (8 if block == 8 else None)
    assert nchwc_block_from_examples([(graph, real)]) == block


def test_a_blocked_tensor_transposed_to_nhwc_is_one_channels_last_reorder() -> None:
    # ConvNeXt's block: depthwise conv -> Transpose to NHWC -> LayerNorm ..., and back
    def build(b: _Builder) -> str:
        x, hw = b.conv(INPUT_NAME, 3, 32, 4, 32, stride=4, pad=0)
        y, _ = b.conv(x, 32, 32, 7, hw, groups=32)
        y = b.op("Transpose", [y], perm=[0, 2, 3, 1])
        y = b.layer_norm(y, 32)
        y = b.op("Transpose", [y], perm=[0, 3, 1, 2])
        return b.op("GlobalAveragePool", [b.op("Add", [x, y])])

    real, pseudo = _both(build, (3, 32, 32))
    assert _ops(pseudo) == _ops(real)
    assert _ops(real)[("Transpose", False)] == 1  # back to NCHW only
    nhwc = [r.output_shapes for r in real if r.op_type == "ReorderOutput" and r.output_shapes[0][-1] == 32]
    assert nhwc == [r.output_shapes for r in pseudo if r.op_type == "ReorderOutput" and r.output_shapes[0][-1] == 32]
    assert nhwc == [((1, 8, 8, 32),)]


def test_profiled_matmul_without_its_weight_has_the_full_kernels_features() -> None:
    # onnxruntime's profile leaves out pre-packed constant weights of MatMul
    def build(b: _Builder) -> str:
        return b.linear(INPUT_NAME, 64, 96, 10)

    real, pseudo = _both(build, (10, 64))
    (mm,) = [r for r in real if r.op_type == "MatMul"]
    assert mm.input_shapes == ((1, 10, 64),)
    (pm,) = [r for r in pseudo if r.op_type == "MatMul"]
    assert pm.input_shapes == ((1, 10, 64), (64, 96))
    assert kernel_features(mm) == kernel_features(pm)
    f = kernel_features(mm)
    assert np.expm1(f["log_macs"]) == pytest.approx(10 * 64 * 96)
    assert np.expm1(f["log_weight_elems"]) == pytest.approx(64 * 96)


def test_matmul_with_a_2d_weight_is_one_gemm_over_the_leading_dims() -> None:
    # (N, H, W, C) @ (C, D) runs as one (N*H*W, C) x (C, D) GEMM, as (N, H*W, C) does
    f4 = kernel_features(KernelRecord("m", "MatMul", ((2, 7, 7, 48), (48, 96)), ((2, 7, 7, 96),)))
    f3 = kernel_features(KernelRecord("m", "MatMul", ((1, 98, 48), (48, 96)), ((1, 98, 96),)))
    assert f4["log_mm_m"] == f3["log_mm_m"] == pytest.approx(np.log1p(98))
    assert f4["log_mm_batch"] == f3["log_mm_batch"] == pytest.approx(np.log1p(1))
    assert f4["log_macs"] == f3["log_macs"]
    # a batched matmul of two activations keeps its batch
    fb = kernel_features(KernelRecord("m", "MatMul", ((2, 4, 16, 8), (2, 4, 8, 16)), ((2, 4, 16, 16),)))
    assert fb["log_mm_m"] == pytest.approx(np.log1p(16)) and fb["log_mm_batch"] == pytest.approx(np.log1p(8))


def test_profiled_gemm_keeps_its_bias_but_not_its_weight() -> None:
    def build(b: _Builder) -> str:
        x, _ = b.conv(INPUT_NAME, 3, 32, 3, 8)
        return b.head(x, 32, 100)

    real, pseudo = _both(build, (3, 8, 8))
    (g,) = [r for r in real if r.op_type == "Gemm"]
    (pg,) = [r for r in pseudo if r.op_type == "Gemm"]
    assert g.input_shapes == ((1, 32), (100,))
    f = kernel_features(g)
    assert np.expm1(f["log_weight_elems"]) == pytest.approx(32 * 100)
    assert np.expm1(f["log_macs"]) == pytest.approx(np.expm1(kernel_features(pg)["log_macs"]))


def test_activations_read_from_profile_names_are_the_pseudo_kernels_activations() -> None:
    def build(b: _Builder) -> str:
        x, hw = b.conv(INPUT_NAME, 3, 32, 3, 16)
        x = b.act(x, "relu")  # blocked Conv named after the Relu's output
        x, _ = b.conv(x, 32, 32, 3, hw, groups=32)
        x = b.act(x, "relu6")  # Clip
        y, _ = b.conv(x, 32, 32, 1, hw, bias=False)
        x = b.act(b.op("Add", [y, b.weight((1, 32, 1, 1))]), "relu6")  # a constant Add: the bias
        y, _ = b.conv(x, 32, 32, 1, hw)
        y = b.act(y, "hardswish")  # runs inside the Conv, which keeps its own name
        x = b.se(y, 32, 4)  # Relu and Sigmoid on 1x1 convs
        y, _ = b.conv(x, 32, 32, 1, hw)
        x = b.op("Relu", [b.op("Add", [y, x])])  # residual Add + Relu
        y, _ = b.conv(x, 32, 32, 3, hw)
        z, _ = b.conv(x, 32, 32, 1, hw)  # a projection shortcut: one of the two absorbs the Add
        x = b.op("Relu", [b.op("Add", [y, z])])
        y, _ = b.conv(x, 32, 32, 1, hw)
        x = b.act(y, "silu")  # two consumers: nothing folds
        x, _ = b.conv(x, 32, 8, 1, hw)
        x, _ = b.conv(x, 8, 8, 3, hw)  # narrow: an unblocked Conv
        x = b.act(x, "relu")
        return b.op("GlobalAveragePool", [x])

    b = _Builder(np.random.default_rng(0))
    model = b.model(build(b), (3, 16, 16), "t")
    graph = load_graph(model, ShapeRequest(dim_values={"N": 1}))
    real = with_activations(kernels_from_profile(ort_measure(model.SerializeToString(), 1)[1]), graph)
    pseudo = pseudo_kernels(graph)

    def acts(recs: list[KernelRecord]) -> Counter[tuple[str, tuple[int, ...], str]]:
        return Counter((r.op_type, r.input_shapes[1], r.activation) for r in recs if r.op_type.endswith("Conv"))

    assert acts(real) == acts(pseudo)
    found = {r.activation for r in real}
    assert {"Relu", "Clip", "HardSwish", "Sigmoid", ""} <= found
    # the feature columns tell them apart
    cols = {r.activation: kernel_features(r) for r in real if r.op_type.endswith("Conv")}
    assert cols["Relu"]["act_relu"] == cols["Clip"]["act_clip"] == cols["Sigmoid"]["act_sigmoid"] == 1.0
    assert cols["HardSwish"]["act_other"] == 1.0
    assert sum(v for k, v in cols[""].items() if k.startswith("act_")) == 0.0


def test_the_nchwc_block_is_the_devices_not_this_hosts() -> None:
    # 3 -> 8 -> 24 channels: with a block of 16 the first Conv's output is padded and read
    # back in NCHW by the second (8 < 16 input channels); with 8 neither; with 0 nothing is blocked
    def build(b: _Builder) -> str:
        x, hw = b.conv(INPUT_NAME, 3, 8, 3, 16)
        x, _ = b.conv(x, 8, 24, 1, hw)
        return b.op("GlobalAveragePool", [x])

    b = _Builder(np.random.default_rng(0))
    graph = load_graph(b.model(build(b), (3, 16, 16), "t"), ShapeRequest(dim_values={"N": 1}))
    by_block = {block: pseudo_kernels(graph, nchwc_block=block) for block in (16, 8, 0)}
    convs = {block: [(k.blocked, k.output_shapes[0][1]) for k in ks if k.op_type == "Conv"] for block, ks in by_block.items()}
    assert convs == {16: [(True, 16), (True, 32)], 8: [(True, 8), (True, 24)], 0: [(False, 8), (False, 24)]}
    reorders = {block: sorted(k.op_type for k in ks if k.op_type.startswith("Reorder")) for block, ks in by_block.items()}
    # block 16: the padded output back to NCHW for the narrow Conv, the result back at the end;
    # block 8: the result only (the input reorder of a 3-channel image is never needed)
    assert reorders == {16: ["ReorderOutput", "ReorderOutput"], 8: ["ReorderOutput"], 0: []}
    assert pseudo_kernels(graph) == by_block[host_nchwc_block()]
    # what a profile shows decides the block a predictor trained on it uses
    # (16 and 32 channels are what a block of 8 would show for 16- and 32-wide Convs too:
    # only the graph's own widths, 8 and 24, tell)
    assert nchwc_block_from_kernels(by_block[16]) is None
    assert nchwc_block_from_examples([(graph, by_block[16])]) == 16
    assert nchwc_block_from_kernels(by_block[8]) == 8
    assert nchwc_block_from_examples([(graph, by_block[8])]) == 8
    assert nchwc_block_from_kernels(by_block[0]) == 0
    assert nchwc_block_from_kernels([k for k in by_block[8] if k.op_type != "Conv"]) is None
