"""What earlier calibrations of the same device buy a new one: refits with priors.

    .venv/bin/python benchmarks/bench_priors.py TARGET... --pool DIR... [--others 0 4 10] [--seed 0]

Each TARGET (a kept calibration, e.g. ``benchmarks/calibrations/2026-12-02-seed601``) is
refitted (:func:`nascost.predictors.calibration.refit`, booster seed ``--seed``) with K
other calibrations of ``--pool`` as priors, for each K of ``--others``: the same draw of
others for every K (a seeded shuffle of the pool's calibrations of the target's device
fingerprint, the target left out), so a larger K adds to a smaller one. Prints, per target and K, the share of the target's own
held-out references within ±10 % and the MAPE per batch size, and the totals over the
targets. Nothing is measured; nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_refit import artifacts, reference_errors

    from nascost.predictors.calibration import refit
    from nascost.predictors.calibration_data import read_calibration_data
    from nascost.predictors.devices import Device
    from nascost.predictors.learned import FeatureCache, read_metadata

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="+")
    ap.add_argument("--pool", nargs="+", required=True, help="calibrations (or directories of them) to draw priors from")
    ap.add_argument("--others", type=int, nargs="+", default=[0, 4, 10], help="numbers of prior calibrations")
    ap.add_argument("--seed", type=int, default=0, help="the boosters' seed and the draw of others")
    args = ap.parse_args(argv)

    pool = artifacts(args.pool)
    totals: dict[int, dict[int, list[float]]] = {}  # K -> batch -> every reference's error
    for target in artifacts(args.targets):
        meta = read_metadata(target)
        device = Device.from_dict(meta["device"])
        data = read_calibration_data(target)
        digest = device.fingerprint.get("digest")
        others = [
            p
            for p in pool
            if p.resolve() != target.resolve() and read_metadata(p)["device"].get("fingerprint", {}).get("digest") == digest
        ]
        order = np.random.default_rng(args.seed).permutation(len(others))
        cache = FeatureCache()
        for k in args.others:
            chosen = [others[i] for i in order[:k]]
            rep = refit(device, data, variants=False, seed=args.seed, prior_paths=chosen)
            assert rep.predictor is not None
            errors = reference_errors(rep.predictor, data.examples().heldout, feature_cache=cache)
            cells = []
            for b, v in sorted(errors.items()):
                totals.setdefault(k, {}).setdefault(b, []).extend(v)
                cells.append(f"batch {b}: ±10 % {100 * np.mean(np.asarray(v) <= 0.1):5.1f} %  MAPE {100 * np.mean(v):4.2f} %")
            used = sum(1 for s in rep.prior_sources if s.get("used"))
            print(f"{target.name:24s} K={k:<3d} ({used} used, {rep.n_prior:5d} prior examples)  " + "  ".join(cells), flush=True)
    for k, by_batch in totals.items():
        cells = [
            f"batch {b}: ±10 % {100 * np.mean(np.asarray(v) <= 0.1):5.1f} % of {len(v)}  MAPE {100 * np.mean(v):4.2f} %"
            for b, v in sorted(by_batch.items())
        ]
        print(f"{'all targets':24s} K={k:<3d}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
