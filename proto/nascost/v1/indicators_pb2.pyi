from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    SOURCE_COUNTED: _ClassVar[Source]
    SOURCE_PREDICTED: _ClassVar[Source]
    SOURCE_MEASURED: _ClassVar[Source]
SOURCE_UNSPECIFIED: Source
SOURCE_COUNTED: Source
SOURCE_PREDICTED: Source
SOURCE_MEASURED: Source

class Provenance(_message.Message):
    __slots__ = ("source", "method", "version", "expected_error_pct", "error_is_evaluated", "samples", "spread_pct", "note")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ERROR_PCT_FIELD_NUMBER: _ClassVar[int]
    ERROR_IS_EVALUATED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SPREAD_PCT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    source: Source
    method: str
    version: str
    expected_error_pct: float
    error_is_evaluated: bool
    samples: int
    spread_pct: float
    note: str
    def __init__(self, source: _Optional[_Union[Source, str]] = ..., method: _Optional[str] = ..., version: _Optional[str] = ..., expected_error_pct: _Optional[float] = ..., error_is_evaluated: _Optional[bool] = ..., samples: _Optional[int] = ..., spread_pct: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

class Figure(_message.Message):
    __slots__ = ("value", "unit", "low", "high", "provenance")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    value: float
    unit: str
    low: float
    high: float
    provenance: Provenance
    def __init__(self, value: _Optional[float] = ..., unit: _Optional[str] = ..., low: _Optional[float] = ..., high: _Optional[float] = ..., provenance: _Optional[_Union[Provenance, _Mapping]] = ...) -> None: ...

class ParamBreakdown(_message.Message):
    __slots__ = ("trainable", "buffers", "shape_constants", "embedding", "nonzero", "derived_constants", "deduplicated", "has_weight_data")
    TRAINABLE_FIELD_NUMBER: _ClassVar[int]
    BUFFERS_FIELD_NUMBER: _ClassVar[int]
    SHAPE_CONSTANTS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    NONZERO_FIELD_NUMBER: _ClassVar[int]
    DERIVED_CONSTANTS_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    HAS_WEIGHT_DATA_FIELD_NUMBER: _ClassVar[int]
    trainable: int
    buffers: int
    shape_constants: int
    embedding: int
    nonzero: int
    derived_constants: int
    deduplicated: int
    has_weight_data: bool
    def __init__(self, trainable: _Optional[int] = ..., buffers: _Optional[int] = ..., shape_constants: _Optional[int] = ..., embedding: _Optional[int] = ..., nonzero: _Optional[int] = ..., derived_constants: _Optional[int] = ..., deduplicated: _Optional[int] = ..., has_weight_data: _Optional[bool] = ...) -> None: ...

class DtypeBytes(_message.Message):
    __slots__ = ("dtype", "elements", "bytes")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    dtype: str
    elements: int
    bytes: int
    def __init__(self, dtype: _Optional[str] = ..., elements: _Optional[int] = ..., bytes: _Optional[int] = ...) -> None: ...

class NodeCost(_message.Message):
    __slots__ = ("name", "op_type", "domain", "macs", "flops", "activation_read_bytes", "weight_read_bytes", "write_bytes", "memory_access_bytes", "params", "arithmetic_intensity", "output_shape", "depth", "unsupported", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OP_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    MACS_FIELD_NUMBER: _ClassVar[int]
    FLOPS_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_READ_BYTES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_READ_BYTES_FIELD_NUMBER: _ClassVar[int]
    WRITE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ACCESS_BYTES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    ARITHMETIC_INTENSITY_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    op_type: str
    domain: str
    macs: int
    flops: int
    activation_read_bytes: int
    weight_read_bytes: int
    write_bytes: int
    memory_access_bytes: int
    params: int
    arithmetic_intensity: float
    output_shape: _containers.RepeatedScalarFieldContainer[int]
    depth: int
    unsupported: bool
    note: str
    def __init__(self, name: _Optional[str] = ..., op_type: _Optional[str] = ..., domain: _Optional[str] = ..., macs: _Optional[int] = ..., flops: _Optional[int] = ..., activation_read_bytes: _Optional[int] = ..., weight_read_bytes: _Optional[int] = ..., write_bytes: _Optional[int] = ..., memory_access_bytes: _Optional[int] = ..., params: _Optional[int] = ..., arithmetic_intensity: _Optional[float] = ..., output_shape: _Optional[_Iterable[int]] = ..., depth: _Optional[int] = ..., unsupported: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class UnsupportedOp(_message.Message):
    __slots__ = ("op_type", "domain", "count", "reason")
    OP_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    op_type: str
    domain: str
    count: int
    reason: str
    def __init__(self, op_type: _Optional[str] = ..., domain: _Optional[str] = ..., count: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ControlFlowCost(_message.Message):
    __slots__ = ("node_name", "op_type", "branch_names", "branch_flops", "trip_count", "trip_count_known")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    OP_TYPE_FIELD_NUMBER: _ClassVar[int]
    BRANCH_NAMES_FIELD_NUMBER: _ClassVar[int]
    BRANCH_FLOPS_FIELD_NUMBER: _ClassVar[int]
    TRIP_COUNT_FIELD_NUMBER: _ClassVar[int]
    TRIP_COUNT_KNOWN_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    op_type: str
    branch_names: _containers.RepeatedScalarFieldContainer[str]
    branch_flops: _containers.RepeatedScalarFieldContainer[int]
    trip_count: int
    trip_count_known: bool
    def __init__(self, node_name: _Optional[str] = ..., op_type: _Optional[str] = ..., branch_names: _Optional[_Iterable[str]] = ..., branch_flops: _Optional[_Iterable[int]] = ..., trip_count: _Optional[int] = ..., trip_count_known: _Optional[bool] = ...) -> None: ...

class CountedIndicators(_message.Message):
    __slots__ = ("params", "param_breakdown", "weight_bytes_by_dtype", "weight_bytes", "macs", "flops", "effective_flops", "torchvision_macs", "memory_access_bytes", "activation_read_bytes", "weight_read_bytes", "write_bytes", "peak_activation_bytes", "arithmetic_intensity", "depth", "critical_path_flops", "max_width", "node_count", "flops_min", "flops_max", "control_flow", "unresolved_dims")
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PARAM_BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BYTES_BY_DTYPE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MACS_FIELD_NUMBER: _ClassVar[int]
    FLOPS_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FLOPS_FIELD_NUMBER: _ClassVar[int]
    TORCHVISION_MACS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_ACCESS_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_READ_BYTES_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_READ_BYTES_FIELD_NUMBER: _ClassVar[int]
    WRITE_BYTES_FIELD_NUMBER: _ClassVar[int]
    PEAK_ACTIVATION_BYTES_FIELD_NUMBER: _ClassVar[int]
    ARITHMETIC_INTENSITY_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_PATH_FLOPS_FIELD_NUMBER: _ClassVar[int]
    MAX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    FLOPS_MIN_FIELD_NUMBER: _ClassVar[int]
    FLOPS_MAX_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FLOW_FIELD_NUMBER: _ClassVar[int]
    UNRESOLVED_DIMS_FIELD_NUMBER: _ClassVar[int]
    params: int
    param_breakdown: ParamBreakdown
    weight_bytes_by_dtype: _containers.RepeatedCompositeFieldContainer[DtypeBytes]
    weight_bytes: int
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
    control_flow: _containers.RepeatedCompositeFieldContainer[ControlFlowCost]
    unresolved_dims: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, params: _Optional[int] = ..., param_breakdown: _Optional[_Union[ParamBreakdown, _Mapping]] = ..., weight_bytes_by_dtype: _Optional[_Iterable[_Union[DtypeBytes, _Mapping]]] = ..., weight_bytes: _Optional[int] = ..., macs: _Optional[int] = ..., flops: _Optional[int] = ..., effective_flops: _Optional[int] = ..., torchvision_macs: _Optional[int] = ..., memory_access_bytes: _Optional[int] = ..., activation_read_bytes: _Optional[int] = ..., weight_read_bytes: _Optional[int] = ..., write_bytes: _Optional[int] = ..., peak_activation_bytes: _Optional[int] = ..., arithmetic_intensity: _Optional[float] = ..., depth: _Optional[int] = ..., critical_path_flops: _Optional[int] = ..., max_width: _Optional[int] = ..., node_count: _Optional[int] = ..., flops_min: _Optional[int] = ..., flops_max: _Optional[int] = ..., control_flow: _Optional[_Iterable[_Union[ControlFlowCost, _Mapping]]] = ..., unresolved_dims: _Optional[_Iterable[str]] = ...) -> None: ...
