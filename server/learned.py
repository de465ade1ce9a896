"""Learned predictors in the server: loading the latest calibration, and calibrating.

A calibration writes a new artifact version under ``<data_dir>/predictors/<device>/``;
every prediction checks which version is the latest (one directory listing) and loads it
when it changed, so a new calibration is picked up without a restart.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nascost.predictors.errors import CancelledError, InvalidRequestError, NotCalibratedError
from nascost.v1 import indicators_pb2, prediction_pb2

if TYPE_CHECKING:
    from nascost.measurements.runner import KernelTiming
    from nascost.predictors.analysis import Analysis
    from nascost.predictors.calibration import CalibrationReport
    from nascost.predictors.devices import Device
    from nascost.predictors.features import KernelRecord
    from nascost.predictors.graph import Graph
    from nascost.predictors.learned import LatencyPredictor

logger = logging.getLogger(__name__)

# Per-model timing during calibration: short, since the budget buys models, not repeats.
# Shorter loses too much. 32 sampled models (sampler seed 7; 8 of them also at batch 8) were
# each measured 3 times with a 2 s budget, on the gated Xeon of 2026-12-02, and each
# measurement was scored by the lowest window median it had reached after T seconds.
# Against the model's best of all three, within 5 / 10 %:
#   T = 1.0 s: 62 / 69 %,  1.5 s: 70 / 77 %,  2.0 s: 71 / 80 %.
# A training model is mostly measured once (settled), so its label is one such measurement.
# 1.0 s would buy about 15 % more measurements at a worse label (an estimate: ~0.5 s saved of
# ~3.3 s a measurement takes with its quiet-gate wait in a 20-minute calibration here).
# Past 1.5 s, little is gained.
CALIBRATION_TIME_BUDGET_S = 1.5
BATCH_DIM = "N"  # the sampler's symbolic batch dim


class _Aborted(Exception):
    """Raised inside measure_fn to stop a calibration (not a per-sample failure)."""


def heldout_summary(metadata: Mapping[str, Any], predictor: str) -> dict[str, float]:
    """A predictor's held-out metrics from an artifact's metadata ({} when absent)."""
    metrics = metadata.get("heldout_metrics") or {}
    group: Mapping[str, Any] = metrics.get("all") or next(iter(metrics.values()), {})
    return dict(group.get(predictor) or {})


class LearnedPredictors:
    """The latest learned predictor of each device, reloaded when a newer version lands."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[Path, LatencyPredictor]] = {}

    def get(self, device_id: str) -> LatencyPredictor | None:
        from nascost.predictors.learned import latest_artifact, load_predictor

        path = latest_artifact(self.data_dir, device_id)
        if path is None:
            return None
        with self._lock:
            hit = self._loaded.get(device_id)
            if hit is not None and hit[0] == path:
                return hit[1]
        predictor = load_predictor(path)
        with self._lock:
            self._loaded[device_id] = (path, predictor)
        logger.info("loaded learned predictor %s for %s", path.name, device_id)
        return predictor

    def metadata(self, device_id: str) -> dict[str, Any]:
        from nascost.predictors.learned import latest_artifact

        path = latest_artifact(self.data_dir, device_id)
        if path is None:
            raise NotCalibratedError(
                f"device {device_id!r} has not been calibrated: nascost calibrate --device {device_id}"
            )
        meta: dict[str, Any] = json.loads((path / "metadata.json").read_text("utf-8"))
        return meta

    def predict(self, device: Device, graph: Graph, analysis: Analysis) -> prediction_pb2.LatencyPrediction | None:
        predictor = self.get(device.id)
        if predictor is None:
            return None
        batch = _batch_size(graph)
        est = predictor.predict_graph(graph, analysis, batch)
        meta = getattr(predictor, "metadata_", {}) or {}
        learned = heldout_summary(meta, "learned")
        version = str(meta.get("version", ""))
        return prediction_pb2.LatencyPrediction(
            latency_ms=indicators_pb2.Figure(
                value=est.latency_ms,
                unit="ms",
                low=est.latency_ms_low,
                high=est.latency_ms_high,
                provenance=indicators_pb2.Provenance(
                    source=indicators_pb2.SOURCE_PREDICTED,
                    method=f"learned:{meta.get('selected_variant', 'xgboost')}",
                    version=version,
                    expected_error_pct=100 * float(learned.get("mape", 0.0)),
                    error_is_evaluated=bool(learned),
                    note=(
                        f"xgboost regressors fitted on {meta.get('n_train', 0)} measurements on this device; "
                        f"interval = calibrated quantiles; batch {batch}"
                    ),
                ),
            ),
            predictor=f"learned@{version}",
            heldout_within_10pct=float(learned.get("within_10", 0.0)),
        )


def _batch_size(graph: Graph) -> int:
    for t in graph.inputs:
        if t.shape and t.shape[0]:
            return int(t.shape[0])
    return 1


def kernel_records(kernels: Sequence[KernelTiming]) -> list[KernelRecord]:
    """The runner's kernel timings as the learned predictor's kernel records."""
    from nascost.predictors.features import KernelRecord

    return [
        KernelRecord(
            name=k.node_name,
            op_type=k.op_type,
            input_shapes=tuple(tuple(s) for s in k.input_shapes),
            output_shapes=tuple(tuple(s) for s in k.output_shapes),
            latency_us=k.median_us,
            blocked=k.node_name.endswith("_nchwc"),
        )
        for k in kernels
    ]


def report_proto(report: CalibrationReport | Mapping[str, Any], version: str) -> prediction_pb2.CalibrationReport:
    """A calibration report (object or its ``to_dict()``) as the API message.

    Metrics of the whole held-out set are named by predictor; per batch size they read
    ``"<predictor> (batch B)"``, and the few-shot curve ``"few-shot k=K (batch B)"``.
    """
    from nascost.predictors.calibration_data import batch_group_order

    d = report.to_dict() if hasattr(report, "to_dict") else dict(report)
    if not d.get("heldout_families"):
        from nascost.predictors.sampler import HELDOUT_FAMILIES

        d["heldout_families"] = list(HELDOUT_FAMILIES)
    out = prediction_pb2.CalibrationReport(
        device_id=str(d.get("device_id", "")),
        artifact_version=version,
        train_models=int(d.get("n_train", 0)),
        heldout_models=int(d.get("n_heldout", 0)),
        heldout_families=list(d.get("heldout_families", [])),
        elapsed_s=float(d.get("elapsed_s", 0.0)),
        selected_predictor=str(d.get("selected_predictor") or d.get("selected_variant") or ""),
        prior_train_models=int(d.get("n_prior") or 0),
        prior_calibrations=[str(p["path"]) for p in d.get("prior_sources") or [] if p.get("used")],
    )
    for k, v in (d.get("heldout_measurements") or {}).items():
        out.heldout_measurements[int(k)] = int(v)
    # metadata.json sorts its keys ("1", "16", "8", "all"): groups go "all", "1", "8", "16"
    for b, r in sorted((d.get("repeat_agreement") or {}).items(), key=lambda kv: batch_group_order(kv[0])):
        agreement = prediction_pb2.RepeatAgreement(
            batch=str(b), n=int(r["n"]), within_10pct=float(r["within_10"]), median_difference=float(r["median_difference"])
        )
        if r.get("confirmed") is not None:
            agreement.confirmed_5pct = float(r["confirmed"])
        out.repeat_agreement.append(agreement)
    groups: Mapping[str, Mapping[str, Any]] = d.get("accuracy", {})
    for group, by_predictor in sorted(groups.items(), key=lambda kv: batch_group_order(kv[0])):
        for name, m in by_predictor.items():
            label = name if group == "all" else f"{name} (batch {group})" if group.isdigit() else f"{name} ({group})"
            out.metrics.append(_metrics(label, m))
    for group, by_k in (d.get("few_shot") or {}).items():
        for k, m in by_k.items():
            out.metrics.append(_metrics(f"few-shot k={k} (batch {group})", m))
    return out


def _metrics(label: str, m: Mapping[str, Any]) -> prediction_pb2.PredictorMetrics:
    return prediction_pb2.PredictorMetrics(
        predictor=label,
        n=int(m.get("n", 0)),
        within_5pct=float(m.get("within_5", 0.0)),
        within_10pct=float(m.get("within_10", 0.0)),
        within_15pct=float(m.get("within_15", 0.0)),
        rmspe=float(m.get("rmspe", 0.0)),
        mape=float(m.get("mape", 0.0)),
        spearman=float(m.get("spearman", 0.0)),
        kendall=float(m.get("kendall", 0.0)),
    )


def run_calibration(
    device: Device,
    *,
    budget_s: float,
    batch_sizes: Sequence[int],
    seed: int,
    data_dir: Path,
    measure: Callable[..., Any],
    cancelled: Callable[[], bool],
    source_predictor: LatencyPredictor | None = None,
    measurement_settings: Mapping[str, Any] | None = None,
    refresh_device: Callable[[], Device] | None = None,
    prior_paths: Sequence[Path] = (),
) -> Iterator[prediction_pb2.CalibrateEvent]:
    """Calibrate in a worker thread; yield progress events, then the report.

    ``measure(model_bytes, batch_size, cancel)`` returns a measurement result of the
    sandboxed runner and whether the host was quiet throughout it (a settled training
    measurement is not repeated); it is called once per measurement calibrate() takes.
    ``refresh_device``: the device as it stands when measuring ends (its peaks measured
    again meanwhile), which the final fit and the report use. ``prior_paths``: earlier
    calibrations whose training data joins the fit (``calibrate``'s).
    """
    from nascost.measurements.api import stream_from_thread
    from nascost.predictors.calibration import CalibrationProgress, calibrate

    if budget_s <= 0:
        raise InvalidRequestError("budget_minutes must be > 0")
    if any(int(b) < 1 for b in batch_sizes):
        raise InvalidRequestError(f"batch sizes must be >= 1, got {list(batch_sizes)}")

    def work(emit: Callable[[CalibrationProgress], None], cancel: threading.Event) -> CalibrationReport:
        def measure_fn(
            model_bytes: bytes, batch: int
        ) -> tuple[float, list[KernelRecord], bytes | None, bool, tuple[float, float | None] | None]:
            if cancel.is_set():
                raise _Aborted()  # not a NascostError: calibrate() stops instead of skipping the sample
            try:
                result, settled = measure(model_bytes, batch, cancel)
            except CancelledError as e:
                raise _Aborted() from e
            lat = result.batches[0].latency
            # the lowest window median: other processes' load only ever adds time
            probe = None if result.quiet is None else (result.quiet.probe_ms, result.quiet.after_ms)
            return lat.best_window_median_ms or lat.p50_ms, kernel_records(result.batches[0].kernels), None, settled, probe

        return calibrate(
            device,
            budget_s=budget_s,
            measure_fn=measure_fn,
            batch_sizes=tuple(int(b) for b in batch_sizes),
            seed=seed,
            progress=emit,
            data_dir=data_dir,
            source_predictor=source_predictor,
            refresh_device=refresh_device,
            prior_paths=prior_paths,
            timing_statistic=(
                "lowest median of any complete timing window (windows of >= 10 runs / ~0.3 s, "
                f"{CALIBRATION_TIME_BUDGET_S:g} s budget per model), sandboxed onnxruntime worker"
            ),
            measurement_settings=dict(measurement_settings or {}),
        )

    try:
        for item in stream_from_thread(
            work, cancelled=cancelled, name=f"nascost-calibrate-{device.id}", poll_s=0.2, join_timeout_s=60
        ):
            if isinstance(item, CalibrationProgress):
                yield prediction_pb2.CalibrateEvent(
                    progress=prediction_pb2.CalibrateProgress(
                        stage=item.phase, fraction=item.fraction, message=f"{item.n_measured} measured; {item.message}"
                    )
                )
            else:
                version = item.artifact_path.name if item.artifact_path else ""
                yield prediction_pb2.CalibrateEvent(report=report_proto(item, version))
    except _Aborted as e:
        raise CancelledError("calibration cancelled") from e
