"""Wait for a quiet host before timing: a fixed probe's speed against the best it has shown.

On a shared host another tenant's load slows a measurement for seconds to minutes at a
time, and only ever adds time. On the Intel Xeon (Emerald Rapids, AVX-512) host of
2026-12-01 a 1-thread ResNet-50 timed round-robin ran more than 10 % above its fastest 44 %
of the time, MobileNetV2 57 %; the slow phases last tens of seconds (a 3-minute study,
172 alternating probe-then-model measurements of each). A 256 x 256 x 256 MatMul
timed for ~5 ms *right before* the model (the median of 20 runs) sees those phases: when it
ran within 10 % of its fastest, the model was more than 10 % slow 7 % (ResNet-50) and 29 %
(MobileNetV2) of the time; when it did not, 78 % and 89 %.

So a measurement can ask the worker to wait for the host: probe, and while the probe runs
slower than ``threshold_ms``, sleep :data:`POLL_S` and probe again, for at most
``max_wait_s``; then time the model whatever the probe says, probe once more right after
timing (a slow phase that began meanwhile shows there), and report both probe times and
the wait with the result. The caller keeps the baseline (:class:`QuietBaseline`: the
probe's quiet level, a low order statistic of the probes seen, times ``1 +``
:data:`QUIET_WITHIN`) across measurements: the
calibration does, so training labels and held-out references are taken on a quiet host
more often, rather than only kept when they happen to be fast.

A measurement whose probes before *and* after timing both ran within that threshold is
*settled* (:meth:`QuietBaseline.update`), once :data:`SETTLE_AFTER` measurements have set
the quiet level; the calibration does not repeat a settled training measurement. In the
same study, when both probes were quiet the model was more than 10 % slow 4 % (ResNet-50)
and 19 % (MobileNetV2) of the time, against 7 and 29 % when only the probe before was
(the model's median there was 2.7 and 5.3 % above its third-fastest measurement).

The probe model is built here with onnx (parent side); the worker only runs it with
onnxruntime, in the model's own runtime configuration (threads).
"""

from __future__ import annotations

import base64
import bisect
import functools
import math
import statistics
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nascost.predictors.errors import InvalidRequestError

PROBE_DIM = 256  # the probe multiplies two PROBE_DIM x PROBE_DIM float32 matrices
PROBE_RUNS = 20  # runs per probe; its time is their median
QUIET_WITHIN = 0.10  # quiet: the probe within this share of its quiet level
POLL_S = 0.5  # sleep between probes while the host is busy
DEFAULT_MAX_WAIT_S = 10.0  # the longest a measurement waits for a quiet host
SETTLE_AFTER = 20  # measurements before the quiet level is trusted to vouch for one
LEVEL_RANK = 3  # the quiet level is at most the third-fastest probe (QuietBaseline)


@functools.cache
def probe_model() -> bytes:
    """The probe: the fingerprint's GEMM model at ``PROBE_DIM`` (inputs ``a``, ``b``; no weights).

    Imported here, on the parent's side: the worker only runs the bytes it is sent."""
    from nascost.measurements.fingerprint import gemm_model

    return gemm_model(PROBE_DIM)


@dataclass(frozen=True, slots=True)
class QuietGate:
    """What one measurement waits for.

    Attributes:
        threshold_ms: the probe time (ms) at or under which the host counts as quiet; None:
            no baseline yet (probe once, do not wait).
        max_wait_s: the longest to wait before timing anyway.
    """

    threshold_ms: float | None
    max_wait_s: float = DEFAULT_MAX_WAIT_S

    def validate(self) -> None:
        if self.threshold_ms is not None and not (self.threshold_ms > 0 and math.isfinite(self.threshold_ms)):
            raise InvalidRequestError(f"quiet threshold_ms must be > 0, got {self.threshold_ms}")
        if not (self.max_wait_s >= 0 and math.isfinite(self.max_wait_s)):
            raise InvalidRequestError(f"quiet max_wait_s must be >= 0, got {self.max_wait_s}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the worker's header, the probe model included (base64)."""
        return {
            "threshold_ms": self.threshold_ms,
            "max_wait_s": self.max_wait_s,
            "probe_model": base64.b64encode(probe_model()).decode("ascii"),
        }


@dataclass(frozen=True, slots=True)
class QuietReport:
    """What the gate saw: the last probe's time before timing (ms), how long the worker
    waited (s), and the probe's time right after timing (ms; None when not probed)."""

    probe_ms: float
    waited_s: float
    after_ms: float | None = None

    def to_dict(self) -> dict[str, float]:
        d = {"probe_ms": self.probe_ms, "waited_s": self.waited_s}
        if self.after_ms is not None:
            d["after_ms"] = self.after_ms
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuietReport:
        after = d.get("after_ms")
        return cls(float(d["probe_ms"]), float(d["waited_s"]), None if after is None else float(after))


class Probe:
    """Worker side: the gate's probe model in a session of the model's own configuration."""

    def __init__(self, gate: Mapping[str, Any], session_options: Any, providers: list[str]) -> None:
        import numpy as np
        import onnxruntime as ort

        self._sess = ort.InferenceSession(base64.b64decode(gate["probe_model"]), session_options, providers=providers)
        rng = np.random.default_rng(0)
        self._feeds = {n: rng.standard_normal((PROBE_DIM, PROBE_DIM), dtype=np.float32) for n in ("a", "b")}
        self._sess.run(None, self._feeds)  # warm-up

    def time_ms(self) -> float:
        """The median of :data:`PROBE_RUNS` runs, in ms."""
        times = []
        for _ in range(PROBE_RUNS):
            t0 = time.perf_counter()
            self._sess.run(None, self._feeds)
            times.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(times)


def wait_for_quiet(gate: Mapping[str, Any], probe: Probe) -> QuietReport:
    """Worker side: probe until quiet or ``max_wait_s`` (``gate`` is :meth:`QuietGate.to_dict`)."""
    threshold = gate.get("threshold_ms")
    max_wait = float(gate.get("max_wait_s", DEFAULT_MAX_WAIT_S))
    start: float | None = None  # the end of the first probe: the wait counts from there
    while True:
        probe_ms = probe.time_ms()
        now = time.monotonic()
        start = now if start is None else start
        waited = now - start
        if threshold is None or probe_ms <= float(threshold) or waited + POLL_S > max_wait:
            return QuietReport(probe_ms, waited)
        time.sleep(POLL_S)


class QuietBaseline:
    """The quiet level of the probe across measurements, the gate it sets, and which
    measurements it vouches for (thread-safe).

    The level is a low order statistic of every probe seen, not the fastest: the
    ``ceil(n / 10)``-th fastest of *n* probes, at most the :data:`LEVEL_RANK`-th. One
    outlier-fast probe (0.179 ms where quiet phases ran 0.20-0.21 ms, seed 391's
    calibration) otherwise set a threshold few probes met: 56 % of its measurements waited
    the full 10 s, 903 s of the 19.5-minute budget, and it measured 154 times (seed 381,
    an hour earlier: 321).
    """

    def __init__(
        self, within: float = QUIET_WITHIN, max_wait_s: float = DEFAULT_MAX_WAIT_S, settle_after: int = SETTLE_AFTER
    ) -> None:
        self.within = within
        self.max_wait_s = max_wait_s
        self.settle_after = settle_after
        self._fastest: list[float] = []  # the LEVEL_RANK fastest probes, ascending
        self.probes = 0
        self.measurements = 0
        self.waited_s = 0.0
        self.quiet = 0  # measurements whose last probe was within the threshold they were given
        self.settled_count = 0  # measurements :meth:`update` found settled
        self._lock = threading.Lock()

    @property
    def level_ms(self) -> float | None:
        """The probe's quiet level (ms): the ``ceil(n / 10)``-th fastest of n probes, at most
        the :data:`LEVEL_RANK`-th; None before any probe."""
        if not self._fastest:
            return None
        rank = min(LEVEL_RANK, -(-self.probes // 10), len(self._fastest))
        return self._fastest[rank - 1]

    def gate(self) -> QuietGate:
        with self._lock:
            level = self.level_ms
        return QuietGate(None if level is None else level * (1.0 + self.within), self.max_wait_s)

    def update(self, gate: QuietGate, report: QuietReport | None) -> bool:
        """Record what a measurement taken with ``gate`` reported; return whether it is settled
        (both its probes within ``within`` of the quiet level, once ``settle_after``
        measurements have set the level)."""
        if report is None:
            return False
        with self._lock:
            self.measurements += 1
            self.waited_s += report.waited_s
            if gate.threshold_ms is None or report.probe_ms <= gate.threshold_ms:
                self.quiet += 1
            for ms in (report.probe_ms, report.after_ms):
                if ms is not None:
                    self.probes += 1
                    bisect.insort(self._fastest, ms)
                    del self._fastest[LEVEL_RANK:]
            settled = self._settled(report)
            self.settled_count += settled
            return settled

    def _settled(self, report: QuietReport) -> bool:
        level = self.level_ms
        if level is None or report.after_ms is None or self.measurements <= self.settle_after:
            return False
        limit = level * (1.0 + self.within)
        return report.probe_ms <= limit and report.after_ms <= limit

    def describe(self) -> str:
        """The gate in words, for the calibration's measurement settings."""
        return (
            f"before timing, a {PROBE_DIM}^3 MatMul probe must run within {100 * self.within:.0f} % of "
            f"its quiet level (the ceil(n/10)-th fastest of n probes so far, at most rank {LEVEL_RANK}; "
            f"waits up to {self.max_wait_s:g} s); a measurement whose probes before and after timing both "
            f"ran within it (once {self.settle_after} measurements set the level) is settled"
        )

    def summary(self) -> dict[str, float | int | None]:
        with self._lock:
            return {
                "probe_best_ms": self._fastest[0] if self._fastest else None,
                "probe_level_ms": self.level_ms,
                "measurements": self.measurements,
                "quiet_share": self.quiet / self.measurements if self.measurements else None,
                "settled_share": self.settled_count / self.measurements if self.measurements else None,
                "waited_s": self.waited_s,
                "within": self.within,
                "max_wait_s": self.max_wait_s,
            }
