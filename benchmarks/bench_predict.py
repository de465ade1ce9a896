"""What a prediction costs next to a measurement (prints, never asserts).

    .venv/bin/python benchmarks/bench_predict.py --data-dir DIR [--device local]

Needs a calibrated device in DIR (``nascost calibrate --device local --budget-minutes N``
with ``NASCOST_DATA_DIR=DIR``). On ResNet-50 (random weights, batch 1) it times, as medians
of repeated calls: the analysis (bytes -> counted indicators), the roofline, the learned
predictor after analysis, and one sandboxed measurement (the server's default protocol),
and prints each prediction's cost as a ratio against the measurement (issue target:
prediction <= 2 ms after analysis, >= 100x cheaper than measuring), with the predicted and
measured latencies side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(__file__))

import models  # benchmarks/ is not a package: found through sys.path above


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm caches
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="data dir holding the calibration artifact")
    parser.add_argument("--device", default="local")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)

    import torch

    from nascost.measurements.api import measure
    from nascost.predictors.analysis import analyze
    from nascost.predictors.graph import load_graph_bytes
    from nascost.predictors.learned import latest_artifact, load_predictor
    from nascost.predictors.roofline import predict_roofline
    from nascost.server.config import ServerConfig
    from nascost.server.engine import Engine

    path = latest_artifact(args.data_dir, args.device)
    if path is None:
        print(f"no calibration of {args.device!r} in {args.data_dir}: run nascost calibrate first")
        return 2
    predictor = load_predictor(path)
    device = Engine(ServerConfig(data_dir=args.data_dir)).catalogue.get(args.device)

    torch.manual_seed(0)
    data = models.export(models.resnet50(), torch.randn(1, 3, 224, 224))
    graph = load_graph_bytes(data)
    analysis = analyze(graph)

    analysis_ms = median_ms(lambda: analyze(load_graph_bytes(data)), max(5, args.repeats // 5))
    roofline_ms = median_ms(lambda: predict_roofline(analysis, device), args.repeats)
    learned_ms = median_ms(lambda: predictor.predict_graph(graph, analysis, 1), args.repeats)
    t = time.perf_counter()
    result = measure(data, batch_sizes=(1,))
    measure_ms = 1e3 * (time.perf_counter() - t)
    p50 = result.batches[0].latency.p50_ms
    estimate = predictor.predict_graph(graph, analysis, 1)
    roof = predict_roofline(analysis, device)

    print(f"ResNet-50, batch 1, device {args.device}, predictor {path.name}")
    print(f"{'step':<34} {'ms':>10} {'measurement / step':>20}")
    for name, ms in (
        ("analysis (bytes -> indicators)", analysis_ms),
        ("roofline after analysis", roofline_ms),
        ("learned after analysis", learned_ms),
        ("analysis + learned", analysis_ms + learned_ms),
        ("one sandboxed measurement", measure_ms),
    ):
        print(f"{name:<34} {ms:>10.3f} {measure_ms / ms:>19.0f}x")
    print(
        f"latency: measured p50 {p50:.2f} ms; learned {estimate.latency_ms:.2f} ms "
        f"[{estimate.latency_ms_low:.2f}, {estimate.latency_ms_high:.2f}]; roofline {roof.latency_ms:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
