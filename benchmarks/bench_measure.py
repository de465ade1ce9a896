"""Repeatability and agreement of nascost's measured latency (prints, never asserts).

    .venv/bin/python benchmarks/bench_measure.py [--repeats 5] [--no-resnet]

1. Repeatability: the same model measured ``--repeats`` times in a row through the
   sandboxed runner (default timing protocol: warm-up, adaptive ~0.3 s windows, stable when
   3 window medians agree within 5 %); prints each p50 and the spread (max-min)/min.
2. Agreement: for a few model sizes, nascost's p50 vs a plain onnxruntime loop written
   here with the same settings (1 intra-op thread, ORT_ENABLE_ALL), timed right before and
   right after; prints the ratio to the mean of the two.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "measurements"))


def plain_loop_p50_ms(model: bytes, feeds: dict[str, np.ndarray], seconds: float = 1.5) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    for _ in range(5):
        sess.run(None, feeds)
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 10:
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def models(include_resnet: bool) -> list[tuple[str, Callable[[], bytes], tuple[int, ...]]]:
    from measure_models import convnet, mlp

    out: list[tuple[str, Callable[[], bytes], tuple[int, ...]]] = [
        ("mlp 4x256, batch 1", lambda: mlp(width=256, layers=4), (1, 256)),
        ("convnet 16ch 32x32", lambda: convnet(channels=16, size=32), (1, 3, 32, 32)),
        ("convnet 32ch 96x96", lambda: convnet(channels=32, size=96), (1, 3, 96, 96)),
        ("mlp 4x1024, batch 8", lambda: mlp(width=1024, layers=4), (8, 1024)),
    ]
    if include_resnet:

        def resnet() -> bytes:
            import torch
            from models import export, resnet50

            torch.manual_seed(0)
            return export(resnet50(), torch.randn(1, 3, 224, 224))

        out.append(("resnet50 (random weights), batch 1", resnet, (1, 3, 224, 224)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-resnet", action="store_true", help="skip the ResNet-50 export (needs torch)")
    args = parser.parse_args()

    from nascost.measurements.protocol import TimingOptions
    from nascost.measurements.runner import RunnerConfig
    from nascost.measurements.sandbox import run_sandboxed

    config = RunnerConfig(profile_nodes=False)
    timing = TimingOptions()
    built = [(name, build(), shape) for name, build, shape in models(not args.no_resnet)]

    print(f"== repeatability: {args.repeats} sandboxed measurements in a row (1 thread, level all) ==")
    for name, model, shape in (built[2], built[-1]):
        p50s, stable = [], []
        for _ in range(args.repeats):
            r = run_sandboxed(model, batch_sizes=[shape[0]], config=config, timing=timing)
            p50s.append(r.batches[0].latency.p50_ms)
            stable.append(r.batches[0].latency.stable)
        spread = (max(p50s) - min(p50s)) / min(p50s) * 100
        print(f"{name:38s} p50s ms: {', '.join(f'{p:.4f}' for p in p50s)}  spread {spread:.2f} %  stable {sum(stable)}/{len(stable)}")

    print("\n== agreement: nascost p50 vs a plain onnxruntime loop (same settings) ==")
    for name, model, shape in built:
        feeds = {"x": np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
        before = plain_loop_p50_ms(model, feeds)
        r = run_sandboxed(model, batch_sizes=[shape[0]], config=config, timing=timing)
        after = plain_loop_p50_ms(model, feeds)
        lat = r.batches[0].latency
        ref = (before + after) / 2
        print(
            f"{name:38s} nascost {lat.p50_ms:9.4f} ms (n={lat.n}, stable={lat.stable}, spread {lat.window_spread_pct:.1f} %)"
            f"  plain loop {before:9.4f} / {after:9.4f} ms  ratio {lat.p50_ms / ref:.3f}"
        )


if __name__ == "__main__":
    main()
