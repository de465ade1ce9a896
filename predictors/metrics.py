"""Accuracy metrics of latency predictors (what the calibration report prints).

All functions take measured and predicted latencies (same unit, both > 0) and return
plain floats. Percentages are returned as fractions (0.95, not 95).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nascost.predictors.errors import InvalidRequestError

logger = logging.getLogger(__name__)


def _arrays(
    measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(measured, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if m.shape != p.shape:
        raise InvalidRequestError(f"measured and predicted differ in length ({m.size} vs {p.size})")
    if m.size and (not np.all(np.isfinite(m)) or np.any(m <= 0)):
        raise InvalidRequestError("measured latencies must be finite and > 0")
    return m, p


def relative_errors(measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray) -> np.ndarray:
    """(predicted - measured) / measured, elementwise."""
    m, p = _arrays(measured, predicted)
    return (p - m) / m


def within(measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray, tolerance: float) -> float:
    """Fraction of predictions within ``±tolerance`` (0.10 = ±10 %) of the measurement."""
    e = relative_errors(measured, predicted)
    return float(np.mean(np.abs(e) <= tolerance + 1e-12)) if e.size else float("nan")


def rmspe(measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray) -> float:
    """Root-mean-square percentage error, as a fraction."""
    e = relative_errors(measured, predicted)
    return float(np.sqrt(np.mean(e**2))) if e.size else float("nan")


def mape(measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray) -> float:
    """Mean absolute percentage error, as a fraction."""
    e = relative_errors(measured, predicted)
    return float(np.mean(np.abs(e))) if e.size else float("nan")


def spearman(measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks)."""
    from scipy.stats import spearmanr

    m, p = _arrays(measured, predicted)
    if m.size < 2:
        return float("nan")
    return float(spearmanr(m, p).statistic)


def kendall(measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b."""
    from scipy.stats import kendalltau

    m, p = _arrays(measured, predicted)
    if m.size < 2:
        return float("nan")
    return float(kendalltau(m, p).statistic)


@dataclass(frozen=True, slots=True)
class AccuracyReport:
    """Every metric of one predictor on one evaluation set."""

    n: int
    within_5: float
    within_10: float
    within_15: float
    rmspe: float
    mape: float
    spearman: float
    kendall: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def accuracy_report(measured: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray) -> AccuracyReport:
    m, p = _arrays(measured, predicted)
    return AccuracyReport(
        n=int(m.size),
        within_5=within(m, p, 0.05),
        within_10=within(m, p, 0.10),
        within_15=within(m, p, 0.15),
        rmspe=rmspe(m, p),
        mape=mape(m, p),
        spearman=spearman(m, p),
        kendall=kendall(m, p),
    )
