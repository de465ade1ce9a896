"""The SQLite store: round trips, atomic multi-row records, concurrency, crash safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nascost.measurements.protocol import LatencyStats
from nascost.measurements.runner import BatchResult, KernelTiming, MeasurementResult
from nascost.measurements.store import SCHEMA_VERSION, Store
from nascost.predictors.errors import (
    DeviceExistsError,
    InvalidRequestError,
    LimitExceededError,
    UnknownDeviceError,
)

FINGERPRINT = {"cpu_model": "Test CPU", "logical_cores": 2, "memory_bytes": 1 << 34}


def make_result(batches: tuple[int, ...] = (1, 8), p50_ms: float = 2.0) -> MeasurementResult:
    out = []
    for b in batches:
        lat = LatencyStats(
            p50_ms=p50_ms * b, p90_ms=p50_ms * b * 1.1, p99_ms=p50_ms * b * 1.3, mean_ms=p50_ms * b * 1.02,
            std_ms=0.1, min_ms=p50_ms * b * 0.9, max_ms=p50_ms * b * 2, n=90, windows=4, stable=b == 1,
            window_spread_pct=1.5, total_runs=120,
        )
        kernels = (
            KernelTiming("fused mm0/MatMulAddFusion", "FusedGemm", "CPUExecutionProvider", 12.5, 1, ((b, 64), (64, 64)), ((b, 64),)),
            KernelTiming("relu0", "Relu", "CPUExecutionProvider", 1.5, 1, ((b, 64),), ((b, 64),)),
        )
        out.append(
            BatchResult(b, lat, b / (lat.p50_ms / 1e3), 1000 * b, kernels, arena_peak_bytes=500 * b, input_shapes={"x": (b, 64)})
        )
    return MeasurementResult(tuple(out), 12.0, None, "CPUExecutionProvider", 1, 1, "all", "1.32.0")


def test_measurement_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.schema_version == SCHEMA_VERSION
        result = make_result()
        ids = store.add_measurement(result, graph_digest="sha256:g", device_id="local", fingerprint=FINGERPRINT, fingerprint_digest="sha256:f")
        assert len(ids) == 2
        rows = store.measurements(graph_digest="sha256:g")
        assert [r.id for r in rows] == ids
        for row, batch in zip(rows, result.batches, strict=True):
            assert row.batch_size == batch.batch_size and row.run_batches == 2
            assert row.p50_ms == batch.latency.p50_ms and row.p99_ms == batch.latency.p99_ms and row.n == 90
            assert row.stable == batch.latency.stable and row.windows == 4
            assert row.throughput_examples_per_s == pytest.approx(batch.throughput_examples_per_s)
            assert row.peak_memory_bytes == batch.peak_memory_bytes and row.arena_peak_bytes == batch.arena_peak_bytes
            assert row.fingerprint == FINGERPRINT and row.fingerprint_digest == "sha256:f"
            assert row.intra_op_threads == 1 and row.optimization_level == "all" and row.onnxruntime_version == "1.32.0"
            assert row.input_shapes == {"x": (batch.batch_size, 64)}
            assert [KernelTiming.from_dict(n) for n in row.nodes] == list(batch.kernels)
        assert store.get_measurement(ids[0]) == rows[0]
        assert store.measurements(device_id="elsewhere") == []
        assert store.count_measurements() == 2


def test_empty_measurement_is_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store, pytest.raises(InvalidRequestError):
        store.add_measurement(make_result(batches=()), graph_digest="g", device_id="d", fingerprint={}, fingerprint_digest="f")


def test_wal_mode_and_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        Store(path)


def test_graph_cache_put_get_and_lru_cap(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", graph_cache_bytes=1000) as store:
        store.put_graph("a", b"a" * 400)
        time.sleep(0.01)
        store.put_graph("b", b"b" * 400)
        time.sleep(0.01)
        assert store.get_graph("a") == b"a" * 400  # 'a' is now the most recently used
        time.sleep(0.01)
        store.put_graph("c", b"c" * 400)  # over the cap: evicts 'b', the least recently used
        assert store.has_graph("a") and store.has_graph("c") and not store.has_graph("b")
        assert store.get_graph("b") is None
        assert store.graph_cache_size_bytes() == 800
        with pytest.raises(LimitExceededError):
            store.put_graph("big", b"x" * 1001)


def test_devices(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.put_device("jetson", {"peak_flops": 1e12, "bandwidth": 1e11})
        with pytest.raises(DeviceExistsError):
            store.put_device("jetson", {})
        store.put_device("jetson", {"peak_flops": 2e12}, replace=True)
        assert store.get_device("jetson") == {"peak_flops": 2e12}
        assert store.devices() == {"jetson": {"peak_flops": 2e12}}
        assert store.delete_device("jetson") and not store.delete_device("jetson")
        with pytest.raises(UnknownDeviceError):
            store.get_device("jetson")


def test_artifacts_index(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.add_artifact("local", "v1", "/data/a/v1", {"rmspe": 0.1})
        time.sleep(0.01)
        store.add_artifact("local", "v2", "/data/a/v2", {"rmspe": 0.05})
        store.add_artifact("other", "v1", "/data/b/v1", {})
        assert [a.version for a in store.artifacts("local")] == ["v2", "v1"]
        latest = store.latest_artifact("local")
        assert latest is not None and latest.metadata == {"rmspe": 0.05} and latest.path == "/data/a/v2"
        assert store.latest_artifact("none") is None
        with pytest.raises(InvalidRequestError):
            store.add_artifact("local", "v1", "/x", {})


def test_peaks_cache(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.get_peaks("sha256:f", 1) is None
        store.put_peaks("sha256:f", 1, {"gemm_flops_per_s": 1e10})
        store.put_peaks("sha256:f", 1, {"gemm_flops_per_s": 2e10})
        assert store.get_peaks("sha256:f", 1) == {"gemm_flops_per_s": 2e10}
        assert store.get_peaks("sha256:f", 2) is None


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    """A record whose second row fails to encode is rolled back entirely."""
    with Store(tmp_path / "s.db") as store:
        good = make_result(batches=(1,))
        bad_batch = BatchResult(2, good.batches[0].latency, 1.0, 1, input_shapes={"x": (object(),)})  # type: ignore[arg-type]
        bad = MeasurementResult((good.batches[0], bad_batch), 1.0, None, "CPUExecutionProvider", 1, 1, "all", "1.32.0")
        with pytest.raises(TypeError):
            store.add_measurement(bad, graph_digest="g", device_id="d", fingerprint={}, fingerprint_digest="f")
        assert store.count_measurements() == 0
        store.add_measurement(good, graph_digest="g", device_id="d", fingerprint={}, fingerprint_digest="f")
        assert store.count_measurements() == 1


def test_concurrent_writer_and_readers_never_see_half_a_record(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    stop = threading.Event()
    problems: list[str] = []
    reads = [0]

    def writer() -> None:
        for i in range(150):
            store.add_measurement(
                make_result(batches=(1, 2, 4), p50_ms=1.0 + i), graph_digest=f"g{i % 5}", device_id="local",
                fingerprint=FINGERPRINT, fingerprint_digest="f",
            )
        stop.set()

    def reader() -> None:
        while not stop.is_set():
            rows = store.measurements()
            by_run: dict[str, int] = {}
            for r in rows:
                by_run[r.run_id] = by_run.get(r.run_id, 0) + 1
                if r.run_batches != 3:
                    problems.append(f"run_batches {r.run_batches}")
            for run_id, count in by_run.items():
                if count != 3:
                    problems.append(f"run {run_id} has {count} of 3 rows")
            reads[0] += 1

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not problems, problems[:5]
    assert reads[0] > 3
    assert store.count_measurements() == 450
    store.close()


_WRITER = r"""
import sys
sys.path.insert(0, {tests!r})
from test_measure_store import make_result
from nascost.measurements.store import Store
store = Store({path!r})
i = 0
while True:
    ids = store.add_measurement(make_result(batches=(1, 2, 4), p50_ms=1.0 + i), graph_digest="g", device_id="local",
                                fingerprint={{"i": i}}, fingerprint_digest="f")
    print(" ".join(map(str, ids)), flush=True)
    i += 1
"""


def test_killed_writer_loses_nothing_committed(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    Store(path).close()
    code = _WRITER.format(tests=os.path.dirname(__file__), path=path)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    committed: list[int] = []
    assert proc.stdout is not None
    try:
        while len(committed) < 3 * 60:
            line = proc.stdout.readline()
            assert line, "writer died early"
            committed.extend(int(x) for x in line.split())
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: it is writing the next record now
        proc.wait()
    with Store(path) as store:
        assert store.integrity_ok()
        rows = store.measurements()
        ids = {r.id for r in rows}
        assert set(committed) <= ids
        by_run: dict[str, int] = {}
        for r in rows:
            by_run[r.run_id] = by_run.get(r.run_id, 0) + 1
            assert json.dumps(r.fingerprint) and r.nodes
        assert all(c == 3 for c in by_run.values())
        # The store still takes writes after the crash.
        store.add_measurement(make_result(), graph_digest="g", device_id="local", fingerprint={}, fingerprint_digest="f")


_BURST = r"""
import sys
sys.path.insert(0, {tests!r})
from test_measure_store import make_result
from nascost.measurements.store import Store
store = Store({path!r})
for i in range(40):
    store.add_measurement(make_result(batches=(1, 2)), graph_digest="g{who}", device_id="local",
                          fingerprint={{}}, fingerprint_digest="f")
    store.put_graph("{who}-%d" % i, b"x" * 100)
store.close()
"""


def test_two_writer_processes_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    Store(path).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", _BURST.format(tests=os.path.dirname(__file__), path=path, who=who)])
        for who in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with Store(path) as store:
        assert store.integrity_ok()
        assert len(store.measurements(graph_digest="ga")) == 80 and len(store.measurements(graph_digest="gb")) == 80
        assert store.graph_cache_size_bytes() == 2 * 40 * 100
