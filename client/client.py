"""The nascost client: sync (:class:`Client`) and asyncio (:class:`AsyncClient`).

Both send a graph at most once: small graphs travel inline; a graph larger than
``inline_limit_bytes`` is announced by digest, uploaded in chunks only if the server does
not hold it, and referred to by digest after that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import grpc

from nascost.client.errors import NascostClientError, from_rpc_error, from_status
from nascost.client.models import ModelLike, digest, model_bytes
from nascost.client.results import Analysis, Device, Measurement
from nascost.v1 import (
    devices_pb2,
    graph_pb2,
    measurement_pb2,
    prediction_pb2,
    service_pb2,
    service_pb2_grpc,
)

MIB = 1 << 20
DEFAULT_INLINE_LIMIT = 3 * MIB
CHUNK_BYTES = 1 * MIB
MAX_MESSAGE_BYTES = 64 * MIB

Shapes = Mapping[str, Sequence[int]]


def _shape_bindings(input_shapes: Shapes | None, dim_values: Mapping[str, int] | None) -> graph_pb2.ShapeBindings:
    return graph_pb2.ShapeBindings(
        input_shapes=[graph_pb2.InputShape(name=k, dims=list(v)) for k, v in (input_shapes or {}).items()],
        dim_values=dict(dim_values or {}),
    )


def _chunks(data: bytes) -> Iterator[graph_pb2.GraphChunk]:
    d = digest(data)
    for off in range(0, len(data), CHUNK_BYTES):
        if off == 0:
            yield graph_pb2.GraphChunk(data=data[:CHUNK_BYTES], total_bytes=len(data), expected_digest=d)
        else:
            yield graph_pb2.GraphChunk(data=data[off : off + CHUNK_BYTES])


def _channel_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


class _Base:
    """What both clients share: the channel, credentials, deadline and held digests.

    Args:
        target: ``host:port`` of a nascost server.
        token: bearer token, when the server requires one.
        root_certificates: PEM bytes to trust; setting it (or ``secure=True``) uses TLS.
        timeout: default deadline per call, seconds (None = no deadline).
        inline_limit_bytes: graphs up to this size travel inside the request.
    """

    _grpc: Any = grpc  # grpc or grpc.aio

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        secure: bool = False,
        timeout: float | None = 60.0,
        inline_limit_bytes: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        if root_certificates is not None or secure:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = self._grpc.secure_channel(target, creds, options=_channel_options())
        else:
            self._channel = self._grpc.insecure_channel(target, options=_channel_options())
        self.stub = service_pb2_grpc.CostModelStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout
        self.inline_limit_bytes = inline_limit_bytes
        self._held: set[str] = set()


class Client(_Base):
    """Blocking client (arguments: see :class:`_Base`)."""

    # -------------------------------------------------------------- plumbing

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def graph_ref(self, model: ModelLike, *, timeout: float | None = None) -> graph_pb2.GraphRef:
        """A ``GraphRef`` for ``model``: inline if small, else by digest (uploading once)."""
        data = model_bytes(model)
        if len(data) <= self.inline_limit_bytes:
            return graph_pb2.GraphRef(onnx_model=data)
        d = digest(data)
        if d not in self._held:
            present = self._call(self.stub.HasGraph, graph_pb2.HasGraphRequest(digest=d), timeout).present
            if not present:
                try:
                    handle = self.stub.UploadGraph(
                        _chunks(data), timeout=timeout or self.timeout, metadata=self._metadata
                    )
                except grpc.RpcError as e:
                    raise from_rpc_error(e) from None
                d = handle.digest
            self._held.add(d)
        return graph_pb2.GraphRef(digest=d)

    # -------------------------------------------------------------- calls

    def analyze(
        self,
        model: ModelLike,
        *,
        input_shapes: Shapes | None = None,
        dim_values: Mapping[str, int] | None = None,
        include_nodes: bool = True,
        timeout: float | None = None,
    ) -> Analysis:
        """Counted indicators of ``model`` (a path, bytes or ``onnx.ModelProto``)."""
        request = service_pb2.AnalyzeRequest(
            graph=self.graph_ref(model, timeout=timeout),
            shapes=_shape_bindings(input_shapes, dim_values),
            include_nodes=include_nodes,
        )
        return Analysis.from_proto(self._call(self.stub.Analyze, request, timeout))

    def analyze_many(
        self,
        models: Iterable[ModelLike],
        *,
        input_shapes: Shapes | None = None,
        dim_values: Mapping[str, int] | None = None,
        include_nodes: bool = False,
        timeout: float | None = None,
    ) -> Iterator[Analysis | NascostClientError]:
        """Analyze many graphs over one stream; yields a result or an error per graph, in order."""
        shapes = _shape_bindings(input_shapes, dim_values)

        def requests() -> Iterator[service_pb2.AnalyzeRequest]:
            for i, m in enumerate(models):
                yield service_pb2.AnalyzeRequest(
                    graph=self.graph_ref(m), shapes=shapes, include_nodes=include_nodes, request_id=str(i)
                )

        try:
            for r in self.stub.AnalyzeStream(requests(), timeout=timeout, metadata=self._metadata):
                yield from_status(r.error.code, r.error.message) if r.HasField("error") else Analysis.from_proto(r)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def devices(self, *, timeout: float | None = None) -> list[Device]:
        r = self._call(self.stub.ListDevices, devices_pb2.ListDevicesRequest(), timeout)
        return [Device.from_proto(d) for d in r.devices]

    def device(self, device_id: str, *, timeout: float | None = None) -> Device:
        return Device.from_proto(self._call(self.stub.GetDevice, devices_pb2.GetDeviceRequest(id=device_id), timeout))

    def register_device(
        self,
        device_id: str,
        *,
        peak_flops_per_s: Mapping[str, float],
        memory_bandwidth_bytes_per_s: float,
        name: str = "",
        cores: int = 1,
        per_op_overhead_s: float = 0.0,
        source: str = "",
        roofline_evaluation: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Device:
        """Add a device known by its spec (peak FLOP/s per dtype, bandwidth in bytes/s).

        ``roofline_evaluation``: how far the roofline was off there, when you measured it:
        ``n`` (cases), ``within_10pct`` and ``mape`` (fractions), ``measured_with`` (the
        runtime that timed them), optionally ``kendall``, ``cases``, ``date``, ``how``;
        predictions for the device then say so.
        """
        device = devices_pb2.Device(
            id=device_id,
            name=name,
            spec=devices_pb2.DeviceSpec(
                peak_flops_per_s=dict(peak_flops_per_s),
                memory_bandwidth_bytes_per_s=memory_bandwidth_bytes_per_s,
                cores=cores,
                per_op_overhead_s=per_op_overhead_s,
                source=source,
            ),
            roofline_evaluation=devices_pb2.RooflineEvaluation(**roofline_evaluation) if roofline_evaluation else None,
        )
        r = self._call(self.stub.RegisterDevice, devices_pb2.RegisterDeviceRequest(device=device), timeout)
        return Device.from_proto(r)

    def estimate(self, model: ModelLike, *, device_ids: Sequence[str] = (), timeout: float | None = None,
                 input_shapes: Shapes | None = None, dim_values: Mapping[str, int] | None = None,
                 measure: bool = False) -> service_pb2.EstimateResponse:
        """Counted + predicted (+ measured) per device, as the raw reply."""
        request = service_pb2.EstimateRequest(
            graph=self.graph_ref(model, timeout=timeout),
            shapes=_shape_bindings(input_shapes, dim_values),
            device_ids=list(device_ids),
            measure=measure,
        )
        return self._call(self.stub.Estimate, request, timeout)

    def predict(self, model: ModelLike, *, device_ids: Sequence[str] = (), timeout: float | None = None,
                input_shapes: Shapes | None = None, dim_values: Mapping[str, int] | None = None,
                predictors: Sequence[str] = ()) -> prediction_pb2.PredictResponse:
        """Predicted latency per device and predictor ("learned", "roofline"; default all)."""
        request = prediction_pb2.PredictRequest(
            graph=self.graph_ref(model, timeout=timeout),
            shapes=_shape_bindings(input_shapes, dim_values),
            device_ids=list(device_ids),
            predictors=list(predictors),
        )
        return self._call(self.stub.Predict, request, timeout)

    def measure(
        self,
        model: ModelLike,
        *,
        device_id: str = "local",
        options: measurement_pb2.MeasureOptions | None = None,
        input_shapes: Shapes | None = None,
        dim_values: Mapping[str, int] | None = None,
        timeout: float | None = None,
    ) -> Iterator[measurement_pb2.MeasureEvent]:
        """Stream of progress events ending with the result."""
        request = measurement_pb2.MeasureRequest(
            graph=self.graph_ref(model, timeout=timeout),
            shapes=_shape_bindings(input_shapes, dim_values),
            device_id=device_id,
            options=options or measurement_pb2.MeasureOptions(),
        )
        try:
            yield from self.stub.Measure(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def measure_result(
        self,
        model: ModelLike,
        *,
        on_progress: Callable[[measurement_pb2.MeasureProgress], None] | None = None,
        **kwargs: Any,
    ) -> Measurement:
        """:meth:`measure`, returning the final :class:`Measurement` (progress to a callback)."""
        for event in self.measure(model, **kwargs):
            if event.HasField("result"):
                return Measurement.from_proto(event.result)
            if on_progress is not None:
                on_progress(event.progress)
        raise NascostClientError(grpc.StatusCode.UNKNOWN, "measurement stream ended without a result")

    def calibrate(
        self, request: prediction_pb2.CalibrateRequest, *, timeout: float | None = None
    ) -> Iterator[prediction_pb2.CalibrateEvent]:
        """Stream of calibration progress events ending with the report."""
        try:
            yield from self.stub.Calibrate(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    def calibration(self, device_id: str, *, timeout: float | None = None) -> prediction_pb2.CalibrationReport:
        """The latest calibration report of a device."""
        return self._call(self.stub.GetCalibration, prediction_pb2.GetCalibrationRequest(device_id=device_id), timeout)

    def health(self, service: str = "", *, timeout: float | None = 5.0) -> str:
        """The health service's answer: "SERVING", "NOT_SERVING", ..."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        r = self._call(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(r.status))


class AsyncClient(_Base):
    """The asyncio twin of :class:`Client` (``grpc.aio``)."""

    _grpc = grpc.aio

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(
                request, timeout=timeout if timeout is not None else self.timeout, metadata=self._metadata
            )
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def graph_ref(self, model: ModelLike, *, timeout: float | None = None) -> graph_pb2.GraphRef:
        data = model_bytes(model)
        if len(data) <= self.inline_limit_bytes:
            return graph_pb2.GraphRef(onnx_model=data)
        d = digest(data)
        if d not in self._held:
            r = await self._call(self.stub.HasGraph, graph_pb2.HasGraphRequest(digest=d), timeout)
            if not r.present:
                try:
                    handle = await self.stub.UploadGraph(
                        _chunks(data), timeout=timeout or self.timeout, metadata=self._metadata
                    )
                except grpc.RpcError as e:
                    raise from_rpc_error(e) from None
                d = handle.digest
            self._held.add(d)
        return graph_pb2.GraphRef(digest=d)

    async def analyze(
        self,
        model: ModelLike,
        *,
        input_shapes: Shapes | None = None,
        dim_values: Mapping[str, int] | None = None,
        include_nodes: bool = True,
        timeout: float | None = None,
    ) -> Analysis:
        request = service_pb2.AnalyzeRequest(
            graph=await self.graph_ref(model, timeout=timeout),
            shapes=_shape_bindings(input_shapes, dim_values),
            include_nodes=include_nodes,
        )
        return Analysis.from_proto(await self._call(self.stub.Analyze, request, timeout))

    async def analyze_many(
        self,
        models: Iterable[ModelLike],
        *,
        input_shapes: Shapes | None = None,
        dim_values: Mapping[str, int] | None = None,
        include_nodes: bool = False,
        timeout: float | None = None,
    ) -> AsyncIterator[Analysis | NascostClientError]:
        shapes = _shape_bindings(input_shapes, dim_values)
        requests = [
            service_pb2.AnalyzeRequest(
                graph=await self.graph_ref(m), shapes=shapes, include_nodes=include_nodes, request_id=str(i)
            )
            for i, m in enumerate(models)
        ]
        try:
            async for r in self.stub.AnalyzeStream(iter(requests), timeout=timeout, metadata=self._metadata):
                yield from_status(r.error.code, r.error.message) if r.HasField("error") else Analysis.from_proto(r)
        except grpc.RpcError as e:
            raise from_rpc_error(e) from None

    async def devices(self, *, timeout: float | None = None) -> list[Device]:
        r = await self._call(self.stub.ListDevices, devices_pb2.ListDevicesRequest(), timeout)
        return [Device.from_proto(d) for d in r.devices]

    async def health(self, service: str = "", *, timeout: float | None = 5.0) -> str:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        r = await self._call(stub.Check, health_pb2.HealthCheckRequest(service=service), timeout)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(r.status))
