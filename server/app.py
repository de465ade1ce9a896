"""Server wiring: ``create_server(address, ...) -> (server, port)`` and ``serve``.

The server registers the ``nascost.v1.CostModel`` service, the standard health service
(``grpc.health.v1.Health``: SERVING once ready, NOT_SERVING while draining) and server
reflection. Optional token auth and TLS come from :class:`ServerConfig`.
"""

from __future__ import annotations

import hmac
import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nascost.server.config import ServerConfig
from nascost.server.engine import Engine
from nascost.server.metrics import MetricsInterceptor
from nascost.server.service import CostModelServicer
from nascost.v1 import service_pb2, service_pb2_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["CostModel"].full_name
# Methods reachable without a token: health checks from orchestrators, and reflection.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Rejects calls without ``authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong token (authorization: Bearer <token>)")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.stream_stream_rpc_method_handler(lambda it, ctx: deny(None, ctx))
        self._deny_unary_stream = grpc.unary_stream_rpc_method_handler(deny)
        self._deny_stream_unary = grpc.stream_unary_rpc_method_handler(lambda it, ctx: deny(None, ctx))

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        if details.method.startswith(_OPEN_PREFIXES):
            return continuation(details)
        got = dict(details.invocation_metadata or ()).get("authorization", "")
        got_bytes = got.encode() if isinstance(got, str) else bytes(got)
        if hmac.compare_digest(got_bytes, self._expected):
            return continuation(details)
        handler = continuation(details)
        if handler is None:
            return None
        if handler.request_streaming and handler.response_streaming:
            return self._deny_stream
        if handler.request_streaming:
            return self._deny_stream_unary
        if handler.response_streaming:
            return self._deny_unary_stream
        return self._deny


def create_server(
    address: str = "127.0.0.1:0", config: ServerConfig | None = None, *, engine: Engine | None = None
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """Build and start a server; returns ``(server, bound_port, health_servicer)``.

    Bind ``127.0.0.1:0`` in tests to get a free port.
    """
    config = config or ServerConfig.from_env()
    engine = engine or Engine(config)
    interceptors: list[grpc.ServerInterceptor] = [MetricsInterceptor(engine.metrics)]
    if config.auth_token:
        interceptors.append(TokenAuthInterceptor(config.auth_token))
    if config.metrics_port is not None:
        metrics_port = engine.metrics.serve_http(config.metrics_port)
        logger.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", config.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="nascost-rpc"),
        interceptors=interceptors,
        options=options,
    )
    service_pb2_grpc.add_CostModelServicer_to_server(CostModelServicer(engine), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)

    if config.tls_cert_file and config.tls_key_file:
        creds = grpc.ssl_server_credentials(
            [(config.tls_key_file.read_bytes(), config.tls_cert_file.read_bytes())]
        )
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    logger.info("nascost serving on %s (port %d, data dir %s)", address, port, config.data_dir)
    return server, port, health_servicer


def serve(host: str, port: int, config: ServerConfig, *, ready: Callable[[int], None] | None = None) -> None:
    """Run until SIGTERM/SIGINT, then drain: health NOT_SERVING, finish calls (10 s grace)."""
    engine = Engine(config)
    server, bound, health_servicer = create_server(f"{host}:{port}", config, engine=engine)
    stop = threading.Event()
    # Fingerprint the machine and measure its peaks (cached per fingerprint) off the
    # request path, so the first device listing or prediction does not wait for it.
    threading.Thread(target=lambda: engine.catalogue, name="nascost-warmup", daemon=True).start()

    def on_signal(signum: int, frame: object) -> None:
        logger.info("signal %d: draining", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if ready is not None:
        ready(bound)
    stop.wait()
    health_servicer.enter_graceful_shutdown()
    server.stop(grace=10).wait()
    logger.info("stopped")
