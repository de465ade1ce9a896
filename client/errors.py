"""Client-side exceptions: one class per status, each carrying the gRPC status."""

from __future__ import annotations

import grpc


class NascostClientError(Exception):
    """A call failed. ``code`` is the gRPC status, ``details`` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(f"{code.name}: {details}")


class InvalidArgument(NascostClientError):
    """The model or a request field is bad (malformed model, bad shape, ...)."""


class NotFound(NascostClientError):
    """Unknown device or graph digest."""


class FailedPrecondition(NascostClientError):
    """E.g. the device has no calibration yet."""


class AlreadyExists(NascostClientError):
    """E.g. a device with that id is already registered."""


class ResourceExhausted(NascostClientError):
    """A size, memory or queue limit."""


class DeadlineExceeded(NascostClientError):
    """The deadline passed (client-side) or a measurement ran too long (server-side)."""


class Unauthenticated(NascostClientError):
    """Missing or wrong token."""


class Unavailable(NascostClientError):
    """No server answered at that address."""


class Unimplemented(NascostClientError):
    """The server does not offer that call or feature."""


_BY_CODE: dict[grpc.StatusCode, type[NascostClientError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}


def from_rpc_error(e: grpc.RpcError) -> NascostClientError:
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = e.details() if hasattr(e, "details") else str(e)
    return _BY_CODE.get(code, NascostClientError)(code, details or "")


def from_status(code_value: int, message: str) -> NascostClientError:
    """From a status carried inside a stream reply (``StatusDetail``)."""
    code = next((c for c in grpc.StatusCode if c.value[0] == code_value), grpc.StatusCode.UNKNOWN)
    return _BY_CODE.get(code, NascostClientError)(code, message)
