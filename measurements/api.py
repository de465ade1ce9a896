"""The measurements API the server and CLI call.

``measure`` = device lock -> sandboxed worker -> (optionally) the runtime's optimized graph
counted again by the static engine. ``measure_and_store`` adds the store write with the
local fingerprint.

Only one measurement runs at a time per device (a lock per device id in this process),
so timings never overlap; everything else (predictions) keeps being served meanwhile,
since waiting for the lock and the worker happen off the caller's other threads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from nascost.measurements.protocol import TimingOptions
from nascost.measurements.quiet import QuietGate
from nascost.measurements.runner import MeasurementResult, ProgressFn, RunnerConfig
from nascost.measurements.sandbox import SandboxLimits, run_sandboxed
from nascost.predictors.errors import CancelledError, LimitExceededError, NascostError
from nascost.predictors.graph import ShapeRequest, digest_of

if TYPE_CHECKING:
    from nascost.measurements.fingerprint import DeviceFingerprint
    from nascost.measurements.store import Store

logger = logging.getLogger(__name__)

LOCAL_DEVICE_ID = "local"


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """One progress event of a measurement (see :func:`measure` for the stages)."""

    stage: str
    fraction: float
    message: str


_locks_guard = threading.Lock()
_device_locks: dict[str, threading.Lock] = {}


def _lock_for(device_id: str) -> threading.Lock:
    with _locks_guard:
        lock = _device_locks.get(device_id)
        if lock is None:
            lock = _device_locks[device_id] = threading.Lock()
        return lock


def _lock_file_name(device_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device_id)
    return f"measure-{safe}-{hashlib.sha256(device_id.encode()).hexdigest()[:8]}.lock"


@contextlib.contextmanager
def device_lock(
    device_id: str = LOCAL_DEVICE_ID,
    *,
    cancel: threading.Event | None = None,
    timeout_s: float | None = None,
    on_wait: Callable[[], None] | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
) -> Iterator[None]:
    """Hold the device's measurement lock; waiting stops on ``cancel`` or after ``timeout_s``.

    Args:
        lock_dir: also hold an ``flock`` on a file in this directory, so that several server
            processes on one host (sidecar replicas sharing a data dir) never measure the
            same device at once. None: this process only.

    Raises:
        CancelledError: ``cancel`` was set while waiting.
        LimitExceededError: the lock was not free within ``timeout_s``.
    """
    lock = _lock_for(device_id)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waited = False

    def wait_once() -> None:
        nonlocal waited
        if not waited:
            waited = True
            if on_wait is not None:
                on_wait()
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"cancelled while waiting for device {device_id!r}")
        if deadline is not None and time.monotonic() >= deadline:
            raise LimitExceededError(
                f"device {device_id!r} is busy with another measurement (waited {timeout_s:g} s)"
            )

    while not lock.acquire(timeout=0.05):
        wait_once()
    fd = -1
    try:
        if lock_dir is not None:
            os.makedirs(lock_dir, exist_ok=True)
            fd = os.open(
                os.path.join(lock_dir, _lock_file_name(device_id)), os.O_RDWR | os.O_CREAT, 0o644
            )
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    wait_once()
                    time.sleep(0.05)
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # closing releases the flock
        lock.release()


def measure(
    model_bytes: bytes,
    *,
    shapes: ShapeRequest | None = None,
    batch_sizes: Sequence[int] = (1,),
    config: RunnerConfig | None = None,
    timing: TimingOptions | None = None,
    limits: SandboxLimits | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    device_id: str = LOCAL_DEVICE_ID,
    analyze_optimized: bool = False,
    lock_timeout_s: float | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
    quiet: QuietGate | None = None,
) -> MeasurementResult:
    """Measure a model on the local device, sandboxed, one measurement at a time per device.

    Args:
        model_bytes: serialized ONNX (external-data references are refused).
        shapes: input shapes / symbolic dim values; the batch size sets symbolic dim 0.
        batch_sizes: measured one after another in one worker.
        config: runtime configuration (provider, threads, optimization level, profiling).
        timing: the timing protocol's options.
        limits: the worker's resource limits and wall-clock timeout.
        progress: ``(stage, fraction, message)`` callback; stages: ``queued``, ``started``,
            ``loading``, ``timing``, ``profiling``, ``analyzing``, ``done``.
        cancel: set it to stop the measurement (waiting or running); raises CancelledError.
        device_id: the lock key (measurements of one device never overlap).
        analyze_optimized: also return the runtime's optimized graph and its static analysis
            at the first batch size's input shapes (``result.optimized_analysis``).
        lock_timeout_s: give up waiting for a busy device after this long.
        lock_dir: directory for the cross-process device lock (see :func:`device_lock`).
        quiet: wait for a quiet host before timing (:mod:`nascost.measurements.quiet`).

    Raises:
        The domain errors of :func:`nascost.measurements.sandbox.run_sandboxed`.
    """
    config = config or RunnerConfig()
    timing = timing or TimingOptions()
    limits = limits or SandboxLimits()
    if analyze_optimized and not config.save_optimized_graph:
        config = dataclasses.replace(config, save_optimized_graph=True)
    report: ProgressFn = progress or (lambda stage, frac, msg: None)

    def waiting() -> None:
        report("queued", 0.0, f"waiting for device {device_id!r} (another measurement is running)")

    with device_lock(
        device_id, cancel=cancel, timeout_s=lock_timeout_s, on_wait=waiting, lock_dir=lock_dir
    ):
        result = run_sandboxed(
            model_bytes,
            shapes=shapes,
            batch_sizes=batch_sizes,
            config=config,
            timing=timing,
            limits=limits,
            progress=report,
            cancel=cancel,
            quiet=quiet,
        )
    if analyze_optimized:
        result = _with_optimized_analysis(result, report)
    return result


def _with_optimized_analysis(result: MeasurementResult, report: ProgressFn) -> MeasurementResult:
    if result.optimized_model is None or not result.batches:
        return dataclasses.replace(
            result, warnings=(*result.warnings, "the runtime wrote no optimized graph")
        )
    from nascost.predictors.analysis import analyze
    from nascost.predictors.graph import load_graph_bytes

    report("analyzing", 1.0, "counting the runtime's optimized graph")
    shapes = ShapeRequest(input_shapes=dict(result.batches[0].input_shapes))
    try:
        analysis = analyze(
            load_graph_bytes(_forget_symbolic_output_shapes(result.optimized_model), shapes)
        )
    except NascostError as e:
        logger.info("optimized graph could not be analyzed: %s", e)
        return dataclasses.replace(
            result, warnings=(*result.warnings, f"optimized graph not analyzed: {e}")
        )
    return dataclasses.replace(result, optimized_analysis=analysis)


def _forget_symbolic_output_shapes(model_bytes: bytes) -> bytes:
    """The optimized graph with symbolic graph-output shapes cleared.

    onnxruntime keeps the declared outputs (``["N", 256]``); when the last node is a contrib
    op that ONNX shape inference cannot infer (``FusedGemm``, ``nchwc.Conv``), the symbolic
    declaration would otherwise stand in for the shape and leave that node uncounted. Cleared,
    the output's shape comes from the contrib op's own shape function.
    """
    from nascost.predictors.graph import parse_model

    model = parse_model(model_bytes)
    changed = False
    for vi in model.graph.output:
        tt = vi.type.tensor_type
        symbolic = tt.HasField("shape") and any(not d.HasField("dim_value") for d in tt.shape.dim)
        if vi.type.HasField("tensor_type") and symbolic:
            tt.ClearField("shape")
            changed = True
    return bytes(model.SerializeToString()) if changed else model_bytes


def record_measurement(
    store: Store,
    result: MeasurementResult,
    model_bytes: bytes,
    *,
    device_id: str = LOCAL_DEVICE_ID,
    graph_digest: str | None = None,
    fingerprint: DeviceFingerprint | None = None,
) -> list[int]:
    """Store every batch size of ``result`` with the local fingerprint (one transaction).

    Args:
        graph_digest: the model's digest when the caller has it (saves hashing the bytes).
        fingerprint: the local fingerprint when the caller holds one (saves probing the
            machine, nvidia-smi included, on every record of a calibration).

    Returns:
        The stored row ids, one per batch size.
    """
    from nascost.measurements.fingerprint import local_fingerprint

    fp = fingerprint or local_fingerprint()
    return store.add_measurement(
        result,
        graph_digest=graph_digest or digest_of(model_bytes),
        device_id=device_id,
        fingerprint=fp.to_dict(),
        fingerprint_digest=fp.digest,
    )


def measure_and_store(
    store: Store,
    model_bytes: bytes,
    *,
    shapes: ShapeRequest | None = None,
    batch_sizes: Sequence[int] = (1,),
    config: RunnerConfig | None = None,
    timing: TimingOptions | None = None,
    limits: SandboxLimits | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    device_id: str = LOCAL_DEVICE_ID,
    analyze_optimized: bool = False,
    lock_dir: str | os.PathLike[str] | None = None,
) -> tuple[MeasurementResult, list[int]]:
    """:func:`measure`, then :func:`record_measurement`."""
    result = measure(
        model_bytes,
        shapes=shapes,
        batch_sizes=batch_sizes,
        config=config,
        timing=timing,
        limits=limits,
        progress=progress,
        cancel=cancel,
        device_id=device_id,
        analyze_optimized=analyze_optimized,
        lock_dir=lock_dir,
    )
    return result, record_measurement(store, result, model_bytes, device_id=device_id)


_DONE = object()
E = TypeVar("E")
R = TypeVar("R")


def stream_from_thread(
    work: Callable[[Callable[[E], None], threading.Event], R],
    *,
    cancelled: Callable[[], bool] | None = None,
    name: str = "nascost-work",
    poll_s: float = 0.1,
    join_timeout_s: float = 30.0,
) -> Iterator[E | R]:
    """Run ``work(emit, cancel)`` in a thread; yield what it emits, then what it returns.

    For server-streaming calls: ``cancelled`` is polled (e.g. ``lambda: not
    context.is_active()``) and sets ``cancel`` when it turns true; closing the generator
    early sets it too and waits for the thread. An exception of ``work`` is raised here.
    """
    events: queue.Queue[object] = queue.Queue()
    cancel = threading.Event()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = work(events.put, cancel)
        except BaseException as e:  # handed to the consumer's thread below
            outcome["error"] = e
        finally:
            events.put(_DONE)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            if cancelled is not None and not cancel.is_set() and cancelled():
                cancel.set()
            try:
                item = events.get(timeout=poll_s)
            except queue.Empty:
                continue
            if item is _DONE:
                break
            yield item  # type: ignore[misc]
        thread.join()
        error = outcome.get("error")
        if isinstance(error, BaseException):
            raise error
        yield outcome["result"]  # type: ignore[misc]
    finally:
        if thread.is_alive():  # closed early: the caller went away
            cancel.set()
            thread.join(timeout=join_timeout_s)


def measure_stream(
    model_bytes: bytes,
    *,
    shapes: ShapeRequest | None = None,
    batch_sizes: Sequence[int] = (1,),
    config: RunnerConfig | None = None,
    timing: TimingOptions | None = None,
    limits: SandboxLimits | None = None,
    cancelled: Callable[[], bool] | None = None,
    device_id: str = LOCAL_DEVICE_ID,
    analyze_optimized: bool = False,
    lock_timeout_s: float | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
    poll_s: float = 0.1,
) -> Iterator[Progress | MeasurementResult]:
    """:func:`measure` as a generator, for a server-streaming call.

    Yields :class:`Progress` events, then the :class:`MeasurementResult` last. ``cancelled``
    is polled (e.g. ``lambda: not context.is_active()``); when it turns true, or when the
    generator is closed early, the measurement is stopped and its worker killed.

    Raises:
        The domain errors of :func:`measure` (CancelledError when ``cancelled`` fired).
    """

    def work(emit: Callable[[Progress], None], cancel: threading.Event) -> MeasurementResult:
        return measure(
            model_bytes,
            shapes=shapes,
            batch_sizes=batch_sizes,
            config=config,
            timing=timing,
            limits=limits,
            progress=lambda stage, fraction, message: emit(Progress(stage, fraction, message)),
            cancel=cancel,
            device_id=device_id,
            analyze_optimized=analyze_optimized,
            lock_timeout_s=lock_timeout_s,
            lock_dir=lock_dir,
        )

    yield from stream_from_thread(work, cancelled=cancelled, name=f"nascost-measure-{device_id}", poll_s=poll_s)
