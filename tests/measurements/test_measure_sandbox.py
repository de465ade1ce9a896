"""The sandboxed worker: real measurements, agreement with a plain loop, and every fault."""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from measure_models import convnet, endless_loop, external_data, huge_expand, mlp, unknown_op

from nascost.measurements.protocol import TimingOptions
from nascost.measurements.quiet import QuietGate
from nascost.measurements.runner import RunnerConfig
from nascost.measurements.sandbox import GIB, SandboxLimits, run_sandboxed, worker_header
from nascost.predictors.errors import (
    CancelledError,
    InvalidModelError,
    InvalidRequestError,
    LimitExceededError,
    MeasurementTimeoutError,
    UnsafeModelError,
    WorkerCrashedError,
)
from nascost.predictors.shapes import ShapeRequest

QUICK = TimingOptions(warmup_runs=2, runs_per_window=10, stable_windows=2, stability_threshold_pct=20.0, time_budget_s=1.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _plain_loop_p50_ms(model: bytes, feeds: dict[str, np.ndarray], *, seconds: float) -> float:
    """The reference: a plain onnxruntime loop with the runner's default settings."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for _ in range(5):
        sess.run(None, feeds)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


@pytest.mark.parametrize(
    ("name", "model", "shape"),
    [
        ("mlp256", mlp(width=256, layers=4), (1, 256)),
        ("convnet32", convnet(channels=16, size=32), (1, 3, 32, 32)),
        ("mlp1024", mlp(width=1024, layers=4), (8, 1024)),
    ],
)
def test_agreement_with_a_plain_onnxruntime_loop(name: str, model: bytes, shape: tuple[int, ...]) -> None:
    """nascost's p50 vs a loop written here, same settings; generous tolerance on a shared box.

    The reference is timed before and after the sandboxed measurement, and the closer of
    the two is compared (load from other processes on this machine moves both). Two rounds
    must agree before four disagree: at ~15 µs per run (mlp256) one round in three fell
    outside the tolerance, either way (ratios 0.65 and 1.37 among 0.80-1.07; on the noisy
    AVX-512 host of 2026-12-01 1.64 and 1.36 beside 1.06, and two of three disagreeing
    failed the median of three then), while a real bias moves every round.
    """
    feeds = {"x": np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
    timing = TimingOptions(warmup_runs=5, runs_per_window=0, stable_windows=3, stability_threshold_pct=5.0, time_budget_s=3.0)
    ratios: list[float] = []
    while sum(0.75 < r < 1.33 for r in ratios) < 2 and sum(not 0.75 < r < 1.33 for r in ratios) < 4:
        before = _plain_loop_p50_ms(model, feeds, seconds=0.6)
        result = run_sandboxed(model, batch_sizes=[shape[0]], config=RunnerConfig(profile_nodes=False), timing=timing)
        after = _plain_loop_p50_ms(model, feeds, seconds=0.6)
        p50 = result.batches[0].latency.p50_ms
        ratios.append(min((p50 / before, p50 / after), key=lambda r: abs(np.log(r))))
        print(f"{name}: nascost p50 {p50:.4f} ms, plain loop {before:.4f}/{after:.4f} ms, ratio {ratios[-1]:.3f}")
    assert sum(0.75 < r < 1.33 for r in ratios) >= 2, ratios


def test_sandboxed_measurement_reports_everything() -> None:
    stages: list[str] = []
    result = run_sandboxed(
        mlp(width=128, layers=2),
        batch_sizes=[1, 2],
        config=RunnerConfig(save_optimized_graph=True, profile_runs=3),
        timing=QUICK,
        progress=lambda stage, frac, msg: stages.append(stage),
    )
    assert [b.batch_size for b in result.batches] == [1, 2]
    assert all(b.latency.p50_ms > 0 and b.kernels for b in result.batches)
    assert result.optimized_model is not None and result.optimized_model[:2] != b""
    assert stages[0] == "started" and "timing" in stages and "profiling" in stages and stages[-1] == "done"


def test_external_data_is_refused_before_any_worker_starts() -> None:
    started: list[int] = []
    with pytest.raises(UnsafeModelError, match="external data"):
        run_sandboxed(external_data(), timing=QUICK, on_worker_start=started.append)
    assert started == []


def test_garbage_bytes_are_an_invalid_model() -> None:
    with pytest.raises(InvalidModelError):
        run_sandboxed(b"\x08\x07 this is not onnx", timing=QUICK)


def test_runtime_refusal_is_an_invalid_model_with_one_line() -> None:
    with pytest.raises(InvalidModelError) as info:
        run_sandboxed(unknown_op(), timing=QUICK)
    message = str(info.value)
    assert "NoSuchOperator" in message and "\n" not in message and "Traceback" not in message


def test_bad_batch_for_fixed_batch_graph_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match="fixed at 1"):
        run_sandboxed(mlp(width=16, layers=1, batch=1), batch_sizes=[4], timing=QUICK)


def test_memory_exhaustion_is_a_limit() -> None:
    pids: list[int] = []
    with pytest.raises(LimitExceededError, match="memory"):
        run_sandboxed(
            huge_expand(31),  # 8 GiB of float32
            timing=QUICK,
            limits=SandboxLimits(address_space_bytes=2 * GIB, wall_timeout_s=60),
            on_worker_start=pids.append,
        )
    assert pids and not _alive(pids[0])


def test_wall_clock_timeout_kills_the_worker() -> None:
    pids: list[int] = []
    t0 = time.monotonic()
    with pytest.raises(MeasurementTimeoutError, match="3 s"):
        run_sandboxed(endless_loop(), timing=QUICK, limits=SandboxLimits(wall_timeout_s=3), on_worker_start=pids.append)
    assert time.monotonic() - t0 < 6
    assert pids and not _alive(pids[0])


def test_cpu_time_limit() -> None:
    with pytest.raises(LimitExceededError, match="CPU"):
        run_sandboxed(endless_loop(), timing=QUICK, limits=SandboxLimits(cpu_time_s=1, wall_timeout_s=30))


def test_killed_worker_is_a_crash() -> None:
    pids: list[int] = []

    def kill_when_timing(stage: str, fraction: float, message: str) -> None:
        if stage == "timing" and pids:
            os.kill(pids[0], signal.SIGKILL)

    with pytest.raises(WorkerCrashedError, match="SIGKILL"):
        run_sandboxed(
            endless_loop(),
            timing=QUICK,
            limits=SandboxLimits(wall_timeout_s=30),
            on_worker_start=pids.append,
            progress=kill_when_timing,
        )


def test_cancellation_stops_the_worker() -> None:
    cancel = threading.Event()
    pids: list[int] = []

    def cancel_when_timing(stage: str, fraction: float, message: str) -> None:
        if stage == "timing":
            threading.Timer(0.2, cancel.set).start()

    t0 = time.monotonic()
    with pytest.raises(CancelledError):
        run_sandboxed(
            endless_loop(),
            timing=QUICK,
            limits=SandboxLimits(wall_timeout_s=30),
            cancel=cancel,
            on_worker_start=pids.append,
            progress=cancel_when_timing,
        )
    assert time.monotonic() - t0 < 10
    assert pids and not _alive(pids[0])


def test_parent_is_fine_after_the_faults() -> None:
    """After every fault above, a normal measurement still works and no worker is left."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    assert not [p for p in pids if _is_child(p)]
    result = run_sandboxed(mlp(width=64, layers=1), timing=QUICK, config=RunnerConfig(profile_nodes=False))
    assert result.batches[0].latency.p50_ms > 0
    children = [p for p in os.listdir("/proc") if p.isdigit() and _is_child(int(p))]
    assert children == []


def _is_child(pid: int) -> bool:
    """A live measurement worker started by this process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().split(")")[-1].split()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        return int(fields[1]) == os.getpid() and fields[0] != "Z" and b"nascost.measurements._worker" in cmdline
    except (OSError, ValueError, IndexError):
        return False


def test_worker_environment_keeps_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from nascost.measurements.sandbox import _worker_env

    monkeypatch.setenv("NASCOST_AUTH_TOKEN", "s3cret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    env = _worker_env()
    assert "s3cret" not in env.values()
    assert env["OMP_NUM_THREADS"] == "1" and env["PATH"] == os.environ["PATH"]


def test_a_sent_result_stands_even_if_teardown_crashes(tmp_path: object) -> None:
    from nascost.measurements.sandbox import _outcome

    result = run_sandboxed(mlp(width=16, layers=1), timing=QUICK, config=RunnerConfig(profile_nodes=False))
    message = {"type": "result", "result": result.to_dict(), "optimized_model_file": None}
    again = _outcome([message], -signal.SIGKILL, 1, "/nonexistent", str(tmp_path), SandboxLimits())
    assert again.batches == result.batches
    with pytest.raises(WorkerCrashedError, match="SIGSEGV"):
        _outcome([], -signal.SIGSEGV, 1, "/nonexistent", str(tmp_path), SandboxLimits())
    with pytest.raises(LimitExceededError):
        _outcome([{"type": "error", "kind": "limit", "stage": "timing", "message": "std::bad_alloc"}], 3, 1, "/x", str(tmp_path), SandboxLimits())


def test_the_worker_measures_without_importing_onnx(tmp_path: Any) -> None:
    """onnx pulls ml_dtypes, about 1 s of every worker's start on the hosts of 2026-12-01:
    the worker reads its shapes from ``nascost.predictors.shapes`` and runs onnxruntime only."""
    import json
    import subprocess
    import sys

    model = convnet()
    # the header run_sandboxed sends, shapes included (the import this test is about) and a
    # quiet gate (its probe model arrives as bytes: the worker builds nothing with onnx)
    header = worker_header(
        len(model),
        [2],
        ShapeRequest(dim_values={"N": 2}),
        RunnerConfig(profile_nodes=True),
        QUICK,
        SandboxLimits(),
        QuietGate(None),
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nascost.measurements._worker", "--fd", "1"],
        input=header + model,
        capture_output=True,
        timeout=120,
        check=True,
        cwd=tmp_path,  # the worker writes its profile trace in its cwd
    )
    messages = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert messages[-1]["type"] == "result", messages[-1]
    assert messages[-1]["result"]["quiet"]["probe_ms"] > 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported
    assert not imported & {"onnx", "ml_dtypes", "nascost.predictors.graph"}
