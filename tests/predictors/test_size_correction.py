"""The scaled kernel sum's size correction (``SizeCorrection``): an isotonic fit of how much
sub-millisecond models are over-predicted out of fold, checked against a known
over-prediction, through an artifact, and on kept calibrations' real measurements."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nascost.predictors.calibration import refit
from nascost.predictors.calibration_data import read_calibration_data
from nascost.predictors.devices import Device
from nascost.predictors.errors import NotCalibratedError
from nascost.predictors.learned import (
    SIZE_CORRECTION_MAX_MS,
    SizeCorrection,
    load_predictor,
    read_metadata,
    save_predictor,
)

KEPT = Path(__file__).resolve().parents[2] / "benchmarks" / "calibrations"


def _predicted(n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.exp(rng.uniform(math.log(0.05), math.log(50.0), n))


def test_it_learns_a_known_over_prediction_of_small_models_and_leaves_larger_ones_alone() -> None:
    predicted = _predicted()
    rng = np.random.default_rng(1)
    # models predicted under 0.2 ms run 15 % faster than predicted, 0.2-0.5 ms 5 %; larger
    # ones as predicted, give or take 8 % (which the correction must not follow)
    truth = np.where(predicted < 0.2, 0.85, np.where(predicted < 0.5, 0.95, 1.0))
    noise = np.where(predicted < SIZE_CORRECTION_MAX_MS, 0.02, 0.08)
    measured = predicted * truth * np.exp(rng.normal(0.0, noise))
    c = SizeCorrection.fit(predicted, measured)
    assert c.n == predicted.size
    assert c.factor(np.array([0.08, 0.15])) == pytest.approx([0.85, 0.85], abs=0.02)
    assert c.factor(np.array([0.3, 0.4])) == pytest.approx([0.95, 0.95], abs=0.02)
    assert np.all(c.factor(predicted[predicted >= SIZE_CORRECTION_MAX_MS]) == 1.0)
    assert np.all(c.factor(predicted) <= 1.0)


def test_it_never_raises_a_prediction() -> None:
    predicted = _predicted(500)
    c = SizeCorrection.fit(predicted, 1.2 * predicted)  # every model under-predicted by 20 %
    assert np.all(c.factor(predicted) == 1.0)


def test_it_round_trips_through_plain_data_and_a_malformed_one_is_refused() -> None:
    predicted = _predicted(300)
    c = SizeCorrection.fit(predicted, predicted * np.where(predicted < 0.3, 0.9, 1.0))
    assert SizeCorrection.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    good = c.to_dict()
    for bad in (
        "not a mapping",
        {},
        {**good, "max_ms": -1.0},
        {**good, "log_ms": good["log_ms"][::-1] if len(good["log_ms"]) > 1 else [1.0, 0.0]},
        {**good, "log_factor": good["log_factor"][:-1]},
        {**good, "log_factor": [float("nan")] * len(good["log_factor"])},
    ):
        with pytest.raises(NotCalibratedError, match="size_correction"):
            SizeCorrection.from_dict(bad)


@pytest.mark.parametrize("run", ["2026-12-02-seed531", "2026-12-02-seed541"])
def test_on_real_calibrations_it_brings_small_batch_1_references_closer(run: str, tmp_path: Path) -> None:
    """Out of fold, the training families' sub-millisecond models come out too slow; the
    correction learned from that brings the held-out families' batch-1 references under
    0.5 ms closer to their measurements (the two calibrations kept on 2026-12-02)."""
    path = KEPT / run
    meta = read_metadata(path)
    device = Device.from_dict(meta["device"])
    data = read_calibration_data(path)
    predictor = refit(device, data, variants=False, seed=0).predictor
    c = predictor.size_correction_
    assert c is not None and c.n == len(data.examples().train)
    assert c.factor(np.array([0.15]))[0] < 0.97
    assert c.factor(np.array([SIZE_CORRECTION_MAX_MS, 5.0])).tolist() == [1.0, 1.0]

    small = [e for e in data.examples().heldout if e.batch_size == 1 and e.measured_ms < SIZE_CORRECTION_MAX_MS]
    assert len(small) >= 3
    measured = np.asarray([e.measured_ms for e in small])
    corrected = predictor.predict(small)
    predictor.size_correction_ = None
    plain = predictor.predict(small)
    predictor.size_correction_ = c
    assert np.all(corrected <= plain)
    assert np.mean(np.abs(np.log(corrected / measured))) < np.mean(np.abs(np.log(plain / measured)))

    # what the artifact keeps predicts the same
    again = load_predictor(save_predictor(predictor, tmp_path))
    assert again.size_correction_ == c
    np.testing.assert_allclose(again.predict(small), corrected, rtol=1e-9)
