from nascost.v1 import graph_pb2 as _graph_pb2
from nascost.v1 import indicators_pb2 as _indicators_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OptimizationLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTIMIZATION_LEVEL_UNSPECIFIED: _ClassVar[OptimizationLevel]
    OPTIMIZATION_LEVEL_DISABLED: _ClassVar[OptimizationLevel]
    OPTIMIZATION_LEVEL_BASIC: _ClassVar[OptimizationLevel]
    OPTIMIZATION_LEVEL_EXTENDED: _ClassVar[OptimizationLevel]
    OPTIMIZATION_LEVEL_ALL: _ClassVar[OptimizationLevel]
OPTIMIZATION_LEVEL_UNSPECIFIED: OptimizationLevel
OPTIMIZATION_LEVEL_DISABLED: OptimizationLevel
OPTIMIZATION_LEVEL_BASIC: OptimizationLevel
OPTIMIZATION_LEVEL_EXTENDED: OptimizationLevel
OPTIMIZATION_LEVEL_ALL: OptimizationLevel

class MeasureOptions(_message.Message):
    __slots__ = ("batch_sizes", "intra_op_threads", "optimization_level", "warmup_runs", "runs_per_window", "stable_windows", "stability_threshold_pct", "time_budget_s", "profile_nodes", "count_optimized_graph")
    BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    INTRA_OP_THREADS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RUNS_FIELD_NUMBER: _ClassVar[int]
    RUNS_PER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    STABLE_WINDOWS_FIELD_NUMBER: _ClassVar[int]
    STABILITY_THRESHOLD_PCT_FIELD_NUMBER: _ClassVar[int]
    TIME_BUDGET_S_FIELD_NUMBER: _ClassVar[int]
    PROFILE_NODES_FIELD_NUMBER: _ClassVar[int]
    COUNT_OPTIMIZED_GRAPH_FIELD_NUMBER: _ClassVar[int]
    batch_sizes: _containers.RepeatedScalarFieldContainer[int]
    intra_op_threads: int
    optimization_level: OptimizationLevel
    warmup_runs: int
    runs_per_window: int
    stable_windows: int
    stability_threshold_pct: float
    time_budget_s: float
    profile_nodes: bool
    count_optimized_graph: bool
    def __init__(self, batch_sizes: _Optional[_Iterable[int]] = ..., intra_op_threads: _Optional[int] = ..., optimization_level: _Optional[_Union[OptimizationLevel, str]] = ..., warmup_runs: _Optional[int] = ..., runs_per_window: _Optional[int] = ..., stable_windows: _Optional[int] = ..., stability_threshold_pct: _Optional[float] = ..., time_budget_s: _Optional[float] = ..., profile_nodes: _Optional[bool] = ..., count_optimized_graph: _Optional[bool] = ...) -> None: ...

class MeasureRequest(_message.Message):
    __slots__ = ("graph", "shapes", "device_id", "options")
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    graph: _graph_pb2.GraphRef
    shapes: _graph_pb2.ShapeBindings
    device_id: str
    options: MeasureOptions
    def __init__(self, graph: _Optional[_Union[_graph_pb2.GraphRef, _Mapping]] = ..., shapes: _Optional[_Union[_graph_pb2.ShapeBindings, _Mapping]] = ..., device_id: _Optional[str] = ..., options: _Optional[_Union[MeasureOptions, _Mapping]] = ...) -> None: ...

class LatencyStats(_message.Message):
    __slots__ = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "n", "windows", "stable", "window_spread_pct", "best_window_median_ms")
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P90_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_MS_FIELD_NUMBER: _ClassVar[int]
    STD_MS_FIELD_NUMBER: _ClassVar[int]
    MIN_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    STABLE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SPREAD_PCT_FIELD_NUMBER: _ClassVar[int]
    BEST_WINDOW_MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
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
    def __init__(self, p50_ms: _Optional[float] = ..., p90_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., mean_ms: _Optional[float] = ..., std_ms: _Optional[float] = ..., min_ms: _Optional[float] = ..., max_ms: _Optional[float] = ..., n: _Optional[int] = ..., windows: _Optional[int] = ..., stable: _Optional[bool] = ..., window_spread_pct: _Optional[float] = ..., best_window_median_ms: _Optional[float] = ...) -> None: ...

class KernelTiming(_message.Message):
    __slots__ = ("node_name", "op_type", "provider", "median_us", "calls", "input_shapes", "output_shapes")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    OP_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_US_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    op_type: str
    provider: str
    median_us: float
    calls: int
    input_shapes: _containers.RepeatedScalarFieldContainer[str]
    output_shapes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node_name: _Optional[str] = ..., op_type: _Optional[str] = ..., provider: _Optional[str] = ..., median_us: _Optional[float] = ..., calls: _Optional[int] = ..., input_shapes: _Optional[_Iterable[str]] = ..., output_shapes: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchMeasurement(_message.Message):
    __slots__ = ("batch_size", "latency", "throughput_examples_per_s", "peak_memory_bytes", "kernels")
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_EXAMPLES_PER_S_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    KERNELS_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    latency: LatencyStats
    throughput_examples_per_s: float
    peak_memory_bytes: int
    kernels: _containers.RepeatedCompositeFieldContainer[KernelTiming]
    def __init__(self, batch_size: _Optional[int] = ..., latency: _Optional[_Union[LatencyStats, _Mapping]] = ..., throughput_examples_per_s: _Optional[float] = ..., peak_memory_bytes: _Optional[int] = ..., kernels: _Optional[_Iterable[_Union[KernelTiming, _Mapping]]] = ...) -> None: ...

class MeasureResult(_message.Message):
    __slots__ = ("graph_digest", "device_id", "provenance", "batches", "session_load_ms", "optimized_graph", "measurement_id", "execution_provider", "intra_op_threads", "optimization_level")
    GRAPH_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    SESSION_LOAD_MS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZED_GRAPH_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTRA_OP_THREADS_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    graph_digest: str
    device_id: str
    provenance: _indicators_pb2.Provenance
    batches: _containers.RepeatedCompositeFieldContainer[BatchMeasurement]
    session_load_ms: float
    optimized_graph: _indicators_pb2.CountedIndicators
    measurement_id: int
    execution_provider: str
    intra_op_threads: int
    optimization_level: OptimizationLevel
    def __init__(self, graph_digest: _Optional[str] = ..., device_id: _Optional[str] = ..., provenance: _Optional[_Union[_indicators_pb2.Provenance, _Mapping]] = ..., batches: _Optional[_Iterable[_Union[BatchMeasurement, _Mapping]]] = ..., session_load_ms: _Optional[float] = ..., optimized_graph: _Optional[_Union[_indicators_pb2.CountedIndicators, _Mapping]] = ..., measurement_id: _Optional[int] = ..., execution_provider: _Optional[str] = ..., intra_op_threads: _Optional[int] = ..., optimization_level: _Optional[_Union[OptimizationLevel, str]] = ...) -> None: ...

class MeasureProgress(_message.Message):
    __slots__ = ("stage", "fraction", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    message: str
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class MeasureEvent(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: MeasureProgress
    result: MeasureResult
    def __init__(self, progress: _Optional[_Union[MeasureProgress, _Mapping]] = ..., result: _Optional[_Union[MeasureResult, _Mapping]] = ...) -> None: ...
