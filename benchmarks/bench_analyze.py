"""Analyze speed: nascost vs onnx-tool's ``model_profile`` on the same graphs, same run.

Builds a ResNet-50 and a ViT-B/16 (torch modules in ``benchmarks/models.py``, random
weights, legacy exporter), full-weight and weight-stripped, and times

* nascost: ``load_graph_bytes`` (parse + shapes) + ``analyze``, from the model bytes;
* onnx-tool 1.0.1: ``onnx.load_from_string`` + ``onnx_tool.model_profile`` (its table
  printing is sent to a buffer), from the same bytes.

Prints medians, the ratio, and peak RSS (``ru_maxrss``) growth while nascost ran on the
full-weight models. Prints, never asserts: ``python benchmarks/bench_analyze.py``.
"""

from __future__ import annotations

import contextlib
import io
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    import onnx
    import onnx_tool
    import torch

    from nascost.predictors.analysis import analyze
    from nascost.predictors.graph import load_graph_bytes

    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    graphs: dict[str, bytes] = {}
    for name, make in (("resnet50", models.resnet50), ("vit_b_16", models.vit)):
        full = models.export(make(), x)
        graphs[f"{name} full"] = full
        graphs[f"{name} stripped"] = models.strip_weights(full)

    def nascost_run(data: bytes) -> Callable[[], object]:
        return lambda: analyze(load_graph_bytes(data))

    def onnx_tool_run(data: bytes) -> Callable[[], object]:
        def run() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                onnx_tool.model_profile(onnx.load_from_string(data))

        return run

    rows = []
    for name, data in graphs.items():
        rss0 = _rss_mib()
        a = analyze(load_graph_bytes(data))
        t_ours = _median_s(nascost_run(data), 7)
        rss1 = _rss_mib()
        try:
            t_tool: float | None = _median_s(onnx_tool_run(data), 3)
        except Exception as e:  # onnx-tool fails on some graphs: reported, not fatal
            print(f"onnx-tool failed on {name}: {type(e).__name__}: {e}", file=sys.stderr)
            t_tool = None
        rows.append((name, len(data), a.macs, t_ours, t_tool, rss1 - rss0))

    print(f"{'graph':<20} {'MB':>7} {'GMACs':>8} {'nascost ms':>11} {'onnx-tool ms':>13} {'ratio':>7} {'peak RSS growth MiB':>20}")
    for name, size, macs, ours, tool, rss in rows:
        tool_ms = f"{tool * 1e3:13.1f}" if tool is not None else f"{'failed':>13}"
        ratio = f"{tool / ours:7.1f}" if tool is not None else f"{'-':>7}"
        print(f"{name:<20} {size / 1e6:7.1f} {macs / 1e9:8.3f} {ours * 1e3:11.1f} {tool_ms} {ratio} {rss:20.1f}")
    print(f"process peak RSS: {_rss_mib():.0f} MiB (holds the model bytes themselves)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
