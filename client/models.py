"""Turning what a user holds into model bytes: a path, bytes, an ``onnx.ModelProto``,
or a ``torch.nn.Module`` with an example input (the ``[torch]`` extra)."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

ModelLike = str | os.PathLike[str] | bytes | bytearray | memoryview | Any


def model_bytes(model: ModelLike) -> bytes:
    """Serialized ONNX bytes of ``model`` (path, bytes or ``onnx.ModelProto``)."""
    if isinstance(model, bytes):
        return model
    if isinstance(model, bytearray | memoryview):
        return bytes(model)
    if isinstance(model, str | os.PathLike):
        with open(model, "rb") as f:
            return f.read()
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        return bytes(serialize())
    raise TypeError(
        f"cannot send a {type(model).__name__}: pass a path, bytes, an onnx.ModelProto, "
        "or use nascost.client.from_torch(module, example_inputs)"
    )


def digest(data: bytes) -> str:
    """The content digest the server uses: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def from_torch(
    module: Any,
    example_inputs: Any,
    *,
    input_names: list[str] | None = None,
    dynamic_batch: bool = False,
    opset: int = 18,
    dynamo: bool = False,
) -> bytes:
    """Export a ``torch.nn.Module`` (in eval mode) to ONNX bytes.

    Uses the legacy exporter by default: tens of milliseconds against 1-3 s for
    ``dynamo=True``, which matters in a search loop. ``dynamic_batch`` makes axis 0 of
    every input the symbolic dim ``batch`` (choose it per request with ``dim_values``).
    """
    import torch  # the [torch] extra

    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    names = input_names or [f"input_{i}" if len(args) > 1 else "input" for i in range(len(args))]
    dynamic_axes = {n: {0: "batch"} for n in names} if dynamic_batch else None
    was_training = module.training
    module.eval()
    buf = io.BytesIO()
    try:
        with torch.no_grad():
            torch.onnx.export(
                module,
                args,
                buf,  # type: ignore[arg-type]  # torch accepts file-like objects
                input_names=names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=dynamo,
            )
    finally:
        module.train(was_training)
    return buf.getvalue()
