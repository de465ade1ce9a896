"""xgboost tree ensembles evaluated with numpy, for predictions of a few rows.

A prediction of the learned latency predictor evaluates three small ensembles on 1-40
rows (the kernel model on a graph's distinct kernels, the graph model and its quantile
model on one row). xgboost's ``inplace_predict`` spends ~0.15-0.2 ms of fixed cost per
call there (configuration JSON, ctypes structs) before walking any tree, and walks
300 trees x 29 rows in ~0.5 ms (kernel model on ResNet-50). Here every tree's nodes are
flat arrays and all (row, tree) pairs advance one level per numpy step, so the cost is
``depth`` vectorized steps: the same figures in a fraction of the time
(``tests/predictors/test_trees.py`` checks equality with xgboost; ``benchmarks/bench_predict.py``
times the whole prediction).

Only what the learned predictors use is supported: numerical splits on gbtree boosters
with an identity output (``reg:squarederror``, ``reg:quantileerror``), one or several
targets. Anything else raises ``ValueError`` at construction.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

_IDENTITY_OBJECTIVES = frozenset({"reg:squarederror", "reg:quantileerror", "reg:absoluteerror"})


def _floats(text: str) -> np.ndarray:
    """xgboost writes base_score as ``"0.5"`` or ``"[-1.8E-1,1.4E-1]"``."""
    return np.asarray([float(v) for v in text.strip("[]").split(",") if v.strip()], dtype=np.float64)


class CompiledTrees:
    """A booster's trees as flat arrays; :meth:`predict` equals ``booster.inplace_predict``."""

    def __init__(self, booster: Any) -> None:
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        objective = learner["objective"]["name"]
        if objective not in _IDENTITY_OBJECTIVES:
            raise ValueError(f"objective {objective!r} has a non-identity output; not supported")
        gb = learner["gradient_booster"]
        if gb.get("name", "gbtree") != "gbtree":
            raise ValueError(f"booster {gb.get('name')!r} is not supported (gbtree only)")
        params = learner["learner_model_param"]
        self.n_targets = max(1, int(params.get("num_target", "1")))
        base = _floats(params["base_score"])
        self.base = np.broadcast_to(base, (self.n_targets,)).astype(np.float64) if base.size else np.zeros(self.n_targets)
        trees = gb["model"]["trees"]
        info = np.asarray(gb["model"]["tree_info"], dtype=np.intp)
        feat, thr, left, right, dleft = [], [], [], [], []
        roots = []
        offset = 0
        depth = 0
        for t in trees:
            if any(int(s) != 0 for s in t.get("split_type", [])):
                raise ValueError("categorical splits are not supported")
            lc = np.asarray(t["left_children"], dtype=np.intp)
            rc = np.asarray(t["right_children"], dtype=np.intp)
            leaf = lc == -1
            roots.append(offset)
            # leaves point at themselves, so extra steps leave finished rows where they are
            own = np.arange(offset, offset + lc.size, dtype=np.intp)
            left.append(np.where(leaf, own, lc + offset))
            right.append(np.where(leaf, own, rc + offset))
            feat.append(np.where(leaf, 0, np.asarray(t["split_indices"], dtype=np.intp)))
            thr.append(np.asarray(t["split_conditions"], dtype=np.float32))  # a leaf's value there
            dleft.append(np.asarray(t["default_left"], dtype=bool))
            depth = max(depth, _depth(lc, rc))
            offset += lc.size
        self.roots = np.asarray(roots, dtype=np.intp)
        self.feature = np.concatenate(feat) if feat else np.zeros(0, np.intp)
        self.threshold = np.concatenate(thr) if thr else np.zeros(0, np.float32)
        self.left = np.concatenate(left) if left else np.zeros(0, np.intp)
        self.right = np.concatenate(right) if right else np.zeros(0, np.intp)
        self.default_left = np.concatenate(dleft) if dleft else np.zeros(0, bool)
        self.depth = depth
        self.n_features = int(params.get("num_feature", "0"))
        internal = self.left != np.arange(self.left.size)
        # xgboost allocates a split's children as a pair (right = left + 1): then a step is
        # node = left[node] + (x >= threshold), with +inf thresholds keeping leaves in place
        self.paired = bool(np.all(self.right[internal] == self.left[internal] + 1))
        self.split = np.where(internal, self.threshold, np.float32(np.inf)).astype(np.float32)
        # which output each tree adds to: (n_trees, n_targets) 0/1 matrix
        self.target_of = np.zeros((len(trees), self.n_targets), dtype=np.float64)
        if len(trees):
            self.target_of[np.arange(len(trees)), info if info.size else 0] = 1.0

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Outputs for rows ``X``: shape ``(n,)`` for one target, ``(n, n_targets)`` else."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or (self.n_features and X.shape[1] != self.n_features):
            raise ValueError(f"X must be (n, {self.n_features}), got {X.shape}")
        n, d = X.shape
        flat = X.ravel()
        if self.paired and not np.isnan(flat).any():
            # one flat (row, tree) axis and np.take: ~15 % faster than 2-D fancy indexing here
            node = np.tile(self.roots, n)
            row_start = np.repeat(np.arange(0, n * d, d, dtype=np.intp), self.roots.size)
            feature, left, split = self.feature, self.left, self.split
            for _ in range(self.depth):
                node = left.take(node) + (flat.take(row_start + feature.take(node)) >= split.take(node))
            node = node.reshape(n, self.roots.size)
        else:
            node = np.broadcast_to(self.roots, (n, self.roots.size)).copy()
            row_start = (np.arange(n, dtype=np.intp) * d)[:, None]
            for _ in range(self.depth):
                x = flat[row_start + self.feature[node]]
                go_left = np.where(np.isnan(x), self.default_left[node], x < self.threshold[node])
                node = np.where(go_left, self.left[node], self.right[node])
        out = self.threshold[node].astype(np.float64) @ self.target_of + self.base
        return out[:, 0] if self.n_targets == 1 else out


def _depth(left: np.ndarray, right: np.ndarray) -> int:
    """Number of splits on the longest root-to-leaf path."""
    best = 0
    stack = [(0, 0)]
    while stack:
        i, d = stack.pop()
        if left[i] == -1:
            best = max(best, d)
        else:
            stack.append((int(left[i]), d + 1))
            stack.append((int(right[i]), d + 1))
    return best
