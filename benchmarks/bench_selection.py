"""Which training data a calibration should buy: models x batch sizes, from kept calibrations.

    .venv/bin/python benchmarks/bench_selection.py CALIBRATION... [--selections 6] [--models 100 200]

Pools the training measurements of the given kept calibrations (one host's: see
``benchmarks/calibrations``), draws random selections of training models from the pool
under several schedules, fits the learned predictor on each selection and scores it on
*all* the calibrations' held-out references (never asserts). A schedule is a number of
models and which of their batch sizes enter training:

- ``both``: every measured batch size of each model (what calibrations did before
  2026-12-01's ``train_one_batch``): N models cost 2N measurements;
- ``alternate``: one batch size per model, in turn: N models cost N measurements;
- ``smallest x2``: one per model, the smallest batch size twice as often
  (:func:`nascost.predictors.calibration.train_batch_cycle`, the default).

Prints, per schedule, the mean over selections (± its standard error) of the share of
references within ±10 % and the MAPE per batch size; selection ``s`` draws with seed ``s``
under every schedule, so rows of one size are paired. The pooled references include the host's drift between
calibrations (a few %), so every schedule scores lower than a calibration on its own
references; compare schedules with each other. Nothing is measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_refit import artifacts, reference_errors

    from nascost.predictors.calibration import train_batch_cycle
    from nascost.predictors.calibration_data import read_calibration_data
    from nascost.predictors.devices import Device
    from nascost.predictors.learned import FeatureCache, LatencyPredictor, read_metadata

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--selections", type=int, default=6, help="random selections per schedule")
    ap.add_argument(
        "--models", type=int, nargs="+", default=[100, 200], help="training models per selection"
    )
    args = ap.parse_args(argv)

    found = artifacts(args.paths)
    if not found:
        print("no kept calibrations found", file=sys.stderr)
        return 1
    # one device for every fit: the calibrations' own, with the highest peaks any of them
    # measured (a slow phase lowers a measured peak; merged_peaks keeps the best too)
    device = max(
        (Device.from_dict(read_metadata(p)["device"]) for p in found),
        key=lambda d: d.spec.peak_for("float32"),
    )
    models: dict[tuple[str, str], dict[int, Any]] = {}
    references: list[Any] = []
    for path in found:
        data = read_calibration_data(path)
        examples = data.examples()
        for model, e in zip(examples.train_model, examples.train, strict=True):
            models.setdefault((str(path), model), {})[e.batch_size] = e
        references.extend(examples.heldout)
    keys = [k for k, v in models.items() if len(v) >= 2]
    sizes = sorted({b for v in models.values() for b in v})
    print(
        f"{len(found)} calibrations: {len(keys)} training models measured at every batch size {sizes} "
        f"({len(models) - len(keys)} at fewer left out), {len(references)} references, "
        f"peaks of {device.spec.peak_for('float32') / 1e9:.1f} GFLOP/s"
    )
    cache = FeatureCache()

    def score(train: list[Any], seed: int) -> tuple[dict[int, float], dict[int, float]]:
        predictor = LatencyPredictor(device, prior="kernel_sum", random_state=seed).fit(
            train, feature_cache=cache
        )
        err = reference_errors(predictor, references, feature_cache=cache)
        return (
            {b: 100 * float(np.mean(np.asarray(v) <= 0.1)) for b, v in err.items()},
            {b: 100 * float(np.mean(v)) for b, v in err.items()},
        )

    smallest_x2 = [c[0] for c in train_batch_cycle(sizes)]
    schedules: list[tuple[str, int, list[int] | None]] = []
    for n in args.models:
        schedules += [
            (f"{n} models, both", n, None),
            (f"{n} models, alternate", n, sizes),
            (f"{n} models, smallest x2", n, smallest_x2),
        ]
    for name, n, cycle in schedules:
        shares: dict[int, list[float]] = {}
        mapes: dict[int, list[float]] = {}
        measurements: list[int] = []
        for s in range(args.selections):
            rng = np.random.default_rng(s)
            chosen = [keys[i] for i in rng.permutation(len(keys))[:n]]
            if cycle is None:
                train = [e for k in chosen for e in models[k].values()]
            else:
                train = [
                    models[k][cycle[i % len(cycle)]]
                    for i, k in enumerate(chosen)
                    if cycle[i % len(cycle)] in models[k]
                ]
            measurements.append(len(train))
            share, mape = score(train, s)
            for b in share:
                shares.setdefault(b, []).append(share[b])
                mapes.setdefault(b, []).append(mape[b])
        cells = "  ".join(
            f"batch {b}: ±10 % {statistics.mean(shares[b]):5.1f} (± {sem(shares[b]):3.1f}) %  "
            f"MAPE {statistics.mean(mapes[b]):4.2f} (± {sem(mapes[b]):4.2f}) %"
            for b in sorted(shares)
        )
        print(f"{name:28s} {statistics.mean(measurements):5.0f} measurements  {cells}", flush=True)
    return 0


def sem(values: list[float]) -> float:
    """Standard error of the mean (0 for one value)."""
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0


if __name__ == "__main__":
    raise SystemExit(main())
