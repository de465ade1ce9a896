"""Domain errors of nascost.

Every layer raises these; the server maps them to gRPC status codes in one table
(``nascost.server.errors``). Messages are written for the user who sent the request:
they say what was wrong and, where it helps, what to do. They never carry a traceback.
"""

from __future__ import annotations


class NascostError(Exception):
    """Base class of every error nascost reports to a caller."""


class InvalidModelError(NascostError):
    """The model bytes are not a usable ONNX model (malformed, truncated, cyclic, ...)."""


class UnsafeModelError(InvalidModelError):
    """The model refers to something outside itself (external data paths, ...)."""


class InvalidRequestError(NascostError):
    """A request field is out of range or inconsistent (bad shape, bad id, ...)."""


class UnknownDeviceError(NascostError):
    """No device with that id is catalogued."""


class UnknownGraphError(NascostError):
    """No graph with that digest is held by the server."""


class DeviceExistsError(NascostError):
    """A device with that id is already catalogued."""


class NotCalibratedError(NascostError):
    """The device has no fitted learned predictor yet."""


class NotMeasurableError(NascostError):
    """The device cannot be measured through this server."""


class LimitExceededError(NascostError):
    """A size, memory, time-budget or queue limit was exceeded."""


class MeasurementTimeoutError(NascostError):
    """A measurement ran past its wall-clock limit and was stopped."""


class WorkerCrashedError(NascostError):
    """The sandboxed worker died (signal, crash) while loading or running a model."""


class CancelledError(NascostError):
    """The caller cancelled the operation (or its deadline passed)."""
