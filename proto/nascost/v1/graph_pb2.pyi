from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GraphRef(_message.Message):
    __slots__ = ("onnx_model", "digest")
    ONNX_MODEL_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    onnx_model: bytes
    digest: str
    def __init__(self, onnx_model: _Optional[bytes] = ..., digest: _Optional[str] = ...) -> None: ...

class InputShape(_message.Message):
    __slots__ = ("name", "dims")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    dims: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dims: _Optional[_Iterable[int]] = ...) -> None: ...

class ShapeBindings(_message.Message):
    __slots__ = ("input_shapes", "dim_values")
    class DimValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    DIM_VALUES_FIELD_NUMBER: _ClassVar[int]
    input_shapes: _containers.RepeatedCompositeFieldContainer[InputShape]
    dim_values: _containers.ScalarMap[str, int]
    def __init__(self, input_shapes: _Optional[_Iterable[_Union[InputShape, _Mapping]]] = ..., dim_values: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GraphChunk(_message.Message):
    __slots__ = ("data", "total_bytes", "expected_digest")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DIGEST_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    expected_digest: str
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., expected_digest: _Optional[str] = ...) -> None: ...

class GraphHandle(_message.Message):
    __slots__ = ("digest", "size_bytes")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    digest: str
    size_bytes: int
    def __init__(self, digest: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class HasGraphRequest(_message.Message):
    __slots__ = ("digest",)
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    digest: str
    def __init__(self, digest: _Optional[str] = ...) -> None: ...

class HasGraphResponse(_message.Message):
    __slots__ = ("present",)
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    present: bool
    def __init__(self, present: _Optional[bool] = ...) -> None: ...
