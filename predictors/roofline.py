"""Analytic roofline latency: available for every device with a spec, no calibration.

Per node: ``max(flops / peak(dtype), memory_access_bytes / bandwidth) + per_op_overhead``,
summed along the schedule (nodes run one after another, as onnxruntime's sequential
executor runs them). Nodes with neither FLOPs nor memory traffic (folded constants,
metadata ops) are charged nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from nascost.predictors.analysis import Analysis, node_dtype
from nascost.predictors.devices import Device
from nascost.predictors.graph import Graph

logger = logging.getLogger(__name__)

DEFAULT_DTYPE = "float32"


@dataclass(frozen=True, slots=True)
class NodeTime:
    name: str
    op_type: str
    dtype: str
    compute_s: float
    memory_s: float
    overhead_s: float

    @property
    def latency_s(self) -> float:
        return max(self.compute_s, self.memory_s) + self.overhead_s

    @property
    def compute_bound(self) -> bool:
        return self.compute_s >= self.memory_s


@dataclass(frozen=True, slots=True)
class RooflinePrediction:
    """Analytic latency of one graph on one device.

    Attributes:
        latency_ms: predicted latency.
        compute_bound_fraction: share of the summed ``max(compute, memory)`` time spent in
            compute-bound nodes (0 = all memory-bound, 1 = all compute-bound).
        nodes: per-node times in schedule order.
    """

    device_id: str
    latency_ms: float
    compute_bound_fraction: float
    nodes: tuple[NodeTime, ...]

    @property
    def overhead_ms(self) -> float:
        return 1e3 * sum(n.overhead_s for n in self.nodes)


def node_dtypes(graph: Graph) -> dict[str, str]:
    """Node name -> the dtype its arithmetic runs in (what ``NodeResult.dtype`` holds)."""
    return {node.name: node_dtype(node) for node in graph.nodes}


def predict_roofline(
    analysis: Analysis,
    device: Device,
    *,
    dtype: str | None = None,
    dtypes: Mapping[str, str] | None = None,
) -> RooflinePrediction:
    """Roofline latency of ``analysis`` on ``device``.

    Args:
        analysis: the counted graph.
        device: the target; its spec supplies peaks, bandwidth and overhead.
        dtype: run every node at this arithmetic ("float32", "tf32", "float16", ...).
        dtypes: per-node dtype overrides when ``dtype`` is not given; other nodes run at
            their own arithmetic dtype (``NodeResult.dtype``).
    """
    spec = device.spec
    bw = spec.memory_bandwidth_bytes_per_s
    peaks: dict[str, float] = {}
    times = []
    for n in analysis.nodes:
        dt = dtype or (dtypes or {}).get(n.name) or n.dtype
        peak = peaks.get(dt)
        if peak is None:
            peak = peaks[dt] = spec.peak_for(dt)
        mem = n.memory_access_bytes
        active = n.flops > 0 or mem > 0
        times.append(
            NodeTime(
                name=n.name,
                op_type=n.op_type,
                dtype=dt,
                compute_s=n.flops / peak,
                memory_s=mem / bw,
                overhead_s=spec.per_op_overhead_s if active else 0.0,
            )
        )
    body = sum(max(t.compute_s, t.memory_s) for t in times)
    compute = sum(max(t.compute_s, t.memory_s) for t in times if t.compute_bound and t.compute_s > 0)
    total_s = sum(t.latency_s for t in times)
    return RooflinePrediction(
        device_id=device.id,
        latency_ms=1e3 * total_s,
        compute_bound_fraction=compute / body if body > 0 else 0.0,
        nodes=tuple(times),
    )
