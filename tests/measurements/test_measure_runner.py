"""The runner in-process: input generation, shape rules, profile parsing, real sessions."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from measure_models import convnet, mixed_inputs, mlp

from nascost.measurements.protocol import TimingOptions
from nascost.measurements.runner import (
    INT_INPUT_HIGH,
    InputSpec,
    MeasurementResult,
    RunnerConfig,
    make_feeds,
    make_input,
    parse_profile,
    profile_run_count,
    resolve_input_shapes,
    run_measurement,
)
from nascost.predictors.errors import InvalidRequestError
from nascost.predictors.graph import ShapeRequest

FAST = TimingOptions(warmup_runs=2, runs_per_window=20, stable_windows=3, stability_threshold_pct=10.0, time_budget_s=1.5)


# --------------------------------------------------------------------------- shapes


def test_batch_sets_symbolic_dim0_and_binds_its_name() -> None:
    specs = [
        InputSpec("x", "tensor(float)", ("N", "S", 8)),
        InputSpec("ids", "tensor(int64)", ("N", "S")),
        InputSpec("aux", "tensor(float)", (2, "N")),  # 'N' elsewhere follows the batch too
    ]
    got = resolve_input_shapes(specs, ShapeRequest(dim_values={"S": 5}), 3)
    assert got == {"x": (3, 5, 8), "ids": (3, 5), "aux": (2, 3)}


def test_explicit_shapes_and_batch_override_dim0() -> None:
    specs = [InputSpec("x", "tensor(float)", ("N", 3, "H", "W"))]
    got = resolve_input_shapes(specs, ShapeRequest(input_shapes={"x": (1, 3, 64, 48)}), 4)
    assert got == {"x": (4, 3, 64, 48)}
    assert resolve_input_shapes(specs, ShapeRequest(input_shapes={"x": (2, 3, 8, 8)}), None) == {"x": (2, 3, 8, 8)}


@pytest.mark.parametrize(
    ("specs", "shapes", "batch", "match"),
    [
        ([InputSpec("x", "tensor(float)", ("N", "S"))], None, 2, "unresolved dims S"),
        ([InputSpec("x", "tensor(float)", (1, 8))], None, 4, "fixed at 1"),
        ([InputSpec("x", "tensor(float)", ("N", 8))], ShapeRequest(input_shapes={"x": (1, 9)}), 1, "axis 1 is fixed at 8"),
        ([InputSpec("x", "tensor(float)", ("N", 8))], ShapeRequest(input_shapes={"y": (1, 8)}), 1, "not a graph input"),
        ([InputSpec("x", "tensor(float)", ("N", 8))], ShapeRequest(input_shapes={"x": (1, 8, 1)}), 1, "rank 2"),
        ([InputSpec("x", "tensor(float)", None)], None, 1, "no declared shape"),
    ],
)
def test_shape_errors(specs: list[InputSpec], shapes: ShapeRequest | None, batch: int, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        resolve_input_shapes(specs, shapes, batch)


def test_fixed_batch_equal_to_request_is_fine() -> None:
    specs = [InputSpec("x", "tensor(float)", (4, 8))]
    assert resolve_input_shapes(specs, None, 4) == {"x": (4, 8)}


# --------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    "ort_type",
    ["tensor(float)", "tensor(float16)", "tensor(double)", "tensor(int8)", "tensor(int32)", "tensor(int64)", "tensor(uint8)", "tensor(bool)"],
)
def test_generated_inputs_have_dtype_shape_and_are_not_all_zero(ort_type: str) -> None:
    rng = np.random.default_rng(0)
    for dims in [(1,), (2, 3), (4, 1, 5)]:
        arr = make_input(InputSpec("t", ort_type, dims), dims, rng)
        assert arr.shape == dims
        assert np.any(arr != 0)
        if arr.dtype.kind in "iu":
            assert arr.min() >= 0 and arr.max() < INT_INPUT_HIGH
    expected = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(bool)": np.bool_, "tensor(int64)": np.int64}
    if ort_type in expected:
        assert make_input(InputSpec("t", ort_type, (3,)), (3,), rng).dtype == expected[ort_type]


def test_float_inputs_are_random() -> None:
    feeds = make_feeds([InputSpec("x", "tensor(float)", (64,))], {"x": (64,)})
    assert np.unique(feeds["x"]).size == 64


def test_unsupported_input_type() -> None:
    with pytest.raises(InvalidRequestError, match="cannot generate"):
        make_input(InputSpec("s", "seq(tensor(float))", (1,)), (1,), np.random.default_rng(0))


# --------------------------------------------------------------------------- profile parsing


def test_parse_profile_groups_runs_and_skips_warmup() -> None:
    def run(ts: int, dur: int) -> dict[str, object]:
        return {"cat": "Session", "name": "model_run", "ts": ts, "dur": dur}

    def node(name: str, ts: int, dur: int, op: str, in_use: int) -> dict[str, object]:
        return {
            "cat": "Node",
            "name": f"{name}_kernel_time",
            "ts": ts,
            "dur": dur,
            "args": {
                "op_name": op,
                "provider": "CPUExecutionProvider",
                "input_type_shape": [{"float": [2, 4]}, {"float": [4, 4]}],
                "output_type_shape": [{"float": [2, 4]}],
                "mem_bytes_in_use": str(in_use),
            },
        }

    events = [
        run(0, 100), node("a", 10, 90, "Gemm", 10),  # group 0 warm-up (skipped)
        run(200, 100), node("a", 210, 10, "Gemm", 20), node("b", 230, 5, "Relu", 30),
        run(400, 100), node("a", 410, 14, "Gemm", 20), node("b", 430, 7, "Relu", 25),
        run(600, 100), node("a", 610, 99, "Gemm", 99),  # group 1 warm-up (skipped)
        run(800, 100), node("a", 810, 40, "Gemm", 70),
    ]
    groups = parse_profile(events, [3, 2])
    (k0, peak0), (k1, peak1) = groups
    assert [(k.node_name, k.op_type, k.median_us, k.calls) for k in k0] == [("a", "Gemm", 12.0, 1), ("b", "Relu", 6.0, 1)]
    assert k0[0].input_shapes == ((2, 4), (4, 4)) and k0[0].output_shapes == ((2, 4),)
    assert peak0 == 30
    assert [(k.node_name, k.median_us) for k in k1] == [("a", 40.0)] and peak1 == 70


# --------------------------------------------------------------------------- real sessions


def test_run_measurement_on_mlp(tmp_path: object) -> None:
    model = mlp(width=128, layers=3)
    result, opt_path = run_measurement(
        model,
        shapes=None,
        batch_sizes=[1, 4],
        config=RunnerConfig(save_optimized_graph=True, profile_runs=5),
        timing=FAST,
        workdir=str(tmp_path),
    )
    assert [b.batch_size for b in result.batches] == [1, 4]
    for b in result.batches:
        lat = b.latency
        assert lat.p50_ms > 0 and lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
        assert lat.n >= 3 * 20 - 20  # at least the stable windows (a partial last one at budget end)
        assert b.throughput_examples_per_s == pytest.approx(b.batch_size / (lat.p50_ms / 1e3))
        assert b.input_shapes == {"x": (b.batch_size, 128)}
        assert b.peak_memory_bytes > 0
        # The profile shows the optimized graph: MatMul+Add fused into one kernel per layer.
        assert len(b.kernels) >= 3
        assert all(k.median_us > 0 and k.calls == 1 for k in b.kernels)
        assert any(k.op_type in ("FusedGemm", "Gemm", "FusedMatMul", "MatMul") for k in b.kernels)
        gemm = next(k for k in b.kernels if k.op_type in ("FusedGemm", "Gemm", "MatMul", "FusedMatMul"))
        assert gemm.input_shapes[0] == (b.batch_size, 128)
    assert opt_path is not None
    assert result.onnxruntime_version == ort.__version__
    assert result.session_load_ms > 0
    round_trip = MeasurementResult.from_dict(result.to_dict())
    assert round_trip.batches == result.batches


def test_run_measurement_mixed_dtypes_and_symbolic_dims(tmp_path: object) -> None:
    result, _ = run_measurement(
        mixed_inputs(),
        shapes=ShapeRequest(dim_values={"S": 6}),
        batch_sizes=[2],
        config=RunnerConfig(profile_nodes=False),
        timing=TimingOptions(warmup_runs=1, runs_per_window=10, stable_windows=1, time_budget_s=0.5),
        workdir=str(tmp_path),
    )
    (b,) = result.batches
    assert b.input_shapes == {"x": (2, 6, 8), "ids": (2, 6), "mask": (2, 6)}
    assert b.kernels == ()


def test_missing_provider_is_refused(tmp_path: object) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    with pytest.raises(InvalidRequestError, match="not available"):
        run_measurement(
            mlp(), shapes=None, batch_sizes=[1], config=RunnerConfig(provider="CUDAExecutionProvider"), timing=FAST, workdir=str(tmp_path)
        )


def test_kernel_times_fit_inside_a_run(tmp_path: object) -> None:
    """Per-kernel medians, summed, are most of one run's latency: not of many runs (calls and
    medians are per run), and not a sliver (every kernel of a compute-bound model is there)."""
    model = convnet(channels=16, size=64)
    result, _ = run_measurement(
        model, shapes=None, batch_sizes=[1], config=RunnerConfig(profile_runs=20), timing=FAST, workdir=str(tmp_path)
    )
    kernels_total_ms = sum(k.median_us * k.calls for k in result.batches[0].kernels) / 1e3
    p50_ms = result.batches[0].latency.p50_ms
    assert 0.3 * p50_ms < kernels_total_ms < 2.0 * p50_ms, (kernels_total_ms, p50_ms)


def test_peak_memory_grows_with_batch(tmp_path: object) -> None:
    """A 64x larger batch on a 512x512 activation graph needs measurably more memory."""
    result, _ = run_measurement(
        convnet(channels=16, size=64),
        shapes=None,
        batch_sizes=[1, 64],
        config=RunnerConfig(profile_nodes=False),
        timing=TimingOptions(warmup_runs=1, runs_per_window=3, stable_windows=1, time_budget_s=0.5),
        workdir=str(tmp_path),
    )
    small, big = result.batches
    # batch 64: input 3x64x64 floats + two 16x64x64 activations per example ~ 0.55 MB -> ~35 MB.
    activation_bytes = 64 * (3 + 16 + 16) * 64 * 64 * 4
    assert big.peak_memory_bytes - small.peak_memory_bytes > activation_bytes * 0.3


def test_profile_runs_shrink_for_slow_models() -> None:
    assert profile_run_count(10, p50_ms=1.0, time_budget_s=20) == 11  # 10 + warm-up
    assert profile_run_count(10, p50_ms=1000.0, time_budget_s=20) == 6  # 5 s of profiling
    assert profile_run_count(10, p50_ms=30_000.0, time_budget_s=20) == 1  # one run, no warm-up
    # calibration's 1.5 s budget: a 400 ms model is profiled once, after a warm-up run
    assert profile_run_count(10, p50_ms=400.0, time_budget_s=1.5) == 2
    assert profile_run_count(10, p50_ms=800.0, time_budget_s=1.5) == 1
