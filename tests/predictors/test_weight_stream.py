"""A Conv reads its weights once per image: at batch N a Conv with weights beyond the cache
moves N times their bytes (the kernel roofline's ``log_bytes``), checked in closed form and
against the kept calibrations' real batch-8 profiles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import nascost.predictors.features as features
from nascost.predictors.calibration_data import read_calibration_data
from nascost.predictors.features import (
    KERNEL_FEATURES,
    WEIGHT_STREAM_MIN_BYTES,
    KernelRecord,
    kernel_matrix,
)
from nascost.predictors.learned import KernelLatencyRegressor

KEPT = Path(__file__).resolve().parents[2] / "benchmarks" / "calibrations"
BYTES = KERNEL_FEATURES.index("log_bytes")


def _conv(batch: int, cin: int, cout: int, k: int, hw: int) -> KernelRecord:
    return KernelRecord("c", "Conv", ((batch, cin, hw, hw), (cout, cin, k, k), (cout,)), ((batch, cout, hw, hw),), 1.0, 0, True, "")


@pytest.mark.parametrize("batch", [1, 2, 8])
@pytest.mark.parametrize(("cin", "cout", "k"), [(512, 512, 3), (64, 64, 3), (1024, 2048, 1)])
def test_a_conv_reads_large_weights_once_per_image(batch: int, cin: int, cout: int, k: int) -> None:
    hw = 2
    weights = 4 * cout * cin * k * k
    activations = 4 * batch * (cin + cout) * hw * hw + 4 * cout
    times = batch if weights >= WEIGHT_STREAM_MIN_BYTES else 1
    row = kernel_matrix([_conv(batch, cin, cout, k, hw)])[0]
    assert math.expm1(float(row[BYTES])) == pytest.approx(activations + times * weights, rel=1e-4)
    # a MatMul's weights are packed once for every row: read once whatever the batch
    mm = KernelRecord("m", "MatMul", ((batch, cin), (cin, cout)), ((batch, cout),), 1.0, 0, False, "")
    assert math.expm1(float(kernel_matrix([mm])[0][BYTES])) == pytest.approx(4 * (batch * cin + cin * cout + batch * cout), rel=1e-4)


def test_the_roofline_of_real_batch_8_convs_streams_their_weights_per_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kept calibrations' batch-8 Convs of the Xeon host (seeds 341-491) whose weights
    (>= the threshold) take longer to stream eight times than to compute ran at about that
    streaming time; the roofline that reads them once put them about 2x too fast."""
    measured: list[float] = []
    streamed: list[float] = []
    once: list[float] = []
    for path in sorted(KEPT.glob("2026-12-01-seed*")):
        if not "seed341" <= path.name[len("2026-12-01-") :] <= "seed491":
            continue
        spec = json.loads((path / "metadata.json").read_text())["device"]["spec"]
        peak = spec["peak_flops_per_s"]["float32"]
        roof = KernelLatencyRegressor(peak_flops_per_s=peak, bandwidth_bytes_per_s=spec["memory_bandwidth_bytes_per_s"], overhead_us=0.0)
        recs = [
            k
            for m in read_calibration_data(path).measurements
            if m.batch_size == 8
            for k in m.kernels
            if k.op_type == "Conv" and len(k.input_shapes) > 1 and 4 * math.prod(k.input_shapes[1]) >= WEIGHT_STREAM_MIN_BYTES
        ]
        if not recs:
            continue
        X = kernel_matrix(recs)
        flops_us = 1e6 * np.expm1(X[:, KERNEL_FEATURES.index("log_flops")].astype(np.float64)) / peak
        per_image = roof.prior_us(X)
        with monkeypatch.context() as mp:
            mp.setattr(features, "WEIGHT_STREAM_MIN_BYTES", 1 << 62)  # the weights read once
            read_once = roof.prior_us(kernel_matrix(recs))
        bound = per_image > 1.5 * flops_us  # streaming the weights per image is what takes the time
        measured += [float(k.latency_us or 0.0) for k, b in zip(recs, bound, strict=True) if b]
        streamed += per_image[bound].tolist()
        once += read_once[bound].tolist()
    assert len(measured) >= 100, len(measured)
    y = np.asarray(measured)
    assert 0.8 < float(np.median(y / np.asarray(streamed))) < 1.4
    assert float(np.median(y / np.asarray(once))) > 1.8
