"""Domain errors -> gRPC status codes, in one table.

Servicer methods are wrapped by :func:`rpc_errors`: a domain error aborts the call with
its status and its message; anything else is a bug, logged with a request id, and the
client gets INTERNAL with that id only — never a traceback.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc

from nascost.predictors import errors as e

logger = logging.getLogger(__name__)

STATUS_OF: dict[type[e.NascostError], grpc.StatusCode] = {
    e.InvalidModelError: grpc.StatusCode.INVALID_ARGUMENT,
    e.UnsafeModelError: grpc.StatusCode.INVALID_ARGUMENT,
    e.InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    e.UnknownDeviceError: grpc.StatusCode.NOT_FOUND,
    e.UnknownGraphError: grpc.StatusCode.NOT_FOUND,
    e.DeviceExistsError: grpc.StatusCode.ALREADY_EXISTS,
    e.NotCalibratedError: grpc.StatusCode.FAILED_PRECONDITION,
    e.NotMeasurableError: grpc.StatusCode.FAILED_PRECONDITION,
    e.LimitExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    e.MeasurementTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
    e.WorkerCrashedError: grpc.StatusCode.INVALID_ARGUMENT,
    e.CancelledError: grpc.StatusCode.CANCELLED,
}


def status_of(exc: BaseException) -> grpc.StatusCode:
    """The status code of a domain error (most specific class wins)."""
    for cls in type(exc).__mro__:
        code = STATUS_OF.get(cls)  # type: ignore[call-overload]
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def describe(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, message) for a client; logs unexpected errors with a request id."""
    if isinstance(exc, e.NascostError):
        return status_of(exc), str(exc)
    request_id = uuid.uuid4().hex[:12]
    logger.error("internal error, request id %s", request_id, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id}; see the server log)"


def _abort(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    code, message = describe(exc)
    context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises


F = TypeVar("F", bound=Callable[..., Any])


def rpc_errors(fn: F) -> F:
    """Map errors raised by a unary or server-streaming servicer method to statuses."""
    import inspect

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from fn(self, request, context)
            except Exception as exc:
                _abort(context, exc)

        return gen_wrapper  # type: ignore[return-value]

    if inspect.isasyncgenfunction(fn):  # pragma: no cover - not used by the sync server

        @functools.wraps(fn)
        async def agen_wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in fn(self, request, context):
                    yield item
            except Exception as exc:
                code, message = describe(exc)
                await context.abort(code, message)

        return agen_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except Exception as exc:
            _abort(context, exc)

    return wrapper  # type: ignore[return-value]
