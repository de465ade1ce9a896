"""Python client of the nascost service (sync and asyncio).

    from nascost.client import Client
    with Client("127.0.0.1:50051") as c:
        a = c.analyze("model.onnx", dim_values={"batch": 8})
        print(a.params, a.macs, a.memory_access_bytes)

Needs only grpcio, protobuf and numpy; ``onnx`` (``[onnx]`` extra) for ``ModelProto``
inputs and ``torch`` (``[torch]`` extra) for :func:`from_torch`.
"""

from __future__ import annotations

from nascost.client.client import AsyncClient, Client
from nascost.client.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NascostClientError,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from nascost.client.models import digest, from_torch, model_bytes
from nascost.client.results import (
    Analysis,
    BatchLatency,
    Device,
    KernelTime,
    Measurement,
    NodeCost,
    ParamBreakdown,
    Provenance,
)

__all__ = [
    "AlreadyExists",
    "Analysis",
    "AsyncClient",
    "BatchLatency",
    "Client",
    "DeadlineExceeded",
    "Device",
    "FailedPrecondition",
    "InvalidArgument",
    "KernelTime",
    "Measurement",
    "NascostClientError",
    "NodeCost",
    "NotFound",
    "ParamBreakdown",
    "Provenance",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "digest",
    "from_torch",
    "model_bytes",
]
