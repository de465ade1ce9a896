"""Wait for a quiet host before timing: a fixed probe's speed against the best it has shown.

On a shared host another tenant's load slows a measurement for seconds to minutes at a
time, and only ever adds time. On the Intel Xeon (Emerald Rapids, AVX-512) host of
2026-12-01 a 1-thread ResNet-50 timed round-robin ran more than 10 % above its fastest 44 %
of the time, MobileNetV2 57 %; the slow phases last tens of seconds (a 3-minute study,
172 alternating probe-then-model measurements of each; ``FIELD-NOTES.md`` keeps the figures). A 256 x 256 x 256 MatMul
timed for ~5 ms *right before* the model (the median of 20 runs) sees those phases: when it
ran within 10 % of its fastest, the model was more than 10 % slow 7 % (ResNet-50) and 29 %
(MobileNetV2) of the time; when it did not, 78 % and 89 %.

So a measurement can ask the worker to wait for the host: probe, and while the probe runs
slower than ``threshold_ms``, sleep :data:`POLL_S` and probe again, for at most
``max_wait_s``; then time the model whatever the probe says, and report the last probe
time and the wait with the result. The caller keeps the baseline (:class:`QuietBaseline`:
the fastest probe seen, times ``1 +`` :data:`QUIET_WITHIN`) across measurements: the
calibration does, so training labels and held-out references are taken on a quiet host
more often, rather than only kept when they happen to be fast.

The probe model is built here with onnx (parent side); the worker only runs it with
onnxruntime, in the model's own runtime configuration (threads).
"""

from __future__ import annotations

import base64
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
QUIET_WITHIN = 0.10  # quiet: the probe within this share of the fastest probe seen
POLL_S = 0.5  # sleep between probes while the host is busy
DEFAULT_MAX_WAIT_S = 10.0  # the longest a measurement waits for a quiet host


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
    """What the gate saw: the last probe's time (ms) and how long the worker waited (s)."""

    probe_ms: float
    waited_s: float

    def to_dict(self) -> dict[str, float]:
        return {"probe_ms": self.probe_ms, "waited_s": self.waited_s}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuietReport:
        return cls(float(d["probe_ms"]), float(d["waited_s"]))


def wait_for_quiet(gate: Mapping[str, Any], session_options: Any, providers: list[str]) -> QuietReport:
    """Worker side: probe until quiet or ``max_wait_s`` (``gate`` is :meth:`QuietGate.to_dict`)."""
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(base64.b64decode(gate["probe_model"]), session_options, providers=providers)
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((PROBE_DIM, PROBE_DIM), dtype=np.float32) for n in ("a", "b")}
    sess.run(None, feeds)  # warm-up
    threshold = gate.get("threshold_ms")
    max_wait = float(gate.get("max_wait_s", DEFAULT_MAX_WAIT_S))
    start: float | None = None  # the end of the first probe: the wait counts from there
    while True:
        times = []
        for _ in range(PROBE_RUNS):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times.append(time.perf_counter() - t0)
        probe_ms = 1e3 * statistics.median(times)
        now = time.monotonic()
        start = now if start is None else start
        waited = now - start
        if threshold is None or probe_ms <= float(threshold) or waited + POLL_S > max_wait:
            return QuietReport(probe_ms, waited)
        time.sleep(POLL_S)


class QuietBaseline:
    """The fastest probe seen across measurements, and the gate it sets (thread-safe)."""

    def __init__(self, within: float = QUIET_WITHIN, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        self.within = within
        self.max_wait_s = max_wait_s
        self.best_ms: float | None = None
        self.measurements = 0
        self.waited_s = 0.0
        self.quiet = 0  # measurements whose last probe was within the threshold they were given
        self._lock = threading.Lock()

    def gate(self) -> QuietGate:
        with self._lock:
            best = self.best_ms
        return QuietGate(None if best is None else best * (1.0 + self.within), self.max_wait_s)

    def update(self, gate: QuietGate, report: QuietReport | None) -> None:
        """Record what a measurement taken with ``gate`` reported."""
        if report is None:
            return
        with self._lock:
            self.measurements += 1
            self.waited_s += report.waited_s
            if gate.threshold_ms is None or report.probe_ms <= gate.threshold_ms:
                self.quiet += 1
            if self.best_ms is None or report.probe_ms < self.best_ms:
                self.best_ms = report.probe_ms

    def describe(self) -> str:
        """The gate in words, for the calibration's measurement settings."""
        return (
            f"before timing, a {PROBE_DIM}^3 MatMul probe must run within {100 * self.within:.0f} % of "
            f"its fastest so far (waits up to {self.max_wait_s:g} s)"
        )

    def summary(self) -> dict[str, float | int | None]:
        with self._lock:
            return {
                "probe_best_ms": self.best_ms,
                "measurements": self.measurements,
                "quiet_share": self.quiet / self.measurements if self.measurements else None,
                "waited_s": self.waited_s,
                "within": self.within,
                "max_wait_s": self.max_wait_s,
            }
