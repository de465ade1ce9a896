"""Run the measurement runner in a resource-limited worker subprocess.

The parent (the server) never loads a submitted model into onnxruntime itself. It checks the
bytes with :func:`nascost.predictors.graph.parse_model` (which refuses external-data
references before onnx or onnxruntime could open a path), then starts
``python -m nascost.measurements._worker`` in its own process group with:

- ``RLIMIT_AS`` (address space), ``RLIMIT_CPU``, ``RLIMIT_FSIZE`` and ``RLIMIT_CORE = 0``,
  applied by the worker to itself before it reads the model;
- a private temporary directory as its working directory (profile trace, optimized graph);
- a wall-clock timeout and a cancellation event, both enforced by killing the process group.

Requests go in over stdin (a JSON header line, then the model bytes); results come back as
JSON lines on a dedicated pipe, so only plain data crosses back (no pickles). Failures map
to the domain errors of :mod:`nascost.predictors.errors`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from nascost.measurements.protocol import TimingOptions
from nascost.measurements.quiet import QuietGate
from nascost.measurements.runner import (
    CPU_PROVIDER,
    MeasurementResult,
    ProgressFn,
    RunnerConfig,
    _looks_like_memory,
)
from nascost.predictors.errors import (
    CancelledError,
    InvalidModelError,
    InvalidRequestError,
    LimitExceededError,
    MeasurementTimeoutError,
    WorkerCrashedError,
)
from nascost.predictors.graph import ShapeRequest, parse_model

logger = logging.getLogger(__name__)

GIB = 1 << 30
MIB = 1 << 20
_POLL_S = 0.05
_EXIT_GRACE_S = 5.0
_MAX_MESSAGE_BYTES = 64 * MIB


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Resource limits of one measurement worker.

    Attributes:
        address_space_bytes: ``RLIMIT_AS`` of the worker (virtual memory, not RSS: Python,
            numpy and onnxruntime take ~200 MiB of it before the model's first byte; a small
            model still ran under 256 MiB here). Not applied to GPU providers, whose runtimes
            reserve tens of GiB of address space.
        cpu_time_s: ``RLIMIT_CPU``; None derives it from the wall-clock timeout and the thread
            counts (so it only catches a runaway, the wall clock is the real limit).
        file_size_bytes: ``RLIMIT_FSIZE``: the largest file the worker may write (its profile
            trace and the optimized graph, which holds the weights).
        wall_timeout_s: the whole worker (start, load, timing, profiling) must finish in this.
        max_model_bytes: models above this size are refused before a worker starts.
    """

    address_space_bytes: int | None = 8 * GIB
    cpu_time_s: float | None = None
    file_size_bytes: int = 512 * MIB
    wall_timeout_s: float = 300.0
    max_model_bytes: int | None = 2 * GIB

    def validate(self) -> None:
        if self.address_space_bytes is not None and self.address_space_bytes < 256 * MIB:
            raise InvalidRequestError(
                "address_space_bytes below 256 MiB cannot even start the runtime"
            )
        if not (self.wall_timeout_s > 0 and math.isfinite(self.wall_timeout_s)):
            raise InvalidRequestError(f"wall_timeout_s must be > 0, got {self.wall_timeout_s}")
        if self.cpu_time_s is not None and self.cpu_time_s <= 0:
            raise InvalidRequestError(f"cpu_time_s must be > 0, got {self.cpu_time_s}")
        if self.file_size_bytes < MIB:
            raise InvalidRequestError("file_size_bytes must be at least 1 MiB")

    def effective_cpu_time_s(self, config: RunnerConfig) -> int:
        if self.cpu_time_s is not None:
            return math.ceil(self.cpu_time_s)
        cores = os.cpu_count() or 1
        intra = config.intra_op_threads or cores
        inter = config.inter_op_threads or 1
        return math.ceil(self.wall_timeout_s * max(1, min(cores, intra * inter))) + 10


def _shapes_dict(shapes: ShapeRequest | None) -> dict[str, Any] | None:
    if shapes is None:
        return None
    return {
        "input_shapes": {k: [int(x) for x in v] for k, v in shapes.input_shapes.items()},
        "dim_values": {k: int(v) for k, v in shapes.dim_values.items()},
    }


_ENV_KEYS = frozenset(
    {
        "PATH",
        "HOME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TMPDIR",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "LD_LIBRARY_PATH",
    }
)
_ENV_PREFIXES = ("CUDA_", "NVIDIA_", "OMP_", "MKL_", "OPENBLAS_", "ORT_", "TRT_")


def _worker_env() -> dict[str, str]:
    """A minimal environment: what Python, onnxruntime and GPU drivers need, and no secrets
    (tokens, TLS key paths) of the server's own environment."""
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEYS or k.startswith(_ENV_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _stderr_tail(path: str, limit: int = 4096) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _feed_stdin(stdin: IO[bytes], header: bytes, model: bytes) -> None:
    try:
        stdin.write(header)
        view = memoryview(model)
        for i in range(0, len(view), 1 << 20):
            stdin.write(view[i : i + (1 << 20)])
        stdin.close()
    except (
        BrokenPipeError,
        OSError,
        ValueError,
    ):  # the worker died or was killed: the reader reports it
        with contextlib.suppress(Exception):
            stdin.close()


def worker_header(
    model_size: int,
    batch_sizes: Sequence[int],
    shapes: ShapeRequest | None,
    config: RunnerConfig,
    timing: TimingOptions,
    limits: SandboxLimits,
    quiet: QuietGate | None = None,
) -> bytes:
    """The worker's stdin header line (JSON): what it measures and the limits it sets itself;
    the model's ``model_size`` bytes follow it."""
    header = {
        "model_size": model_size,
        "batch_sizes": list(batch_sizes),
        "shapes": _shapes_dict(shapes),
        "config": config.to_dict(),
        "timing": timing.to_dict(),
        "limits": {
            # GPU runtimes reserve tens of GiB of virtual address space at context creation:
            # an RLIMIT_AS would refuse them, so GPU providers rely on the wall clock alone.
            "address_space_bytes": limits.address_space_bytes
            if config.provider == CPU_PROVIDER
            else None,
            "cpu_time_s": limits.effective_cpu_time_s(config),
            "file_size_bytes": limits.file_size_bytes,
        },
        **({"quiet": quiet.to_dict()} if quiet is not None else {}),
    }
    return (json.dumps(header) + "\n").encode("utf-8")


def run_sandboxed(
    model_bytes: bytes,
    *,
    shapes: ShapeRequest | None = None,
    batch_sizes: Sequence[int] = (1,),
    config: RunnerConfig | None = None,
    timing: TimingOptions | None = None,
    limits: SandboxLimits | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    on_worker_start: Callable[[int], None] | None = None,
    quiet: QuietGate | None = None,
) -> MeasurementResult:
    """Measure a model in a sandboxed worker subprocess.

    Args:
        on_worker_start: called with the worker's pid once it runs (tests use it to kill it).
        quiet: wait for a quiet host before timing (:mod:`nascost.measurements.quiet`); the
            wait adds to the wall-clock timeout.

    Raises:
        UnsafeModelError: the model refers to external data (refused before any parse by onnx
            or onnxruntime beyond the protobuf decode).
        InvalidModelError: the bytes are not a model, or onnxruntime refuses it.
        InvalidRequestError: bad shapes, batch sizes, provider or options.
        LimitExceededError: the worker ran out of address space, CPU time or file size.
        MeasurementTimeoutError: the wall-clock timeout passed.
        CancelledError: ``cancel`` was set.
        WorkerCrashedError: the worker died otherwise (a signal, a crash in native code).
    """
    config = config or RunnerConfig()
    timing = timing or TimingOptions()
    limits = limits or SandboxLimits()
    config.validate()
    timing.validate()
    limits.validate()
    if shapes is not None:
        shapes.validate()
    if quiet is not None:
        quiet.validate()
    batch_list = [int(b) for b in batch_sizes]  # empty: the graph's own batch size
    if any(b < 1 for b in batch_list):
        raise InvalidRequestError(f"batch sizes must be >= 1, got {batch_list}")
    # Refuse external data and garbage before anything else sees the bytes.
    parse_model(model_bytes, max_bytes=limits.max_model_bytes)
    if cancel is not None and cancel.is_set():
        raise CancelledError("measurement cancelled before it started")

    report: ProgressFn = progress or (lambda stage, frac, msg: None)
    workdir = tempfile.mkdtemp(prefix="nascost-measure-")
    stderr_path = os.path.join(workdir, "worker.stderr")
    header_bytes = worker_header(len(model_bytes), batch_list, shapes, config, timing, limits, quiet)
    read_fd, write_fd = os.pipe()
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    deadline = started + limits.wall_timeout_s + (quiet.max_wait_s if quiet is not None else 0.0)
    try:
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nascost.measurements._worker", "--fd", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_fd,),
                cwd=workdir,
                env=_worker_env(),
                start_new_session=True,
                close_fds=True,
            )
        os.close(write_fd)
        write_fd = -1
        assert proc.stdin is not None
        feeder = threading.Thread(
            target=_feed_stdin,
            args=(proc.stdin, header_bytes, model_bytes),
            name="nascost-sandbox-feed",
            daemon=True,
        )
        feeder.start()
        logger.info("measurement worker pid %d started in %s", proc.pid, workdir)
        if on_worker_start is not None:
            on_worker_start(proc.pid)
        report("started", 0.0, f"worker pid {proc.pid}")

        messages = _pump(
            proc, read_fd, deadline=deadline, cancel=cancel, report=report, limits=limits
        )
        rc = proc.wait()
        return _outcome(messages, rc, proc.pid, stderr_path, workdir, limits)
    finally:
        if proc is not None:
            _kill_group(proc)
            with contextlib.suppress(Exception):
                proc.wait(timeout=5)
        if write_fd >= 0:
            os.close(write_fd)
        with contextlib.suppress(OSError):
            os.close(read_fd)
        shutil.rmtree(workdir, ignore_errors=True)


def _pump(
    proc: subprocess.Popen[bytes],
    read_fd: int,
    *,
    deadline: float,
    cancel: threading.Event | None,
    report: ProgressFn,
    limits: SandboxLimits,
) -> list[dict[str, Any]]:
    """Read the worker's messages until EOF; enforce the deadline and cancellation.

    Once the worker has sent its result (or error) it gets ``_EXIT_GRACE_S`` to exit; a
    worker stuck in teardown is then killed and its message still counts.
    """
    messages: list[dict[str, Any]] = []
    buf = bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(read_fd, selectors.EVENT_READ)
        while True:
            if cancel is not None and cancel.is_set():
                _kill_group(proc)
                raise CancelledError("measurement cancelled; the worker was stopped")
            now = time.monotonic()
            if messages and now >= deadline:
                logger.warning(
                    "measurement worker pid %d did not exit after its result; killed", proc.pid
                )
                _kill_group(proc)
                return messages
            if now >= deadline:
                _kill_group(proc)
                raise MeasurementTimeoutError(
                    f"measurement ran past its wall-clock limit of {limits.wall_timeout_s:g} s and was stopped"
                )
            events = sel.select(timeout=min(_POLL_S, max(0.0, deadline - now)))
            if not events:
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            buf.extend(chunk)
            if len(buf) > _MAX_MESSAGE_BYTES:
                _kill_group(proc)
                raise WorkerCrashedError(
                    "measurement worker sent an oversized message; it was stopped"
                )
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                try:
                    msg = json.loads(line)
                except ValueError:
                    logger.warning("measurement worker sent a malformed line (%d bytes)", len(line))
                    continue
                if not isinstance(msg, dict):
                    continue
                if msg.get("type") == "progress":
                    report(
                        str(msg.get("stage", "")),
                        float(msg.get("fraction", 0.0)),
                        str(msg.get("message", "")),
                    )
                else:
                    messages.append(msg)
                    deadline = min(deadline, time.monotonic() + _EXIT_GRACE_S)
    # EOF: the worker closed its end (exited). Wait for it, still under the deadline.
    while proc.poll() is None:
        if cancel is not None and cancel.is_set():
            _kill_group(proc)
            raise CancelledError("measurement cancelled; the worker was stopped")
        if time.monotonic() >= deadline:
            _kill_group(proc)
            if messages:
                return messages
            raise MeasurementTimeoutError(
                f"measurement ran past its wall-clock limit of {limits.wall_timeout_s:g} s and was stopped"
            )
        time.sleep(_POLL_S)
    return messages


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _outcome(
    messages: list[dict[str, Any]],
    rc: int,
    pid: int,
    stderr_path: str,
    workdir: str,
    limits: SandboxLimits,
) -> MeasurementResult:
    result_msg = next((m for m in messages if m.get("type") == "result"), None)
    error_msg = next((m for m in messages if m.get("type") == "error"), None)
    if result_msg is not None:
        if rc != 0:  # a complete result, then a crash or a kill in teardown: the result stands
            logger.warning(
                "measurement worker pid %d exited with %d after sending its result", pid, rc
            )
        opt_name = result_msg.get("optimized_model_file")
        optimized: bytes | None = None
        if isinstance(opt_name, str) and opt_name and os.path.basename(opt_name) == opt_name:
            path = os.path.join(workdir, opt_name)
            if os.path.isfile(path) and os.path.getsize(path) <= limits.file_size_bytes:
                with open(path, "rb") as f:
                    optimized = f.read()
        return MeasurementResult.from_dict(result_msg["result"], optimized_model=optimized)
    if error_msg is not None:
        kind = error_msg.get("kind")
        message = str(error_msg.get("message", "")).strip() or "unknown error"
        stage = str(error_msg.get("stage", ""))
        if kind == "limit":
            raise LimitExceededError(
                f"the model exhausted the measurement worker's memory (address-space limit "
                f"{_fmt_bytes(limits.address_space_bytes)}) while {stage}: {message}"
            )
        if kind == "invalid_request":
            raise InvalidRequestError(message)
        if kind == "invalid_model":
            where = (
                "refused the model"
                if stage in ("loading", "reading the model")
                else f"failed while {stage}"
            )
            raise InvalidModelError(f"onnxruntime {where}: {message}")
        raise WorkerCrashedError(f"measurement worker failed while {stage}: {message}")
    tail = _stderr_tail(stderr_path)
    if tail:
        logger.info("measurement worker pid %d stderr tail:\n%s", pid, tail[-2000:])
    if rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU:
            raise LimitExceededError(
                "the measurement worker used up its CPU-time limit and was stopped"
            )
        if sig == signal.SIGXFSZ:
            raise LimitExceededError("the measurement worker exceeded its file-size limit")
        if _looks_like_memory(tail):
            raise LimitExceededError(
                f"the model exhausted the measurement worker's memory (limit {_fmt_bytes(limits.address_space_bytes)})"
            )
        raise WorkerCrashedError(
            f"the measurement worker died with {_signal_name(sig)}"
            + (
                " (killed: perhaps by the system's out-of-memory killer)"
                if sig == signal.SIGKILL
                else ""
            )
        )
    if _looks_like_memory(tail):
        raise LimitExceededError(
            f"the model exhausted the measurement worker's memory (limit {_fmt_bytes(limits.address_space_bytes)})"
        )
    raise WorkerCrashedError(f"the measurement worker exited with status {rc} without a result")


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "none"
    if n >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.0f} MiB"


__all__ = ["SandboxLimits", "run_sandboxed"]
