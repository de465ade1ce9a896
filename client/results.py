"""Typed results decoded from ``nascost.v1`` replies: plain frozen dataclasses.

``to_dict()`` gives JSON-ready dicts with integer counts (protobuf's own JSON mapping
turns int64 into strings); ``nodes_frame()`` gives a pandas DataFrame when pandas is
installed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from nascost.v1 import devices_pb2, indicators_pb2, measurement_pb2, service_pb2

_SOURCES = {
    indicators_pb2.SOURCE_COUNTED: "counted",
    indicators_pb2.SOURCE_PREDICTED: "predicted",
    indicators_pb2.SOURCE_MEASURED: "measured",
}


@dataclass(frozen=True, slots=True)
class Provenance:
    source: str
    method: str
    version: str = ""
    expected_error_pct: float = 0.0
    error_is_evaluated: bool = False
    samples: int = 0
    spread_pct: float = 0.0
    note: str = ""

    @classmethod
    def from_proto(cls, p: indicators_pb2.Provenance) -> Provenance:
        return cls(
            source=_SOURCES.get(p.source, "unspecified"),
            method=p.method,
            version=p.version,
            expected_error_pct=p.expected_error_pct,
            error_is_evaluated=p.error_is_evaluated,
            samples=p.samples,
            spread_pct=p.spread_pct,
            note=p.note,
        )


@dataclass(frozen=True, slots=True)
class NodeCost:
    name: str
    op_type: str
    domain: str
    macs: int
    flops: int
    memory_access_bytes: int
    activation_read_bytes: int
    weight_read_bytes: int
    write_bytes: int
    params: int
    arithmetic_intensity: float
    output_shape: tuple[int, ...]
    depth: int
    unsupported: bool
    note: str

    @classmethod
    def from_proto(cls, n: indicators_pb2.NodeCost) -> NodeCost:
        return cls(
            name=n.name,
            op_type=n.op_type,
            domain=n.domain,
            macs=n.macs,
            flops=n.flops,
            memory_access_bytes=n.memory_access_bytes,
            activation_read_bytes=n.activation_read_bytes,
            weight_read_bytes=n.weight_read_bytes,
            write_bytes=n.write_bytes,
            params=n.params,
            arithmetic_intensity=n.arithmetic_intensity,
            output_shape=tuple(n.output_shape),
            depth=n.depth,
            unsupported=n.unsupported,
            note=n.note,
        )


@dataclass(frozen=True, slots=True)
class ParamBreakdown:
    trainable: int
    buffers: int
    shape_constants: int
    embedding: int
    nonzero: int
    derived_constants: int
    deduplicated: int
    has_weight_data: bool


@dataclass(frozen=True, slots=True)
class Analysis:
    """Counted indicators of one graph (all figures are counted; units in the names)."""

    graph_digest: str
    params: int
    param_breakdown: ParamBreakdown
    weight_bytes: int
    weight_bytes_by_dtype: dict[str, int]
    macs: int
    flops: int
    effective_flops: int
    torchvision_macs: int
    memory_access_bytes: int
    activation_read_bytes: int
    weight_read_bytes: int
    write_bytes: int
    peak_activation_bytes: int
    arithmetic_intensity: float
    depth: int
    critical_path_flops: int
    max_width: int
    node_count: int
    flops_min: int
    flops_max: int
    unsupported_ops: dict[str, int]
    unresolved_dims: tuple[str, ...]
    warnings: tuple[str, ...]
    input_shapes: dict[str, tuple[int, ...]]
    provenance: Provenance
    nodes: tuple[NodeCost, ...] = field(default=())

    @classmethod
    def from_proto(cls, r: service_pb2.AnalyzeResponse) -> Analysis:
        i = r.indicators
        b = i.param_breakdown
        return cls(
            graph_digest=r.graph_digest,
            params=i.params,
            param_breakdown=ParamBreakdown(
                b.trainable, b.buffers, b.shape_constants, b.embedding, b.nonzero,
                b.derived_constants, b.deduplicated, b.has_weight_data,
            ),
            weight_bytes=i.weight_bytes,
            weight_bytes_by_dtype={d.dtype: d.bytes for d in i.weight_bytes_by_dtype},
            macs=i.macs,
            flops=i.flops,
            effective_flops=i.effective_flops,
            torchvision_macs=i.torchvision_macs,
            memory_access_bytes=i.memory_access_bytes,
            activation_read_bytes=i.activation_read_bytes,
            weight_read_bytes=i.weight_read_bytes,
            write_bytes=i.write_bytes,
            peak_activation_bytes=i.peak_activation_bytes,
            arithmetic_intensity=i.arithmetic_intensity,
            depth=i.depth,
            critical_path_flops=i.critical_path_flops,
            max_width=i.max_width,
            node_count=i.node_count,
            flops_min=i.flops_min,
            flops_max=i.flops_max,
            unsupported_ops={
                (f"{u.domain}." if u.domain else "") + u.op_type: u.count for u in r.unsupported_ops
            },
            unresolved_dims=tuple(i.unresolved_dims),
            warnings=tuple(r.warnings),
            input_shapes={s.name: tuple(s.dims) for s in r.input_shapes},
            provenance=Provenance.from_proto(r.provenance),
            nodes=tuple(NodeCost.from_proto(n) for n in r.nodes),
        )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["nodes"] = [dataclasses.asdict(n) for n in self.nodes]
        return d

    def nodes_frame(self) -> Any:
        """Per-node costs as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(n) for n in self.nodes])


def _roofline_evaluation(ev: devices_pb2.RooflineEvaluation) -> dict[str, Any]:
    """The API's fields (``within_10pct``, ...); ``kendall`` and empty strings only when given."""
    out: dict[str, Any] = {"n": ev.n, "within_10pct": ev.within_10pct, "mape": ev.mape, "measured_with": ev.measured_with}
    if ev.HasField("kendall"):
        out["kendall"] = ev.kendall
    out.update({k: v for k in ("cases", "date", "how") if (v := getattr(ev, k))})
    return out


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    name: str
    kind: str
    measurable: bool
    peak_flops_per_s: dict[str, float]
    memory_bandwidth_bytes_per_s: float
    source: str
    predictors: tuple[str, ...]
    fingerprint: dict[str, Any]
    # the roofline's measured error there, outside a calibration ({} when never measured)
    roofline_evaluation: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_proto(cls, d: devices_pb2.Device) -> Device:
        kind = devices_pb2.DeviceKind.Name(d.kind).removeprefix("DEVICE_KIND_").lower()
        fp = d.fingerprint
        return cls(
            id=d.id,
            name=d.name,
            kind=kind,
            measurable=d.measurable,
            peak_flops_per_s=dict(d.spec.peak_flops_per_s),
            memory_bandwidth_bytes_per_s=d.spec.memory_bandwidth_bytes_per_s,
            source=d.spec.source,
            predictors=tuple(d.predictors),
            fingerprint={
                "cpu_model": fp.cpu_model,
                "logical_cores": fp.logical_cores,
                "memory_bytes": fp.memory_bytes,
                "gpu_model": fp.gpu_model,
                "onnxruntime_version": fp.onnxruntime_version,
                "digest": fp.digest,
                "cpu_family": fp.cpu_family,
                "cpu_model_number": fp.cpu_model_number,
                "cpu_isa": list(fp.cpu_isa),
                "device_class": fp.device_class,
            }
            if fp.digest or fp.cpu_model
            else {},
            roofline_evaluation=_roofline_evaluation(d.roofline_evaluation) if d.HasField("roofline_evaluation") else {},
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class KernelTime:
    node_name: str
    op_type: str
    provider: str
    median_us: float
    calls: int
    input_shapes: tuple[str, ...]
    output_shapes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BatchLatency:
    """Measured latency of one batch size (ms per batch) and what goes with it."""

    batch_size: int
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
    best_window_median_ms: float
    throughput_examples_per_s: float
    peak_memory_bytes: int
    kernels: tuple[KernelTime, ...]


@dataclass(frozen=True, slots=True)
class Measurement:
    graph_digest: str
    device_id: str
    provenance: Provenance
    batches: tuple[BatchLatency, ...]
    session_load_ms: float
    execution_provider: str
    intra_op_threads: int
    measurement_id: int
    optimized_graph: dict[str, Any] | None

    @classmethod
    def from_proto(cls, r: measurement_pb2.MeasureResult) -> Measurement:
        batches = []
        for b in r.batches:
            lat = b.latency
            batches.append(
                BatchLatency(
                    batch_size=b.batch_size, p50_ms=lat.p50_ms, p90_ms=lat.p90_ms, p99_ms=lat.p99_ms,
                    mean_ms=lat.mean_ms, std_ms=lat.std_ms, min_ms=lat.min_ms, max_ms=lat.max_ms,
                    n=lat.n, windows=lat.windows, stable=lat.stable, window_spread_pct=lat.window_spread_pct,
                    best_window_median_ms=lat.best_window_median_ms,
                    throughput_examples_per_s=b.throughput_examples_per_s,
                    peak_memory_bytes=b.peak_memory_bytes,
                    kernels=tuple(
                        KernelTime(k.node_name, k.op_type, k.provider, k.median_us, k.calls,
                                   tuple(k.input_shapes), tuple(k.output_shapes))
                        for k in b.kernels
                    ),
                )
            )
        og = r.optimized_graph if r.HasField("optimized_graph") else None
        return cls(
            graph_digest=r.graph_digest,
            device_id=r.device_id,
            provenance=Provenance.from_proto(r.provenance),
            batches=tuple(batches),
            session_load_ms=r.session_load_ms,
            execution_provider=r.execution_provider,
            intra_op_threads=r.intra_op_threads,
            measurement_id=r.measurement_id,
            optimized_graph=None if og is None else {
                "params": og.params, "macs": og.macs, "flops": og.flops,
                "memory_access_bytes": og.memory_access_bytes, "node_count": og.node_count,
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the first batch's figures also sit at the top level."""
        d = dataclasses.asdict(self)
        if self.batches:
            b = self.batches[0]
            d["batch_size"] = b.batch_size
            d["latency_ms"] = {
                "p50": b.p50_ms, "p90": b.p90_ms, "p99": b.p99_ms, "mean": b.mean_ms,
                "std": b.std_ms, "min": b.min_ms, "max": b.max_ms, "n": b.n,
            }
            d["stable"] = b.stable
            d["peak_memory_bytes"] = b.peak_memory_bytes
            d["throughput_examples_per_s"] = b.throughput_examples_per_s
            d["nodes"] = [dataclasses.asdict(k) for k in b.kernels]
        return d
