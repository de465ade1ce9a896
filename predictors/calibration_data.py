"""A calibration's measurements, kept beside the predictor fitted on them.

Twenty minutes of measuring should outlive the code that fitted them: with the data kept,
a later nascost (a new feature, a fixed pseudo kernel) refits a device's predictor and
re-evaluates it on the very same held-out references without measuring again
(:func:`nascost.predictors.calibration.refit`, ``benchmarks/bench_refit.py``), and two
predictors can be compared on the same data, free of the few percent the machine drifts
between calibrations.

The file (``measurements.json.gz`` in the artifact's version directory) holds every
successful measurement in the order it was taken: the model (by the digest of its
stripped bytes, see :func:`~nascost.predictors.graph.strip_weights`), its family and
hyper-parameters, the phase (``explore``, ``adapt`` or ``heldout``), the batch size, the
latency (ms, the calibration's timing statistic) and the profiled kernels; a held-out
measurement also names its held-out model, whose reference latency is the fastest of its
measurements; a training model measured more than once trains on its fastest. Each model's stripped ONNX is stored once, base64-encoded. A 20-minute
calibration here is about 800 measurements of 400 models: 1-2 MB compressed.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nascost.predictors.analysis import analyze
from nascost.predictors.errors import InvalidRequestError
from nascost.predictors.features import KernelRecord
from nascost.predictors.graph import ShapeRequest, load_graph_bytes, strip_weights
from nascost.predictors.learned import TrainingExample
from nascost.predictors.sampler import BATCH_DIM, ArchSample, config_key

DATA_FILE = "measurements.json.gz"
DATA_FORMAT = "nascost-calibration-data/1"
PHASES = ("explore", "adapt", "heldout")
CONFIRMED_WITHIN = 0.05  # a reference is confirmed by a second measurement this close to it


@dataclass(frozen=True, slots=True)
class MeasuredProbe:
    """The host around one measurement: the quiet gate's probe (``measurements/quiet.py``, a
    fixed MatMul) right before and right after timing, in ms, and when the measurement
    ended, in seconds since the calibration began. Calibrations before it kept none.

    Kept so the data tells what the host's speed was when each latency was taken: the
    probe's quiet level moved by 20 % within one calibration on the Xeon host (seed 481)."""

    before_ms: float
    after_ms: float | None
    at_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"before_ms": self.before_ms, "after_ms": self.after_ms, "at_s": self.at_s}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MeasuredProbe:
        after = d.get("after_ms")
        return cls(float(d["before_ms"]), None if after is None else float(after), float(d["at_s"]))


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measurement of a calibration.

    Attributes:
        model: digest of the model's stripped bytes (a key of :attr:`CalibrationData.models`).
        heldout_model: the held-out model's index (its measurements share it); None in training.
        probe: the host's probe around the measurement; None when ``measure_fn`` gave none.
    """

    model: str
    family: str
    config: Mapping[str, Any]
    phase: str
    batch_size: int
    latency_ms: float
    kernels: tuple[KernelRecord, ...]
    heldout_model: int | None = None
    probe: MeasuredProbe | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {
            "model": self.model,
            "family": self.family,
            "config": dict(self.config),
            "phase": self.phase,
            "batch_size": self.batch_size,
            "latency_ms": self.latency_ms,
            "heldout_model": self.heldout_model,
            "kernels": [
                [k.name, k.op_type, k.input_shapes, k.output_shapes, k.latency_us, k.fused, k.blocked, k.activation]
                for k in self.kernels
            ],
        }
        if self.probe is not None:
            d["probe"] = self.probe.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Measurement:
        kernels = tuple(
            KernelRecord(
                str(k[0]),
                str(k[1]),
                tuple(tuple(int(x) for x in s) for s in k[2]),
                tuple(tuple(int(x) for x in s) for s in k[3]),
                None if k[4] is None else float(k[4]),
                int(k[5]),
                bool(k[6]),
                str(k[7]),
            )
            for k in d["kernels"]
        )
        phase = str(d["phase"])
        latency = float(d["latency_ms"])
        if not (latency > 0 and math.isfinite(latency)):
            raise ValueError(f"latency_ms {latency!r}")
        held = d.get("heldout_model")
        if phase not in PHASES or (phase == "heldout") != (held is not None):
            raise ValueError(f"phase {phase!r} with held-out model {held!r}")
        return cls(
            model=str(d["model"]),
            family=str(d["family"]),
            config=dict(d["config"]),
            phase=phase,
            batch_size=int(d["batch_size"]),
            latency_ms=latency,
            kernels=kernels,
            heldout_model=None if held is None else int(held),
            probe=None if d.get("probe") is None else MeasuredProbe.from_dict(d["probe"]),
        )


@dataclass(frozen=True, slots=True)
class Examples:
    """A calibration's data as the fit and the evaluation take it.

    Attributes:
        train: one example per training (model, batch size): its fastest measurement.
        heldout: one per held-out (model, batch size): its first measurement's kernels, the
            fastest of its latencies.
        heldout_model: the held-out model of each ``heldout`` example.
        heldout_measurements: how many references came from 1, 2, ... measurements.
        train_model: the model (its key in :attr:`CalibrationData.models`) of each ``train``
            example.
    """

    train: list[TrainingExample]
    heldout: list[TrainingExample]
    heldout_model: list[int]
    heldout_measurements: dict[int, int]
    train_model: list[str] = field(default_factory=list)


@dataclass
class CalibrationData:
    """Every measurement of one calibration and the stripped models they measured."""

    batch_sizes: tuple[int, ...] = ()
    seed: int = 0
    models: dict[str, bytes] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    _keys: dict[str, str] = field(default_factory=dict, repr=False)  # a draw's model key

    def add(
        self,
        sample: ArchSample,
        example: TrainingExample,
        phase: str,
        heldout_model: int | None = None,
        *,
        model_bytes: bytes | None = None,
        probe: MeasuredProbe | None = None,
    ) -> str:
        """Record one measurement of ``sample`` (its example as the calibration built it;
        ``model_bytes``: the sample's serialized model, when the caller has it; ``probe``:
        the host around it); returns the model's key (two draws that build one model share it)."""
        if phase not in PHASES:
            raise InvalidRequestError(f"phase must be one of {PHASES}, got {phase!r}")
        # the same draw (family, hyper-parameters, seed) is one model: stripped once
        draw = f"{config_key(sample.family, sample.config)}#{sample.seed}"
        key = self._keys.get(draw)
        if key is None:
            stripped = strip_weights(model_bytes if model_bytes is not None else sample.model_bytes(), example.graph)
            key = self._keys[draw] = hashlib.sha256(stripped).hexdigest()[:24]
            self.models.setdefault(key, stripped)
        self.measurements.append(
            Measurement(
                key,
                sample.family,
                dict(sample.config),
                phase,
                int(example.batch_size),
                float(example.measured_ms),
                tuple(example.kernels),
                heldout_model,
                probe,
            )
        )
        return key

    def to_bytes(self) -> bytes:
        doc = {
            "format": DATA_FORMAT,
            "batch_sizes": list(self.batch_sizes),
            "seed": self.seed,
            "models": {k: base64.b64encode(v).decode("ascii") for k, v in self.models.items()},
            "measurements": [m.to_dict() for m in self.measurements],
        }
        return gzip.compress(json.dumps(doc, separators=(",", ":")).encode("utf-8"), mtime=0)

    @classmethod
    def from_bytes(cls, data: bytes) -> CalibrationData:
        """Parse :meth:`to_bytes`' output; anything else raises :class:`InvalidRequestError`."""
        try:
            doc = json.loads(gzip.decompress(data))
        except (OSError, EOFError, ValueError) as e:
            raise InvalidRequestError(f"not calibration data: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != DATA_FORMAT:
            raise InvalidRequestError(f"not calibration data of format {DATA_FORMAT!r}")
        try:
            out = cls(
                batch_sizes=tuple(int(b) for b in doc.get("batch_sizes", ())),
                seed=int(doc.get("seed", 0)),
                models={k: base64.b64decode(v, validate=True) for k, v in doc["models"].items()},
                measurements=[Measurement.from_dict(m) for m in doc["measurements"]],
            )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise InvalidRequestError(f"malformed calibration data: {type(e).__name__}: {e}") from e
        missing = {m.model for m in out.measurements} - set(out.models)
        if missing:
            raise InvalidRequestError(f"calibration data lacks {len(missing)} measured model(s)")
        return out

    def examples(self) -> Examples:
        """Training and held-out examples, graphs loaded and analysed from the stored models."""
        cache: dict[tuple[str, int], tuple[Any, Any]] = {}

        def example(m: Measurement) -> TrainingExample:
            got = cache.get((m.model, m.batch_size))
            if got is None:
                graph = load_graph_bytes(self.models[m.model], ShapeRequest(dim_values={BATCH_DIM: m.batch_size}))
                got = cache[(m.model, m.batch_size)] = (graph, analyze(graph))
            return TrainingExample(got[0], got[1], m.batch_size, m.latency_ms, m.kernels, m.family)

        # a training model measured more than once trains on its fastest measurement
        fastest: dict[tuple[str, int], Measurement] = {}
        for m in self.measurements:
            if m.phase != "heldout":
                pair = (m.model, m.batch_size)
                if pair not in fastest or m.latency_ms < fastest[pair].latency_ms:
                    fastest[pair] = m
        train = [example(m) for m in fastest.values()]
        first: dict[tuple[int, int], Measurement] = {}
        latencies: dict[tuple[int, int], list[float]] = {}
        for m in self.measurements:
            if m.heldout_model is not None:
                key = (m.heldout_model, m.batch_size)
                first.setdefault(key, m)
                latencies.setdefault(key, []).append(m.latency_ms)
        heldout = [reference_example(example(m), latencies[key]) for key, m in first.items()]
        counts: dict[int, int] = {}
        for ys in latencies.values():
            counts[len(ys)] = counts.get(len(ys), 0) + 1
        return Examples(train, heldout, [key[0] for key in first], counts, [model for model, _ in fastest])


@dataclass(frozen=True, slots=True)
class RepeatAgreement:
    """How closely two measurements of one held-out model, taken minutes apart, agree.

    This is the machine's own noise, independent of any predictor: where two measurements of
    one model agree within 10 % only half of the time (a busy shared host), one measurement
    says little, and a held-out reference is the fastest of several (see
    :mod:`nascost.predictors.calibration`), whose own agreement is far better.

    Attributes:
        n: held-out (model, batch size) pairs measured at least twice.
        within_10: share of them whose first two measurements differ by at most 10 %
            (the slower at most 1.10x the faster).
        median_difference: median over them of ``slower / faster - 1``.
        confirmed: share of them whose two *fastest* measurements are within
            :data:`CONFIRMED_WITHIN` (5 %): the reference, the fastest, is backed by a second
            measurement of the unloaded machine rather than standing alone (None: not
            recorded, artifacts from before it was).
    """

    n: int
    within_10: float
    median_difference: float
    confirmed: float | None = None

    def to_dict(self) -> dict[str, float | int]:
        d: dict[str, float | int] = {"n": self.n, "within_10": self.within_10, "median_difference": self.median_difference}
        if self.confirmed is not None:
            d["confirmed"] = self.confirmed
        return d

    def describe(self, batch: str) -> str:
        """One line of a report: ``batch`` is ``"all"`` or a batch size."""
        line = (
            f"{batch:>5} held-out repeats (same model, minutes apart): {100 * self.within_10:.1f}% of {self.n} "
            f"agree within 10 % (median difference {100 * self.median_difference:.1f} %): the machine's own "
            "noise in one measurement"
        )
        if self.confirmed is not None:
            line += (
                f"; {100 * self.confirmed:.1f}% of the references (each the fastest) have a second measurement "
                f"within {100 * CONFIRMED_WITHIN:.0f} %"
            )
        return line


def batch_group_order(key: str) -> tuple[int, int]:
    """Sort key of report groups: ``"all"`` first, then batch sizes by number ("2" before "16")."""
    return (0, 0) if key == "all" else (1, int(key)) if key.isdigit() else (2, 0)


def repeat_agreement(data: CalibrationData) -> dict[str, RepeatAgreement]:
    """:class:`RepeatAgreement` of ``data``'s held-out repeats per batch size (key ``str(b)``),
    and over all of them (``"all"``) when several batch sizes have repeats; a batch size
    with no repeated held-out model is left out. Ordered by :func:`batch_group_order`."""
    every: dict[tuple[int, int], list[float]] = {}
    for m in data.measurements:
        if m.heldout_model is not None:
            every.setdefault((m.heldout_model, m.batch_size), []).append(m.latency_ms)
    diffs: dict[str, list[float]] = {}
    backed: dict[str, list[bool]] = {}
    for (_, b), ys in every.items():
        if len(ys) >= 2:
            diffs.setdefault(str(b), []).append(max(ys[:2]) / min(ys[:2]) - 1.0)
            fastest = sorted(ys)
            backed.setdefault(str(b), []).append(fastest[1] <= (1.0 + CONFIRMED_WITHIN) * fastest[0] * (1 + 1e-12))
    if len(diffs) > 1:
        diffs["all"] = [d for v in diffs.values() for d in v]
        backed["all"] = [c for v in backed.values() for c in v]
    return {
        k: RepeatAgreement(
            len(v), float(np.mean(np.asarray(v) <= 0.10 + 1e-12)), float(np.median(v)), float(np.mean(backed[k]))
        )
        for k, v in sorted(diffs.items(), key=lambda kv: batch_group_order(kv[0]))
    }


def reference_example(first: TrainingExample, latencies: Sequence[float]) -> TrainingExample:
    """A held-out reference: the model's first measured example at the fastest of its
    latencies (measurements at different times: another tenant's load only ever adds time;
    see :mod:`nascost.predictors.calibration`)."""
    return dataclasses.replace(first, measured_ms=float(min(latencies)))


def read_calibration_data(path: Path | str) -> CalibrationData:
    """The data file of an artifact version directory (or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / DATA_FILE
    if not p.is_file():
        raise InvalidRequestError(f"no calibration data at {p}")
    return CalibrationData.from_bytes(p.read_bytes())

