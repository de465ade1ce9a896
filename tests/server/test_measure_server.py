"""Measure through a real server: results, the store, and faults that must not hurt it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest

from nascost.client import Client, InvalidArgument, NascostClientError, NotFound
from nascost.measurements.store import Store
from nascost.server.app import create_server
from nascost.server.config import ServerConfig
from nascost.server.demo import tiny_resnet
from nascost.v1 import measurement_pb2
from tests.measurements.measure_models import endless_loop, external_data, huge_expand, mlp

QUICK = measurement_pb2.MeasureOptions(
    time_budget_s=1.0, warmup_runs=2, runs_per_window=10, stable_windows=2, stability_threshold_pct=50.0
)


@pytest.fixture(scope="module")
def measuring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("measure-data")
    config = ServerConfig(data_dir=data_dir, workers=4, measure_timeout_s=6.0, measure_memory_bytes=2 << 30)
    server, port, _ = create_server("127.0.0.1:0", config)
    yield f"127.0.0.1:{port}", data_dir
    server.stop(grace=None)


def _healthy_and_store_intact(target: str, data_dir: Path, at_least: int) -> None:
    with Client(target) as c:
        assert c.health() == "SERVING"
    store = Store(data_dir / "nascost.sqlite3")
    assert store.count_measurements() >= at_least


def test_measure_streams_progress_and_stores_the_result(measuring_server: tuple[str, Path]) -> None:
    target, data_dir = measuring_server
    stages: list[str] = []
    options = measurement_pb2.MeasureOptions()
    options.CopyFrom(QUICK)
    options.batch_sizes.extend([1, 4])
    options.profile_nodes = True
    options.count_optimized_graph = True
    with Client(target) as c:
        m = c.measure_result(tiny_resnet(), options=options, on_progress=lambda p: stages.append(p.stage))
    assert "timing" in stages
    assert [b.batch_size for b in m.batches] == [1, 4]
    for b in m.batches:
        assert 0 < b.min_ms <= b.p50_ms <= b.p90_ms <= b.p99_ms <= b.max_ms
        assert b.n >= 10
        assert b.throughput_examples_per_s == pytest.approx(1000 * b.batch_size / b.p50_ms, rel=1e-6)
        assert b.peak_memory_bytes > 0
    assert m.batches[1].p50_ms > m.batches[0].p50_ms  # 4 images cost more than 1
    assert {k.op_type for k in m.batches[0].kernels} & {"Conv", "FusedConv"}
    assert m.provenance.source == "measured" and m.provenance.samples == m.batches[0].n
    assert m.optimized_graph is not None and m.optimized_graph["macs"] > 0
    d = m.to_dict()
    assert {"p50", "p90", "p99", "mean", "n"} <= set(d["latency_ms"]) and isinstance(d["nodes"], list)
    store = Store(data_dir / "nascost.sqlite3")
    rows = store.measurements(graph_digest=m.graph_digest)
    assert {r.batch_size for r in rows} == {1, 4}


def test_unknown_or_unmeasurable_device(measuring_server: tuple[str, Path]) -> None:
    target, _ = measuring_server
    with Client(target) as c, pytest.raises(NotFound):
        c.measure_result(mlp(), device_id="no-such-device", options=QUICK)


@pytest.mark.parametrize(
    ("model", "code", "needle"),
    [
        (huge_expand(), grpc.StatusCode.RESOURCE_EXHAUSTED, "memory"),
        (endless_loop(), grpc.StatusCode.DEADLINE_EXCEEDED, ""),
        (external_data(), grpc.StatusCode.INVALID_ARGUMENT, "external data"),
    ],
    ids=["out-of-memory", "timeout", "external-data"],
)
def test_faults_give_clear_errors_and_server_survives(
    measuring_server: tuple[str, Path], model: bytes, code: grpc.StatusCode, needle: str
) -> None:
    target, data_dir = measuring_server
    before = Store(data_dir / "nascost.sqlite3").count_measurements()
    with Client(target) as c, pytest.raises(NascostClientError) as err:
        c.measure_result(model, options=QUICK, dim_values={"N": 1})
    assert err.value.code == code, err.value.details
    assert needle in err.value.details.lower()
    assert "Traceback" not in err.value.details
    _healthy_and_store_intact(target, data_dir, before)


def test_killed_worker(measuring_server: tuple[str, Path]) -> None:
    target, data_dir = measuring_server
    before = Store(data_dir / "nascost.sqlite3").count_measurements()

    def kill_worker() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for p in psutil.Process().children(recursive=True):
                if "nascost.measurements._worker" in " ".join(p.cmdline()):
                    time.sleep(0.3)
                    p.kill()
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker)
    killer.start()
    with Client(target) as c, pytest.raises(InvalidArgument, match=r"(?i)signal|killed|crash"):
        c.measure_result(endless_loop(), options=QUICK)
    killer.join()
    _healthy_and_store_intact(target, data_dir, before)


def test_client_deadline_stops_the_measurement(measuring_server: tuple[str, Path]) -> None:
    target, data_dir = measuring_server
    with Client(target) as c, pytest.raises(NascostClientError) as err:
        c.measure_result(endless_loop(), options=QUICK, timeout=2.0)
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 15  # the worker is killed, not left running
    while time.monotonic() < deadline:
        if not any("nascost.measurements._worker" in " ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)):
            break
        time.sleep(0.1)
    else:
        pytest.fail("measurement worker still running after the client's deadline")
    _healthy_and_store_intact(target, data_dir, 0)
