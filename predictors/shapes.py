"""The shapes a request chooses for a graph's inputs: no onnx here.

The sandboxed measurement worker reads a :class:`ShapeRequest` and nothing else of the
graph module; importing ``onnx`` there (through :mod:`nascost.predictors.graph`) pulls
``ml_dtypes``, about 1 s of the worker's start on the hosts of 2026-12-01, paid by every
measurement. :mod:`nascost.predictors.graph` re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nascost.predictors.errors import InvalidRequestError


@dataclass(frozen=True, slots=True)
class ShapeRequest:
    """Shapes chosen for one request."""

    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    dim_values: Mapping[str, int] = field(default_factory=dict)

    def validate(self) -> None:
        for name, dims in self.input_shapes.items():
            if any(int(d) < 1 for d in dims):
                raise InvalidRequestError(f"input shape for {name!r} must have every dim >= 1, got {list(dims)}")
        for name, v in self.dim_values.items():
            if int(v) < 1:
                raise InvalidRequestError(f"dim value {name}={v} must be >= 1")
