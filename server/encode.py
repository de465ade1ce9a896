"""Domain results -> ``nascost.v1`` messages (and request messages -> domain inputs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nascost.measurements.protocol import TimingOptions
from nascost.measurements.runner import BatchResult, MeasurementResult, RunnerConfig
from nascost.predictors.analysis import Analysis, NodeResult
from nascost.predictors.devices import EVALUATION_NOTE_KEYS, Device, device_class
from nascost.predictors.errors import InvalidRequestError
from nascost.predictors.graph import ShapeRequest
from nascost.predictors.roofline import RooflinePrediction
from nascost.v1 import (
    devices_pb2,
    graph_pb2,
    indicators_pb2,
    measurement_pb2,
    prediction_pb2,
    service_pb2,
)

COUNT_METHOD = "static-count"
COUNT_VERSION = "1"


def shape_request(msg: graph_pb2.ShapeBindings) -> ShapeRequest:
    shapes: dict[str, tuple[int, ...]] = {}
    for s in msg.input_shapes:
        if not s.name:
            raise InvalidRequestError("an input shape has no input name")
        if s.name in shapes:
            raise InvalidRequestError(f"input {s.name!r} is given two shapes")
        shapes[s.name] = tuple(int(d) for d in s.dims)
    request = ShapeRequest(input_shapes=shapes, dim_values={k: int(v) for k, v in msg.dim_values.items()})
    request.validate()
    return request


def shape_key(shapes: ShapeRequest) -> tuple[object, ...]:
    """Hashable key of a shape request (for caches)."""
    return (
        tuple(sorted((k, tuple(v)) for k, v in shapes.input_shapes.items())),
        tuple(sorted(shapes.dim_values.items())),
    )


def counted_provenance() -> indicators_pb2.Provenance:
    return indicators_pb2.Provenance(source=indicators_pb2.SOURCE_COUNTED, method=COUNT_METHOD, version=COUNT_VERSION)


def node_cost(n: NodeResult) -> indicators_pb2.NodeCost:
    return indicators_pb2.NodeCost(
        name=n.name,
        op_type=n.op_type,
        domain=n.domain,
        macs=n.macs,
        flops=n.flops,
        activation_read_bytes=n.activation_read_bytes,
        weight_read_bytes=n.weight_read_bytes,
        write_bytes=n.write_bytes,
        memory_access_bytes=n.memory_access_bytes,
        params=n.params,
        arithmetic_intensity=n.arithmetic_intensity,
        output_shape=list(n.output_shape),
        depth=n.depth,
        unsupported=n.unsupported,
        note=n.note,
    )


def counted(a: Analysis) -> indicators_pb2.CountedIndicators:
    p = a.params
    return indicators_pb2.CountedIndicators(
        params=p.trainable,
        param_breakdown=indicators_pb2.ParamBreakdown(
            trainable=p.trainable,
            buffers=p.buffers,
            shape_constants=p.shape_constants,
            embedding=p.embedding,
            nonzero=p.nonzero,
            derived_constants=p.derived_constants,
            deduplicated=p.deduplicated,
            has_weight_data=p.has_weight_data,
        ),
        weight_bytes_by_dtype=[
            indicators_pb2.DtypeBytes(dtype=k, elements=v[0], bytes=v[1]) for k, v in a.weight_bytes_by_dtype.items()
        ],
        weight_bytes=a.weight_bytes,
        macs=a.macs,
        flops=a.flops,
        effective_flops=a.effective_flops,
        torchvision_macs=a.torchvision_macs,
        memory_access_bytes=a.memory_access_bytes,
        activation_read_bytes=a.activation_read_bytes,
        weight_read_bytes=a.weight_read_bytes,
        write_bytes=a.write_bytes,
        peak_activation_bytes=a.peak_activation_bytes,
        arithmetic_intensity=a.arithmetic_intensity,
        depth=a.depth,
        critical_path_flops=a.critical_path_flops,
        max_width=a.max_width,
        node_count=len(a.nodes),
        flops_min=a.flops_min,
        flops_max=a.flops_max,
        control_flow=[
            indicators_pb2.ControlFlowCost(
                node_name=c.node_name,
                op_type=c.op_type,
                branch_names=list(c.branch_names),
                branch_flops=list(c.branch_flops),
                trip_count=c.trip_count or 0,
                trip_count_known=c.trip_count is not None,
            )
            for c in a.control_flow
        ],
        unresolved_dims=list(a.unresolved_dims),
    )


def analyze_response(digest: str, a: Analysis, *, include_nodes: bool) -> service_pb2.AnalyzeResponse:
    return service_pb2.AnalyzeResponse(
        graph_digest=digest,
        indicators=counted(a),
        nodes=[node_cost(n) for n in a.nodes] if include_nodes else [],
        unsupported_ops=[
            indicators_pb2.UnsupportedOp(op_type=op, domain=dom, count=n, reason="no cost handler")
            for (dom, op), n in sorted(a.unsupported.items())
        ],
        warnings=list(a.warnings),
        provenance=counted_provenance(),
        input_shapes=[
            graph_pb2.InputShape(name=k, dims=[d or 0 for d in v]) for k, v in a.input_shapes.items()
        ],
    )


# ---------------------------------------------------------------------------- measurements

_LEVELS = {
    measurement_pb2.OPTIMIZATION_LEVEL_UNSPECIFIED: "all",
    measurement_pb2.OPTIMIZATION_LEVEL_DISABLED: "disabled",
    measurement_pb2.OPTIMIZATION_LEVEL_BASIC: "basic",
    measurement_pb2.OPTIMIZATION_LEVEL_EXTENDED: "extended",
    measurement_pb2.OPTIMIZATION_LEVEL_ALL: "all",
}
_LEVEL_ENUM = {v: k for k, v in _LEVELS.items() if k != measurement_pb2.OPTIMIZATION_LEVEL_UNSPECIFIED}


def runner_config(o: measurement_pb2.MeasureOptions, *, default_threads: int) -> RunnerConfig:
    config = RunnerConfig(
        intra_op_threads=o.intra_op_threads or default_threads,
        optimization_level=_LEVELS[o.optimization_level],
        profile_nodes=o.profile_nodes,
        save_optimized_graph=o.count_optimized_graph,
    )
    config.validate()
    return config


def timing_options(o: measurement_pb2.MeasureOptions) -> TimingOptions:
    default = TimingOptions()
    timing = TimingOptions(
        warmup_runs=o.warmup_runs or default.warmup_runs,
        runs_per_window=o.runs_per_window or default.runs_per_window,
        stable_windows=o.stable_windows or default.stable_windows,
        stability_threshold_pct=o.stability_threshold_pct or default.stability_threshold_pct,
        time_budget_s=o.time_budget_s or default.time_budget_s,
    )
    timing.validate()
    return timing


def measured_provenance(result: MeasurementResult, batch: BatchResult | None = None) -> indicators_pb2.Provenance:
    lat = batch.latency if batch is not None else None
    return indicators_pb2.Provenance(
        source=indicators_pb2.SOURCE_MEASURED,
        method=f"onnxruntime-{result.provider.removesuffix('ExecutionProvider').lower()}",
        version=result.onnxruntime_version,
        samples=lat.n if lat is not None else 0,
        spread_pct=lat.window_spread_pct if lat is not None else 0.0,
        note=f"{result.intra_op_threads} intra-op thread(s), optimization level {result.optimization_level}",
    )


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def measure_result(
    result: MeasurementResult, *, digest: str, device_id: str, measurement_id: int = 0
) -> measurement_pb2.MeasureResult:
    batches = []
    for b in result.batches:
        lat = b.latency
        batches.append(
            measurement_pb2.BatchMeasurement(
                batch_size=b.batch_size,
                latency=measurement_pb2.LatencyStats(
                    p50_ms=lat.p50_ms, p90_ms=lat.p90_ms, p99_ms=lat.p99_ms, mean_ms=lat.mean_ms,
                    std_ms=lat.std_ms, min_ms=lat.min_ms, max_ms=lat.max_ms, n=lat.n,
                    windows=lat.windows, stable=lat.stable, window_spread_pct=lat.window_spread_pct,
                    best_window_median_ms=lat.best_window_median_ms,
                ),
                throughput_examples_per_s=b.throughput_examples_per_s,
                peak_memory_bytes=b.peak_memory_bytes,
                kernels=[
                    measurement_pb2.KernelTiming(
                        node_name=k.node_name, op_type=k.op_type, provider=k.provider,
                        median_us=k.median_us, calls=k.calls,
                        input_shapes=[_shape_text(s) for s in k.input_shapes],
                        output_shapes=[_shape_text(s) for s in k.output_shapes],
                    )
                    for k in b.kernels
                ],
            )
        )
    msg = measurement_pb2.MeasureResult(
        graph_digest=digest,
        device_id=device_id,
        provenance=measured_provenance(result, result.batches[0] if result.batches else None),
        batches=batches,
        session_load_ms=result.session_load_ms,
        measurement_id=measurement_id,
        execution_provider=result.provider,
        intra_op_threads=result.intra_op_threads,
        optimization_level=_LEVEL_ENUM.get(result.optimization_level, measurement_pb2.OPTIMIZATION_LEVEL_UNSPECIFIED),
    )
    if result.optimized_analysis is not None:
        msg.optimized_graph.CopyFrom(counted(result.optimized_analysis))
    return msg


# ---------------------------------------------------------------------------- devices

_KINDS = {
    "local": devices_pb2.DEVICE_KIND_LOCAL,
    "spec": devices_pb2.DEVICE_KIND_SPEC,
    "fleet": devices_pb2.DEVICE_KIND_FLEET,
    "custom": devices_pb2.DEVICE_KIND_CUSTOM,
}


def roofline_evaluation_proto(ev: Mapping[str, Any]) -> devices_pb2.RooflineEvaluation | None:
    """A catalogue record's ``roofline_evaluation`` (validated on load) as the API message."""
    if not ev:
        return None
    return devices_pb2.RooflineEvaluation(
        n=int(ev["n"]),
        within_10pct=float(ev["within_10"]),
        mape=float(ev["mape"]),
        kendall=float(ev["kendall"]) if ev.get("kendall") is not None else None,
        measured_with=str(ev["measured_with"]),
        **{k: str(ev.get(k, "")) for k in EVALUATION_NOTE_KEYS},
    )


def roofline_evaluation_dict(ev: devices_pb2.RooflineEvaluation) -> dict[str, Any]:
    """A registration's ``RooflineEvaluation`` as a catalogue record (validated by the catalogue);
    optional fields left empty are left out."""
    out: dict[str, Any] = {"n": ev.n, "within_10": ev.within_10pct, "mape": ev.mape, "measured_with": ev.measured_with}
    if ev.HasField("kendall"):
        out["kendall"] = ev.kendall
    out.update({k: v for k in EVALUATION_NOTE_KEYS if (v := getattr(ev, k))})
    return out


def device(d: Device, *, predictors: list[str]) -> devices_pb2.Device:
    spec = d.spec
    fp = dict(d.fingerprint)
    gpus = fp.get("gpus") or []
    return devices_pb2.Device(
        id=d.id,
        name=d.name,
        kind=_KINDS.get(d.kind, devices_pb2.DEVICE_KIND_UNSPECIFIED),
        spec=devices_pb2.DeviceSpec(
            peak_flops_per_s=dict(spec.peak_flops_per_s),
            memory_bandwidth_bytes_per_s=spec.memory_bandwidth_bytes_per_s,
            cache_bytes=max(spec.cache_bytes.values(), default=0),
            cores=spec.cores,
            memory_bytes=spec.memory_bytes,
            per_op_overhead_s=spec.per_op_overhead_s,
            source=spec.source,
        ),
        fingerprint=devices_pb2.DeviceFingerprint(
            cpu_model=str(fp.get("cpu_model", "")),
            logical_cores=int(fp.get("logical_cores") or 0),
            memory_bytes=int(fp.get("memory_bytes") or 0),
            gpu_model=", ".join(str(g.get("name", "")) for g in gpus),
            gpu_driver=", ".join(sorted({str(g.get("driver_version", "")) for g in gpus})),
            os=str(fp.get("os", "")),
            onnxruntime_version=str(fp.get("onnxruntime_version", "")),
            execution_providers=[str(p) for p in fp.get("providers", [])],
            digest=str(fp.get("digest", "")),
            cpu_vendor=str(fp.get("cpu_vendor", "")),
            cpu_family=str(fp.get("cpu_family", "")),
            cpu_model_number=str(fp.get("cpu_model_number", "")),
            cpu_stepping=str(fp.get("cpu_stepping", "")),
            cpu_isa=[str(f) for f in fp.get("cpu_isa") or []],
            device_class=device_class(fp) or "",
        )
        if fp
        else None,
        measurable=d.measurable,
        predictors=predictors,
        execution_provider=d.execution_provider,
        intra_op_threads=d.intra_op_threads,
        roofline_evaluation=roofline_evaluation_proto(d.roofline_evaluation),
    )


# ---------------------------------------------------------------------------- predictions

ROOFLINE_VERSION = "1"


def roofline_prediction(r: RooflinePrediction, *, heldout_error_pct: float = 0.0,
                        heldout_within_10pct: float = 0.0, evaluated_by: str = "") -> prediction_pb2.LatencyPrediction:
    """The analytic prediction; its error is known once it was measured on the device
    (``evaluated_by`` says how: a calibration's held-out models, or the catalogue's record)."""
    how = "analytic roofline: per node max(FLOPs / peak, bytes / bandwidth) + per-op overhead, summed"
    if heldout_error_pct:
        note = f"{how}; error measured on {evaluated_by}" if evaluated_by else how
    else:
        note = "analytic roofline, not yet evaluated against measurements on this device"
    return prediction_pb2.LatencyPrediction(
        latency_ms=indicators_pb2.Figure(
            value=r.latency_ms,
            unit="ms",
            low=r.latency_ms,
            high=r.latency_ms,
            provenance=indicators_pb2.Provenance(
                source=indicators_pb2.SOURCE_PREDICTED,
                method="roofline",
                version=ROOFLINE_VERSION,
                expected_error_pct=heldout_error_pct,
                error_is_evaluated=bool(heldout_error_pct),
                note=note,
            ),
        ),
        predictor=f"roofline@{ROOFLINE_VERSION}",
        heldout_within_10pct=heldout_within_10pct,
        compute_bound_fraction=r.compute_bound_fraction,
    )


def peak_memory_figure(a: Analysis) -> indicators_pb2.Figure:
    """Peak activations + weights, from tensor liveness (what a runtime must hold at least)."""
    value = a.peak_activation_bytes + a.weight_bytes
    return indicators_pb2.Figure(
        value=float(value),
        unit="bytes",
        low=float(value),
        high=float(value),
        provenance=indicators_pb2.Provenance(
            source=indicators_pb2.SOURCE_COUNTED,
            method="liveness",
            version=COUNT_VERSION,
            note="peak live activations along a topological schedule + weight bytes; runtimes add arenas and workspace",
        ),
    )
