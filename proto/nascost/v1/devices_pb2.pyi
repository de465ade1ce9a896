from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_LOCAL: _ClassVar[DeviceKind]
    DEVICE_KIND_SPEC: _ClassVar[DeviceKind]
    DEVICE_KIND_FLEET: _ClassVar[DeviceKind]
    DEVICE_KIND_CUSTOM: _ClassVar[DeviceKind]
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_LOCAL: DeviceKind
DEVICE_KIND_SPEC: DeviceKind
DEVICE_KIND_FLEET: DeviceKind
DEVICE_KIND_CUSTOM: DeviceKind

class DeviceSpec(_message.Message):
    __slots__ = ("peak_flops_per_s", "memory_bandwidth_bytes_per_s", "cache_bytes", "cores", "memory_bytes", "per_op_overhead_s", "source")
    class PeakFlopsPerSEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PEAK_FLOPS_PER_S_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BANDWIDTH_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PER_OP_OVERHEAD_S_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    peak_flops_per_s: _containers.ScalarMap[str, float]
    memory_bandwidth_bytes_per_s: float
    cache_bytes: int
    cores: int
    memory_bytes: int
    per_op_overhead_s: float
    source: str
    def __init__(self, peak_flops_per_s: _Optional[_Mapping[str, float]] = ..., memory_bandwidth_bytes_per_s: _Optional[float] = ..., cache_bytes: _Optional[int] = ..., cores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., per_op_overhead_s: _Optional[float] = ..., source: _Optional[str] = ...) -> None: ...

class DeviceFingerprint(_message.Message):
    __slots__ = ("cpu_model", "logical_cores", "memory_bytes", "gpu_model", "gpu_driver", "os", "onnxruntime_version", "execution_providers", "digest", "cpu_vendor", "cpu_family", "cpu_model_number", "cpu_stepping", "cpu_isa", "device_class")
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    GPU_DRIVER_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    ONNXRUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CPU_VENDOR_FIELD_NUMBER: _ClassVar[int]
    CPU_FAMILY_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CPU_STEPPING_FIELD_NUMBER: _ClassVar[int]
    CPU_ISA_FIELD_NUMBER: _ClassVar[int]
    DEVICE_CLASS_FIELD_NUMBER: _ClassVar[int]
    cpu_model: str
    logical_cores: int
    memory_bytes: int
    gpu_model: str
    gpu_driver: str
    os: str
    onnxruntime_version: str
    execution_providers: _containers.RepeatedScalarFieldContainer[str]
    digest: str
    cpu_vendor: str
    cpu_family: str
    cpu_model_number: str
    cpu_stepping: str
    cpu_isa: _containers.RepeatedScalarFieldContainer[str]
    device_class: str
    def __init__(self, cpu_model: _Optional[str] = ..., logical_cores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., gpu_model: _Optional[str] = ..., gpu_driver: _Optional[str] = ..., os: _Optional[str] = ..., onnxruntime_version: _Optional[str] = ..., execution_providers: _Optional[_Iterable[str]] = ..., digest: _Optional[str] = ..., cpu_vendor: _Optional[str] = ..., cpu_family: _Optional[str] = ..., cpu_model_number: _Optional[str] = ..., cpu_stepping: _Optional[str] = ..., cpu_isa: _Optional[_Iterable[str]] = ..., device_class: _Optional[str] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("id", "name", "kind", "spec", "fingerprint", "measurable", "predictors", "execution_provider", "intra_op_threads", "roofline_evaluation")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    MEASURABLE_FIELD_NUMBER: _ClassVar[int]
    PREDICTORS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTRA_OP_THREADS_FIELD_NUMBER: _ClassVar[int]
    ROOFLINE_EVALUATION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    kind: DeviceKind
    spec: DeviceSpec
    fingerprint: DeviceFingerprint
    measurable: bool
    predictors: _containers.RepeatedScalarFieldContainer[str]
    execution_provider: str
    intra_op_threads: int
    roofline_evaluation: RooflineEvaluation
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., spec: _Optional[_Union[DeviceSpec, _Mapping]] = ..., fingerprint: _Optional[_Union[DeviceFingerprint, _Mapping]] = ..., measurable: _Optional[bool] = ..., predictors: _Optional[_Iterable[str]] = ..., execution_provider: _Optional[str] = ..., intra_op_threads: _Optional[int] = ..., roofline_evaluation: _Optional[_Union[RooflineEvaluation, _Mapping]] = ...) -> None: ...

class RooflineEvaluation(_message.Message):
    __slots__ = ("n", "within_10pct", "mape", "kendall", "measured_with", "cases", "date", "how")
    N_FIELD_NUMBER: _ClassVar[int]
    WITHIN_10PCT_FIELD_NUMBER: _ClassVar[int]
    MAPE_FIELD_NUMBER: _ClassVar[int]
    KENDALL_FIELD_NUMBER: _ClassVar[int]
    MEASURED_WITH_FIELD_NUMBER: _ClassVar[int]
    CASES_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    HOW_FIELD_NUMBER: _ClassVar[int]
    n: int
    within_10pct: float
    mape: float
    kendall: float
    measured_with: str
    cases: str
    date: str
    how: str
    def __init__(self, n: _Optional[int] = ..., within_10pct: _Optional[float] = ..., mape: _Optional[float] = ..., kendall: _Optional[float] = ..., measured_with: _Optional[str] = ..., cases: _Optional[str] = ..., date: _Optional[str] = ..., how: _Optional[str] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...
