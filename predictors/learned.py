"""Learned latency predictors (xgboost), their portable artifacts, and few-shot adaptation.

Pipeline at prediction time (one graph, one batch size, one device)::

    graph -> pseudo kernels (onnxruntime's CPU fusions, NCHWc blocking, padding, reorders)
          -> KernelLatencyRegressor: log(kernel time / kernel roofline), per kernel
          -> kernel sum x one fitted scale
          -> x SizeCorrection (below 0.5 ms, learned out of fold) -> latency_ms (prior "kernel_sum")
    graph -> analysis -> prior (roofline or kernel sum) + graph features
          -> GraphLatencyRegressor: log(measured / prior)  -> latency_ms   (other priors)
          -> its quantile model                             -> latency_ms_low / latency_ms_high

Training kernels come from onnxruntime's per-node profile. The profile adds its own cost
to every kernel (profiled sums are 1.0-2.1x the end-to-end time here; ~2 µs per kernel,
estimated per calibration by :func:`profile_overhead_us`), so that cost is removed from
each kernel and each model's kernel times are scaled to sum to its measured latency
(:func:`kernel_targets`). Pseudo
kernels must describe what the profile shows, or the kernel model sees at prediction time
features it never trained on: ``tests/predictors/test_pseudo_kernels_ort.py`` checks them
against real profiles. Measured on this CPU (636 training / 194 held-out-family
measurements of a 20-minute calibration, batches 1 and 8, seed 11; the same data for
every variant), share of held-out models within ±10 % (batch 1 / batch 8):

=======================================================  ===========  ===========
variant                                                  batch 1      batch 8
=======================================================  ===========  ===========
before: roofline prior + kernel-sum feature,              58.8 %       39.2 %
profile kernels unmatched to pseudo kernels
roofline prior + graph features only (no kernels)         59.8 %       48.5 %
kernel sum, profile and pseudo kernels matched            70.1 %       66.0 %
roofline prior + that kernel sum as a feature             69.1 %       45.4 %
=======================================================  ===========  ===========

A graph-level correction learns the training families' structure and transfers badly to
unseen families; the kernel sum is what generalizes, hence the default prior.

The kernel sum step by step on a second data set (a 20-minute calibration, seed 23: 626
training / 204 held-out-family measurements, the same data for every row):

=======================================================  ===========  ===========
kernel sum, then each change added                       batch 1      batch 8
=======================================================  ===========  ===========
kernel sum, profile and pseudo kernels matched            71.6 %       72.5 %
+ the profiler's ~2 µs per kernel removed from targets    88.2 %       80.4 %
+ activations described by their size, not their layout   89.2 %       85.3 %
+ warm-up before single-run profiles (6 models re-run)    90.2 %       87.3 %
  the same, held-out models that repeat a model merged      89.9 %       87.3 %
+ the activation folded into each Conv (``act_*``)          84.8 %       92.4 %
+ pseudo kernels: residual Adds fold as onnxruntime's       87.3 %       93.7 %
+ an activation's FLOPs per element (``elem_flops``)        86.1 %       94.9 %
=======================================================  ===========  ===========

On five 20-minute data sets (seeds 23, 51, 61, 81, 91), batch 1 / batch 8 within ±10 %,
before the three changes -> after: 89.9/87.3 -> 86.1/94.9, 90.9/87.9 -> 89.4/92.4,
94.0/88.0 -> 88.0/92.0, 80.5/87.8 -> 82.9/95.1, 93.8/85.4 (seed 91, activations
already in) -> 97.9/93.8; MAPE fell on every one at both batch sizes (batch 8, e.g.,
5.4 -> 4.8, 5.3 -> 4.4, 5.5 -> 4.8 %).

MobileNetV2-like models at batch 8 were 8-24 % too fast: their ReLU6 (Clip) Convs over
large tensors take 2-2.5x as long as the same Convs with Relu, and the kernel features
could not tell the two apart. ConvNeXt-like ones were 10-18 % too fast: above the largest
BiasGelu in training the trees took BiasGelus for cheaper activations of that size.

The same kernel is not always equally fast: a classifier Gemm (8, 1280) -> 1000 took
0.29-0.33 ms in 3-6 ms MobileNetV2-like models and 0.7-1.7 ms in 25-58 ms ones, as its
5 MB of weights wait longer between two runs and are evicted meanwhile. The trees saw only
its shapes and predicted 0.74 ms everywhere: small MobileNetV2-likes at batch 8 came out
8-13 % too slow, a 3 ms ResNet-like 27 % (a 768 -> 1000 Gemm predicted at 1.1 ms took
0.18). Kernels with at least 1 MB of weights now take the model's latency as a feature
(``log_reuse_ms``: the measured latency in training; at prediction the predicted sum
itself, a fixed point reached in one or two more passes over those kernels). On six
20-minute data sets the held-out MAPE went from 5.08 / 4.82 % to 4.67 / 4.33 % (batch
1 / 8, means; lower at batch 8 on all six), batch 8 within ±10 % from 92.4, 92.4, 92.0,
95.1, 87.5, 82.2 % to 96.2, 89.4, 92.0, 97.6, 91.7, 93.3 %.

The kernel model's loss weighs each training kernel by its share of its model's measured
time (:func:`kernel_weights`): a kernel's log error moves the predicted sum in proportion
to that share. On the ten kept calibrations of 2026-12-01 (each refitted predictor scored on
all ten's 163 held-out references per batch size) batch-1 models within ±10 % went from
76.9 to 80.1 %, batch 8 from 83.4 to 83.7 %.

The roofline prior runs each node at its own dtype (``NodeResult.dtype``). Kernel
features are built as one matrix and each distinct kernel (repeated blocks repeat them)
is predicted once; ResNet-50 (122 nodes) after analysis predicts in ~1.8 ms here (was
~2.6 ms; its 12 distinct kernels with >= 1 MB of weights take one more pass of the trees,
~0.15-0.25 ms; on the AVX-512 Xeon of 2026-12-01, with trees of depth 6, 2.0 ms median when
the host was quiet and 2.7-3.3 ms under another tenant's load, ~0.9 ms of it building the
pseudo kernels: ``benchmarks/bench_predict.py``; on 2026-12-02, once a Conv already in whole
channel blocks was no longer padded again, 1.72 ms in a busy phase). A :class:`FeatureCache` keeps the model-independent features (pseudo kernels,
roofline, graph features) of examples across refits, as calibration's adaptive phase
refits often (150 examples, 3-fold refit: 1.15 s -> 0.19 s).

Artifacts: ``<data_dir>/predictors/<device_id>/<version>/`` holding ``kernel.ubj``,
``graph.ubj``, ``graph_quantiles.ubj`` (xgboost ``save_model``) and ``metadata.json``.
Nothing is pickled.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nascost.predictors.analysis import Analysis
from nascost.predictors.devices import Device, DeviceSpec, validate_device_id
from nascost.predictors.errors import InvalidRequestError, NotCalibratedError
from nascost.predictors.features import (
    CATEGORY_COLUMN,
    GRAPH_FEATURES,
    KERNEL_FEATURES,
    WEIGHT_STREAM_MIN_BYTES,
    KernelRecord,
    graph_features,
    host_nchwc_block,
    kernel_matrix,
    nchwc_block_from_examples,
    nchwc_block_from_kernels,
    pseudo_kernels,
    to_matrix,
)
from nascost.predictors.graph import Graph
from nascost.predictors.trees import CompiledTrees

logger = logging.getLogger(__name__)

# 2: kernel model on its roofline, kernel targets scaled to the end-to-end time;
# 3: kernels know the activation folded into a Conv (act_* features) and a standalone
#    activation's FLOPs per element (elem_flops);
# 4: kernels with large weights take the time between two uses of them (log_reuse_ms)
#    and, since 2026-12-01, norms a fitted prior (kernel_prior.row_prior); a version-4 artifact
#    without one was fitted on the roofline and keeps it
ARTIFACT_VERSION = 4
_K_FLOPS = KERNEL_FEATURES.index("log_flops")
_K_BYTES = KERNEL_FEATURES.index("log_bytes")
_K_REUSE = KERNEL_FEATURES.index("log_reuse_ms")
_K_WEIGHTS = KERNEL_FEATURES.index("log_weight_elems")
ROW_PRIOR_CATEGORIES = ("norm",)  # kernel categories whose prior is fitted (see KernelLatencyRegressor)
ROW_PRIOR_BASIS = ("1", "flops", "bytes", "rows")  # the fitted prior's terms, each times a coefficient in µs
_ROW_PRIOR_COLS = tuple(KERNEL_FEATURES.index(c) for c in ("log_flops", "log_bytes", "log_rows"))
ROW_PRIOR_MIN_KERNELS = 20  # training kernels of a category below which it keeps the roofline
ROW_PRIOR_MIN_US = 0.05  # floor of the fitted prior
REUSE_ITERATIONS = 4  # fixed-point steps of a kernel sum whose weight-heavy kernels depend on it
REUSE_TOLERANCE = 0.01  # ... stopped earlier when a step changes the sum by less than this share
PRIORS: tuple[str, ...] = ("kernel_sum", "roofline", "kernels", "none")
_METADATA = "metadata.json"


def _xgb() -> Any:
    import xgboost

    return xgboost


def _predict(owner: Any, attr: str, X: np.ndarray) -> np.ndarray:
    """Predictions of the booster ``owner.<attr>`` for a few rows: its trees compiled once to
    numpy arrays (:class:`~nascost.predictors.trees.CompiledTrees`; equal to
    ``inplace_predict``, without its ~0.2 ms fixed cost per call), kept on ``owner`` beside
    the booster and recompiled when the booster is replaced (refit, load)."""
    booster = getattr(owner, attr)
    key = f"_compiled_{attr}"
    hit = owner.__dict__.get(key)
    if hit is None or hit[0] is not booster:
        hit = owner.__dict__[key] = (booster, CompiledTrees(booster))
    return np.asarray(hit[1].predict(X), dtype=np.float64)


def _single_thread(booster: Any) -> Any:
    booster.set_param({"nthread": 1})
    return booster


def _check_fitted(est: Any, attr: str) -> None:
    if getattr(est, attr, None) is None:
        raise NotCalibratedError(f"{type(est).__name__} is not fitted yet; call fit() first")


def _row_basis(X: np.ndarray) -> np.ndarray:
    """The :data:`ROW_PRIOR_BASIS` terms of each row of a :func:`kernel_matrix`."""
    raw = np.expm1(X[:, _ROW_PRIOR_COLS].astype(np.float64))
    return np.concatenate([np.ones((X.shape[0], 1)), raw], axis=1)


def fit_row_prior(X: np.ndarray, y_us: np.ndarray) -> tuple[float, ...]:
    """Non-negative coefficients of :data:`ROW_PRIOR_BASIS` (µs per unit) that fit the
    kernels ``X`` to their times ``y_us`` with the least squared *relative* error
    (scipy's NNLS on the basis divided by the times)."""
    from scipy.optimize import nnls

    a = _row_basis(X) / np.asarray(y_us, dtype=np.float64)[:, None]
    scale = a.max(axis=0)
    scale[scale <= 0] = 1.0
    coef, _ = nnls(a / scale, np.ones(a.shape[0]))
    return tuple(float(v) for v in coef / scale)


class KernelLatencyRegressor:
    """Per-kernel latency regressor: xgboost on :data:`KERNEL_FEATURES` learning
    ``log(latency / kernel roofline)`` (µs).

    The kernel roofline is ``max(flops / peak, bytes / bandwidth) + overhead`` from the
    kernel's own ``log_flops`` and ``log_bytes`` columns, so the trees learn an efficiency,
    which stays bounded outside the sizes seen in training (a tree on the raw log time
    predicts a constant there). ``peak_flops_per_s = 0`` turns the roofline off (raw log µs).

    Each boosting round grows ``parallel_trees`` trees on different subsamples and averages
    them (a boosted random forest): 150 rounds of 2 trees at rate 0.16 cost what 300 single
    trees at 0.08 did to predict. Held-out MAPE, batch 1 / 8: 4.63 / 4.39 % against
    4.80 / 4.48 % (seven 20-minute data sets, two seeds), 4.52 / 4.42 against 4.57 / 4.43 %
    (three data sets, four seeds); 4 trees a round did no better. The seed alone moves one
    data set's batch-1 share within ±10 % between 81 and 95 % (42 models, many near the
    edge) whatever the forest: it is the trees' extrapolation to unseen families that varies.
    Averaging the boosters of several seeds does not help. The 21 kept 20-minute
    calibrations of this Xeon (seeds 351-571, 650 references) were each refitted at booster
    seeds 0, 1 and 2. One reference's three predictions differ by a median of 0.7 % (the SD
    of their logs). Within ±10 % at batch 1 / 8, the single seeds average 85.6 / 90.1 % and
    the geometric mean of the three gets 85.2 / 90.8 %. A seed changes a figure only by
    moving references that sit at the ±10 % edge. The error itself, an SD of 6.7-7.0 %
    around a median near 0, is the same for every seed.

    Normalizations (:data:`ROW_PRIOR_CATEGORIES`) take a fitted prior instead of the
    roofline: ``c0 + c1 * flops + c2 * bytes + c3 * rows`` µs, non-negative coefficients
    fitted to their training kernels by least relative squares (:func:`fit_row_prior`).
    A LayerNorm's time has a cost per row the roofline lacks: ConvNeXt-like LayerNorms of
    16-48 channels over 8 x 40 x 40 rows ran 24-49 % slower than the trees predicted on the
    roofline. On ten 20-minute data sets, three booster seeds each, held-out batch-8 models
    within ±10 % went from 92.9 to 94.2 % (higher on eight of ten; MAPE 4.41 -> 4.29 %),
    batch 1 stayed at 90.0 %. The same prior for element-wise ops, activations,
    transposes or softmax did worse at batch 8 (83.9-92.8 %).

    Depth 6 (was 7), with the share weights of :func:`kernel_weights`: on the eleven kept
    calibrations of 2026-12-01 (seeds 351-461), three booster seeds each, every refit
    scored on all eleven's held-out references (174 per batch size), within ±10 % at batch
    1 / 8 went from 79.7 / 84.2 to 80.3 / 84.9 % (higher for seven of the eleven
    calibrations' predictors at each batch size; own references 83.2 / 89.7 -> 84.4 / 90.0 %),
    and the trees got cheaper to walk. 60 % of the features a tree besides gave 80.0 / 85.6 %
    but let a test's weight-stream kernels (``tests/predictors/test_weight_reuse.py``) miss:
    trees drawn without ``log_reuse_ms`` fit what only it explains. A subsample of 70 % of
    the kernels a tree instead of 90 %: no change.
    """

    def __init__(
        self,
        n_estimators: int = 150,
        max_depth: int = 6,
        learning_rate: float = 0.16,
        random_state: int = 0,
        *,
        parallel_trees: int = 2,
        peak_flops_per_s: float = 0.0,
        bandwidth_bytes_per_s: float = 0.0,
        overhead_us: float = 1.0,
        row_prior: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.parallel_trees = parallel_trees
        self.peak_flops_per_s = peak_flops_per_s
        self.bandwidth_bytes_per_s = bandwidth_bytes_per_s
        self.overhead_us = overhead_us
        # category -> coefficients of ROW_PRIOR_BASIS (µs) to use as given; None: fit() fits
        # them. Either way fit() leaves the ones in use in ``row_prior_``.
        self.row_prior = row_prior

    def prior_us(self, X: np.ndarray) -> np.ndarray:
        """The kernel roofline (µs) of each row of a :func:`kernel_matrix` (ones when off)."""
        if self.peak_flops_per_s <= 0 or self.bandwidth_bytes_per_s <= 0:
            out = np.ones(X.shape[0])
        else:
            flops = np.expm1(X[:, _K_FLOPS].astype(np.float64))
            nbytes = np.expm1(X[:, _K_BYTES].astype(np.float64))
            out = 1e6 * np.maximum(flops / self.peak_flops_per_s, nbytes / self.bandwidth_bytes_per_s) + self.overhead_us
        if X.shape[1] != len(KERNEL_FEATURES):  # not a kernel matrix: no categories to read
            return out
        for cat, coef in getattr(self, "row_prior_", {}).items():
            rows = X[:, CATEGORY_COLUMN[cat]] > 0.5
            if rows.any():
                out[rows] = np.maximum(_row_basis(X[rows]) @ np.asarray(coef), ROW_PRIOR_MIN_US)
        return out

    def prior_params(self) -> dict[str, Any]:
        return {
            "peak_flops_per_s": self.peak_flops_per_s,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "overhead_us": self.overhead_us,
            "row_prior": {"basis_us": list(ROW_PRIOR_BASIS), **{c: list(v) for c, v in getattr(self, "row_prior_", {}).items()}},
        }

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "reg:squarederror",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
            "min_child_weight": 2,
            "num_parallel_tree": self.parallel_trees,
            "seed": self.random_state,
            "nthread": 1,
        }

    def fit(self, X: np.ndarray, y_us: np.ndarray, sample_weight: np.ndarray | None = None) -> KernelLatencyRegressor:
        """Fit on kernel features ``X`` and times ``y_us``; ``sample_weight`` weighs each
        kernel's squared log error (see :func:`kernel_weights`)."""
        xgb = _xgb()
        X = np.asarray(X, dtype=np.float32)
        y = np.log(np.maximum(np.asarray(y_us, dtype=np.float64), 1e-3))
        if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[0] == 0:
            raise InvalidRequestError(f"X must be (n, d) with n = len(y) > 0, got {X.shape} and {y.shape}")
        fitted: dict[str, tuple[float, ...]] = {}
        if self.row_prior is not None:
            fitted.update({c: tuple(float(v) for v in cs) for c, cs in self.row_prior.items()})
        elif X.shape[1] == len(KERNEL_FEATURES):
            for cat in ROW_PRIOR_CATEGORIES:
                rows = X[:, CATEGORY_COLUMN[cat]] > 0.5
                if rows.sum() >= ROW_PRIOR_MIN_KERNELS:
                    fitted[cat] = fit_row_prior(X[rows], np.exp(y[rows]))
        self.row_prior_ = fitted
        y = y - np.log(self.prior_us(X))
        if sample_weight is not None and np.shape(sample_weight) != y.shape:
            raise InvalidRequestError(f"sample_weight must have one value per kernel, got {np.shape(sample_weight)} for {y.shape}")
        d = xgb.DMatrix(X, label=y, weight=sample_weight)
        self.booster_ = xgb.train(self._params(), d, num_boost_round=self.n_estimators)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Per-kernel latency in µs."""
        _check_fitted(self, "booster_")
        _xgb()
        X = np.asarray(X, dtype=np.float32)
        if X.shape[0] == 0:
            return np.zeros(0)
        return np.exp(_predict(self, "booster_", X)) * self.prior_us(X)


class GraphLatencyRegressor:
    """Graph-level model of ``log(latency / prior)`` with quantile bounds.

    ``fit(X, y_ms, prior_ms)``; ``predict(X, prior_ms)`` gives ms; ``predict_interval`` gives
    the (low, high) quantiles in ms.
    """

    def __init__(
        self,
        quantiles: tuple[float, float] = (0.05, 0.95),
        n_estimators: int = 400,
        max_depth: int = 4,
        learning_rate: float = 0.05,
        random_state: int = 0,
    ) -> None:
        self.quantiles = quantiles
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.random_state = random_state

    def _params(self) -> dict[str, Any]:
        return {
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": 0.85,
            "colsample_bytree": 0.9,
            "min_child_weight": 1,
            "lambda": 1.0,
            "seed": self.random_state,
            "nthread": 1,
        }

    def fit(self, X: np.ndarray, y_ms: np.ndarray, prior_ms: np.ndarray) -> GraphLatencyRegressor:
        xgb = _xgb()
        X = np.asarray(X, dtype=np.float32)
        target = np.log(np.asarray(y_ms, dtype=np.float64)) - np.log(
            np.maximum(np.asarray(prior_ms, dtype=np.float64), 1e-6)
        )
        if X.ndim != 2 or X.shape[0] != target.shape[0] or X.shape[0] == 0:
            raise InvalidRequestError(f"X must be (n, d) with n = len(y) > 0, got {X.shape} and {target.shape}")
        d = xgb.DMatrix(X, label=target)
        self.booster_ = xgb.train(
            {**self._params(), "objective": "reg:squarederror"}, d, num_boost_round=self.n_estimators
        )
        self.quantile_booster_ = xgb.train(
            {**self._params(), "objective": "reg:quantileerror", "quantile_alpha": np.asarray(self.quantiles)},
            d,
            num_boost_round=self.n_estimators,
        )
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: np.ndarray, prior_ms: np.ndarray) -> np.ndarray:
        _check_fitted(self, "booster_")
        r = _predict(self, "booster_", X)
        return np.exp(np.log(np.maximum(np.asarray(prior_ms, dtype=np.float64), 1e-6)) + r)

    def predict_interval(self, X: np.ndarray, prior_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check_fitted(self, "quantile_booster_")
        q = _predict(self, "quantile_booster_", X).reshape(-1, 2)
        base = np.log(np.maximum(np.asarray(prior_ms, dtype=np.float64), 1e-6))
        lo, hi = np.sort(q, axis=1).T
        return np.exp(base + lo), np.exp(base + hi)


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One measured graph at one batch size."""

    graph: Graph
    analysis: Analysis
    batch_size: int
    measured_ms: float
    kernels: tuple[KernelRecord, ...] = ()
    family: str = ""


KERNEL_OVERHEAD_US = 1.0  # the kernel roofline's fixed cost per kernel (launch, dispatch)
FEW_SHOT_SLOPE_MIN = 10  # few-shot examples from which a log-log slope is tried besides a scale
FEW_SHOT_LINE_MARGIN = 0.2  # the line must beat the scale by this share of its left-out error


LEGACY_NCHWC_BLOCK = 16  # the NCHWc block of artifacts saved before "nchwc_block" was (then fixed at 16)
PROFILE_FLOOR = 0.1  # a profiled kernel keeps at least this share of its time when the profiler's cost is removed
UNCOVERABLE_NEED = 1e9  # interval_needs of an example no scale of its interval holds
PROFILE_OVERHEAD_GRID_US = tuple(0.25 * i for i in range(33))  # candidate profiler costs per kernel: 0-8 µs
# the kernel sum's out-of-fold size correction (:class:`SizeCorrection`)
SIZE_CORRECTION_MAX_MS = 0.5  # predictions from this latency up are left as they are
SIZE_CORRECTION_FOLDS = 3  # folds of training families; each fold's families are predicted by a fit without them
SIZE_CORRECTION_MIN_EXAMPLES = 30  # fewer training examples: no correction


@dataclass(frozen=True, slots=True)
class SizeCorrection:
    """How much the scaled kernel sum over-predicts sub-millisecond models, by predicted size.

    The kernels of a model of 0.1 ms run faster than the kernel model, fitted on the kernels
    of models of every size, puts them (likely: so small a model's weights and activations
    stay in the core's caches from one kernel, and one run, to the next). On this CPU's
    thirteen kept 20-minute calibrations of 2026-12-01/02 (seeds 411-541), the references of
    under 0.2 ms at batch 1 came out a median 16.6 % too slow (9 of 12 more than 10 % over),
    0.2-0.5 ms 3.3 %, larger ones within 1 %; the training models predicted out of fold
    (three folds of training families, each predicted by a fit without them) show the same:
    12.2 % (n 267), 3.1 % (258), then within 3 %.

    So the predictor learns it out of fold: the log ratio of measured to out-of-fold
    prediction against the log prediction, an isotonic (non-decreasing) fit over training
    examples, with every example at or above ``max_ms`` counted as 0 (no correction there).
    A prediction below ``max_ms`` is multiplied by ``exp(min(0, fit(log prediction)))``: it
    only ever lowers small models, never raises one. On those thirteen calibrations (booster
    seed 0, each refit on its own references, 196 per batch size) batch-1 references within
    ±10 % went from 84.2 to 86.7 % (under 0.2 ms: 25 -> 75 %), MAPE 5.59 -> 5.00 %; batch 8
    (no reference under 0.5 ms) unchanged at 90.3 %. Fitted up to 2 ms: 85.2 %, everywhere:
    84.2 % (the fit follows noise in larger models); a hinge ``beta * max(0, log(0.5 /
    prediction))`` fitted by least squares: 86.2 %; an additive bias per kernel: 77-82 %.
    On the AMD EPYC Zen 5 host of 2026-12-02 the other way round: refits of 691, 701 and 711
    with their priors (booster seed 0) got 95.8 / 84.6 / 93.2 % at batch 1 fitted up to
    2 ms against 95.8 / 82.1 / 90.9 % at 0.5 ms, MAPE lower on all three. Which bound is
    better depends on the host; 0.5 ms stays.

    Attributes:
        max_ms: predictions at or above it are not corrected.
        log_ms: the isotonic fit's breakpoints, log(predicted ms), ascending.
        log_factor: its values there (log of the factor); linear between, flat outside.
        n: the out-of-fold examples it was fitted on.
    """

    max_ms: float
    log_ms: tuple[float, ...]
    log_factor: tuple[float, ...]
    n: int = 0

    @classmethod
    def fit(cls, predicted_ms: np.ndarray, measured_ms: np.ndarray, max_ms: float = SIZE_CORRECTION_MAX_MS) -> SizeCorrection:
        from sklearn.isotonic import IsotonicRegression

        x = np.log(np.asarray(predicted_ms, dtype=np.float64))
        y = np.log(np.asarray(measured_ms, dtype=np.float64)) - x
        y = np.where(x >= math.log(max_ms), 0.0, y)
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
        return cls(
            float(max_ms),
            tuple(float(v) for v in iso.X_thresholds_),
            tuple(float(v) for v in iso.y_thresholds_),
            int(x.size),
        )

    def factor(self, predicted_ms: np.ndarray) -> np.ndarray:
        """The factor (<= 1) on each prediction."""
        p = np.asarray(predicted_ms, dtype=np.float64)
        out = np.ones_like(p)
        small = p < self.max_ms
        if small.any() and self.log_ms:
            v = np.interp(np.log(np.maximum(p[small], 1e-12)), self.log_ms, self.log_factor)
            out[small] = np.exp(np.minimum(v, 0.0))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"max_ms": self.max_ms, "log_ms": list(self.log_ms), "log_factor": list(self.log_factor), "n": self.n}

    @classmethod
    def from_dict(cls, d: Any) -> SizeCorrection:
        """A saved one; anything malformed is :class:`NotCalibratedError` (an artifact mismatch)."""
        try:
            c = cls(
                float(d["max_ms"]),
                tuple(float(v) for v in d["log_ms"]),
                tuple(float(v) for v in d["log_factor"]),
                int(d.get("n", 0)),
            )
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise NotCalibratedError(f"artifact size_correction {d!r} is malformed ({e}); refit it (nascost refit)") from e
        xs = np.asarray(c.log_ms)
        if (
            len(c.log_ms) != len(c.log_factor)
            or not (c.max_ms > 0 and math.isfinite(c.max_ms))
            or not np.all(np.isfinite(xs))
            or not np.all(np.isfinite(c.log_factor))
            or np.any(np.diff(xs) < 0)
        ):
            raise NotCalibratedError(f"artifact size_correction {d!r} is malformed; refit it (nascost refit)")
        return c


def _timed(e: TrainingExample) -> tuple[list[KernelRecord], np.ndarray]:
    ks = [k for k in e.kernels if k.latency_us is not None and k.latency_us > 0]
    return ks, np.asarray([k.latency_us for k in ks], dtype=np.float64)


def _unprofiled(t_us: np.ndarray, overhead_us: float) -> np.ndarray:
    return np.maximum(t_us - overhead_us, PROFILE_FLOOR * t_us)


def profile_overhead_us(examples: Sequence[TrainingExample]) -> float:
    """The profiler's own cost per kernel (µs), estimated from ``examples``.

    onnxruntime's per-node profile adds a roughly fixed cost to every kernel it times, so a
    model of many small kernels profiles far above its end-to-end latency while one of a
    few large kernels does not. The estimate is the cost, on a 0.25 µs grid, whose removal
    from every kernel makes the profiled sums agree best with the measured latencies (the
    least median absolute deviation of ``log(sum / measured)`` over examples). On this CPU
    (830 measurements, batch 1 and 8) it is 2.0 µs: the batch-1 profiled sums go from
    1.08x the measured latency with a log spread of 0.21 to 1.00x with 0.07.
    """
    per = [(t, 1e3 * e.measured_ms) for e in examples for _, t in [_timed(e)] if t.size and e.measured_ms > 0]
    if not per:
        return 0.0
    # every kernel in one array, its example's index beside it: one pass per candidate
    t_all = np.concatenate([t for t, _ in per])
    example_of = np.repeat(np.arange(len(per)), [t.size for t, _ in per])
    measured_us = np.asarray([m for _, m in per])
    best_dev, best = math.inf, 0.0
    for o in PROFILE_OVERHEAD_GRID_US:
        sums = np.bincount(example_of, weights=_unprofiled(t_all, o), minlength=len(per))
        r = np.log(sums / measured_us)
        dev = float(np.median(np.abs(r - np.median(r))))
        if dev < best_dev - 1e-12:
            best_dev, best = dev, o
    return best


def kernel_targets(
    examples: Sequence[TrainingExample],
    overhead_us: float = 0.0,
    *,
    bandwidth_bytes_per_s: float | None = None,
) -> tuple[list[KernelRecord], np.ndarray, np.ndarray]:
    """Every timed kernel of ``examples``, its target time (µs) and its reuse time (ms).

    The profiler's cost per kernel (``overhead_us``, see :func:`profile_overhead_us`) is
    removed from each kernel (down to ``PROFILE_FLOOR`` of its time); what remains of an
    example's kernels is scaled to sum to its measured latency, so the kernel model learns
    each kernel's share of what the user measures and kernel sums stay comparable with it.
    A kernel's weights are used once per run, so their reuse time (``log_reuse_ms``) is its
    example's measured latency.

    With ``bandwidth_bytes_per_s`` (the device's memory bandwidth), a model that ran faster
    end to end than its profiled kernels add up to has the difference taken from the time
    its kernels spend reading weights first (:func:`deficit_to_weight_reads`); without it,
    one factor scales every kernel.

    A model that measured more than :data:`PROFILE_SURPLUS_MAX` times its profiled kernels
    gives no kernels: its profile does not say where the time went, and scaled up its kernels
    teach the trees nonsense. Of the 5,016 training examples of the Zen 5 calibration 841
    (its own and those of its priors 671-831), five: four at batch 8 measured 1.8-5.9 s
    against 0.3-1.0 s of kernels (6.0-8.0x), one 334 ms against 202 ms (1.65x); the next
    below are 1.49x. Scaled, their kernels included a 2048 x 1000 Gemm at batch 8 of 147 ms
    (0.2 ms on the roofline) with a reuse time of 5 s, and the trees learned that such a
    Gemm is slow once its model runs long: in a held-out 286 ms ResNet-like the same Gemm
    (reuse time 287 ms) came out at 10.5 ms (measured 0.39 ms), the model at +20.8 %.
    Without them, refits of fifteen calibrations of that host (691-841, each with the kept
    ones before it as priors, booster seed 0; 461 held-out references per batch size):
    within ±10 % at batch 8 439 -> 443 (95.2 -> 96.1 %; 841: 90.0 -> 96.7 %, the ResNet-like
    +4 %), at batch 1 423 -> 420 (91.8 -> 91.1 %), MAPE 4.50 / 3.45 -> 4.50 / 3.48 %.
    """
    timed: list[KernelRecord] = []
    ys: list[np.ndarray] = []
    reuse: list[float] = []
    for e in examples:
        ks, t = _timed(e)
        if not ks:
            continue
        t = _unprofiled(t, overhead_us)
        measured_us, profiled_us = 1e3 * e.measured_ms, float(t.sum())
        if measured_us > PROFILE_SURPLUS_MAX * profiled_us:
            continue
        if bandwidth_bytes_per_s is not None and measured_us < profiled_us:
            t = deficit_to_weight_reads(ks, t, measured_us, bandwidth_bytes_per_s)
        timed.extend(ks)
        ys.append(t * (measured_us / t.sum()))
        reuse.extend([e.measured_ms] * len(ks))
    return timed, np.concatenate(ys) if ys else np.zeros(0), np.asarray(reuse, dtype=np.float64)


# a model measured above this many times its profiled kernels (less the profiler's cost)
# gives no kernel targets (:func:`kernel_targets`)
PROFILE_SURPLUS_MAX = 1.5

# the factor the weight-bound time of one model's kernels may take, least and most; what
# it leaves of a model's deficit, the uniform scaling takes
WEIGHT_READ_FACTOR_RANGE = (0.3, 3.0)


def weight_bound_shares(ks: Sequence[KernelRecord], t_us: np.ndarray, bandwidth_bytes_per_s: float) -> np.ndarray:
    """The share (0-1) of each kernel's time ``t_us`` that reading its weights once at
    ``bandwidth_bytes_per_s`` takes (float32 weights, as the kernel features count them)."""
    weight_bytes = 4.0 * np.expm1(kernel_matrix(ks, dtype=np.float64)[:, _K_WEIGHTS])
    return np.clip(weight_bytes / (bandwidth_bytes_per_s / 1e6) / t_us, 0.0, 1.0)


def deficit_to_weight_reads(
    ks: Sequence[KernelRecord], t_us: np.ndarray, measured_us: float, bandwidth_bytes_per_s: float
) -> np.ndarray:
    """Kernel times ``t_us`` (profiled, less the profiler's cost) of a model that measured
    ``measured_us``, less than their sum, with the deficit taken from their weight reads.

    A kernel timed alone by the profiler streams its weights from memory; run back to back,
    the runtime hides part of that behind its neighbours' work. On this CPU the batch-1
    MobileNetV2-like held-out family measured 5.8 % (median) below its profiled sum, the
    whole distribution shifted rather than a tail, and the deficit grew with the share of
    the model's time spent reading weights (training models with > 2 MB of weights: -0.9
    to -5 %; MobileNetV2-like: -2.9 to -9.3 %, in log). A cost per run or per kernel,
    per-kind profile factors, or a weight-streaming term in the profiler's cost did not
    explain it. Scaling every kernel alike taught the trees that the compute-bound kernels
    of such models run faster than they do; here the weight-bound time
    (:func:`weight_bound_shares`) takes the one factor (within
    :data:`WEIGHT_READ_FACTOR_RANGE`) that brings the sum to the measured latency and the
    rest of each kernel keeps its time. Refitted on eight kept calibrations of the Zen 5
    host (691-771, each with the ones before it as priors, booster seed 0), within ±10 % at
    batch 1 / 8 on their held-out references: 87.1 / 96.7 % with every kernel scaled
    alike, 92.9 / 96.2 % with this (MAPE 5.40 / 3.36 -> 4.39 / 3.30 %; the MobileNetV2-like
    batch-1 median error +7.7 -> +2.7 %). At half the device's bandwidth 93.3 / 97.1 %, at
    twice 92.9 / 96.2 %; also moving the excess of models slower than their profile onto
    weight reads 89.6 / 96.2 %; the deficit of models with > 2.1 MB of weights only 90.8 /
    95.8 %.
    """
    w = weight_bound_shares(ks, t_us, bandwidth_bytes_per_s)
    weight_us = float((w * t_us).sum())
    if weight_us <= 0.0:
        return t_us
    lo, hi = WEIGHT_READ_FACTOR_RANGE
    factor = min(max((measured_us - (float(t_us.sum()) - weight_us)) / weight_us, lo), hi)
    return t_us * (1.0 - w + w * factor)


# how an artifact's kernel model weighed its training kernels (metadata ``kernel_weights``);
# an artifact without the key was fitted before the weights, every kernel alike
KERNEL_WEIGHTS_SHARE = "share of model time"
KERNEL_WEIGHTS_EQUAL = "equal"


def kernel_weights(y_us: np.ndarray, model_ms: np.ndarray) -> np.ndarray:
    """Each training kernel's weight in the kernel model's loss: its share of its model's
    measured time (``y_us`` from :func:`kernel_targets`, ``model_ms`` that model's latency),
    scaled to a mean of 1.

    The point prediction is a kernel *sum*: a kernel's log error moves it in proportion to
    the kernel's share, and unweighted, the trees spent their splits alike on a 2 µs Reshape
    and the 300 µs Conv beside it. Every model weighs the same in all (its shares sum to 1).
    Refitted on the ten kept 20-minute calibrations of this CPU (seeds 351-451, booster seeds
    0-2), each predictor scored on all ten's held-out references (163 per batch size): within
    ±10 % at batch 1 / 8, 76.9 / 83.4 % unweighted, 80.1 / 83.7 % weighted by share (on each
    calibration's own references 80.6 / 87.4 -> 84.1 / 89.6 %; MAPE of 3-seed ensembles 7.2 /
    6.0 -> 6.6 / 5.9 %). Share to the power 0.5: 78.6 / 83.0 %, 1.5: 78.9 / 83.2 %, 2: 74.9 /
    80.0 %; with share weights, ``min_child_weight`` 0.7 or 6 instead of 2, depth 9 (the
    default was 7 then), or an absolute or pseudo-Huber (slope 0.3) loss did no better.
    """
    share = np.asarray(y_us, dtype=np.float64) / (1e3 * np.asarray(model_ms, dtype=np.float64))
    if share.size == 0:
        return share
    return share / share.mean()


@dataclass(frozen=True, slots=True)
class LatencyEstimate:
    latency_ms: float
    latency_ms_low: float
    latency_ms_high: float
    kernel_sum_ms: float
    roofline_ms: float


def roofline_ms(analysis: Analysis, device: Device) -> tuple[float, float]:
    """(latency_ms, compute_bound_fraction) of :func:`~nascost.predictors.roofline.predict_roofline`
    with each node at its own dtype (``NodeResult.dtype``), without building per-node records."""
    spec = device.spec
    inv_bw = 1.0 / spec.memory_bandwidth_bytes_per_s
    overhead = spec.per_op_overhead_s
    inv_peak: dict[str, float] = {}
    body = compute = total = 0.0
    for n in analysis.nodes:
        ip = inv_peak.get(n.dtype)
        if ip is None:
            ip = inv_peak[n.dtype] = 1.0 / spec.peak_for(n.dtype)
        mem = n.activation_read_bytes + n.weight_read_bytes + n.write_bytes
        c = n.flops * ip
        m = mem * inv_bw
        t = c if c >= m else m
        body += t
        if c >= m and c > 0:
            compute += t
        if n.flops > 0 or mem > 0:
            total += t + overhead
        else:
            total += t
    return 1e3 * total, (compute / body if body > 0 else 0.0)


def _kernel_sum_ms(kernel_model: KernelLatencyRegressor, kernels: Sequence[KernelRecord], guess_ms: float = 1.0) -> float:
    """Predicted kernel times summed (ms); repeated blocks give identical kernels, each
    distinct one is predicted once.

    A kernel with large weights (``log_reuse_ms``, see
    :data:`~nascost.predictors.features.REUSE_MIN_WEIGHT_BYTES`) is predicted at the
    model's own latency, the time between two uses of its weights, so the sum is a fixed
    point: first with those kernels at ``guess_ms`` (the roofline, say), then again at the
    sum until it moves by less than :data:`REUSE_TOLERANCE`, at most
    :data:`REUSE_ITERATIONS` times. It converges fast: a weight stream's time grows far
    slower than the time between reuses, and the trees are steps.
    """
    uniq: dict[tuple[Any, ...], list[Any]] = {}
    for k in kernels:
        key = (k.op_type, k.input_shapes, k.output_shapes, k.fused, k.blocked, k.activation)
        entry = uniq.get(key)
        if entry is None:
            uniq[key] = [k, 1]
        else:
            entry[1] += 1
    # a positive reuse time marks the rows that take one (a zero guess would hide them)
    X = kernel_matrix([v[0] for v in uniq.values()], reuse_ms=max(guess_ms, 1e-3))
    counts = np.asarray([v[1] for v in uniq.values()], dtype=np.float64)
    us = kernel_model.predict(X) * counts
    total = float(us.sum()) / 1e3
    reused = X[:, _K_REUSE] > 0
    if not reused.any():
        return total
    rest = total - float(us[reused].sum()) / 1e3
    Xr, cr = X[reused], counts[reused]
    for _ in range(REUSE_ITERATIONS):
        Xr[:, _K_REUSE] = math.log1p(total)
        new = rest + float(np.dot(kernel_model.predict(Xr), cr)) / 1e3
        done = abs(new - total) <= REUSE_TOLERANCE * total
        total = new
        if done:
            break
    return total


@dataclass(frozen=True, slots=True)
class _BaseFeatures:
    """What does not depend on fitted models: the roofline prior, the pseudo kernels and
    the graph features (with ``log_kernel_sum_ms`` = 0)."""

    roofline_ms: float
    kernels: tuple[KernelRecord, ...]
    graph_row: dict[str, float]


class FeatureCache:
    """Model-independent features of (graph, analysis, batch) on a device, kept across refits.

    Calibration refits predictors many times on a growing set of the same examples (the
    adaptive phase's out-of-fold family errors); the pseudo kernels, roofline and graph
    features of an example do not change between refits. Entries hold their graph,
    analysis and device spec, so the ``id`` keys stay valid while the cache lives and a
    device whose spec changed (its peaks measured again) misses.
    """

    def __init__(self) -> None:
        self._d: dict[tuple[str, int, int, int, int], tuple[Graph, Analysis, DeviceSpec, _BaseFeatures]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, device: Device, graph: Graph, analysis: Analysis, batch: int, nchwc_block: int) -> _BaseFeatures | None:
        e = self._d.get((device.id, id(graph), id(analysis), batch, nchwc_block))
        if e is None or e[0] is not graph or e[1] is not analysis or e[2] != device.spec:
            self.misses += 1
            return None
        self.hits += 1
        return e[3]

    def put(
        self, device: Device, graph: Graph, analysis: Analysis, batch: int, nchwc_block: int, base: _BaseFeatures
    ) -> None:
        self._d[(device.id, id(graph), id(analysis), batch, nchwc_block)] = (graph, analysis, device.spec, base)

    def __len__(self) -> int:
        return len(self._d)


@dataclass(frozen=True, slots=True)
class _Prepared:
    graph_rows: list[dict[str, float]]
    prior_ms: np.ndarray
    kernel_sum_ms: np.ndarray
    roofline_ms: np.ndarray


class LatencyPredictor:
    """The learned latency predictor of one device (kernel model + graph-level correction).

    Args:
        device: the device the timings come from (its spec gives the roofline prior).
        use_kernels: train the per-kernel model when examples carry kernel timings.
        prior: what the graph-level model corrects: ``"roofline"`` (learn
            ``measured / roofline``, NeuSight-style; the kernel sum is then a feature),
            ``"kernels"`` (learn ``measured / predicted kernel sum``; roofline without a
            kernel model) or ``"none"`` (learn ``measured / 1 ms``). ``"kernel_sum"``: the
            point prediction is the predicted kernel sum times one fitted scale (nn-Meter
            style), lowered under 0.5 ms by its :class:`SizeCorrection`; the graph-level
            model, fitted as for ``"kernels"``, gives only the interval; without a kernel
            model it falls back to ``"roofline"``. Measured
            here (636 training / 194 held-out-family measurements, batch 1 and 8), the
            kernel sum generalizes best to unseen families: a graph-level correction
            learns the training families' structure (see ``predictors/learned.py``'s
            module notes).
        random_state: seed of every booster.
        weigh_kernels: weigh each training kernel by its share of its model's time
            (:func:`kernel_weights`); ``False`` weighs every kernel alike (before 2026-12-01).
    """

    def __init__(
        self,
        device: Device,
        *,
        use_kernels: bool = True,
        prior: str = "roofline",
        random_state: int = 0,
        weigh_kernels: bool = True,
    ) -> None:
        self.device = device
        self.use_kernels = use_kernels
        self.weigh_kernels = weigh_kernels
        if prior not in PRIORS:
            raise InvalidRequestError(f"prior must be one of {PRIORS}, got {prior!r}")
        self.prior = prior
        self.random_state = random_state
        self.metadata_: dict[str, Any] = {}

    kernel_model_: KernelLatencyRegressor | None
    graph_model_: GraphLatencyRegressor | None
    log_scale_: float
    log_slope_: float = 1.0
    sum_log_scale_: float
    size_correction_: SizeCorrection | None = None  # see SizeCorrection (scaled kernel sum only)
    profile_overhead_us_: float = 0.0
    # onnxruntime's NCHWc channel block on the device, as its training profiles showed; the
    # pseudo kernels of every graph predicted use it (an AVX2 and an AVX-512 CPU pad and
    # reorder differently). Artifacts from before it was recorded load with 16, what the
    # code that fitted them assumed on every host.
    nchwc_block_: int = LEGACY_NCHWC_BLOCK

    # ---- features
    def _prepare(
        self, items: Sequence[tuple[Graph, Analysis, int]], cache: FeatureCache | None = None
    ) -> _Prepared:
        rows = []
        priors, ksums, roofs = [], [], []
        kernel_model = getattr(self, "kernel_model_", None)
        for graph, analysis, batch in items:
            base = cache.get(self.device, graph, analysis, batch, self.nchwc_block_) if cache is not None else None
            if base is None:
                roof_ms, roof_frac = roofline_ms(analysis, self.device)
                found = pseudo_kernels(graph, nchwc_block=self.nchwc_block_)
                feats = graph_features(
                    analysis,
                    graph=graph,
                    batch_size=batch,
                    roofline_ms=roof_ms,
                    roofline_compute_fraction=roof_frac,
                    n_kernels=len(found),
                )
                base = _BaseFeatures(roof_ms, tuple(found), feats)
                if cache is not None:
                    cache.put(self.device, graph, analysis, batch, self.nchwc_block_, base)
            roof_ms, pk = base.roofline_ms, base.kernels
            ksum = 0.0
            row = base.graph_row
            if kernel_model is not None and pk:
                ksum = _kernel_sum_ms(kernel_model, pk, guess_ms=roof_ms)
                row = {**row, "log_kernel_sum_ms": math.log1p(ksum)}
            rows.append(row)
            if self.prior in ("kernels", "kernel_sum") and kernel_model is not None:
                prior = ksum
            elif self.prior in ("roofline", "kernels", "kernel_sum"):
                prior = roof_ms
            else:
                prior = 1.0
            priors.append(max(prior, 1e-6))
            ksums.append(ksum)
            roofs.append(roof_ms)
        return _Prepared(rows, np.asarray(priors), np.asarray(ksums), np.asarray(roofs))

    def fit(
        self,
        examples: Sequence[TrainingExample],
        *,
        feature_cache: FeatureCache | None = None,
        size_correction: bool = True,
    ) -> LatencyPredictor:
        """Fit on measured examples; ``feature_cache`` reuses features across refits.

        ``size_correction``: for the scaled kernel sum, also learn :class:`SizeCorrection` out of
        fold (three more fits; needs :data:`SIZE_CORRECTION_MIN_EXAMPLES` examples of at least
        :data:`SIZE_CORRECTION_FOLDS` families)."""
        if len(examples) < 2:
            raise InvalidRequestError(f"need at least 2 measured examples to fit, got {len(examples)}")
        # kernel targets only for a kernel model (graph-only refits, e.g. calibration's
        # out-of-fold family errors, skip them)
        self.profile_overhead_us_ = profile_overhead_us(examples) if self.use_kernels else 0.0
        # onnxruntime's NCHWc block where the examples were profiled (a refit elsewhere keeps it)
        shown = nchwc_block_from_kernels(k for e in examples for k in e.kernels)
        if shown is None:
            shown = nchwc_block_from_examples((e.graph, e.kernels) for e in examples if e.kernels)
        self.nchwc_block_ = host_nchwc_block() if shown is None else shown
        spec = self.device.spec
        timed, kernel_y, reuse_ms = (
            kernel_targets(examples, self.profile_overhead_us_, bandwidth_bytes_per_s=spec.memory_bandwidth_bytes_per_s)
            if self.use_kernels
            else ([], np.zeros(0), np.zeros(0))
        )
        self.kernel_model_ = None
        if len(timed) >= 20:
            self.kernel_model_ = KernelLatencyRegressor(
                random_state=self.random_state,
                peak_flops_per_s=spec.peak_for("float32"),
                bandwidth_bytes_per_s=spec.memory_bandwidth_bytes_per_s,
                overhead_us=KERNEL_OVERHEAD_US,
            ).fit(
                kernel_matrix(timed, reuse_ms=reuse_ms),
                kernel_y,
                sample_weight=kernel_weights(kernel_y, reuse_ms) if self.weigh_kernels else None,
            )
        prep = self._prepare([(e.graph, e.analysis, e.batch_size) for e in examples], feature_cache)
        y = np.asarray([e.measured_ms for e in examples], dtype=np.float64)
        self.graph_model_ = GraphLatencyRegressor(random_state=self.random_state).fit(
            to_matrix(prep.graph_rows, GRAPH_FEATURES), y, prep.prior_ms
        )
        self.log_scale_ = 0.0
        self.log_slope_ = 1.0
        self.sum_log_scale_ = 0.0
        if self._sums_only():
            self.sum_log_scale_ = float(np.median(np.log(y / prep.prior_ms)))
        self.size_correction_ = None
        if size_correction and self._sums_only():
            self.size_correction_ = self._fit_size_correction(examples, feature_cache)
        self.interval_scale_ = 1.0
        self.n_train_ = len(examples)
        self.n_train_kernels_ = len(timed)
        self.train_digest_ = training_digest(examples)
        return self

    def _fit_size_correction(
        self, examples: Sequence[TrainingExample], cache: FeatureCache | None
    ) -> SizeCorrection | None:
        """:class:`SizeCorrection` from out-of-fold predictions: the training families in
        :data:`SIZE_CORRECTION_FOLDS` folds, each fold's examples predicted by a predictor
        fitted without its families (as the calibration's held-out families are)."""
        families = sorted({e.family for e in examples})
        if len(examples) < SIZE_CORRECTION_MIN_EXAMPLES or len(families) < SIZE_CORRECTION_FOLDS:
            return None
        predicted = np.full(len(examples), np.nan)
        for f in range(SIZE_CORRECTION_FOLDS):
            out = set(families[f::SIZE_CORRECTION_FOLDS])
            rest = [e for e in examples if e.family not in out]
            idx = [i for i, e in enumerate(examples) if e.family in out]
            if len(rest) < 2:
                return None  # (nearly) every example in this fold's families
            sub = LatencyPredictor(
                self.device,
                use_kernels=self.use_kernels,
                prior=self.prior,
                random_state=self.random_state,
                weigh_kernels=self.weigh_kernels,
            ).fit(rest, feature_cache=cache, size_correction=False)
            if not sub._sums_only():
                return None  # too few timed kernels without those families for a kernel model
            predicted[idx] = sub.predict([examples[i] for i in idx], feature_cache=cache)
        measured = np.asarray([e.measured_ms for e in examples], dtype=np.float64)
        return SizeCorrection.fit(predicted, measured)

    def _sums_only(self) -> bool:
        """Whether the point prediction is the scaled kernel sum (prior ``"kernel_sum"``)."""
        return self.prior == "kernel_sum" and getattr(self, "kernel_model_", None) is not None

    # ---- prediction
    def predict_many(
        self, items: Sequence[tuple[Graph, Analysis, int]], *, feature_cache: FeatureCache | None = None
    ) -> list[LatencyEstimate]:
        _check_fitted(self, "graph_model_")
        assert self.graph_model_ is not None
        if not items:
            return []
        prep = self._prepare(items, feature_cache)
        X = to_matrix(prep.graph_rows, GRAPH_FEATURES)
        lo, hi = self.graph_model_.predict_interval(X, prep.prior_ms)
        if self._sums_only():
            raw = prep.prior_ms * math.exp(getattr(self, "sum_log_scale_", 0.0))
            if self.size_correction_ is not None:
                f = self.size_correction_.factor(raw)  # the interval moves with the point
                raw, lo, hi = raw * f, lo * f, hi * f
        else:
            raw = self.graph_model_.predict(X, prep.prior_ms)
        # few-shot adaptation: log(latency) = log_scale + slope * log(raw) (identity by default)
        slope = self.log_slope_
        mid = np.exp(self.log_scale_ + slope * np.log(np.maximum(raw, 1e-12)))
        k = getattr(self, "interval_scale_", 1.0)
        out = []
        for i in range(len(items)):
            m = float(mid[i])
            r = max(float(raw[i]), 1e-12)
            down = max(math.log(r) - math.log(max(float(lo[i]), 1e-12)), 0.0)
            up = max(math.log(max(float(hi[i]), 1e-12)) - math.log(r), 0.0)
            if down == 0.0 or up == 0.0:
                # the quantile models put one bound past the point: that side takes the other's
                # width (a side of width 0 would leave the example outside at any scale)
                down = up = max(down, up)
            out.append(
                LatencyEstimate(
                    latency_ms=m,
                    latency_ms_low=m * math.exp(-k * down),
                    latency_ms_high=m * math.exp(k * up),
                    kernel_sum_ms=float(prep.kernel_sum_ms[i]),
                    roofline_ms=float(prep.roofline_ms[i]),
                )
            )
        return out

    def interval_needs(self, examples: Sequence[TrainingExample]) -> np.ndarray:
        """The interval scale each example needs to fall inside ``[latency_ms_low, latency_ms_high]``:
        its log error over the unscaled interval's log half-width on its side. It is inside
        at scale ``k`` when its need is at most ``k``."""
        _check_fitted(self, "graph_model_")
        k = getattr(self, "interval_scale_", 1.0)
        need = []
        for e, est in zip(examples, self.predict_many([(x.graph, x.analysis, x.batch_size) for x in examples]), strict=True):
            m, y = est.latency_ms, e.measured_ms
            width = math.log(m / est.latency_ms_low) if y < m else math.log(est.latency_ms_high / m)
            err = abs(math.log(y / m))
            # an interval of width 0 (both quantile bounds past the point: predict_many gives
            # one closed side the other's width) holds the example at no scale, however small its error
            need.append(err / (width / k) if width > 0 else (0.0 if err == 0 else UNCOVERABLE_NEED))
        return np.asarray(need, dtype=np.float64)

    @staticmethod
    def interval_scale_for(needs: np.ndarray, coverage: float = 0.9) -> float:
        """The scale holding ``coverage`` of the examples behind ``needs`` (clipped to [0.25, 20])."""
        return float(min(max(np.quantile(needs, coverage), 0.25), 20.0))

    def calibrate_interval(self, examples: Sequence[TrainingExample], coverage: float = 0.9) -> float:
        """Widen or narrow the quantile interval so it holds ``coverage`` of ``examples``.

        Use measurements the model was not fitted on (split-conformal style). Sets and
        returns ``interval_scale_`` (the factor on the interval's log-width).
        """
        _check_fitted(self, "graph_model_")
        if examples:
            self.interval_scale_ = self.interval_scale_for(self.interval_needs(examples), coverage)
        return float(getattr(self, "interval_scale_", 1.0))

    def predict_graph(self, graph: Graph, analysis: Analysis, batch_size: int = 1) -> LatencyEstimate:
        return self.predict_many([(graph, analysis, batch_size)])[0]

    def predict(
        self, examples: Sequence[TrainingExample], *, feature_cache: FeatureCache | None = None
    ) -> np.ndarray:
        """Point predictions (ms) for examples (their measurements are not used)."""
        items = [(x.graph, x.analysis, x.batch_size) for x in examples]
        return np.asarray([e.latency_ms for e in self.predict_many(items, feature_cache=feature_cache)])

    # ---- few-shot
    def adapted(self, device: Device, examples: Sequence[TrainingExample]) -> LatencyPredictor:
        """A copy for ``device`` refitted to a few measured examples.

        The boosters are shared (not copied). With fewer than :data:`FEW_SHOT_SLOPE_MIN`
        examples, or sizes within a factor 4 of each other, only a scale is fitted
        (``log_scale_``: the median log ratio of measured to predicted latency). With more,
        a line in log-log space is tried too (Theil-Sen: the median of pairwise slopes,
        clipped to [0.5, 1.5], and the median intercept): another device speeds large and
        small models up differently (more threads help large kernels, not per-kernel
        overheads), which one scale cannot follow. The line is kept only when it predicts
        the examples left out one at a time better than the scale does, by
        :data:`FEW_SHOT_LINE_MARGIN` of the scale's error. From a handful of
        samples a slope mostly fits noise or the source predictor's own bias: adapting an
        8-second calibration's predictor to a 2x slower copy of this CPU (true slope 1),
        5 samples gave slopes 1.2-1.5 and held-out MAPE 0.20-0.43, against 0.07-0.24 for
        the scale alone (three runs of the few-shot calibration test's set-up).
        """
        _check_fitted(self, "graph_model_")
        if not examples:
            raise InvalidRequestError("few-shot adaptation needs at least one measured example")
        pred = self.predict(examples)
        slope0 = self.log_slope_
        x = (np.log(pred) - self.log_scale_) / slope0  # this predictor's unadapted log latency
        y = np.log(np.asarray([e.measured_ms for e in examples], dtype=np.float64))
        slope = 1.0
        if len(examples) >= FEW_SHOT_SLOPE_MIN and float(np.ptp(x)) >= math.log(4.0):
            keep = np.ones(len(x), dtype=bool)
            err_line = err_scale = 0.0
            for i in range(len(x)):
                keep[i] = False
                s_i = _theil_sen_slope(x[keep], y[keep])
                err_line += abs(y[i] - s_i * x[i] - float(np.median(y[keep] - s_i * x[keep])))
                err_scale += abs(y[i] - x[i] - float(np.median(y[keep] - x[keep])))
                keep[i] = True
            if err_line < (1.0 - FEW_SHOT_LINE_MARGIN) * err_scale:
                slope = _theil_sen_slope(x, y)
        new = LatencyPredictor(
            device,
            use_kernels=self.use_kernels,
            prior=self.prior,
            random_state=self.random_state,
            weigh_kernels=self.weigh_kernels,  # its kernel model is this one's
        )
        new.kernel_model_ = self.kernel_model_
        new.graph_model_ = self.graph_model_
        new.log_slope_ = slope
        new.log_scale_ = float(np.median(y - slope * x))
        new.sum_log_scale_ = getattr(self, "sum_log_scale_", 0.0)
        new.size_correction_ = self.size_correction_
        new.profile_overhead_us_ = self.profile_overhead_us_
        new.nchwc_block_ = self.nchwc_block_
        new.interval_scale_ = getattr(self, "interval_scale_", 1.0)
        new.metadata_ = {**self.metadata_, "adapted_from": self.device.id, "adaptation_samples": len(examples)}
        return new


def _theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """The median of pairwise slopes of y on x, clipped to [0.5, 1.5] (1 when x has no spread)."""
    i, j = np.triu_indices(len(x), 1)
    dx = x[j] - x[i]
    ok = np.abs(dx) > 1e-9
    if not ok.any():
        return 1.0
    return float(np.clip(np.median((y[j] - y[i])[ok] / dx[ok]), 0.5, 1.5))


def training_digest(examples: Sequence[TrainingExample]) -> str:
    """sha256 over every example's features and measurement (order-independent)."""
    parts = sorted(
        json.dumps(
            [
                e.family,
                e.batch_size,
                round(e.measured_ms, 6),
                e.analysis.flops,
                e.analysis.memory_access_bytes,
                len(e.analysis.nodes),
            ]
        )
        for e in examples
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- artifacts


def _library_versions() -> dict[str, str]:
    import sklearn
    import xgboost

    out = {
        "xgboost": xgboost.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    try:
        import onnxruntime

        out["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover - server installs include it
        pass
    return out


def artifact_root(data_dir: Path | str, device_id: str) -> Path:
    return Path(data_dir) / "predictors" / validate_device_id(device_id)


def new_version() -> str:
    """A sortable version name (UTC timestamp with microseconds)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def save_predictor(
    predictor: LatencyPredictor,
    data_dir: Path | str,
    *,
    heldout_metrics: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    version: str | None = None,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``predictor`` as a new version directory; returns its path.

    The directory appears atomically (written beside it, then renamed), with ``files``
    (name -> bytes, e.g. the calibration's measurements) in it.
    """
    _check_fitted(predictor, "graph_model_")
    assert predictor.graph_model_ is not None
    root = artifact_root(data_dir, predictor.device.id)
    root.mkdir(parents=True, exist_ok=True)
    version = version or new_version()
    final = root / version
    if final.exists():
        raise InvalidRequestError(f"artifact version {version!r} already exists for {predictor.device.id!r}")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        boosters = {"graph": "graph.ubj", "graph_quantiles": "graph_quantiles.ubj"}
        predictor.graph_model_.booster_.save_model(str(tmp / boosters["graph"]))
        predictor.graph_model_.quantile_booster_.save_model(str(tmp / boosters["graph_quantiles"]))
        if predictor.kernel_model_ is not None:
            boosters["kernel"] = "kernel.ubj"
            predictor.kernel_model_.booster_.save_model(str(tmp / boosters["kernel"]))
        meta = {
            "artifact_version": ARTIFACT_VERSION,
            "version": version,
            "created_utc": _dt.datetime.now(_dt.UTC).isoformat(),
            "device": predictor.device.to_dict(),
            "device_fingerprint": dict(predictor.device.fingerprint),
            "library_versions": _library_versions(),
            "files": boosters,
            "units": {
                "target": "latency_ms",
                "kernel_target": (
                    "latency_us (profiled, less profile_overhead_us; a deficit to the measured latency taken"
                    " from weight reads at the device's bandwidth first; scaled to sum to the measured latency;"
                    f" none from a model measured above {PROFILE_SURPLUS_MAX}x its profiled kernels)"
                ),
                "kernel_model": "log(latency_us / kernel roofline_us)",
                "graph_model": "log(latency_ms / prior_ms)",
            },
            "graph_features": list(GRAPH_FEATURES),
            "kernel_features": list(KERNEL_FEATURES),
            # a Conv's log_bytes counts its weights once per image from this size (bytes) on
            "weight_stream_min_bytes": WEIGHT_STREAM_MIN_BYTES,
            "quantiles": list(predictor.graph_model_.quantiles),
            "use_kernels": predictor.use_kernels,
            "prior": predictor.prior,
            "has_kernel_model": predictor.kernel_model_ is not None,
            "kernel_prior": predictor.kernel_model_.prior_params() if predictor.kernel_model_ is not None else {},
            "log_scale": predictor.log_scale_,
            "log_slope": predictor.log_slope_,
            "kernel_sum_log_scale": getattr(predictor, "sum_log_scale_", 0.0),
            # the kernel sum's out-of-fold size correction (SizeCorrection); None: none
            "size_correction": predictor.size_correction_.to_dict() if predictor.size_correction_ is not None else None,
            "profile_overhead_us": getattr(predictor, "profile_overhead_us_", 0.0),
            "kernel_weights": KERNEL_WEIGHTS_SHARE if predictor.weigh_kernels else KERNEL_WEIGHTS_EQUAL,
            "nchwc_block": predictor.nchwc_block_,
            "interval_scale": getattr(predictor, "interval_scale_", 1.0),
            "n_train": getattr(predictor, "n_train_", 0),
            "n_train_kernels": getattr(predictor, "n_train_kernels_", 0),
            "training_set_digest": getattr(predictor, "train_digest_", ""),
            "heldout_metrics": dict(heldout_metrics or {}),
            **dict(extra or {}),
        }
        (tmp / _METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True), "utf-8")
        for name, payload in (files or {}).items():
            if not name or name != Path(name).name or name.startswith(".") or name == _METADATA or name in boosters.values():
                raise InvalidRequestError(f"artifact file name {name!r} is not allowed")
            (tmp / name).write_bytes(payload)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    predictor.metadata_ = meta
    return final


def list_versions(data_dir: Path | str, device_id: str) -> list[str]:
    root = artifact_root(data_dir, device_id)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / _METADATA).is_file()
    )


def latest_artifact(data_dir: Path | str, device_id: str) -> Path | None:
    """The newest complete version directory for ``device_id``, or None."""
    versions = list_versions(data_dir, device_id)
    return artifact_root(data_dir, device_id) / versions[-1] if versions else None


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The metadata of a version directory written by :func:`save_predictor`."""
    try:
        meta = json.loads((Path(path) / _METADATA).read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise NotCalibratedError(f"no readable predictor artifact at {path}: {e}") from e
    if not isinstance(meta, dict):
        raise NotCalibratedError(f"no readable predictor artifact at {path}: metadata is not an object")
    return meta


def load_predictor(path: Path | str) -> LatencyPredictor:
    """Load a version directory written by :func:`save_predictor` (no pickles)."""
    xgb = _xgb()
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("artifact_version") != ARTIFACT_VERSION:
        raise NotCalibratedError(
            f"artifact version {meta.get('artifact_version')!r} is not supported (want {ARTIFACT_VERSION})"
        )
    if list(meta["graph_features"]) != list(GRAPH_FEATURES) or list(meta["kernel_features"]) != list(KERNEL_FEATURES):
        raise NotCalibratedError("artifact feature names differ from this version's; recalibrate")
    if meta.get("weight_stream_min_bytes") != WEIGHT_STREAM_MIN_BYTES:
        # its kernel trees learned efficiencies against Conv bytes counted another way
        raise NotCalibratedError(
            f"artifact counts Conv weight bytes per image from {meta.get('weight_stream_min_bytes')!r} B, "
            f"this version from {WEIGHT_STREAM_MIN_BYTES} B; refit it from its kept measurements (nascost refit)"
        )
    device = Device.from_dict(meta["device"])
    p = LatencyPredictor(
        device,
        use_kernels=bool(meta["use_kernels"]),
        prior=str(meta["prior"]),
        weigh_kernels=meta.get("kernel_weights", KERNEL_WEIGHTS_EQUAL) == KERNEL_WEIGHTS_SHARE,
    )
    files = meta["files"]

    def booster(name: str) -> Any:
        b = xgb.Booster()
        b.load_model(str(path / files[name]))
        return _single_thread(b)

    g = GraphLatencyRegressor(quantiles=tuple(meta["quantiles"]))  # type: ignore[arg-type]
    g.booster_ = booster("graph")
    g.quantile_booster_ = booster("graph_quantiles")
    g.n_features_in_ = len(GRAPH_FEATURES)
    p.graph_model_ = g
    p.kernel_model_ = None
    if meta.get("has_kernel_model"):
        kp = meta.get("kernel_prior") or {}
        k = KernelLatencyRegressor(
            peak_flops_per_s=float(kp.get("peak_flops_per_s", 0.0)),
            bandwidth_bytes_per_s=float(kp.get("bandwidth_bytes_per_s", 0.0)),
            overhead_us=float(kp.get("overhead_us", KERNEL_OVERHEAD_US)),
        )
        k.row_prior_ = _read_row_prior(kp.get("row_prior"))
        k.booster_ = booster("kernel")
        k.n_features_in_ = len(KERNEL_FEATURES)
        p.kernel_model_ = k
    p.log_scale_ = float(meta.get("log_scale", 0.0))
    p.log_slope_ = float(meta.get("log_slope", 1.0))
    p.sum_log_scale_ = float(meta.get("kernel_sum_log_scale", 0.0))
    sc = meta.get("size_correction")  # absent in artifacts from before it: none
    p.size_correction_ = SizeCorrection.from_dict(sc) if sc is not None else None
    p.profile_overhead_us_ = float(meta.get("profile_overhead_us", 0.0))
    p.nchwc_block_ = int(meta.get("nchwc_block", LEGACY_NCHWC_BLOCK))
    p.interval_scale_ = float(meta.get("interval_scale", 1.0))
    p.n_train_ = int(meta.get("n_train", 0))
    p.train_digest_ = str(meta.get("training_set_digest", ""))
    p.metadata_ = meta
    return p


def _read_row_prior(doc: Any) -> dict[str, tuple[float, ...]]:
    """A saved ``kernel_prior.row_prior``; none (an artifact from before it) is an empty one.
    One this version cannot read is :class:`NotCalibratedError`, like any other artifact
    mismatch."""
    if not doc:
        return {}
    bad = NotCalibratedError(f"artifact kernel_prior.row_prior {doc!r} is not of basis {list(ROW_PRIOR_BASIS)}; recalibrate")
    if not isinstance(doc, Mapping) or list(doc.get("basis_us", ())) != list(ROW_PRIOR_BASIS):
        raise bad
    try:
        out = {str(c): tuple(float(v) for v in coef) for c, coef in doc.items() if c != "basis_us"}
    except (TypeError, ValueError) as e:
        raise bad from e
    if any(c not in CATEGORY_COLUMN or len(coef) != len(ROW_PRIOR_BASIS) for c, coef in out.items()):
        raise bad
    return out


class FlopsBaseline:
    """Latency proportional to FLOPs, one scale fitted (median log ms per FLOP)."""

    log_ms_per_flop_: float | None

    def fit(self, flops: Sequence[float], measured_ms: Sequence[float]) -> FlopsBaseline:
        f = np.maximum(np.asarray(flops, dtype=np.float64), 1.0)
        self.log_ms_per_flop_ = float(np.median(np.log(np.asarray(measured_ms, dtype=np.float64)) - np.log(f)))
        return self

    def predict(self, flops: Sequence[float]) -> np.ndarray:
        _check_fitted(self, "log_ms_per_flop_")
        assert self.log_ms_per_flop_ is not None
        return np.maximum(np.asarray(flops, dtype=np.float64), 1.0) * math.exp(self.log_ms_per_flop_)
