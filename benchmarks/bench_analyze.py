"""Analyze speed and memory: nascost vs onnx-tool's ``model_profile`` on the same graphs.

Builds a ResNet-50 and a ViT-B/16 (torch modules in ``benchmarks/models.py``, random
weights, legacy exporter), full-weight and weight-stripped, and times

* nascost: ``load_graph_bytes`` (parse + shapes) + ``analyze``, from the model bytes;
* onnx-tool 1.0.1: ``onnx.load_from_string`` + ``onnx_tool.model_profile`` (its table
  printing is sent to a buffer), from the same bytes.

Prints medians and the ratio. Memory is measured in a separate process per graph and
tool: the child imports the tool, warms up on a tiny graph, reads the model bytes from a
file, resets its RSS high-water mark (``/proc/self/clear_refs``), records its peak RSS
(``VmHWM``; ``ru_maxrss`` of a child started from this torch-laden process would report the
parent's peak), analyzes once and records it again. The growth, next to the model's
size, shows whether the analysis copies weight payloads.
Prints, never asserts: ``python benchmarks/bench_analyze.py [--quick]`` (``--quick``:
ResNet-50 only).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
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


def _peak_rss_mib() -> float:
    """This process's peak RSS: ``VmHWM`` where /proc has it (it can be reset, and unlike
    ``ru_maxrss`` it does not inherit the parent's peak across fork + exec), else
    ``ru_maxrss``."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _tiny_model_bytes() -> bytes:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _child(tool: str, path: str) -> int:
    """Child process: peak RSS before and after one analysis of the model in ``path``."""
    if tool == "nascost":
        from nascost.predictors.analysis import analyze
        from nascost.predictors.graph import load_graph_bytes

        def run(data: bytes) -> object:
            return analyze(load_graph_bytes(data))
    else:
        import onnx
        import onnx_tool

        def run(data: bytes) -> object:
            with contextlib.redirect_stdout(io.StringIO()):
                onnx_tool.model_profile(onnx.load_from_string(data))
            return None

    run(_tiny_model_bytes())  # lazy imports and handler registration
    data = Path(path).read_bytes()
    # Reading the file can peak at twice its size; start the peak afresh from here (Linux:
    # writing 5 to clear_refs resets the RSS high-water mark that ru_maxrss reports).
    reset = False
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    before = _peak_rss_mib()
    try:
        run(data)
        error = ""
    except Exception as e:  # onnx-tool fails on some graphs: reported
        error = f"{type(e).__name__}: {e}"[:200]
    after = _peak_rss_mib()
    print(json.dumps({"before_mib": before, "after_mib": after, "model_mib": len(data) / 2**20, "error": error,
                      "peak_reset": reset}))
    return 0


def _rss_growth(tool: str, data: bytes) -> dict[str, float | str]:
    with tempfile.NamedTemporaryFile(suffix=".onnx", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", tool, path],
            check=True, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        result: dict[str, float | str] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        os.unlink(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-50 only")
    parser.add_argument("--rss-child", nargs=2, metavar=("TOOL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        return _child(*args.rss_child)

    import onnx
    import onnx_tool
    import torch

    from nascost.predictors.analysis import analyze
    from nascost.predictors.graph import load_graph_bytes, strip_weights

    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    graphs: dict[str, bytes] = {}
    nets = (("resnet50", models.resnet50),) if args.quick else (("resnet50", models.resnet50), ("vit_b_16", models.vit))
    for name, make in nets:
        full = models.export(make(), x)
        graphs[f"{name} full"] = full
        graphs[f"{name} stripped"] = strip_weights(full)

    def nascost_run(data: bytes) -> Callable[[], object]:
        return lambda: analyze(load_graph_bytes(data))

    def onnx_tool_run(data: bytes) -> Callable[[], object]:
        def run() -> None:
            with contextlib.redirect_stdout(io.StringIO()):
                onnx_tool.model_profile(onnx.load_from_string(data))

        return run

    rows = []
    for name, data in graphs.items():
        a = analyze(load_graph_bytes(data))
        t_ours = _median_s(nascost_run(data), 21 if "stripped" in name else 7)
        try:
            t_tool: float | None = _median_s(onnx_tool_run(data), 3)
        except Exception as e:  # onnx-tool fails on some graphs: reported, not fatal
            print(f"onnx-tool failed on {name}: {type(e).__name__}: {e}", file=sys.stderr)
            t_tool = None
        rows.append((name, len(data), a.macs, t_ours, t_tool))

    print(f"{'graph':<20} {'MB':>7} {'GMACs':>8} {'nascost ms':>11} {'onnx-tool ms':>13} {'ratio':>7}")
    for name, size, macs, ours, tool in rows:
        tool_ms = f"{tool * 1e3:13.1f}" if tool is not None else f"{'failed':>13}"
        ratio = f"{tool / ours:7.1f}" if tool is not None else f"{'-':>7}"
        print(f"{name:<20} {size / 1e6:7.1f} {macs / 1e9:8.3f} {ours * 1e3:11.2f} {tool_ms} {ratio}")

    print()
    print("peak RSS (VmHWM) during one analysis, a separate process per graph and tool (MiB):")
    print(f"{'graph':<20} {'model':>7} {'nascost before':>15} {'after':>7} {'growth':>7} "
          f"{'onnx-tool before':>17} {'after':>7} {'growth':>7}")
    for name, data in graphs.items():
        cells = []
        for tool in ("nascost", "onnx-tool"):
            r = _rss_growth(tool, data)
            before, after = float(r["before_mib"]), float(r["after_mib"])
            if r["error"]:
                cells.append(f"{'failed':>{17 if tool == 'onnx-tool' else 15}} {'':>7} {'':>7}")
            else:
                w = 17 if tool == "onnx-tool" else 15
                cells.append(f"{before:{w}.1f} {after:7.1f} {after - before:7.1f}")
            if not r["peak_reset"]:
                print("(peak RSS could not be reset: 'before' includes reading the file)", file=sys.stderr)
        print(f"{name:<20} {len(data) / 2**20:7.1f} {' '.join(cells)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
