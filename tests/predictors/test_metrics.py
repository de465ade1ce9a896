from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from nascost.predictors import metrics
from nascost.predictors.errors import InvalidRequestError


def test_closed_form_values() -> None:
    m = np.array([10.0, 20.0, 40.0, 80.0])
    p = np.array([10.4, 18.0, 46.0, 80.0])  # errors +4 %, -10 %, +15 %, 0 %
    assert metrics.within(m, p, 0.05) == 0.5
    assert metrics.within(m, p, 0.10) == 0.75
    assert metrics.within(m, p, 0.15) == 1.0
    e = np.array([0.04, -0.10, 0.15, 0.0])
    assert metrics.mape(m, p) == pytest.approx(np.mean(np.abs(e)))
    assert metrics.rmspe(m, p) == pytest.approx(np.sqrt(np.mean(e**2)))


def test_rank_metrics_match_scipy() -> None:
    rng = np.random.default_rng(3)
    m = rng.uniform(1, 100, 50)
    p = m * rng.lognormal(0, 0.3, 50)
    p[:5] = p[5]  # ties
    assert metrics.spearman(m, p) == pytest.approx(spearmanr(m, p).statistic)
    assert metrics.kendall(m, p) == pytest.approx(kendalltau(m, p).statistic)
    r = metrics.accuracy_report(m, p)
    assert r.n == 50 and r.kendall == pytest.approx(kendalltau(m, p).statistic)
    assert metrics.kendall(np.arange(1.0, 51.0), np.arange(50, 0, -1)) == pytest.approx(-1.0)


def test_perfect_and_bad_inputs() -> None:
    m = [1.0, 2.0, 3.0]
    r = metrics.accuracy_report(m, m)
    assert (r.within_5, r.rmspe, r.mape, r.spearman, r.kendall) == (1.0, 0.0, 0.0, 1.0, 1.0)
    with pytest.raises(InvalidRequestError):
        metrics.mape([1.0, 2.0], [1.0])
    with pytest.raises(InvalidRequestError):
        metrics.mape([0.0, 2.0], [1.0, 1.0])
