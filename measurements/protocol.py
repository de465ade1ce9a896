"""The timing protocol: warm-up, then windows of repeated runs until the windows agree.

Method after Triton's perf_analyzer (explicit warm-up, measurement windows, "stable when
the last *k* windows agree within a threshold", percentiles) and MLPerf SingleStream
(report a high percentile over enough queries). On this class of machine the *median* of a
window is the stable statistic (FIELD-NOTES: 50-run windows at 1 thread agree within ~1 %,
while means and p90 wander), so stability is judged on window medians.

Everything here is pure: :func:`time_runs` takes the function to time and a clock, so it is
tested with a fake clock and a fake ``run_once``.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nascost.predictors.errors import InvalidRequestError

logger = logging.getLogger(__name__)

# The adaptive window aims at this much timed work per window.
ADAPTIVE_WINDOW_S = 0.3
ADAPTIVE_MIN_RUNS = 10
ADAPTIVE_MAX_RUNS = 100_000


@dataclass(frozen=True, slots=True)
class TimingOptions:
    """How one batch size is timed.

    Attributes:
        warmup_runs: untimed runs before the first window (at most half the budget is spent here).
        runs_per_window: runs in one window; 0 = adaptive, about ``ADAPTIVE_WINDOW_S`` of work
            per window and at least ``ADAPTIVE_MIN_RUNS`` runs.
        stable_windows: how many consecutive windows must agree.
        stability_threshold_pct: the last ``stable_windows`` window medians agree when
            ``(max - min) / median * 100`` is at most this.
        time_budget_s: wall-clock budget for warm-up and windows of one batch size; when it
            ends the measurement stops and is reported as not stable (if it was not).
    """

    warmup_runs: int = 5
    runs_per_window: int = 0
    stable_windows: int = 3
    stability_threshold_pct: float = 5.0
    time_budget_s: float = 20.0

    def validate(self) -> None:
        """Raise :class:`InvalidRequestError` for out-of-range options."""
        if self.warmup_runs < 0:
            raise InvalidRequestError(f"warmup_runs must be >= 0, got {self.warmup_runs}")
        if self.runs_per_window < 0:
            raise InvalidRequestError(
                f"runs_per_window must be >= 0 (0 = adaptive), got {self.runs_per_window}"
            )
        if self.stable_windows < 1:
            raise InvalidRequestError(f"stable_windows must be >= 1, got {self.stable_windows}")
        if not (self.stability_threshold_pct > 0 and math.isfinite(self.stability_threshold_pct)):
            raise InvalidRequestError(
                f"stability_threshold_pct must be > 0, got {self.stability_threshold_pct}"
            )
        if not (self.time_budget_s > 0 and math.isfinite(self.time_budget_s)):
            raise InvalidRequestError(f"time_budget_s must be > 0, got {self.time_budget_s}")

    def to_dict(self) -> dict[str, float | int]:
        return {
            "warmup_runs": self.warmup_runs,
            "runs_per_window": self.runs_per_window,
            "stable_windows": self.stable_windows,
            "stability_threshold_pct": self.stability_threshold_pct,
            "time_budget_s": self.time_budget_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, float | int]) -> TimingOptions:
        return cls(
            warmup_runs=int(d["warmup_runs"]),
            runs_per_window=int(d["runs_per_window"]),
            stable_windows=int(d["stable_windows"]),
            stability_threshold_pct=float(d["stability_threshold_pct"]),
            time_budget_s=float(d["time_budget_s"]),
        )


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Latency of one batch size, over the runs of the last ``stable_windows`` windows.

    Attributes:
        n: number of timed runs the statistics are computed from.
        windows: windows run in total (including earlier, unstable ones).
        stable: whether the last windows' medians agreed within the threshold.
        window_spread_pct: ``(max - min) / median * 100`` of the last windows' medians.
        total_runs: every timed run, in all windows.
        best_window_median_ms: the lowest median of any complete window. Load from other
            processes only slows runs down, so this is the statistic least moved by it
            (what calibration trains on); 0 when no window was complete.
    """

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    n: int
    windows: int
    stable: bool
    window_spread_pct: float
    total_runs: int = 0
    best_window_median_ms: float = 0.0

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "n": self.n,
            "windows": self.windows,
            "stable": self.stable,
            "window_spread_pct": self.window_spread_pct,
            "total_runs": self.total_runs,
            "best_window_median_ms": self.best_window_median_ms,
        }

    @classmethod
    def from_dict(cls, d: dict[str, float | int | bool]) -> LatencyStats:
        return cls(
            p50_ms=float(d["p50_ms"]),
            p90_ms=float(d["p90_ms"]),
            p99_ms=float(d["p99_ms"]),
            mean_ms=float(d["mean_ms"]),
            std_ms=float(d["std_ms"]),
            min_ms=float(d["min_ms"]),
            max_ms=float(d["max_ms"]),
            n=int(d["n"]),
            windows=int(d["windows"]),
            stable=bool(d["stable"]),
            window_spread_pct=float(d["window_spread_pct"]),
            total_runs=int(d.get("total_runs", 0)),
            best_window_median_ms=float(d.get("best_window_median_ms", 0.0)),
        )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def spread_pct(values: Sequence[float]) -> float:
    """``(max - min) / median * 100``; 0 for fewer than two values, inf when the median is 0."""
    if len(values) < 2:
        return 0.0
    lo, hi = min(values), max(values)
    mid = statistics.median(values)
    if mid <= 0:
        return 0.0 if hi == lo else math.inf
    return (hi - lo) / mid * 100.0


def summarize(
    samples_s: Sequence[float],
    *,
    windows: int,
    stable: bool,
    window_spread: float,
    total_runs: int,
    best_window_median_s: float = 0.0,
) -> LatencyStats:
    """Seconds per run -> :class:`LatencyStats` in milliseconds."""
    if not samples_s:
        raise ValueError("no timed runs")
    ms = sorted(s * 1e3 for s in samples_s)
    return LatencyStats(
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        mean_ms=statistics.fmean(ms),
        std_ms=statistics.pstdev(ms) if len(ms) > 1 else 0.0,
        min_ms=ms[0],
        max_ms=ms[-1],
        n=len(ms),
        windows=windows,
        stable=stable,
        window_spread_pct=window_spread,
        total_runs=total_runs,
        best_window_median_ms=best_window_median_s * 1e3,
    )


def adaptive_runs(per_run_s: float) -> int:
    """Runs in an adaptive window for a model taking ``per_run_s`` per run."""
    if per_run_s <= 0:
        return ADAPTIVE_MAX_RUNS
    return int(
        min(ADAPTIVE_MAX_RUNS, max(ADAPTIVE_MIN_RUNS, math.ceil(ADAPTIVE_WINDOW_S / per_run_s)))
    )


def time_runs(
    run_once: Callable[[], None],
    options: TimingOptions,
    *,
    clock: Callable[[], float] = time.perf_counter,
    on_window: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LatencyStats:
    """Time ``run_once`` with warm-up and windows until stable or the budget ends.

    Args:
        run_once: one inference; called many times.
        options: the protocol's knobs.
        clock: seconds, monotonic (``time.perf_counter``; a fake in tests).
        on_window: called after each window with (window index, window median in ms).
        should_stop: polled between runs; when it returns True the protocol stops as if
            the budget had ended (the caller decides what a stop means).

    Returns:
        Statistics over the runs of the last ``options.stable_windows`` windows. At least
        one run is always timed, even when a single run exceeds the budget.
    """
    options.validate()
    start = clock()
    deadline = start + options.time_budget_s
    warmup_deadline = start + options.time_budget_s / 2

    def out_of_time() -> bool:
        return clock() >= deadline or (should_stop is not None and should_stop())

    warm_times: list[float] = []
    for _ in range(options.warmup_runs):
        t0 = clock()
        run_once()
        warm_times.append(clock() - t0)
        if clock() >= warmup_deadline or (should_stop is not None and should_stop()):
            break

    if options.runs_per_window > 0:
        per_window = options.runs_per_window
    else:
        if not warm_times:  # one calibration run to size the window
            t0 = clock()
            run_once()
            warm_times.append(clock() - t0)
        per_window = adaptive_runs(statistics.median(warm_times))

    windows: list[list[float]] = []
    medians: list[float] = []
    stable = False
    k = options.stable_windows
    while True:
        window: list[float] = []
        while len(window) < per_window:
            t0 = clock()
            run_once()
            window.append(clock() - t0)
            if out_of_time():
                break
        windows.append(window)
        medians.append(statistics.median(window))
        if on_window is not None:
            on_window(len(windows) - 1, medians[-1] * 1e3)
        complete = len(window) == per_window
        if (
            complete
            and len(medians) >= k
            and spread_pct(medians[-k:]) <= options.stability_threshold_pct
        ):
            stable = True
            break
        if out_of_time():
            break

    last = windows[-k:]
    samples = [s for w in last for s in w]
    spread = spread_pct(medians[-k:])
    total = sum(len(w) for w in windows)
    complete_medians = [m for w, m in zip(windows, medians, strict=True) if len(w) == per_window]
    logger.debug(
        "timed %d runs in %d windows, stable=%s spread=%.2f%%", total, len(windows), stable, spread
    )
    return summarize(
        samples,
        windows=len(windows),
        stable=stable,
        window_spread=spread,
        total_runs=total,
        best_window_median_s=min(complete_medians, default=0.0),
    )
