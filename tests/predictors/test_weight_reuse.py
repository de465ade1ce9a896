"""A kernel streaming large weights is slower in a slower model: its weights wait longer for
their next use and are evicted meanwhile (the ``log_reuse_ms`` kernel column)."""

from __future__ import annotations

from functools import cache

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nascost.predictors.features as features
from nascost.predictors.analysis import analyze
from nascost.predictors.devices import Device, DeviceSpec
from nascost.predictors.features import (
    KERNEL_FEATURES,
    KernelRecord,
    kernel_features,
    kernel_matrix,
    pseudo_kernels,
)
from nascost.predictors.graph import load_graph
from nascost.predictors.learned import LatencyPredictor, TrainingExample

DEV = Device("cpu-test", "test cpu", "custom", DeviceSpec({"float32": 1e11}, 1e10, per_op_overhead_s=2e-6))
STREAMED_BYTES = 1e6  # the made-up device streams weights of at least this many bytes (the law, not the gate)


def _model(res: int, depth: int, n_out: int, batch: int) -> onnx.ModelProto:
    """``depth`` 3x3 convs of 16 channels (small weights), a pool, a 16 -> 256 MatMul, then a
    256 -> ``n_out`` Gemm whose weights are 1-4 MiB."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def w(name: str, *shape: int) -> str:
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        return name

    x = "x"
    for i in range(depth):
        nodes.append(helper.make_node("Conv", [x, w(f"c{i}", 16, 16, 3, 3)], [f"h{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"r{i}"]))
        x = f"r{i}"
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", w("m", 16, 256)], ["e"]),
        helper.make_node("Gemm", ["e", w("g", n_out, 256), w("gb", n_out)], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "reuse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16, res, res])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, n_out])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _truth_us(k: KernelRecord, latency_ms: float) -> float:
    """Made-up device: 1 µs + FLOPs at 40 GFLOP/s per kernel; a kernel with >= 1 MB of
    weights streams them at 20 GB/s after 1 ms between uses, slower the longer the wait
    (``latency_ms ** -0.35``)."""
    f = kernel_features(k)
    weight_bytes = 4 * np.expm1(f["log_weight_elems"])
    if weight_bytes >= STREAMED_BYTES:
        return 1.0 + weight_bytes / (20e3 * latency_ms**-0.35)
    return 1.0 + float(np.expm1(f["log_flops"])) / 40e3


@cache
def _examples(seed: int, n: int) -> tuple[TrainingExample, ...]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        res, depth = int(rng.choice([8, 16, 24, 32, 48, 64])), int(rng.integers(1, 7))
        n_out, batch = int(rng.choice([1024, 2048, 3072, 4096])), int(rng.choice([1, 8]))
        g = load_graph(_model(res, depth, n_out, batch))
        ks = pseudo_kernels(g)
        ms = 1.0
        for _ in range(50):  # the latency is a fixed point: the Gemm's time depends on it
            ms = sum(_truth_us(k, ms) for k in ks) / 1e3
        timed = tuple(
            KernelRecord(k.name, k.op_type, k.input_shapes, k.output_shapes, _truth_us(k, ms), k.fused, k.blocked)
            for k in ks
        )
        out.append(TrainingExample(g, analyze(g), batch, ms, timed, "reuse"))
    return tuple(out)


def test_only_kernels_with_large_weights_take_the_reuse_time() -> None:
    col = KERNEL_FEATURES.index("log_reuse_ms")
    ks = {k.op_type: k for k in pseudo_kernels(load_graph(_model(16, 1, 2048, 1)))}
    X = kernel_matrix([ks["Gemm"], ks["MatMul"], ks["Conv"]], reuse_ms=[3.0, 3.0, 3.0], dtype=np.float64)
    # 2 MiB of Gemm weights take it; 16 KiB of MatMul and 9 KiB of conv weights stay cached
    np.testing.assert_allclose(X[:, col], [np.log1p(3.0), 0.0, 0.0])
    assert kernel_features(ks["Gemm"])["log_reuse_ms"] == 0.0  # no reuse time given
    with pytest.raises(ValueError, match="2 values for 3 kernels"):
        kernel_matrix([ks["Gemm"], ks["MatMul"], ks["Conv"]], reuse_ms=[1.0, 2.0])


def test_the_kernel_sum_follows_a_weight_stream_that_slows_with_the_models_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    train, test = list(_examples(0, 80)), list(_examples(1, 30))
    y = np.array([e.measured_ms for e in test])
    # the same Gemm takes longer in a longer model: a per-kernel model blind to that cannot fit both
    gemm_us = {e.measured_ms: next(k.latency_us for k in e.kernels if k.op_type == "Gemm") for e in train}
    assert max(gemm_us.values()) / min(gemm_us.values()) > 2.0
    err = np.abs(LatencyPredictor(DEV, prior="kernel_sum").fit(train).predict(test) / y - 1)
    with monkeypatch.context() as m:
        m.setattr(features, "REUSE_MIN_WEIGHT_BYTES", 1 << 62)  # no kernel gets a reuse time
        err_blind = np.abs(LatencyPredictor(DEV, prior="kernel_sum").fit(train).predict(test) / y - 1)
    assert np.median(err) < 0.03, np.median(err)
    assert np.mean(err <= 0.1) >= 0.95
    assert np.mean(err) < 0.5 * np.mean(err_blind), (np.mean(err), np.mean(err_blind))


def test_a_zero_first_guess_still_iterates_to_the_fixed_point() -> None:
    from nascost.predictors.learned import _kernel_sum_ms

    p = LatencyPredictor(DEV, prior="kernel_sum").fit(list(_examples(0, 80)))
    assert p.kernel_model_ is not None
    for e in _examples(1, 5):
        ks = pseudo_kernels(e.graph)
        # a zero guess must not hide the weight-heavy kernels (a zero reuse column marks none)
        zero = _kernel_sum_ms(p.kernel_model_, ks, 0.0)
        assert zero == _kernel_sum_ms(p.kernel_model_, ks, 1e-3)
        assert zero == pytest.approx(e.measured_ms, rel=0.1)
