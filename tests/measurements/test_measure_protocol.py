"""The timing protocol, driven by a fake clock: windows, stability, budget, statistics."""

from __future__ import annotations

import numpy as np
import pytest

from nascost.measurements.protocol import (
    ADAPTIVE_MIN_RUNS,
    TimingOptions,
    adaptive_runs,
    percentile,
    spread_pct,
    time_runs,
)
from nascost.predictors.errors import InvalidRequestError


class FakeModel:
    """A clock and a ``run_once`` that advances it by scripted durations (seconds)."""

    def __init__(self, durations: list[float], default: float | None = None) -> None:
        self.t = 0.0
        self.durations = list(durations)
        self.default = default
        self.calls = 0

    def clock(self) -> float:
        return self.t

    def run_once(self) -> None:
        self.calls += 1
        if self.durations:
            self.t += self.durations.pop(0)
        elif self.default is not None:
            self.t += self.default
        else:
            raise AssertionError("run_once called more often than scripted")


def test_constant_model_is_stable_after_exactly_k_windows() -> None:
    warm = [0.050] * 5  # slow warm-up runs must not reach the statistics
    fake = FakeModel(warm + [0.001] * 30)
    opts = TimingOptions(warmup_runs=5, runs_per_window=10, stable_windows=3, time_budget_s=100)
    stats = time_runs(fake.run_once, opts, clock=fake.clock)
    assert fake.calls == 35
    assert stats.stable and stats.windows == 3 and stats.n == 30 and stats.total_runs == 30
    assert stats.p50_ms == pytest.approx(1.0)
    assert stats.max_ms == pytest.approx(1.0)
    assert stats.std_ms == pytest.approx(0.0, abs=1e-9)
    assert stats.window_spread_pct == pytest.approx(0.0, abs=1e-9)


def test_runs_until_last_k_window_medians_agree() -> None:
    # Window medians: 3 ms, 2 ms, 1 ms, 1.02 ms, 1.01 ms -> stable after window 5 (within 5 %).
    medians = [0.003, 0.002, 0.001, 0.00102, 0.00101]
    script = [m for m in medians for _ in range(10)]
    fake = FakeModel(script)
    opts = TimingOptions(warmup_runs=0, runs_per_window=10, stable_windows=3, stability_threshold_pct=5.0, time_budget_s=100)
    stats = time_runs(fake.run_once, opts, clock=fake.clock)
    assert stats.stable and stats.windows == 5
    assert stats.n == 30 and stats.total_runs == 50
    # Statistics come from the last three windows only.
    last = np.array(script[20:]) * 1e3
    assert stats.p50_ms == pytest.approx(float(np.percentile(last, 50)))
    assert stats.mean_ms == pytest.approx(float(last.mean()))
    assert stats.std_ms == pytest.approx(float(last.std()))
    assert stats.window_spread_pct == pytest.approx((1.02 - 1.0) / 1.01 * 100)


def test_threshold_is_respected() -> None:
    # Medians 1.00, 1.04, 1.08: spread 0.08 / 1.04 = 7.7 % -> not stable at 5 %, stable at 10 %.
    script = [m for m in (0.001, 0.00104, 0.00108) for _ in range(10)]
    strict = TimingOptions(warmup_runs=0, runs_per_window=10, stable_windows=3, stability_threshold_pct=5.0, time_budget_s=0.030)
    fake = FakeModel(script)
    assert not time_runs(fake.run_once, strict, clock=fake.clock).stable
    lenient = TimingOptions(warmup_runs=0, runs_per_window=10, stable_windows=3, stability_threshold_pct=10.0, time_budget_s=1)
    fake = FakeModel(script)
    stats = time_runs(fake.run_once, lenient, clock=fake.clock)
    assert stats.stable and stats.window_spread_pct == pytest.approx(0.08 / 1.04 * 100)


def test_budget_ends_an_unstable_measurement() -> None:
    # Alternating 1 ms / 2 ms windows never agree; the 1 s budget stops it.
    pattern = [0.001] * 10 + [0.002] * 10
    fake = FakeModel(pattern * 1000)
    opts = TimingOptions(warmup_runs=0, runs_per_window=10, stable_windows=3, time_budget_s=1.0)
    stats = time_runs(fake.run_once, opts, clock=fake.clock)
    assert not stats.stable
    assert 0.99 <= fake.t <= 1.01  # stopped right at the budget
    # The last three medians are (1, 2, 1) or (2, 1, 2) ms: spread 1/1 or 1/2 of the median.
    assert stats.window_spread_pct in (pytest.approx(100.0), pytest.approx(50.0))
    assert stats.total_runs == fake.calls


def test_one_run_longer_than_the_budget_still_gives_one_sample() -> None:
    fake = FakeModel([], default=5.0)
    opts = TimingOptions(warmup_runs=3, runs_per_window=0, stable_windows=3, time_budget_s=1.0)
    stats = time_runs(fake.run_once, opts, clock=fake.clock)
    assert fake.calls == 2  # one warm-up (budget/2 exceeded) + one timed run
    assert stats.n == 1 and stats.p50_ms == pytest.approx(5000.0) and not stats.stable


def test_adaptive_window_size() -> None:
    assert adaptive_runs(0.001) == 300
    assert adaptive_runs(1.0) == ADAPTIVE_MIN_RUNS
    fake = FakeModel([], default=0.002)
    opts = TimingOptions(warmup_runs=2, runs_per_window=0, stable_windows=2, time_budget_s=100)
    stats = time_runs(fake.run_once, opts, clock=fake.clock)
    assert stats.stable and stats.windows == 2 and stats.n == 2 * 150


def test_should_stop_ends_early() -> None:
    fake = FakeModel([], default=0.001)
    opts = TimingOptions(warmup_runs=0, runs_per_window=10, stable_windows=3, time_budget_s=100)
    stats = time_runs(fake.run_once, opts, clock=fake.clock, should_stop=lambda: fake.calls >= 7)
    assert fake.calls == 7 and stats.n == 7 and not stats.stable


def test_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(3)
    values = sorted(rng.lognormal(size=101).tolist())
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    durations = rng.lognormal(mean=-7, sigma=0.3, size=40).tolist()
    fake = FakeModel(list(durations))
    stats = time_runs(fake.run_once, TimingOptions(warmup_runs=0, runs_per_window=40, stable_windows=1, time_budget_s=100), clock=fake.clock)
    ms = np.array(durations) * 1e3
    assert stats.p90_ms == pytest.approx(float(np.percentile(ms, 90)))
    assert stats.p99_ms == pytest.approx(float(np.percentile(ms, 99)))
    assert stats.min_ms == pytest.approx(float(ms.min()))


def test_spread() -> None:
    assert spread_pct([1.0]) == 0.0
    assert spread_pct([1.0, 1.05, 1.02]) == pytest.approx(0.05 / 1.02 * 100)
    assert spread_pct([0.0, 0.0]) == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        TimingOptions(warmup_runs=-1),
        TimingOptions(runs_per_window=-2),
        TimingOptions(stable_windows=0),
        TimingOptions(stability_threshold_pct=0),
        TimingOptions(time_budget_s=float("inf")),
    ],
)
def test_invalid_options(bad: TimingOptions) -> None:
    with pytest.raises(InvalidRequestError):
        time_runs(lambda: None, bad)


def test_options_round_trip() -> None:
    opts = TimingOptions(warmup_runs=2, runs_per_window=7, stable_windows=4, stability_threshold_pct=2.5, time_budget_s=3)
    assert TimingOptions.from_dict(opts.to_dict()) == opts


def test_best_window_median_is_the_lowest_complete_window() -> None:
    # Window medians 3, 2, 1, 1.02, 1.01 ms; a last, cut-short window must not count.
    medians = [0.003, 0.002, 0.001, 0.00102, 0.00101]
    fake = FakeModel([m for m in medians for _ in range(10)])
    opts = TimingOptions(warmup_runs=0, runs_per_window=10, stable_windows=3, stability_threshold_pct=5.0, time_budget_s=100)
    stats = time_runs(fake.run_once, opts, clock=fake.clock)
    assert stats.best_window_median_ms == pytest.approx(1.0)
    assert stats.best_window_median_ms <= stats.p50_ms
    # budget ends inside the second window: only the first (complete) window counts
    fake = FakeModel([0.004] * 10 + [0.001] * 3)
    opts = TimingOptions(warmup_runs=0, runs_per_window=10, stable_windows=3, time_budget_s=0.0425)
    stats = time_runs(fake.run_once, opts, clock=fake.clock)
    assert stats.windows == 2 and stats.best_window_median_ms == pytest.approx(4.0)
    assert type(stats).from_dict(stats.to_dict()) == stats
