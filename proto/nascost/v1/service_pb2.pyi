from nascost.v1 import devices_pb2 as _devices_pb2
from nascost.v1 import graph_pb2 as _graph_pb2
from nascost.v1 import indicators_pb2 as _indicators_pb2
from nascost.v1 import measurement_pb2 as _measurement_pb2
from nascost.v1 import prediction_pb2 as _prediction_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnalyzeRequest(_message.Message):
    __slots__ = ("graph", "shapes", "include_nodes", "request_id")
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_NODES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    graph: _graph_pb2.GraphRef
    shapes: _graph_pb2.ShapeBindings
    include_nodes: bool
    request_id: str
    def __init__(self, graph: _Optional[_Union[_graph_pb2.GraphRef, _Mapping]] = ..., shapes: _Optional[_Union[_graph_pb2.ShapeBindings, _Mapping]] = ..., include_nodes: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("graph_digest", "indicators", "nodes", "unsupported_ops", "warnings", "request_id", "provenance", "input_shapes", "error")
    GRAPH_DIGEST_FIELD_NUMBER: _ClassVar[int]
    INDICATORS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_OPS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    graph_digest: str
    indicators: _indicators_pb2.CountedIndicators
    nodes: _containers.RepeatedCompositeFieldContainer[_indicators_pb2.NodeCost]
    unsupported_ops: _containers.RepeatedCompositeFieldContainer[_indicators_pb2.UnsupportedOp]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    provenance: _indicators_pb2.Provenance
    input_shapes: _containers.RepeatedCompositeFieldContainer[_graph_pb2.InputShape]
    error: StatusDetail
    def __init__(self, graph_digest: _Optional[str] = ..., indicators: _Optional[_Union[_indicators_pb2.CountedIndicators, _Mapping]] = ..., nodes: _Optional[_Iterable[_Union[_indicators_pb2.NodeCost, _Mapping]]] = ..., unsupported_ops: _Optional[_Iterable[_Union[_indicators_pb2.UnsupportedOp, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., provenance: _Optional[_Union[_indicators_pb2.Provenance, _Mapping]] = ..., input_shapes: _Optional[_Iterable[_Union[_graph_pb2.InputShape, _Mapping]]] = ..., error: _Optional[_Union[StatusDetail, _Mapping]] = ...) -> None: ...

class StatusDetail(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class EstimateRequest(_message.Message):
    __slots__ = ("graph", "shapes", "device_ids", "measure", "measure_options", "include_nodes", "request_id")
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    MEASURE_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_NODES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    graph: _graph_pb2.GraphRef
    shapes: _graph_pb2.ShapeBindings
    device_ids: _containers.RepeatedScalarFieldContainer[str]
    measure: bool
    measure_options: _measurement_pb2.MeasureOptions
    include_nodes: bool
    request_id: str
    def __init__(self, graph: _Optional[_Union[_graph_pb2.GraphRef, _Mapping]] = ..., shapes: _Optional[_Union[_graph_pb2.ShapeBindings, _Mapping]] = ..., device_ids: _Optional[_Iterable[str]] = ..., measure: _Optional[bool] = ..., measure_options: _Optional[_Union[_measurement_pb2.MeasureOptions, _Mapping]] = ..., include_nodes: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeviceEstimate(_message.Message):
    __slots__ = ("device_id", "predictions", "measurement")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    predictions: _containers.RepeatedCompositeFieldContainer[_prediction_pb2.LatencyPrediction]
    measurement: _measurement_pb2.MeasureResult
    def __init__(self, device_id: _Optional[str] = ..., predictions: _Optional[_Iterable[_Union[_prediction_pb2.LatencyPrediction, _Mapping]]] = ..., measurement: _Optional[_Union[_measurement_pb2.MeasureResult, _Mapping]] = ...) -> None: ...

class EstimateResponse(_message.Message):
    __slots__ = ("counted", "devices", "request_id", "error")
    COUNTED_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    counted: AnalyzeResponse
    devices: _containers.RepeatedCompositeFieldContainer[DeviceEstimate]
    request_id: str
    error: StatusDetail
    def __init__(self, counted: _Optional[_Union[AnalyzeResponse, _Mapping]] = ..., devices: _Optional[_Iterable[_Union[DeviceEstimate, _Mapping]]] = ..., request_id: _Optional[str] = ..., error: _Optional[_Union[StatusDetail, _Mapping]] = ...) -> None: ...
