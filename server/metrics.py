"""Prometheus metrics: calls, statuses and latencies per method.

Served over HTTP on ``--metrics-port`` (prometheus-client's own server) when asked; the
interceptor costs a few microseconds per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.calls = Counter(
            "nascost_rpc_calls", "RPCs handled, by method and status code", ("method", "code"), registry=self.registry
        )
        self.latency_s = Histogram(
            "nascost_rpc_latency_seconds",
            "Wall time per RPC, seconds",
            ("method",),
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )

    def serve_http(self, port: int, addr: str = "127.0.0.1") -> int:
        server, _ = start_http_server(port, addr=addr, registry=self.registry)
        return int(server.server_port)


def _code_of(context: grpc.ServicerContext) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "OK"


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts calls by status and times them (streams: until the last reply)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        m = self.metrics

        def finish(start: float, context: grpc.ServicerContext, failed: bool) -> None:
            code = _code_of(context)
            if failed and code == "OK":
                code = "UNKNOWN"
            m.calls.labels(method, code).inc()
            m.latency_s.labels(method).observe(time.perf_counter() - start)

        def wrap_unary(fn: Callable[..., Any]) -> Callable[..., Any]:
            def inner(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                failed = True
                try:
                    out = fn(request, context)
                    failed = False
                    return out
                finally:
                    finish(start, context, failed)

            return inner

        def wrap_stream(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
            def inner(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                start = time.perf_counter()
                failed = True
                try:
                    yield from fn(request, context)
                    failed = False
                finally:
                    finish(start, context, failed)

            return inner

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap_unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                wrap_stream(handler.unary_stream), handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap_unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                wrap_stream(handler.stream_stream), handler.request_deserializer, handler.response_serializer
            )
        return handler
