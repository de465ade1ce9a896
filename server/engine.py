"""The domain facade the servicer and the in-process CLI call.

It holds what a server keeps between requests: graphs by digest (so a client sends a
graph once), answers by (digest, shapes) (a NAS loop asks the same question often), the
device catalogue and the store. Thread-safe: the gRPC server calls it from many threads.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from nascost.predictors.analysis import Analysis, analyze
from nascost.predictors.errors import (
    CancelledError,
    InvalidRequestError,
    LimitExceededError,
    NotCalibratedError,
    NotMeasurableError,
    UnknownGraphError,
)
from nascost.predictors.graph import Graph, ShapeRequest, digest_of, load_graph_bytes
from nascost.server import encode
from nascost.server.config import ServerConfig
from nascost.server.encode import analyze_response, shape_key, shape_request
from nascost.server.learned import (
    BATCH_DIM,
    CALIBRATION_TIME_BUDGET_S,
    LearnedPredictors,
    heldout_summary,
    report_proto,
    run_calibration,
)
from nascost.server.metrics import Metrics
from nascost.v1 import devices_pb2, graph_pb2, measurement_pb2, prediction_pb2, service_pb2

if TYPE_CHECKING:
    from nascost.measurements.fingerprint import DeviceFingerprint
    from nascost.measurements.store import Store
    from nascost.predictors.devices import Catalogue, Device

logger = logging.getLogger(__name__)

LOCAL_DEVICE_ID = "local"
PEAKS_REFRESH_S = 240.0  # during a calibration, the local peaks are measured again at most this often
PEAKS_LOCK_WAIT_S = 5.0  # ... when the device lock is free within this long (another client may be measuring)
# Predictors a Predict call can name, best first.
PREDICTORS = ("learned", "roofline")

_DIGEST_PREFIX = "sha256:"


class Counted(NamedTuple):
    digest: str
    graph: Graph
    analysis: Analysis


class GraphCache:
    """Serialized graphs by digest, bounded in bytes, least recently used evicted first."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        digest = digest_of(data)
        with self._lock:
            if digest in self._items:
                self._items.move_to_end(digest)
                return digest
            if len(data) > self._max_bytes:
                raise LimitExceededError(
                    f"graph of {len(data)} bytes exceeds the graph cache ({self._max_bytes} bytes)"
                )
            self._items[digest] = data
            self._bytes += len(data)
            while self._bytes > self._max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old)
        return digest

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
            return data

    def __contains__(self, digest: str) -> bool:
        with self._lock:
            return digest in self._items


V = TypeVar("V")


class _LRU(Generic[V]):
    """A bounded, thread-safe map; least recently used entries go first."""

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._items: OrderedDict[object, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: object) -> V | None:
        with self._lock:
            v = self._items.get(key)
            if v is not None:
                self._items.move_to_end(key)
            return v

    def put(self, key: object, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._entries:
                self._items.popitem(last=False)


def check_digest(digest: str) -> str:
    hexpart = digest.removeprefix(_DIGEST_PREFIX)
    if not digest.startswith(_DIGEST_PREFIX) or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidRequestError(f"graph digest must be 'sha256:<64 lower-case hex>', got {digest[:80]!r}")
    return digest


class Engine:
    """What the service does, without gRPC."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.graphs = GraphCache(config.graph_cache_bytes)
        self._answers: _LRU[bytes] = _LRU(config.analysis_cache_entries)
        self._counted: _LRU[Counted] = _LRU(max(16, config.analysis_cache_entries // 8))
        self.metrics = Metrics()

    @cached_property
    def store(self) -> Store:
        """The embedded store (SQLite under the data dir), opened on first use."""
        from nascost.measurements.store import Store

        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        return Store(self.config.data_dir / "nascost.sqlite3")

    # ---------------------------------------------------------------- graphs

    def resolve(self, ref: graph_pb2.GraphRef) -> tuple[str, bytes]:
        """(digest, bytes) of the graph a request names."""
        which = ref.WhichOneof("source")
        if which == "onnx_model":
            data = ref.onnx_model
            if len(data) > self.config.max_model_bytes:
                raise LimitExceededError(
                    f"model is {len(data)} bytes; this server accepts at most {self.config.max_model_bytes}"
                )
            return self.graphs.put(data), data
        if which == "digest":
            digest = check_digest(ref.digest)
            held = self.graphs.get(digest)
            if held is None and self.store.has_graph(digest):
                held = self.store.get_graph(digest)
                if held is not None:
                    self.graphs.put(held)
            if held is None:
                raise UnknownGraphError(f"no graph {digest} on this server: send its bytes or UploadGraph it first")
            return digest, held
        raise InvalidRequestError("request names no graph: set graph.onnx_model or graph.digest")

    def upload(self, chunks: Iterable[graph_pb2.GraphChunk]) -> graph_pb2.GraphHandle:
        parts: list[bytes] = []
        size = 0
        expected_total = 0
        expected_digest = ""
        for i, chunk in enumerate(chunks):
            if i == 0:
                expected_total = chunk.total_bytes
                expected_digest = chunk.expected_digest
                if expected_total > self.config.max_model_bytes:
                    raise LimitExceededError(
                        f"model is {expected_total} bytes; this server accepts at most {self.config.max_model_bytes}"
                    )
            size += len(chunk.data)
            if size > self.config.max_model_bytes:
                raise LimitExceededError(f"upload exceeds {self.config.max_model_bytes} bytes")
            parts.append(chunk.data)
        data = b"".join(parts)
        if not data:
            raise InvalidRequestError("upload carried no bytes")
        if expected_total and expected_total != len(data):
            raise InvalidRequestError(f"upload announced {expected_total} bytes but carried {len(data)}")
        digest = digest_of(data)
        if expected_digest and expected_digest != digest:
            raise InvalidRequestError(f"upload digest {digest} differs from the announced {expected_digest}")
        self.graphs.put(data)
        self.store.put_graph(digest, data)
        return graph_pb2.GraphHandle(digest=digest, size_bytes=len(data))

    def has_graph(self, digest: str) -> bool:
        return check_digest(digest) in self.graphs or self.store.has_graph(digest)

    # ---------------------------------------------------------------- counting

    def count(self, digest: str, data: bytes, shapes: ShapeRequest) -> Counted:
        """The graph (resolved by :meth:`resolve`) at these shapes, counted (cached)."""
        key = (digest, shape_key(shapes))
        hit = self._counted.get(key)
        if hit is None:
            graph = load_graph_bytes(data, shapes, max_bytes=self.config.max_model_bytes)
            hit = Counted(digest, graph, analyze(graph))
            self._counted.put(key, hit)
        return hit

    def analyze(
        self,
        ref: graph_pb2.GraphRef,
        shapes: ShapeRequest,
        *,
        include_nodes: bool,
        resolved: tuple[str, bytes] | None = None,
    ) -> service_pb2.AnalyzeResponse:
        """Counted indicators. ``resolved``: (digest, bytes) when the caller resolved ``ref``."""
        digest, data = resolved or self.resolve(ref)
        key = (digest, shape_key(shapes), include_nodes)
        cached = self._answers.get(key)
        if cached is not None:
            return service_pb2.AnalyzeResponse.FromString(cached)
        counted = self.count(digest, data, shapes)
        response = analyze_response(digest, counted.analysis, include_nodes=include_nodes)
        self._answers.put(key, response.SerializeToString())
        return response

    # ---------------------------------------------------------------- devices, predictions, measurements

    @cached_property
    def fingerprint(self) -> DeviceFingerprint:
        """This machine's fingerprint, probed once per server."""
        from nascost.measurements.fingerprint import local_fingerprint

        return local_fingerprint()

    @cached_property
    def catalogue(self) -> Catalogue:
        """Shipped spec-sheet devices, custom devices from the store, and the local machine
        (fingerprinted; its peaks measured on first use, cached in the store, and measured again
        during calibrations, the best kept)."""
        from nascost.predictors.devices import Catalogue

        catalogue = Catalogue(store=_StoreDevices(self.store))
        self._install_local(catalogue, refresh=False)
        return catalogue

    def _install_local(
        self, catalogue: Catalogue, *, refresh: bool, cancel: threading.Event | None = None, timeout_s: float | None = None
    ) -> None:
        """Set the local device from its stored peaks (``refresh``: measured again, the best
        rates of both kept; see :func:`~nascost.measurements.fingerprint.merged_peaks`),
        waiting at most ``timeout_s`` for the device lock."""
        from nascost.measurements.api import device_lock
        from nascost.measurements.fingerprint import cached_peaks, last_level_cache_bytes

        fp = self.fingerprint
        threads = self.config.measure_threads
        with device_lock(LOCAL_DEVICE_ID, cancel=cancel, timeout_s=timeout_s, lock_dir=self.config.data_dir / "locks"):
            peaks = cached_peaks(self.store, fp, intra_op_threads=threads, refresh=refresh)
        llc = last_level_cache_bytes()
        catalogue.set_local(
            fingerprint={**fp.to_dict(), "digest": fp.digest},
            peak_flops_per_s={"float32": peaks.gemm_flops_per_s},
            memory_bandwidth_bytes_per_s=peaks.memory_bandwidth_bytes_per_s,
            cores=fp.logical_cores,
            memory_bytes=fp.memory_bytes,
            cache_bytes={"llc": llc} if llc else None,
            per_op_overhead_s=peaks.per_op_overhead_s,
            name=f"{fp.cpu_model} ({fp.logical_cores} logical cores, onnxruntime {fp.onnxruntime_version})",
            intra_op_threads=threads,
            source=f"measured by micro-benchmarks on this machine ({peaks.method}; {threads} intra-op thread(s))",
        )

    def list_devices(self) -> list[devices_pb2.Device]:
        return [encode.device(d, predictors=self._predictor_names(d.id)) for d in self.catalogue.list_devices()]

    def get_device(self, device_id: str) -> devices_pb2.Device:
        if not device_id:
            raise InvalidRequestError("device id is empty")
        d = self.catalogue.get(device_id)
        return encode.device(d, predictors=self._predictor_names(d.id))

    def register_device(self, device: devices_pb2.Device) -> devices_pb2.Device:
        from nascost.predictors.devices import DeviceSpec

        spec = device.spec
        added = self.catalogue.add(
            device.id,
            DeviceSpec(
                peak_flops_per_s=dict(spec.peak_flops_per_s),
                memory_bandwidth_bytes_per_s=spec.memory_bandwidth_bytes_per_s,
                cache_bytes={"llc": spec.cache_bytes} if spec.cache_bytes else {},
                cores=spec.cores or 1,
                memory_bytes=spec.memory_bytes,
                per_op_overhead_s=spec.per_op_overhead_s,
                source=spec.source or "registered through the API",
            ),
            name=device.name or device.id,
            roofline_evaluation=encode.roofline_evaluation_dict(device.roofline_evaluation)
            if device.HasField("roofline_evaluation")
            else None,
        )
        return encode.device(added, predictors=self._predictor_names(added.id))

    def _predictor_names(self, device_id: str) -> list[str]:
        return ["roofline"]

    def estimate(
        self,
        request: service_pb2.EstimateRequest,
        *,
        cancelled: Callable[[], bool],
        time_remaining_s: Callable[[], float | None] = lambda: None,
    ) -> service_pb2.EstimateResponse:
        """Counted, predicted for every device, and measured where asked and measurable."""
        resolved = self.resolve(request.graph)  # hash the bytes once for all three parts
        shapes = shape_request(request.shapes)
        counted = self.analyze(request.graph, shapes, include_nodes=request.include_nodes, resolved=resolved)
        predicted = self.predict(
            prediction_pb2.PredictRequest(graph=request.graph, shapes=request.shapes, device_ids=request.device_ids),
            resolved=resolved,
        )
        devices = []
        for p in predicted.devices:
            entry = service_pb2.DeviceEstimate(device_id=p.device_id, predictions=p.predictions)
            if request.measure and self.catalogue.get(p.device_id).measurable:
                for event in self.measure(
                    measurement_pb2.MeasureRequest(
                        graph=request.graph, shapes=request.shapes, device_id=p.device_id, options=request.measure_options
                    ),
                    cancelled=cancelled,
                    time_remaining_s=time_remaining_s,
                    resolved=resolved,
                ):
                    if event.HasField("result"):
                        entry.measurement.CopyFrom(event.result)
            devices.append(entry)
        return service_pb2.EstimateResponse(counted=counted, devices=devices, request_id=request.request_id)

    def predict(
        self, request: prediction_pb2.PredictRequest, *, resolved: tuple[str, bytes] | None = None
    ) -> prediction_pb2.PredictResponse:
        """Latency of the graph on each requested device, by each predictor available there."""
        from nascost.predictors.roofline import predict_roofline

        wanted = set(request.predictors) or set(PREDICTORS)
        unknown = wanted - set(PREDICTORS)
        if unknown:
            raise InvalidRequestError(f"unknown predictor(s) {sorted(unknown)}; known: {', '.join(PREDICTORS)}")
        digest, data = resolved or self.resolve(request.graph)
        counted = self.count(digest, data, shape_request(request.shapes))
        ids = list(request.device_ids)
        devices = self.catalogue.resolve(ids) if ids else self.catalogue.list_devices()
        out = prediction_pb2.PredictResponse(graph_digest=digest)
        for device in devices:
            entry = out.devices.add(device_id=device.id)
            if "learned" in wanted:
                learned = self._learned_prediction(device, counted, explicit=bool(request.predictors))
                if learned is not None:
                    entry.predictions.append(learned)
            if "roofline" in wanted:
                accuracy, evaluated_by = self._roofline_accuracy(device)
                entry.predictions.append(
                    encode.roofline_prediction(
                        predict_roofline(counted.analysis, device),
                        heldout_error_pct=100 * accuracy.get("mape", 0.0),
                        heldout_within_10pct=accuracy.get("within_10", 0.0),
                        evaluated_by=evaluated_by,
                    )
                )
            entry.peak_memory_bytes.CopyFrom(encode.peak_memory_figure(counted.analysis))
        return out

    @cached_property
    def learned(self) -> LearnedPredictors:
        return LearnedPredictors(self.config.data_dir)

    def _learned_prediction(
        self, device: Device, counted: Counted, *, explicit: bool
    ) -> prediction_pb2.LatencyPrediction | None:
        prediction = self.learned.predict(device, counted.graph, counted.analysis)
        if prediction is None and explicit:
            raise NotCalibratedError(
                f"device {device.id!r} has no learned predictor yet: calibrate it (nascost calibrate --device {device.id})"
            )
        return prediction

    def _roofline_accuracy(self, device: Device) -> tuple[dict[str, Any], str]:
        """The roofline's measured error on ``device`` and what measured it: the held-out
        models of its latest calibration, else the catalogue's ``roofline_evaluation``
        (({}, "") when neither exists)."""
        predictor = self.learned.get(device.id)
        meta = getattr(predictor, "metadata_", None) or {}
        held = heldout_summary(meta, "roofline")
        if held:
            n = f"{int(held['n'])} " if held.get("n") else ""
            return held, f"{n}held-out models of this server's latest calibration"
        ev = device.roofline_evaluation
        if ev:
            what = f"{ev['n']} cases ({ev['cases']})" if ev.get("cases") else f"{ev['n']} cases"
            when = f", {ev['date']}" if ev.get("date") else ""
            return dict(ev), f"{what} timed with {ev['measured_with']}{when}, not by this server"
        return {}, ""

    def measure(
        self,
        request: measurement_pb2.MeasureRequest,
        *,
        cancelled: Callable[[], bool],
        time_remaining_s: Callable[[], float | None] = lambda: None,
        resolved: tuple[str, bytes] | None = None,
    ) -> Iterator[measurement_pb2.MeasureEvent]:
        """Measure in the sandboxed worker: progress events, then the stored result."""
        from nascost.measurements.api import Progress, measure_stream, record_measurement
        from nascost.measurements.runner import MeasurementResult

        device_id = request.device_id or LOCAL_DEVICE_ID
        self._measurable(device_id)
        digest, data = resolved or self.resolve(request.graph)
        shapes = shape_request(request.shapes)
        options = request.options
        batch_sizes = [int(b) for b in options.batch_sizes]
        if any(b < 1 for b in batch_sizes):
            raise InvalidRequestError(f"batch sizes must be >= 1, got {batch_sizes}")
        limits = self.config.sandbox_limits()
        remaining = time_remaining_s()
        if remaining is not None:
            limits = dataclasses.replace(limits, wall_timeout_s=max(1.0, min(limits.wall_timeout_s, remaining - 0.5)))
        self.store.put_graph(digest, data)
        stream = measure_stream(
            data,
            shapes=shapes,
            batch_sizes=batch_sizes,
            config=encode.runner_config(options, default_threads=self.config.measure_threads),
            timing=encode.timing_options(options),
            limits=limits,
            cancelled=cancelled,
            device_id=device_id,
            analyze_optimized=options.count_optimized_graph,
            lock_dir=self.config.data_dir / "locks",
        )
        for item in stream:
            if isinstance(item, Progress):
                yield measurement_pb2.MeasureEvent(
                    progress=measurement_pb2.MeasureProgress(stage=item.stage, fraction=item.fraction, message=item.message)
                )
            elif isinstance(item, MeasurementResult):
                ids = record_measurement(
                    self.store, item, data, device_id=device_id, graph_digest=digest, fingerprint=self.fingerprint
                )
                yield measurement_pb2.MeasureEvent(
                    result=encode.measure_result(item, digest=digest, device_id=device_id, measurement_id=ids[0] if ids else 0)
                )

    def _measurable(self, device_id: str) -> None:
        device = self.get_device(device_id)
        if not device.measurable:
            raise NotMeasurableError(
                f"device {device_id!r} cannot be measured through this server (only predicted); measure on 'local'"
            )

    def calibrate(
        self, request: prediction_pb2.CalibrateRequest, *, cancelled: Callable[[], bool]
    ) -> Iterator[prediction_pb2.CalibrateEvent]:
        """Sample, measure (sandboxed), fit and evaluate the learned predictor of a device."""
        from nascost.measurements.api import measure, record_measurement
        from nascost.measurements.protocol import TimingOptions
        from nascost.measurements.quiet import QuietBaseline
        from nascost.measurements.runner import RunnerConfig

        device_id = request.device_id or LOCAL_DEVICE_ID
        self._measurable(device_id)
        device = self.catalogue.get(device_id)
        config = RunnerConfig(intra_op_threads=device.intra_op_threads or self.config.measure_threads, profile_nodes=True)
        timing = TimingOptions(time_budget_s=CALIBRATION_TIME_BUDGET_S)
        limits = self.config.sandbox_limits()
        lock_dir = self.config.data_dir / "locks"
        # every measurement waits (a while) for the host to be as quiet as it has been
        quiet = QuietBaseline()
        # the local device's peaks are measured again while the host is quiet (right after a
        # settled measurement, every PEAKS_REFRESH_S at most), the best kept: the ones the
        # catalogue measured at start may have run in a slow phase
        last_peaks_s = -math.inf

        def measure_one(model_bytes: bytes, batch: int, cancel: threading.Event) -> tuple[Any, bool]:
            nonlocal last_peaks_s
            gate = quiet.gate()
            result = measure(
                model_bytes,
                shapes=ShapeRequest(dim_values={BATCH_DIM: batch}),
                batch_sizes=(batch,),
                config=config,
                timing=timing,
                limits=limits,
                cancel=cancel,
                device_id=device_id,
                lock_dir=lock_dir,
                quiet=gate,
            )
            settled = quiet.update(gate, result.quiet)
            # every calibration measurement joins the stored data set the predictors train on
            record_measurement(self.store, result, model_bytes, device_id=device_id, fingerprint=self.fingerprint)
            now = time.monotonic()
            if settled and device_id == LOCAL_DEVICE_ID and now - last_peaks_s >= PEAKS_REFRESH_S:
                last_peaks_s = now
                try:
                    self._install_local(self.catalogue, refresh=True, cancel=cancel, timeout_s=PEAKS_LOCK_WAIT_S)
                except CancelledError:
                    raise
                except Exception as e:  # the calibration goes on with the peaks it has
                    logger.warning("calibration of %s: the peaks were not measured again: %s", device_id, e)
            return result, settled

        source = next(
            (p for d in self.catalogue.list_devices() if d.id != device_id and (p := self.learned.get(d.id)) is not None),
            None,
        )
        yield from run_calibration(
            device,
            budget_s=60.0 * request.budget_minutes,
            batch_sizes=list(request.batch_sizes) or [1],
            seed=request.seed,
            data_dir=self.config.data_dir,
            measure=measure_one,
            cancelled=cancelled,
            source_predictor=source,
            refresh_device=lambda: self.catalogue.get(device_id),
            prior_paths=self.config.calibration_priors,
            measurement_settings={
                "execution_provider": config.provider,
                "intra_op_threads": config.intra_op_threads,
                "optimization_level": config.optimization_level,
                "time_budget_s": timing.time_budget_s,
                "quiet_gate": quiet.describe(),
            },
        )
        logger.info("calibration of %s: quiet gate %s", device_id, quiet.summary())

    def get_calibration(self, device_id: str) -> prediction_pb2.CalibrationReport:
        """The report of the latest calibration of ``device_id``, from its artifact."""
        self.catalogue.get(device_id)
        meta = self.learned.metadata(device_id)
        prior = meta.get("calibration_priors") or {}  # the artifact's n_train counts the priors' examples too
        report = {
            "device_id": device_id,
            "n_train": meta.get("n_train", 0) - prior.get("n_train", 0),
            "n_prior": prior.get("n_train", 0),
            "prior_sources": prior.get("sources", []),
            "heldout_families": meta.get("heldout_families", []),
            "accuracy": meta.get("heldout_metrics", {}),
            "selected_variant": meta.get("selected_variant", ""),
            "heldout_measurements": meta.get("heldout_measurements", {}),
            "repeat_agreement": meta.get("repeat_agreement", {}),
        }
        return report_proto(report, str(meta.get("version", "")))


class _StoreDevices:
    """The store's devices table as the catalogue's ``DeviceStore``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load_devices(self) -> list[dict[str, Any]]:
        return list(self._store.devices().values())

    def save_device(self, device_id: str, device: dict[str, Any]) -> None:
        self._store.put_device(device_id, device)
