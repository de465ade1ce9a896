"""A direct onnxruntime measurement with a profile, shared by the predictor tests."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from nascost.predictors.devices import Device, DeviceSpec

# the device ort_measure measures, as the calibration tests describe it
CPU_1T = Device(
    "cpu-1t",
    "this cpu, 1 thread",
    "local",
    DeviceSpec({"float32": 1e11}, 2e10, per_op_overhead_s=2e-6),
    measurable=True,
    intra_op_threads=1,
)


def ort_measure(model_bytes: bytes, batch: int) -> tuple[float, list[dict[str, Any]], None]:
    """A direct onnxruntime loop: 1 intra-op thread, median of 7 runs, one profiled run."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.enable_profiling = True
    # a private path: the default name (cwd + a timestamp) can collide with other processes
    so.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="nascost-prof-")) / "p")
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal(
        [batch if not isinstance(d, int) else d for d in inp.shape], dtype=np.float32
    )
    ts = []
    for _ in range(8):
        t0 = time.perf_counter()
        sess.run(None, {inp.name: x})
        ts.append(time.perf_counter() - t0)
    path = sess.end_profiling()
    events = json.loads(Path(path).read_text())
    Path(path).unlink()
    Path(path).parent.rmdir()
    return 1e3 * statistics.median(ts[1:]), events, None


ort_measure.timing_statistic = "median of 7 runs after 1 warm-up"  # type: ignore[attr-defined]
ort_measure.measurement_settings = {"intra_op_threads": 1, "optimization_level": "default"}  # type: ignore[attr-defined]
