"""The ``nascost.v1.CostModel`` servicer: decode, call the engine, encode.

Every method is wrapped by :func:`~nascost.server.errors.rpc_errors`, which turns domain
errors into statuses. Streaming methods answer each request in order; a bad graph in a
stream gives a reply with ``error`` set and the stream goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc

from nascost.server.encode import shape_request
from nascost.server.engine import Engine
from nascost.server.errors import describe, rpc_errors
from nascost.v1 import (
    devices_pb2,
    graph_pb2,
    measurement_pb2,
    prediction_pb2,
    service_pb2,
    service_pb2_grpc,
)

logger = logging.getLogger(__name__)


class CostModelServicer(service_pb2_grpc.CostModelServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ counted

    @rpc_errors
    def Analyze(self, request: service_pb2.AnalyzeRequest, context: grpc.ServicerContext) -> service_pb2.AnalyzeResponse:
        response = self.engine.analyze(request.graph, shape_request(request.shapes), include_nodes=request.include_nodes)
        response.request_id = request.request_id
        return response

    def AnalyzeStream(
        self, request_iterator: Iterator[service_pb2.AnalyzeRequest], context: grpc.ServicerContext
    ) -> Iterator[service_pb2.AnalyzeResponse]:
        for request in request_iterator:
            try:
                response = self.engine.analyze(
                    request.graph, shape_request(request.shapes), include_nodes=request.include_nodes
                )
            except Exception as exc:
                code, message = describe(exc)
                response = service_pb2.AnalyzeResponse(
                    error=service_pb2.StatusDetail(code=code.value[0], message=message)
                )
            response.request_id = request.request_id
            yield response

    # ------------------------------------------------------------ everything, per device

    @rpc_errors
    def Estimate(self, request: service_pb2.EstimateRequest, context: grpc.ServicerContext) -> service_pb2.EstimateResponse:
        return self.engine.estimate(
            request, cancelled=lambda: not context.is_active(), time_remaining_s=context.time_remaining
        )

    def EstimateStream(
        self, request_iterator: Iterator[service_pb2.EstimateRequest], context: grpc.ServicerContext
    ) -> Iterator[service_pb2.EstimateResponse]:
        for request in request_iterator:
            try:
                response = self.engine.estimate(
                    request, cancelled=lambda: not context.is_active(), time_remaining_s=context.time_remaining
                )
            except Exception as exc:
                code, message = describe(exc)
                response = service_pb2.EstimateResponse(
                    error=service_pb2.StatusDetail(code=code.value[0], message=message)
                )
            response.request_id = request.request_id
            yield response

    # ------------------------------------------------------------ graphs

    def UploadGraph(
        self, request_iterator: Iterator[graph_pb2.GraphChunk], context: grpc.ServicerContext
    ) -> graph_pb2.GraphHandle:
        try:
            return self.engine.upload(request_iterator)
        except Exception as exc:
            code, message = describe(exc)
            context.abort(code, message)
            raise

    @rpc_errors
    def HasGraph(self, request: graph_pb2.HasGraphRequest, context: grpc.ServicerContext) -> graph_pb2.HasGraphResponse:
        return graph_pb2.HasGraphResponse(present=self.engine.has_graph(request.digest))

    # ------------------------------------------------------------ devices

    @rpc_errors
    def ListDevices(
        self, request: devices_pb2.ListDevicesRequest, context: grpc.ServicerContext
    ) -> devices_pb2.ListDevicesResponse:
        return devices_pb2.ListDevicesResponse(devices=self.engine.list_devices())

    @rpc_errors
    def GetDevice(self, request: devices_pb2.GetDeviceRequest, context: grpc.ServicerContext) -> devices_pb2.Device:
        return self.engine.get_device(request.id)

    @rpc_errors
    def RegisterDevice(
        self, request: devices_pb2.RegisterDeviceRequest, context: grpc.ServicerContext
    ) -> devices_pb2.Device:
        return self.engine.register_device(request.device)

    # ------------------------------------------------------------ predicted, measured, calibrated

    @rpc_errors
    def Predict(
        self, request: prediction_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> prediction_pb2.PredictResponse:
        return self.engine.predict(request)

    @rpc_errors
    def Measure(
        self, request: measurement_pb2.MeasureRequest, context: grpc.ServicerContext
    ) -> Iterator[measurement_pb2.MeasureEvent]:
        yield from self.engine.measure(
            request, cancelled=lambda: not context.is_active(), time_remaining_s=context.time_remaining
        )

    @rpc_errors
    def Calibrate(
        self, request: prediction_pb2.CalibrateRequest, context: grpc.ServicerContext
    ) -> Iterator[prediction_pb2.CalibrateEvent]:
        yield from self.engine.calibrate(request, cancelled=lambda: not context.is_active())

    @rpc_errors
    def GetCalibration(
        self, request: prediction_pb2.GetCalibrationRequest, context: grpc.ServicerContext
    ) -> prediction_pb2.CalibrationReport:
        return self.engine.get_calibration(request.device_id)
