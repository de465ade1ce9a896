"""The measurements API: one measurement per device at a time, optimized graph counted, stored."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import onnx
import pytest
from measure_models import convnet, mlp

from nascost.measurements.api import (
    Progress,
    device_lock,
    measure,
    measure_and_store,
    measure_stream,
)
from nascost.measurements.fingerprint import local_fingerprint
from nascost.measurements.protocol import TimingOptions
from nascost.measurements.runner import MeasurementResult, RunnerConfig
from nascost.measurements.store import Store
from nascost.predictors.errors import CancelledError, LimitExceededError
from nascost.predictors.graph import digest_of

QUICK = TimingOptions(warmup_runs=2, runs_per_window=20, stable_windows=2, stability_threshold_pct=20.0, time_budget_s=0.8)


def test_measurements_of_one_device_never_overlap() -> None:
    spans: dict[str, list[float]] = {"a": [], "b": []}
    queued: list[str] = []

    def run(tag: str) -> None:
        def progress(stage: str, fraction: float, message: str) -> None:
            if stage == "queued":
                queued.append(tag)
            elif stage in ("started", "done"):
                spans[tag].append(time.monotonic())

        measure(mlp(width=128, layers=2), timing=QUICK, config=RunnerConfig(profile_nodes=False), progress=progress, device_id="lock-test")

    threads = [threading.Thread(target=run, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=60)
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    assert a1 <= b0 or b1 <= a0, spans  # the worker intervals are disjoint
    assert queued == ["b"]


def test_other_devices_do_not_wait_and_cancel_while_queued() -> None:
    cancel = threading.Event()
    with device_lock("busy"):
        with device_lock("free", timeout_s=0.1):
            pass
        with pytest.raises(LimitExceededError, match="busy"):
            measure(mlp(width=8, layers=1), timing=QUICK, device_id="busy", lock_timeout_s=0.2)
        threading.Timer(0.2, cancel.set).start()
        t0 = time.monotonic()
        with pytest.raises(CancelledError):
            measure(mlp(width=8, layers=1), timing=QUICK, device_id="busy", cancel=cancel)
        assert time.monotonic() - t0 < 5


def test_optimized_graph_is_counted_again() -> None:
    result = measure(mlp(width=64, layers=3), batch_sizes=[2], timing=QUICK, analyze_optimized=True)
    assert result.optimized_model is not None
    optimized = onnx.load_from_string(result.optimized_model)
    fused = [n for n in optimized.graph.node if n.domain == "com.microsoft"]
    assert fused, "onnxruntime should fuse MatMul+Add on CPU at level 'all'"
    analysis = result.optimized_analysis
    assert analysis is not None
    assert len(analysis.nodes) == len(optimized.graph.node)
    assert analysis.input_shapes.get("x") == (2, 64)
    # Fusion changes the kernels, not the arithmetic: MACs of 3 layers of 2x64 @ 64x64.
    assert analysis.macs == 3 * 2 * 64 * 64
    assert not analysis.unsupported
    # The kernels in the profile are the nodes of the optimized graph.
    kernel_names = {k.node_name for k in result.batches[0].kernels}
    assert kernel_names <= {n.name for n in optimized.graph.node}


def test_measure_and_store(tmp_path: Path) -> None:
    model = mlp(width=32, layers=2)
    with Store(tmp_path / "s.db") as store:
        result, ids = measure_and_store(store, model, batch_sizes=[1, 3], timing=QUICK, config=RunnerConfig(profile_runs=2))
        rows = store.measurements(graph_digest=digest_of(model))
        assert [r.id for r in rows] == ids and [r.batch_size for r in rows] == [1, 3]
        assert rows[0].fingerprint_digest == local_fingerprint().digest
        assert rows[0].p50_ms == result.batches[0].latency.p50_ms
        assert rows[1].nodes and rows[1].nodes[0]["input_shapes"][0][0] == 3


def test_optimized_convnet_counts_the_same_macs() -> None:
    """At level 'all' on CPU the convs become com.microsoft.nchwc ops (and reorders); their
    MACs are still those of the submitted convolutions (closed form)."""
    result = measure(convnet(channels=16, size=32), batch_sizes=[2], timing=QUICK, analyze_optimized=True)
    analysis = result.optimized_analysis
    assert analysis is not None
    domains = {n.domain for n in analysis.nodes}
    assert "com.microsoft.nchwc" in domains
    pixels = 32 * 32
    expected = 2 * (16 * 3 * 9 * pixels + 16 * 16 * 9 * pixels)
    assert analysis.macs == expected


_HOLDER = r"""
import sys, time
from nascost.measurements.api import device_lock
with device_lock("shared-dev", lock_dir=sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_device_lock_spans_processes(tmp_path: Path) -> None:
    """Another process holding the device's file lock makes this one wait (sidecar replicas)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), "1.0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with pytest.raises(LimitExceededError), device_lock("shared-dev", lock_dir=tmp_path, timeout_s=0.2):
        pass
    t0 = time.monotonic()
    with device_lock("shared-dev", lock_dir=tmp_path, timeout_s=10):
        waited = time.monotonic() - t0
    proc.wait(timeout=10)
    assert waited > 0.3  # it waited for the holder to let go
    with device_lock("other-dev", lock_dir=tmp_path, timeout_s=0.1):
        pass


def test_default_batch_is_the_graphs_own() -> None:
    result = measure(mlp(width=16, layers=1, batch=3), batch_sizes=[], timing=QUICK, config=RunnerConfig(profile_nodes=False))
    assert [b.batch_size for b in result.batches] == [3]
    assert result.batches[0].input_shapes == {"x": (3, 16)}


def test_measure_stream_yields_progress_then_the_result() -> None:
    items = list(measure_stream(mlp(width=32, layers=1), timing=QUICK, config=RunnerConfig(profile_runs=2)))
    *progress, last = items
    assert isinstance(last, MeasurementResult) and last.batches[0].latency.p50_ms > 0
    assert progress and all(isinstance(p, Progress) for p in progress)
    stages = [p.stage for p in progress if isinstance(p, Progress)]
    assert stages[0] == "started" and stages[-1] == "done"


def test_measure_stream_cancelled_by_the_caller() -> None:
    from measure_models import endless_loop

    started = time.monotonic()
    stream = measure_stream(endless_loop(), timing=QUICK, cancelled=lambda: time.monotonic() - started > 1.5)
    seen: list[str] = []
    with pytest.raises(CancelledError):
        for item in stream:
            assert isinstance(item, Progress)
            seen.append(item.stage)
    assert "timing" in seen and time.monotonic() - started < 10


def test_closing_the_stream_early_stops_the_worker() -> None:
    import os

    from measure_models import endless_loop

    stream = measure_stream(endless_loop(), timing=QUICK)
    pid = None
    for item in stream:
        assert isinstance(item, Progress)
        if item.stage == "started":
            pid = int(item.message.split()[-1])
        if item.stage == "timing":
            break
    stream.close()
    assert pid is not None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"worker {pid} still alive after the stream was closed")
