from nascost.v1 import graph_pb2 as _graph_pb2
from nascost.v1 import indicators_pb2 as _indicators_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRequest(_message.Message):
    __slots__ = ("graph", "shapes", "device_ids", "predictors")
    GRAPH_FIELD_NUMBER: _ClassVar[int]
    SHAPES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    PREDICTORS_FIELD_NUMBER: _ClassVar[int]
    graph: _graph_pb2.GraphRef
    shapes: _graph_pb2.ShapeBindings
    device_ids: _containers.RepeatedScalarFieldContainer[str]
    predictors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, graph: _Optional[_Union[_graph_pb2.GraphRef, _Mapping]] = ..., shapes: _Optional[_Union[_graph_pb2.ShapeBindings, _Mapping]] = ..., device_ids: _Optional[_Iterable[str]] = ..., predictors: _Optional[_Iterable[str]] = ...) -> None: ...

class LatencyPrediction(_message.Message):
    __slots__ = ("latency_ms", "predictor", "heldout_within_10pct", "compute_bound_fraction")
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_WITHIN_10PCT_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_BOUND_FRACTION_FIELD_NUMBER: _ClassVar[int]
    latency_ms: _indicators_pb2.Figure
    predictor: str
    heldout_within_10pct: float
    compute_bound_fraction: float
    def __init__(self, latency_ms: _Optional[_Union[_indicators_pb2.Figure, _Mapping]] = ..., predictor: _Optional[str] = ..., heldout_within_10pct: _Optional[float] = ..., compute_bound_fraction: _Optional[float] = ...) -> None: ...

class DevicePrediction(_message.Message):
    __slots__ = ("device_id", "predictions", "peak_memory_bytes")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    PEAK_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    predictions: _containers.RepeatedCompositeFieldContainer[LatencyPrediction]
    peak_memory_bytes: _indicators_pb2.Figure
    def __init__(self, device_id: _Optional[str] = ..., predictions: _Optional[_Iterable[_Union[LatencyPrediction, _Mapping]]] = ..., peak_memory_bytes: _Optional[_Union[_indicators_pb2.Figure, _Mapping]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("graph_digest", "devices")
    GRAPH_DIGEST_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    graph_digest: str
    devices: _containers.RepeatedCompositeFieldContainer[DevicePrediction]
    def __init__(self, graph_digest: _Optional[str] = ..., devices: _Optional[_Iterable[_Union[DevicePrediction, _Mapping]]] = ...) -> None: ...

class CalibrateRequest(_message.Message):
    __slots__ = ("device_id", "budget_minutes", "batch_sizes", "seed")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_MINUTES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    budget_minutes: float
    batch_sizes: _containers.RepeatedScalarFieldContainer[int]
    seed: int
    def __init__(self, device_id: _Optional[str] = ..., budget_minutes: _Optional[float] = ..., batch_sizes: _Optional[_Iterable[int]] = ..., seed: _Optional[int] = ...) -> None: ...

class PredictorMetrics(_message.Message):
    __slots__ = ("predictor", "n", "within_5pct", "within_10pct", "within_15pct", "rmspe", "mape", "spearman", "kendall")
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    WITHIN_5PCT_FIELD_NUMBER: _ClassVar[int]
    WITHIN_10PCT_FIELD_NUMBER: _ClassVar[int]
    WITHIN_15PCT_FIELD_NUMBER: _ClassVar[int]
    RMSPE_FIELD_NUMBER: _ClassVar[int]
    MAPE_FIELD_NUMBER: _ClassVar[int]
    SPEARMAN_FIELD_NUMBER: _ClassVar[int]
    KENDALL_FIELD_NUMBER: _ClassVar[int]
    predictor: str
    n: int
    within_5pct: float
    within_10pct: float
    within_15pct: float
    rmspe: float
    mape: float
    spearman: float
    kendall: float
    def __init__(self, predictor: _Optional[str] = ..., n: _Optional[int] = ..., within_5pct: _Optional[float] = ..., within_10pct: _Optional[float] = ..., within_15pct: _Optional[float] = ..., rmspe: _Optional[float] = ..., mape: _Optional[float] = ..., spearman: _Optional[float] = ..., kendall: _Optional[float] = ...) -> None: ...

class CalibrationReport(_message.Message):
    __slots__ = ("device_id", "artifact_version", "train_models", "heldout_models", "heldout_families", "metrics", "elapsed_s", "selected_predictor", "heldout_measurements", "repeat_agreement", "prior_train_models", "prior_calibrations")
    class HeldoutMeasurementsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAIN_MODELS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_MODELS_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_FAMILIES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    SELECTED_PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    HELDOUT_MEASUREMENTS_FIELD_NUMBER: _ClassVar[int]
    REPEAT_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PRIOR_TRAIN_MODELS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_CALIBRATIONS_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    artifact_version: str
    train_models: int
    heldout_models: int
    heldout_families: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.RepeatedCompositeFieldContainer[PredictorMetrics]
    elapsed_s: float
    selected_predictor: str
    heldout_measurements: _containers.ScalarMap[int, int]
    repeat_agreement: _containers.RepeatedCompositeFieldContainer[RepeatAgreement]
    prior_train_models: int
    prior_calibrations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, device_id: _Optional[str] = ..., artifact_version: _Optional[str] = ..., train_models: _Optional[int] = ..., heldout_models: _Optional[int] = ..., heldout_families: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Iterable[_Union[PredictorMetrics, _Mapping]]] = ..., elapsed_s: _Optional[float] = ..., selected_predictor: _Optional[str] = ..., heldout_measurements: _Optional[_Mapping[int, int]] = ..., repeat_agreement: _Optional[_Iterable[_Union[RepeatAgreement, _Mapping]]] = ..., prior_train_models: _Optional[int] = ..., prior_calibrations: _Optional[_Iterable[str]] = ...) -> None: ...

class RepeatAgreement(_message.Message):
    __slots__ = ("batch", "n", "within_10pct", "median_difference", "confirmed_5pct")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    WITHIN_10PCT_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_5PCT_FIELD_NUMBER: _ClassVar[int]
    batch: str
    n: int
    within_10pct: float
    median_difference: float
    confirmed_5pct: float
    def __init__(self, batch: _Optional[str] = ..., n: _Optional[int] = ..., within_10pct: _Optional[float] = ..., median_difference: _Optional[float] = ..., confirmed_5pct: _Optional[float] = ...) -> None: ...

class CalibrateProgress(_message.Message):
    __slots__ = ("stage", "fraction", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    message: str
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class CalibrateEvent(_message.Message):
    __slots__ = ("progress", "report")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    progress: CalibrateProgress
    report: CalibrationReport
    def __init__(self, progress: _Optional[_Union[CalibrateProgress, _Mapping]] = ..., report: _Optional[_Union[CalibrationReport, _Mapping]] = ...) -> None: ...

class GetCalibrationRequest(_message.Message):
    __slots__ = ("device_id",)
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    def __init__(self, device_id: _Optional[str] = ...) -> None: ...
