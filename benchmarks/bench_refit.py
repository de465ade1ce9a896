"""Refit stored calibrations with this code and print their held-out accuracy (never asserts).

    .venv/bin/python benchmarks/bench_refit.py ARTIFACT_DIR... [--seeds 0 1 2] [--variants]

Each ARTIFACT_DIR is a predictor version directory written by a calibration that kept its
measurements (``measurements.json.gz``; calibrations keep them since this script exists),
or a data dir, whose every such version of every device is taken. Nothing is measured:
the learned predictor is fitted again on each calibration's training measurements, with
each seed, and scored on the same held-out references, so two versions of the code, or
two seeds, are compared on the same data. Prints, per calibration and seed, the share of
held-out models within ±10 % of their reference, MAPE and Kendall's tau per batch size
(issue 5's target: >= 95 % within ±10 % and tau >= 0.9 at batch 1 and at batch 8), the
figures the calibration itself reported, and the mean over calibrations per seed.

The seed of the boosters alone moves one calibration's batch-1 share by several points
(about 50 held-out models per batch size, many near the ±10 % edge): compare code on
several calibrations and seeds, not on one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def artifacts(paths: list[str]) -> list[Path]:
    from nascost.predictors.calibration_data import DATA_FILE

    found: list[Path] = []
    for p in map(Path, paths):
        if (p / DATA_FILE).is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(d.parent for d in p.glob(f"**/{DATA_FILE}")))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="artifact version directories or data dirs")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="booster seeds (default: each calibration's)")
    parser.add_argument("--variants", action="store_true", help="also fit the learned variants")
    args = parser.parse_args(argv)

    from nascost.predictors.calibration import refit
    from nascost.predictors.calibration_data import read_calibration_data
    from nascost.predictors.devices import Device
    from nascost.predictors.learned import read_metadata

    found = artifacts(args.paths)
    if not found:
        print("no calibration with kept measurements under", " ".join(args.paths), file=sys.stderr)
        return 1
    means: dict[tuple[str, str], list[float]] = {}
    for path in found:
        meta = read_metadata(path)
        data = read_calibration_data(path)
        device = Device.from_dict(meta["device"])
        stored = meta.get("heldout_metrics", {})
        for seed in args.seeds if args.seeds is not None else [data.seed]:
            rep = refit(device, data, seed=seed, variants=args.variants, source_metadata=meta)
            for group, d in rep.accuracy.items():
                if group in ("all", "in_dist_cv"):
                    continue
                for name, r in d.items():
                    was = stored.get(group, {}).get(name)
                    was_s = f"  (calibration: {100 * was['within_10']:.1f} %)" if was and seed == data.seed else ""
                    print(
                        f"{path.parent.name}/{path.name} seed {seed:>3} batch {group:>2} {name:<26} n {r.n:>3}  "
                        f"±10 % {100 * r.within_10:5.1f} %  MAPE {100 * r.mape:4.1f} %  Kendall {r.kendall:.3f}{was_s}"
                    )
                    means.setdefault((f"seed {seed}", f"batch {group} {name}"), []).append(100 * r.within_10)
    if len(found) > 1:
        print(f"mean over {len(found)} calibrations (share within ±10 %):")
        for (seed_s, what), v in sorted(means.items()):
            print(f"  {seed_s:>8} {what:<36} {statistics.mean(v):5.1f} %  (min {min(v):.1f}, max {max(v):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
