"""The sandboxed measurement worker: ``python -m nascost.measurements._worker --fd N``.

Protocol (see :mod:`nascost.measurements.sandbox`):

- stdin: one JSON header line (``model_size``, ``batch_sizes``, ``shapes``, ``config``,
  ``timing``, ``limits``), then exactly ``model_size`` bytes of serialized ONNX.
- fd N: JSON lines, ``{"type": "progress" | "result" | "error", ...}``. Only plain data crosses
  back; the optimized graph is written as a file in the worker's private directory (its cwd).

The worker applies its resource limits to itself before it imports onnxruntime or reads the
model, so the limits hold for everything the model can make the runtime do.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
from typing import Any


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message, separators=(",", ":"), allow_nan=True) + "\n").encode("utf-8")
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _set_limit(which: int, value: int | None) -> None:
    if value is None:
        return
    _soft, hard = resource.getrlimit(which)
    new_hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
    resource.setrlimit(which, (min(value, new_hard), new_hard))


def apply_limits(limits: dict[str, Any]) -> None:
    """RLIMIT_AS, RLIMIT_CPU (soft; SIGXCPU, then SIGKILL 5 s later), RLIMIT_FSIZE, RLIMIT_CORE=0."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("address_space_bytes"):
        _set_limit(resource.RLIMIT_AS, int(limits["address_space_bytes"]))
    if limits.get("cpu_time_s"):
        cpu = int(limits["cpu_time_s"])
        _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        new_hard = cpu + 5 if hard == resource.RLIM_INFINITY else min(hard, cpu + 5)
        resource.setrlimit(resource.RLIMIT_CPU, (min(cpu, new_hard), new_hard))
    if limits.get("file_size_bytes"):
        _set_limit(resource.RLIMIT_FSIZE, int(limits["file_size_bytes"]))
    # A write past RLIMIT_FSIZE then fails with EFBIG (reported) instead of killing us.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line[:500]


def _read_exact(stream: Any, n: int) -> bytes:
    chunks = []
    left = n
    while left > 0:
        chunk = stream.read(min(left, 1 << 20))
        if not chunk:
            raise EOFError(f"model truncated: expected {n} bytes, got {n - left}")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    fd = args.fd
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline().decode("utf-8"))
    apply_limits(header.get("limits", {}))
    stage = "reading the model"
    try:
        model = _read_exact(stdin, int(header["model_size"]))

        from nascost.measurements.protocol import TimingOptions
        from nascost.measurements.runner import RunnerConfig, _looks_like_memory, run_measurement
        from nascost.predictors.errors import InvalidRequestError
        from nascost.predictors.shapes import ShapeRequest

        shapes_d = header.get("shapes")
        shapes = None
        if shapes_d is not None:
            shapes = ShapeRequest(
                input_shapes={
                    k: tuple(int(x) for x in v) for k, v in shapes_d.get("input_shapes", {}).items()
                },
                dim_values={k: int(v) for k, v in shapes_d.get("dim_values", {}).items()},
            )

        def progress(stage_name: str, fraction: float, message: str) -> None:
            nonlocal stage
            stage = stage_name
            _send(
                fd,
                {"type": "progress", "stage": stage_name, "fraction": fraction, "message": message},
            )

        stage = "loading"
        result, opt_path = run_measurement(
            model,
            shapes=shapes,
            batch_sizes=[int(b) for b in header["batch_sizes"]],
            config=RunnerConfig.from_dict(header["config"]),
            timing=TimingOptions.from_dict(header["timing"]),
            workdir=os.getcwd(),
            progress=progress,
            quiet=header.get("quiet"),
        )
        _send(
            fd,
            {
                "type": "result",
                "result": result.to_dict(),
                "optimized_model_file": os.path.basename(opt_path) if opt_path else None,
            },
        )
        return 0
    except MemoryError as e:
        _send(
            fd,
            {
                "type": "error",
                "kind": "limit",
                "stage": stage,
                "message": f"out of memory while {stage}: {_first_line(e)}",
            },
        )
        return 3
    except InvalidRequestError as e:
        _send(
            fd,
            {"type": "error", "kind": "invalid_request", "stage": stage, "message": _first_line(e)},
        )
        return 2
    except Exception as e:
        message = _first_line(e)
        if _looks_like_memory(str(e)):
            kind = "limit"
        elif type(e).__module__.startswith("onnxruntime"):
            kind = "invalid_model"
        else:
            kind = "internal"
        _send(
            fd,
            {
                "type": "error",
                "kind": kind,
                "stage": stage,
                "message": message,
                "exception": type(e).__name__,
            },
        )
        return 2


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    # Skip interpreter and runtime teardown: everything is sent, nothing else is owed.
    os._exit(code)
