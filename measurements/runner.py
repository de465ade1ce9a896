"""The measurement runner: one onnxruntime session, timed with the protocol, profiled apart.

This module runs *inside* the sandboxed worker (:mod:`nascost.measurements.sandbox`); the
parent process only uses its records (:class:`RunnerConfig`, :class:`BatchResult`,
:class:`MeasurementResult`) and their plain-dict forms, which cross the process boundary as
JSON. ``onnxruntime`` is imported lazily, so importing this module is cheap.

Order of work for one model:

1. a *timing* session (no profiling, no optimized-graph dump), inputs generated per batch
   size, the protocol (:func:`nascost.measurements.protocol.time_runs`) per batch size;
2. if asked, a second *profiling* session (``enable_profiling`` and/or
   ``optimized_model_filepath``), run a few times per batch size, so profiling overhead never
   pollutes the latency figures.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import resource
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nascost.measurements.protocol import LatencyStats, TimingOptions, time_runs
from nascost.measurements.quiet import Probe, QuietReport, wait_for_quiet
from nascost.predictors.errors import InvalidRequestError

if TYPE_CHECKING:
    from nascost.predictors.analysis import Analysis
    from nascost.predictors.shapes import ShapeRequest

logger = logging.getLogger(__name__)

OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")
CPU_PROVIDER = "CPUExecutionProvider"
KNOWN_PROVIDERS = (CPU_PROVIDER, "CUDAExecutionProvider", "TensorrtExecutionProvider")
INT_INPUT_HIGH = 4  # integer inputs are drawn from [0, INT_INPUT_HIGH): safe as indices

ProgressFn = Callable[[str, float, str], None]


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """How the runtime is configured for a measurement.

    Attributes:
        provider: onnxruntime execution provider. CUDA / TensorRT are used only when
            ``onnxruntime.get_available_providers()`` lists them; asking for one that is
            absent is an :class:`InvalidRequestError` (never a silent CPU fallback).
        intra_op_threads: threads inside one op. 1 by default: on the shared 2-core box
            1 thread was faster than 2 (FIELD-NOTES); the thread count is part of the device
            configuration and is stored with every measurement.
        inter_op_threads: threads across ops (parallel execution mode only when > 1).
        optimization_level: ``disabled | basic | extended | all`` (onnxruntime's levels).
        profile_nodes: run a profiling session for per-node kernel times.
        save_optimized_graph: return the runtime's optimized graph (``optimized_model_filepath``).
        profile_runs: profiled runs per batch size, after one warm-up run whose kernel times
            are dropped; fewer for slow models (:func:`profile_run_count`).
    """

    provider: str = CPU_PROVIDER
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    optimization_level: str = "all"
    profile_nodes: bool = True
    save_optimized_graph: bool = False
    profile_runs: int = 10

    def validate(self) -> None:
        if self.provider not in KNOWN_PROVIDERS:
            raise InvalidRequestError(
                f"provider {self.provider!r} is not supported; use one of {', '.join(KNOWN_PROVIDERS)}"
            )
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise InvalidRequestError("thread counts must be >= 0 (0 = onnxruntime's default)")
        if self.optimization_level not in OPTIMIZATION_LEVELS:
            raise InvalidRequestError(
                f"optimization level {self.optimization_level!r} is not one of {', '.join(OPTIMIZATION_LEVELS)}"
            )
        if self.profile_runs < 1:
            raise InvalidRequestError(f"profile_runs must be >= 1, got {self.profile_runs}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "intra_op_threads": self.intra_op_threads,
            "inter_op_threads": self.inter_op_threads,
            "optimization_level": self.optimization_level,
            "profile_nodes": self.profile_nodes,
            "save_optimized_graph": self.save_optimized_graph,
            "profile_runs": self.profile_runs,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunnerConfig:
        return cls(
            provider=str(d["provider"]),
            intra_op_threads=int(d["intra_op_threads"]),
            inter_op_threads=int(d["inter_op_threads"]),
            optimization_level=str(d["optimization_level"]),
            profile_nodes=bool(d["profile_nodes"]),
            save_optimized_graph=bool(d["save_optimized_graph"]),
            profile_runs=int(d.get("profile_runs", 10)),
        )


@dataclass(frozen=True, slots=True)
class KernelTiming:
    """One kernel of the *optimized* graph, from onnxruntime's profiler.

    ``node_name`` is the optimized graph's node name (a fusion shows as one kernel, e.g.
    ``"fused mm/MatMulAddFusion"``); ``op_type`` the kernel's op (``FusedGemm``). On the CUDA
    provider these are host launch times, not GPU times.
    """

    node_name: str
    op_type: str
    provider: str
    median_us: float
    calls: int
    input_shapes: tuple[tuple[int, ...], ...] = ()
    output_shapes: tuple[tuple[int, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_name": self.node_name,
            "op_type": self.op_type,
            "provider": self.provider,
            "median_us": self.median_us,
            "calls": self.calls,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shapes": [list(s) for s in self.output_shapes],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KernelTiming:
        return cls(
            node_name=str(d["node_name"]),
            op_type=str(d["op_type"]),
            provider=str(d["provider"]),
            median_us=float(d["median_us"]),
            calls=int(d["calls"]),
            input_shapes=tuple(tuple(int(x) for x in s) for s in d.get("input_shapes", ())),
            output_shapes=tuple(tuple(int(x) for x in s) for s in d.get("output_shapes", ())),
        )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The measurement of one batch size.

    Attributes:
        peak_memory_bytes: peak resident set of the worker while this batch size ran, minus
            its resident set before the session was created: weights, arena and activations
            the model cost the process (Linux ``VmHWM``, reset per batch size).
        arena_peak_bytes: onnxruntime's own peak of bytes in use, from the profiler
            (``mem_bytes_in_use``), or None without a profile.
        input_shapes: the concrete shapes the inputs were generated with.
    """

    batch_size: int
    latency: LatencyStats
    throughput_examples_per_s: float
    peak_memory_bytes: int
    kernels: tuple[KernelTiming, ...] = ()
    arena_peak_bytes: int | None = None
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "latency": self.latency.to_dict(),
            "throughput_examples_per_s": self.throughput_examples_per_s,
            "peak_memory_bytes": self.peak_memory_bytes,
            "kernels": [k.to_dict() for k in self.kernels],
            "arena_peak_bytes": self.arena_peak_bytes,
            "input_shapes": {k: list(v) for k, v in self.input_shapes.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BatchResult:
        arena = d.get("arena_peak_bytes")
        return cls(
            batch_size=int(d["batch_size"]),
            latency=LatencyStats.from_dict(d["latency"]),
            throughput_examples_per_s=float(d["throughput_examples_per_s"]),
            peak_memory_bytes=int(d["peak_memory_bytes"]),
            kernels=tuple(KernelTiming.from_dict(k) for k in d.get("kernels", ())),
            arena_peak_bytes=None if arena is None else int(arena),
            input_shapes={
                str(k): tuple(int(x) for x in v) for k, v in d.get("input_shapes", {}).items()
            },
        )


@dataclass(frozen=True, slots=True)
class MeasurementResult:
    """Everything one measurement produced.

    Attributes:
        optimized_model: the runtime's optimized graph (serialized ONNX), when asked for.
        optimized_analysis: that graph counted again by the static engine (filled in by
            :func:`nascost.measurements.api.measure` when asked; never by the worker).
        warnings: things the caller should know (profile unavailable, ...).
        quiet: what the quiet gate saw before timing, and the probe right after it
            (:mod:`nascost.measurements.quiet`), when the measurement asked for one.
    """

    batches: tuple[BatchResult, ...]
    session_load_ms: float
    optimized_model: bytes | None
    provider: str
    intra_op_threads: int
    inter_op_threads: int
    optimization_level: str
    onnxruntime_version: str
    warnings: tuple[str, ...] = ()
    optimized_analysis: Analysis | None = None
    quiet: QuietReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (without the optimized model bytes and its analysis)."""
        return {
            "batches": [b.to_dict() for b in self.batches],
            "session_load_ms": self.session_load_ms,
            "provider": self.provider,
            "intra_op_threads": self.intra_op_threads,
            "inter_op_threads": self.inter_op_threads,
            "optimization_level": self.optimization_level,
            "onnxruntime_version": self.onnxruntime_version,
            "warnings": list(self.warnings),
            **({"quiet": self.quiet.to_dict()} if self.quiet is not None else {}),
        }

    @classmethod
    def from_dict(
        cls, d: Mapping[str, Any], *, optimized_model: bytes | None = None
    ) -> MeasurementResult:
        return cls(
            batches=tuple(BatchResult.from_dict(b) for b in d["batches"]),
            session_load_ms=float(d["session_load_ms"]),
            optimized_model=optimized_model,
            provider=str(d["provider"]),
            intra_op_threads=int(d["intra_op_threads"]),
            inter_op_threads=int(d["inter_op_threads"]),
            optimization_level=str(d["optimization_level"]),
            onnxruntime_version=str(d["onnxruntime_version"]),
            warnings=tuple(str(w) for w in d.get("warnings", ())),
            quiet=QuietReport.from_dict(d["quiet"]) if d.get("quiet") else None,
        )


# --------------------------------------------------------------------------- inputs

_ORT_TYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One graph input as the runtime declares it: dims are ints, names, or None (unknown)."""

    name: str
    type: str  # onnxruntime's type string, "tensor(float)"
    shape: tuple[int | str | None, ...] | None


def resolve_input_shapes(
    inputs: Sequence[InputSpec], shapes: ShapeRequest | None, batch_size: int | None
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for every input at one batch size.

    Rules: the request's explicit input shapes come first; a batch size sets dim 0 of every
    input whose dim 0 is symbolic (and binds that dim's name, so other inputs using it
    agree); other symbolic dims come from the request's ``dim_values``. When no input has a
    symbolic dim 0, the batch size must equal the fixed dim 0 of the inputs.

    Raises:
        InvalidRequestError: a dim stays unresolved, a shape contradicts the graph, or the
            batch size contradicts a fixed batch dimension.
    """
    explicit = dict(shapes.input_shapes) if shapes is not None else {}
    dim_values = dict(shapes.dim_values) if shapes is not None else {}
    names = {i.name for i in inputs}
    unknown = sorted(set(explicit) - names)
    if unknown:
        raise InvalidRequestError(
            f"input shape given for {', '.join(map(repr, unknown))}, which is not a graph input; "
            f"graph inputs: {', '.join(sorted(names)) or '(none)'}"
        )
    if batch_size is not None and batch_size < 1:
        raise InvalidRequestError(f"batch size must be >= 1, got {batch_size}")

    symbolic_lead = [i for i in inputs if i.shape and not isinstance(i.shape[0], int)]
    if batch_size is not None:
        if symbolic_lead:
            for i in symbolic_lead:
                lead = i.shape[0] if i.shape else None
                if isinstance(lead, str) and lead:
                    dim_values[lead] = batch_size
        else:
            fixed = {i.shape[0] for i in inputs if i.shape and isinstance(i.shape[0], int)}
            if fixed and batch_size not in fixed:
                raise InvalidRequestError(
                    f"the graph's batch dimension is fixed at {sorted(fixed)[0]} (no input has a symbolic dim 0); "
                    f"batch size {batch_size} cannot be measured: export the model with a dynamic batch axis"
                )

    out: dict[str, tuple[int, ...]] = {}
    for spec in inputs:
        if spec.name in explicit:
            dims = tuple(int(d) for d in explicit[spec.name])
            if spec.shape is not None:
                if len(spec.shape) != len(dims):
                    raise InvalidRequestError(
                        f"input {spec.name!r} has rank {len(spec.shape)}, but the request gives {len(dims)} dims {list(dims)}"
                    )
                lead_symbolic = bool(spec.shape) and not isinstance(spec.shape[0], int)
                if lead_symbolic and batch_size is not None:
                    dims = (batch_size, *dims[1:])
                for axis, (want, have) in enumerate(zip(spec.shape, dims, strict=True)):
                    if isinstance(want, int) and want != have:
                        raise InvalidRequestError(
                            f"input {spec.name!r} axis {axis} is fixed at {want} by the graph; the request asks for {have}"
                        )
            if any(d < 1 for d in dims):
                raise InvalidRequestError(
                    f"input shape for {spec.name!r} must have every dim >= 1, got {list(dims)}"
                )
            out[spec.name] = dims
            continue
        if spec.shape is None:
            raise InvalidRequestError(
                f"input {spec.name!r} has no declared shape; give its shape in the request"
            )
        dims_l: list[int] = []
        missing: list[str] = []
        for axis, d in enumerate(spec.shape):
            if isinstance(d, int) and d > 0:
                dims_l.append(d)
            elif axis == 0 and batch_size is not None:
                dims_l.append(batch_size)
            elif isinstance(d, str) and d in dim_values:
                dims_l.append(int(dim_values[d]))
            else:
                missing.append(d if isinstance(d, str) and d else f"axis {axis}")
                dims_l.append(0)
        if missing:
            raise InvalidRequestError(
                f"input {spec.name!r} has unresolved dims {', '.join(missing)}; "
                "give them with dim values or an input shape"
            )
        if any(d < 1 for d in dims_l):
            raise InvalidRequestError(
                f"input {spec.name!r} resolves to a non-positive dim: {dims_l}"
            )
        out[spec.name] = tuple(dims_l)
    return out


def default_batch_size(inputs: Sequence[InputSpec], shapes: ShapeRequest | None) -> int:
    """The batch size measured when none is requested: the graph's own.

    The dim 0 the request's explicit input shapes give an input with a symbolic dim 0, else
    the request's value for that dim's name, else the graph's fixed dim 0, else 1.
    """
    explicit = dict(shapes.input_shapes) if shapes is not None else {}
    dim_values = dict(shapes.dim_values) if shapes is not None else {}
    fixed: list[int] = []
    for spec in inputs:
        if not spec.shape:
            continue
        lead = spec.shape[0]
        if isinstance(lead, int):
            fixed.append(lead)
            continue
        if explicit.get(spec.name):
            return int(explicit[spec.name][0])
        if isinstance(lead, str) and lead in dim_values:
            return int(dim_values[lead])
    return fixed[0] if fixed else 1


def make_input(spec: InputSpec, dims: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random, never all-zero data for one input.

    Floats: standard normal. Integers: uniform in ``[0, INT_INPUT_HIGH)`` (safe as indices,
    token ids and small counts), with at least one non-zero. Bools: fair coin, at least one
    True. Strings: short non-empty strings.
    """
    kind = _ORT_TYPES.get(spec.type)
    if kind is None:
        raise InvalidRequestError(
            f"input {spec.name!r} has type {spec.type}, which the measurement runner cannot generate "
            "(supported: float, float16, double, int*, uint*, bool, string tensors)"
        )
    size = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if kind == "str":
        return np.array([f"s{i % 7}" for i in range(size)], dtype=object).reshape(dims)
    if kind == "bool":
        arr_b = rng.random(size) < 0.5
        if size:
            arr_b[0] = True
        return arr_b.reshape(dims)
    dtype = np.dtype(kind)
    if dtype.kind == "f":
        arr_f = rng.standard_normal(
            size, dtype=np.float64 if dtype.itemsize == 8 else np.float32
        ).astype(dtype)
        if size and not np.any(arr_f):
            arr_f[0] = 1
        return arr_f.reshape(dims)
    arr_i = rng.integers(0, INT_INPUT_HIGH, size=size).astype(dtype)
    if size:
        arr_i[0] = 1
    return arr_i.reshape(dims)


def make_feeds(
    inputs: Sequence[InputSpec], resolved: Mapping[str, tuple[int, ...]], seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {spec.name: make_input(spec, resolved[spec.name], rng) for spec in inputs}


def input_specs(session: Any) -> list[InputSpec]:
    """The session's inputs as :class:`InputSpec` (dims: int, symbolic name, or None)."""
    specs = []
    for arg in session.get_inputs():
        shape = arg.shape
        dims: tuple[int | str | None, ...] | None
        if shape is None:
            dims = None
        else:
            dims = tuple(
                d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) else None)
                for d in shape
            )
        specs.append(InputSpec(arg.name, arg.type, dims))
    return specs


# --------------------------------------------------------------------------- memory


def _status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_bytes() -> int:
    v = _status_kib("VmRSS")
    if v is not None:
        return v * 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    v = _status_kib("VmHWM")
    if v is not None:
        return v * 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# --------------------------------------------------------------------------- profile


def _shape_list(entries: Any) -> tuple[tuple[int, ...], ...]:
    out = []
    if isinstance(entries, list):
        for e in entries:
            if isinstance(e, dict):
                for dims in e.values():
                    if isinstance(dims, list):
                        out.append(tuple(int(x) for x in dims))
    return tuple(out)


def parse_profile(
    events: Sequence[Mapping[str, Any]], runs_per_group: Sequence[int]
) -> list[tuple[list[KernelTiming], int | None]]:
    """Chrome-trace events of a profiling session -> per-group kernel timings.

    The session ran ``sum(runs_per_group)`` times; ``model_run`` events (in time order) are
    split into consecutive groups of those sizes (one group per batch size). In each group
    the first run is a warm-up and is skipped when the group has more than one run. Node
    events (``cat == "Node"``, ``name == "<node>_kernel_time"``, ``dur`` in µs) are assigned to
    the run whose interval contains them.

    Returns:
        For each group: kernels in first-seen order, and the peak ``mem_bytes_in_use``.
    """
    runs = sorted(
        (int(e["ts"]), int(e["ts"]) + int(e.get("dur", 0)))
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    nodes = sorted(
        (
            e
            for e in events
            if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")
        ),
        key=lambda e: int(e["ts"]),
    )
    group_of_run: list[tuple[int, bool]] = []  # run index -> (group, counted)
    for g, n in enumerate(runs_per_group):
        for r in range(n):
            group_of_run.append((g, not (r == 0 and n > 1)))
    results: list[tuple[dict[str, dict[str, Any]], int | None]] = [
        ({}, None) for _ in runs_per_group
    ]
    ri = 0
    for e in nodes:
        ts = int(e["ts"])
        while ri < len(runs) and ts > runs[ri][1]:
            ri += 1
        if ri >= len(runs) or ri >= len(group_of_run):
            break
        g, counted = group_of_run[ri]
        if not counted:
            continue
        table, peak = results[g]
        args = e.get("args", {}) or {}
        name = str(e["name"])[: -len("_kernel_time")]
        entry = table.setdefault(
            name,
            {
                "op_type": str(args.get("op_name", "")),
                "provider": str(args.get("provider", "")),
                "durs": [],
                "in": _shape_list(args.get("input_type_shape")),
                "out": _shape_list(args.get("output_type_shape")),
            },
        )
        entry["durs"].append(float(e.get("dur", 0)))
        in_use = args.get("mem_bytes_in_use")
        if in_use is not None:
            try:
                v = int(in_use)
                results[g] = (table, v if peak is None else max(peak, v))
            except (TypeError, ValueError):
                pass
    out: list[tuple[list[KernelTiming], int | None]] = []
    for g, (table, peak) in enumerate(results):
        counted_runs = max(1, runs_per_group[g] - (1 if runs_per_group[g] > 1 else 0))
        kernels = [
            KernelTiming(
                node_name=name,
                op_type=v["op_type"],
                provider=v["provider"],
                median_us=float(statistics.median(v["durs"])),
                calls=max(1, round(len(v["durs"]) / counted_runs)),
                input_shapes=v["in"],
                output_shapes=v["out"],
            )
            for name, v in table.items()
        ]
        out.append((kernels, peak))
    return out


# --------------------------------------------------------------------------- sessions


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def session_options(
    config: RunnerConfig, *, profile_prefix: str | None = None, optimized_path: str | None = None
) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = config.intra_op_threads
    so.inter_op_num_threads = config.inter_op_threads
    so.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL
        if config.inter_op_threads > 1
        else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    so.graph_optimization_level = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[config.optimization_level]
    so.log_severity_level = 3  # errors only: no optimizer chatter on the worker's stderr
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if optimized_path is not None:
        so.optimized_model_filepath = optimized_path
    return so


def providers_for(config: RunnerConfig) -> list[str]:
    """The provider list for a session; raises when the requested provider is absent."""
    have = available_providers()
    if config.provider not in have:
        raise InvalidRequestError(
            f"execution provider {config.provider} is not available here (available: {', '.join(have)})"
        )
    return [config.provider] if config.provider == CPU_PROVIDER else [config.provider, CPU_PROVIDER]


def run_measurement(
    model_bytes: bytes,
    *,
    shapes: ShapeRequest | None,
    batch_sizes: Sequence[int],
    config: RunnerConfig,
    timing: TimingOptions,
    workdir: str,
    progress: ProgressFn | None = None,
    seed: int = 0,
    quiet: Mapping[str, Any] | None = None,
) -> tuple[MeasurementResult, str | None]:
    """Measure a model in *this* process (the sandbox worker calls this).

    Args:
        model_bytes: serialized ONNX, already checked for external data by the caller.
        batch_sizes: measured in this order; empty = the graph's own (:func:`default_batch_size`).
        workdir: a private directory for the profile trace and the optimized graph.
        quiet: a :meth:`~nascost.measurements.quiet.QuietGate.to_dict`: wait for a quiet
            host (the gate's probe, in this configuration) before timing.

    Returns:
        The result (without ``optimized_model`` bytes) and the path of the optimized graph
        file when one was written.

    Raises:
        InvalidRequestError: bad batch sizes / shapes / provider.
        Exception: onnxruntime's own errors propagate (the worker classifies them).
    """
    import onnxruntime as ort

    config.validate()
    timing.validate()
    batch_list = [int(b) for b in batch_sizes]
    if any(b < 1 for b in batch_list):
        raise InvalidRequestError(f"batch sizes must be >= 1, got {batch_list}")
    providers = providers_for(config)
    report: ProgressFn = progress or (lambda stage, frac, msg: None)
    warnings: list[str] = []

    base_rss = current_rss_bytes()
    report("loading", 0.0, "creating the inference session")
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model_bytes, session_options(config), providers=providers)
    session_load_ms = (time.perf_counter() - t0) * 1e3
    specs = input_specs(sess)
    if not batch_list:
        batch_list = [default_batch_size(specs, shapes)]
    resolved_all = [resolve_input_shapes(specs, shapes, b) for b in batch_list]
    do_profile = config.profile_nodes or config.save_optimized_graph
    n_steps = len(batch_list) * (2 if do_profile else 1)
    quiet_report = None
    if quiet is not None:
        report("timing", 0.0, "waiting for a quiet host")
        quiet_report = wait_for_quiet(quiet, Probe(quiet, session_options(config), providers))

    timed: list[tuple[int, LatencyStats, int, dict[str, tuple[int, ...]]]] = []
    for bi, (b, resolved) in enumerate(zip(batch_list, resolved_all, strict=True)):
        feeds = make_feeds(specs, resolved, seed=seed + b)
        report("timing", bi / n_steps, f"batch size {b}: warm-up and windows")
        reset_peak_rss()

        def run_once(feeds: dict[str, np.ndarray] = feeds, run: Any = sess.run) -> None:
            run(None, feeds)

        def on_window(i: int, median_ms: float, b: int = b, bi: int = bi) -> None:
            report(
                "timing", bi / n_steps, f"batch size {b}: window {i + 1} median {median_ms:.3f} ms"
            )

        stats = time_runs(run_once, timing, on_window=on_window)
        peak = max(0, peak_rss_bytes() - base_rss)
        timed.append((b, stats, peak, resolved))
    # Free the timing session (the closures hold its run method) before profiling.
    del sess, run_once, on_window
    if quiet is not None and quiet_report is not None:
        # and probe again: a slow phase that began while timing shows here
        after_ms = Probe(quiet, session_options(config), providers).time_ms()
        quiet_report = dataclasses.replace(quiet_report, after_ms=after_ms)

    kernels_per_batch: list[tuple[list[KernelTiming], int | None]] = [
        ([], None) for _ in batch_list
    ]
    optimized_path: str | None = None
    if do_profile:
        report("profiling", len(batch_list) / n_steps, "profiling session")
        prefix = os.path.join(workdir, "profile")
        opt_path = os.path.join(workdir, "optimized.onnx") if config.save_optimized_graph else None
        try:
            psess = ort.InferenceSession(
                model_bytes,
                session_options(
                    config,
                    profile_prefix=prefix if config.profile_nodes else None,
                    optimized_path=opt_path,
                ),
                providers=providers,
            )
            if opt_path is not None and os.path.exists(opt_path):
                optimized_path = opt_path
            if config.profile_nodes:
                runs_per_group = []
                for bi, (b, resolved) in enumerate(zip(batch_list, resolved_all, strict=True)):
                    feeds = make_feeds(specs, resolved, seed=seed + b)
                    n = profile_run_count(
                        config.profile_runs, timed[bi][1].p50_ms, timing.time_budget_s
                    )
                    for _ in range(n):
                        psess.run(None, feeds)
                    runs_per_group.append(n)
                    report(
                        "profiling",
                        (len(batch_list) + bi + 1) / n_steps,
                        f"batch size {b}: profiled {n} runs",
                    )
                trace = psess.end_profiling()
                with open(trace, encoding="utf-8") as f:
                    events = json.load(f)
                kernels_per_batch = parse_profile(events, runs_per_group)
                if not any(k for k, _ in kernels_per_batch):
                    warnings.append("the profiler recorded no kernel events")
            del psess
        except MemoryError:
            raise
        except Exception as e:  # profiling is an extra: report, keep the timings
            if _looks_like_memory(str(e)):
                raise
            logger.warning("profiling session failed: %s", e)
            warnings.append(
                f"profiling failed: {str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__}"
            )

    batches = []
    for (b, stats, peak, resolved), (kernels, arena) in zip(timed, kernels_per_batch, strict=True):
        p50_s = stats.p50_ms / 1e3
        batches.append(
            BatchResult(
                batch_size=b,
                latency=stats,
                throughput_examples_per_s=b / p50_s if p50_s > 0 else math.inf,
                peak_memory_bytes=peak,
                kernels=tuple(kernels),
                arena_peak_bytes=arena,
                input_shapes=resolved,
            )
        )
    report("done", 1.0, "measurement finished")
    result = MeasurementResult(
        batches=tuple(batches),
        session_load_ms=session_load_ms,
        optimized_model=None,
        provider=config.provider,
        intra_op_threads=config.intra_op_threads,
        inter_op_threads=config.inter_op_threads,
        optimization_level=config.optimization_level,
        onnxruntime_version=ort.__version__,
        warnings=tuple(warnings),
        quiet=quiet_report,
    )
    return result, optimized_path


def profile_run_count(profile_runs: int, p50_ms: float, time_budget_s: float) -> int:
    """Profiled runs for one batch size: ``profile_runs`` plus one warm-up, fewer for slow
    models so profiling takes at most about a quarter of the timing budget (at least 1 run).

    A model whose run takes at most half the budget keeps its warm-up even when only one
    run is profiled: the profiling session is new, and its first run pays for fresh memory
    (page faults on the arena's first touch), unevenly across kernels. In a calibration here,
    the profiled sums of the six models profiled by one cold run (190-400 ms) scattered
    around their measured latency with a log spread of 0.54, against 0.04 for warm profiles
    of 50-190 ms models.
    """
    fit = int(0.25 * time_budget_s * 1e3 / p50_ms) if p50_ms > 0 else profile_runs
    warm_up = fit >= 2 or p50_ms <= 0.5 * time_budget_s * 1e3
    return max(1, min(profile_runs, fit)) + (1 if warm_up else 0)


_MEMORY_PATTERNS = (
    "bad_alloc",
    "failed to allocate memory",
    "out of memory",
    "cannot allocate memory",
    "memoryerror",
    "unable to allocate",
)


def _looks_like_memory(message: str) -> bool:
    low = message.lower()
    return any(p in low for p in _MEMORY_PATTERNS)
