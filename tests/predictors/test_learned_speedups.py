"""The prediction fast paths give the same numbers as the plain ones they replace."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from nascost.predictors.analysis import analyze
from nascost.predictors.devices import Device, DeviceSpec
from nascost.predictors.features import (
    KERNEL_FEATURES,
    KernelRecord,
    kernel_features,
    kernel_matrix,
    pseudo_kernels,
)
from nascost.predictors.graph import ShapeRequest, load_graph
from nascost.predictors.learned import FeatureCache, LatencyPredictor, TrainingExample, roofline_ms
from nascost.predictors.roofline import node_dtypes, predict_roofline
from nascost.predictors.sampler import BATCH_DIM, HELDOUT_FAMILIES, TRAIN_FAMILIES, build

DEV = Device(
    "cpu-fast", "test cpu", "custom", DeviceSpec({"float32": 1e11, "float16": 4e11}, 1e10, per_op_overhead_s=2e-6)
)


def _graphs() -> list[tuple[object, object]]:
    out = []
    for i, fam in enumerate(TRAIN_FAMILIES + HELDOUT_FAMILIES):
        s = build(fam, i, max_macs_per_example=20e6)
        g = load_graph(s.model, ShapeRequest(dim_values={BATCH_DIM: 1 + i % 3}))
        out.append((g, analyze(g)))
    return out


GRAPHS = _graphs()


def _fp16_matmul_relu() -> object:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [64, 128])
    w = helper.make_tensor("w", TensorProto.FLOAT16, [128, 32], np.ones(128 * 32, dtype=np.float16).tobytes(), raw=True)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [64, 32])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Relu", ["h"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [x], [y], [w])
    return load_graph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_node_dtype_and_cached_totals_match_the_per_node_sums() -> None:
    for g, a in [*GRAPHS, (_fp16_matmul_relu(), analyze(_fp16_matmul_relu()))]:
        assert {n.name: n.dtype for n in a.nodes} == node_dtypes(g)  # type: ignore[attr-defined, arg-type]
        for attr in ("macs", "flops", "flops_min", "flops_max", "effective_flops", "torchvision_macs",
                     "activation_read_bytes", "weight_read_bytes", "write_bytes"):
            assert getattr(a, attr) == sum(getattr(n, attr) for n in a.nodes)  # type: ignore[attr-defined]
    assert [n.dtype for n in analyze(_fp16_matmul_relu()).nodes] == ["float16", "float16"]  # type: ignore[arg-type]


def test_inline_roofline_equals_predict_roofline_at_node_dtypes() -> None:
    g16 = _fp16_matmul_relu()
    for g, a in [*GRAPHS, (g16, analyze(g16))]:  # type: ignore[arg-type]
        ref = predict_roofline(a, DEV, dtypes=node_dtypes(g))  # type: ignore[arg-type]
        ms, frac = roofline_ms(a, DEV)  # type: ignore[arg-type]
        assert ms == pytest.approx(ref.latency_ms, rel=1e-12)
        assert frac == pytest.approx(ref.compute_bound_fraction, rel=1e-12, abs=1e-15)


def test_kernel_matrix_rows_are_kernel_features() -> None:
    recs = [k for g, _ in GRAPHS for k in pseudo_kernels(g)]  # type: ignore[arg-type]
    recs.append(KernelRecord("fc", "FusedMatMul", ((2, 7, 64), (64, 48)), ((2, 7, 48),), fused=1))
    m = kernel_matrix(recs, dtype=np.float64)
    assert m.shape == (len(recs), len(KERNEL_FEATURES))
    for row, r in zip(m, recs, strict=True):
        f = kernel_features(r)
        assert list(f) == list(KERNEL_FEATURES)
        np.testing.assert_array_equal(row, np.asarray(list(f.values())))
    # an independent check of one row: a 3x3 conv, 16 -> 32 channels, 8x8 output
    conv = KernelRecord("c", "Conv", ((1, 16, 8, 8), (32, 16, 3, 3), (32,)), ((1, 32, 8, 8),))
    f = kernel_features(conv)
    assert f["log_macs"] == pytest.approx(np.log1p(32 * 8 * 8 * 16 * 9))
    assert f["cat_conv"] == 1.0 and f["conv_kernel"] == 3.0 and f["log_conv_cin"] == pytest.approx(np.log1p(16))


def test_feature_cache_changes_nothing_but_the_work() -> None:
    rng = np.random.default_rng(0)
    examples = []
    for g, a in GRAPHS:
        ks = tuple(
            KernelRecord(k.name, k.op_type, k.input_shapes, k.output_shapes, float(rng.uniform(5, 50)), k.fused, k.blocked)
            for k in pseudo_kernels(g)  # type: ignore[arg-type]
        )
        examples.append(TrainingExample(g, a, 1, roofline_ms(a, DEV)[0] * float(rng.uniform(1, 2)), ks))  # type: ignore[arg-type]
    cache = FeatureCache()
    plain = LatencyPredictor(DEV).fit(examples)
    cached = LatencyPredictor(DEV).fit(examples, feature_cache=cache)
    assert len(cache) == len(examples) and cache.misses == len(examples)
    np.testing.assert_array_equal(plain.predict(examples), cached.predict(examples, feature_cache=cache))
    assert cache.hits == len(examples)
    # a refit on a subset reuses every entry
    LatencyPredictor(DEV, use_kernels=False).fit(examples[:5], feature_cache=cache)
    assert cache.hits == len(examples) + 5 and cache.misses == len(examples)
    # the same device with its peaks measured again is another device: its rooflines differ
    import dataclasses

    faster = dataclasses.replace(DEV, spec=dataclasses.replace(DEV.spec, peak_flops_per_s={"float32": 2 * DEV.spec.peak_for("float32")}))
    refit = LatencyPredictor(faster).fit(examples, feature_cache=cache)
    assert cache.misses == 2 * len(examples)
    np.testing.assert_array_equal(refit.predict(examples), LatencyPredictor(faster).fit(examples).predict(examples))
