"""The quiet gate: the probe's time against a plain onnxruntime loop, the wait, the baseline."""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnxruntime as ort
import pytest
from measure_models import convnet

from nascost.measurements.protocol import TimingOptions
from nascost.measurements.quiet import (
    POLL_S,
    PROBE_DIM,
    QUIET_WITHIN,
    QuietBaseline,
    QuietGate,
    QuietReport,
    probe_model,
)
from nascost.measurements.runner import MeasurementResult, RunnerConfig
from nascost.measurements.sandbox import run_sandboxed
from nascost.predictors.errors import InvalidRequestError

QUICK = TimingOptions(warmup_runs=1, runs_per_window=5, stable_windows=1, stability_threshold_pct=50.0, time_budget_s=0.5)
CONFIG = RunnerConfig(profile_nodes=False)


def _plain_matmul_ms() -> float:
    """The probe's product timed by a plain 1-thread onnxruntime loop (median of 200 runs)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(probe_model(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feeds = {n: rng.standard_normal((PROBE_DIM, PROBE_DIM), dtype=np.float32) for n in ("a", "b")}
    out = sess.run(None, feeds)[0]
    np.testing.assert_allclose(out, feeds["a"] @ feeds["b"], rtol=1e-3, atol=1e-3)  # it is the product
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def test_a_gate_without_baseline_probes_once_and_times_the_model() -> None:
    res = run_sandboxed(convnet(), timing=QUICK, config=CONFIG, quiet=QuietGate(None))
    assert res.quiet is not None and res.quiet.waited_s == 0.0
    # 2 * 256^3 FLOPs: between 10 and 1000 GFLOP/s on any CPU this runs on; and the same
    # product in a plain loop here takes a comparable time (a shared host: a factor of 3)
    assert 1e3 * 2 * PROBE_DIM**3 / 1e12 < res.quiet.probe_ms < 1e3 * 2 * PROBE_DIM**3 / 1e10
    plain = _plain_matmul_ms()
    assert plain / 3 < res.quiet.probe_ms < 3 * plain
    # and probes again right after timing, the same product
    assert res.quiet.after_ms is not None and plain / 3 < res.quiet.after_ms < 3 * plain
    assert res.batches[0].latency.p50_ms > 0
    # the report crosses the worker's pipe and comes back from plain data
    assert MeasurementResult.from_dict(res.to_dict()).quiet == res.quiet


def test_a_host_never_quiet_enough_waits_max_wait_then_measures() -> None:
    t0 = time.monotonic()
    res = run_sandboxed(convnet(), timing=QUICK, config=CONFIG, quiet=QuietGate(threshold_ms=1e-9, max_wait_s=1.5))
    wall = time.monotonic() - t0
    assert res.quiet is not None
    # it polls every POLL_S and stops before a poll would pass max_wait_s
    assert 1.5 - 2 * POLL_S <= res.quiet.waited_s <= 1.5
    assert wall >= res.quiet.waited_s and res.batches[0].latency.p50_ms > 0


def test_a_quiet_host_does_not_wait() -> None:
    res = run_sandboxed(convnet(), timing=QUICK, config=CONFIG, quiet=QuietGate(threshold_ms=1e6, max_wait_s=30))
    assert res.quiet is not None and res.quiet.waited_s == 0.0


def test_baseline_starts_at_the_fastest_probe_and_counts_quiet_measurements() -> None:
    base = QuietBaseline(max_wait_s=4.0)
    first = base.gate()
    assert first.threshold_ms is None and first.max_wait_s == 4.0
    base.update(first, QuietReport(probe_ms=0.30, waited_s=0.0))
    gate = base.gate()
    assert gate.threshold_ms == pytest.approx(0.30 * (1 + QUIET_WITHIN))
    base.update(gate, QuietReport(probe_ms=0.40, waited_s=4.0))  # timed anyway, not quiet
    base.update(gate, QuietReport(probe_ms=0.25, waited_s=1.0))  # quiet, and the new fastest
    base.update(gate, None)  # a measurement without a report changes nothing
    assert base.gate().threshold_ms == pytest.approx(0.25 * (1 + QUIET_WITHIN))
    s = base.summary()
    assert s["measurements"] == 3 and s["quiet_share"] == pytest.approx(2 / 3) and s["waited_s"] == pytest.approx(5.0)
    # the probe after timing counts too
    base.update(base.gate(), QuietReport(probe_ms=0.26, waited_s=0.0, after_ms=0.20))
    assert base.level_ms == pytest.approx(0.20) and base.probes == 5


def test_one_outlier_fast_probe_does_not_set_the_level_for_long() -> None:
    base = QuietBaseline()
    base.update(base.gate(), QuietReport(probe_ms=0.179, waited_s=0.0))  # a lucky probe
    quiet = [0.200 + 0.001 * (i % 7) for i in range(40)]  # the host's quiet phases
    levels = []
    for ms in quiet:
        base.update(base.gate(), QuietReport(probe_ms=ms, waited_s=0.0))
        levels.append(base.level_ms)
    # the fastest of up to 10 probes, the 2nd of up to 20, then the 3rd-fastest: no longer the outlier
    assert levels[8] == pytest.approx(0.179) and levels[10] == pytest.approx(0.200)
    assert levels[-1] == pytest.approx(0.200)
    assert 0.200 <= base.gate().threshold_ms / (1 + QUIET_WITHIN) <= 0.201
    assert base.summary()["probe_best_ms"] == pytest.approx(0.179)


def test_settled_means_both_probes_near_the_fastest_once_the_baseline_has_seen_enough() -> None:
    base = QuietBaseline(settle_after=3)
    ok = QuietReport(probe_ms=1.0, waited_s=0.0, after_ms=1.05)
    # the first measurements set the fastest: nothing is settled yet, however quiet
    assert [base.update(base.gate(), ok) for _ in range(3)] == [False, False, False]
    assert base.update(base.gate(), ok) is True
    limit = 1.0 * (1 + QUIET_WITHIN)
    # a slow phase that began while timing shows in the probe after it
    assert base.update(base.gate(), QuietReport(1.0, 0.0, after_ms=1.01 * limit)) is False
    assert base.update(base.gate(), QuietReport(1.01 * limit, 10.0, after_ms=1.0)) is False  # timed anyway
    assert base.update(base.gate(), QuietReport(1.0, 0.0)) is False  # no probe after timing
    assert base.update(base.gate(), QuietReport(0.99 * limit, 0.0, after_ms=0.99 * limit)) is True
    assert base.summary()["settled_share"] == pytest.approx(2 / 8)
    # reports cross the worker's pipe as plain data, with or without the probe after
    for r in (ok, QuietReport(1.0, 0.5)):
        assert QuietReport.from_dict(r.to_dict()) == r


@pytest.mark.parametrize("gate", [QuietGate(threshold_ms=0.0), QuietGate(threshold_ms=float("nan")), QuietGate(None, max_wait_s=-1)])
def test_bad_gates_are_refused_before_a_worker_starts(gate: QuietGate) -> None:
    started: list[int] = []
    with pytest.raises(InvalidRequestError):
        run_sandboxed(convnet(), timing=QUICK, config=CONFIG, quiet=gate, on_worker_start=started.append)
    assert started == []
