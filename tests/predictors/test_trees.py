"""numpy tree evaluation against xgboost's own predictions on the same boosters."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from nascost.predictors.trees import CompiledTrees


def _data(n: int = 400, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[:, 3] = np.round(X[:, 3])  # ties at split values
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + (X[:, 3] > 0) + 0.1 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("depth", [1, 4, 7])
def test_squared_error_boosters_predict_as_xgboost_does(depth: int) -> None:
    X, y = _data()
    b = xgb.train(
        {"max_depth": depth, "eta": 0.1, "subsample": 0.8, "nthread": 1, "objective": "reg:squarederror"},
        xgb.DMatrix(X, label=y),
        num_boost_round=120,
    )
    Xt, _ = _data(57, seed=1)
    Xt[::7, 5] = np.nan  # missing values take each split's default branch
    ref = b.inplace_predict(Xt)
    t = CompiledTrees(b)
    got = t.predict(Xt)
    assert got.shape == ref.shape == (57,)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # without missing values the paired-children fast path runs; it agrees too
    assert t.paired
    full = ~np.isnan(Xt).any(axis=1)
    np.testing.assert_allclose(t.predict(Xt[full]), ref[full], rtol=1e-5, atol=1e-5)


def test_multi_quantile_boosters_give_one_column_per_quantile() -> None:
    X, y = _data()
    b = xgb.train(
        {"max_depth": 4, "eta": 0.05, "nthread": 1, "objective": "reg:quantileerror", "quantile_alpha": np.array([0.05, 0.95])},
        xgb.DMatrix(X, label=y),
        num_boost_round=80,
    )
    Xt, _ = _data(9, seed=2)
    ref = b.inplace_predict(Xt)
    got = CompiledTrees(b).predict(Xt)
    assert got.shape == ref.shape == (9, 2)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert (got[:, 0] < got[:, 1]).mean() > 0.8  # the 5 % quantile is mostly under the 95 %


def test_unsupported_boosters_are_refused() -> None:
    X, y = _data()
    b = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(X, label=(y > 0)), num_boost_round=3)
    with pytest.raises(ValueError, match="non-identity"):
        CompiledTrees(b)
    t = CompiledTrees(xgb.train({"nthread": 1}, xgb.DMatrix(X, label=y), num_boost_round=3))
    with pytest.raises(ValueError, match="X must be"):
        t.predict(X[:, :5])
