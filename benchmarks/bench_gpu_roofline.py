"""The roofline of a catalogued GPU against timings on that GPU (prints, never asserts).

    # on the GPU machine (needs only torch with CUDA):
    python benchmarks/bench_gpu_roofline.py measure --out gpu.json
    # here (nascost's environment):
    .venv/bin/python benchmarks/bench_gpu_roofline.py compare gpu.json --device nvidia-h200-sxm

``measure`` times ResNet-50, ViT-B/16 and MobileNetV2 (``benchmarks/models.py``, random
weights) at batch 1, 8 and 64 in three arithmetic modes (float32 with TF32 off, TF32, and
bfloat16 weights and inputs), each as a CUDA graph (replays: the GPU's own time, no Python
launch cost) and eagerly, as the median of timed runs between CUDA events; and it measures
what the GPU attains: dense matmul throughput per mode and device-to-device copy bandwidth.

``compare`` exports the same modules here, counts them with nascost and prints, for each
model, batch and mode, the catalogue device's roofline (spec-sheet peaks) next to the
measured time, then the roofline again with the attained peaks in place of the spec
sheet's; the summary gives each one's error as issue 5 counts it (share within ±10 %,
MAPE, Kendall). onnxruntime's CUDA provider is not measured: the machine lent here has
no onnxruntime build with it, so the runtime is torch's (cuDNN / cuBLAS kernels).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

import models  # benchmarks/ is not a package: found through sys.path above

MODELS: dict[str, Callable[[], Any]] = {
    "resnet50": models.resnet50,
    "vit_b16": models.vit,
    "mobilenet_v2": models.mobilenet_v2,
}
BATCHES = (1, 8, 64)
MODES = ("float32", "tf32", "bfloat16")  # nascost dtype names (DeviceSpec.peak_for)
IMAGE = (3, 224, 224)


# --------------------------------------------------------------------------- measure (GPU)


def _set_mode(torch: Any, mode: str) -> Any:
    tf32 = mode == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return torch.bfloat16 if mode == "bfloat16" else torch.float32


def _events_ms(torch: Any, fn: Callable[[], Any], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b))
    return out


def _time_model(torch: Any, module: Any, x: Any, runs: int) -> dict[str, Any]:
    with torch.no_grad():
        for _ in range(3):
            module(x)
        torch.cuda.synchronize()
        eager = _events_ms(torch, lambda: module(x), runs)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up on a side stream, as CUDA graph capture wants
            for _ in range(3):
                module(x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            module(x)
        for _ in range(3):
            graph.replay()
        replays = _events_ms(torch, graph.replay, runs)
    return {
        "graph_ms": statistics.median(replays),
        "graph_spread_pct": 100 * (max(replays) - min(replays)) / statistics.median(replays),
        "eager_ms": statistics.median(eager),
        "runs": runs,
    }


def _attained(torch: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = 8192
    for mode in MODES:
        dt = _set_mode(torch, mode)
        a = torch.randn(n, n, device="cuda", dtype=dt)
        b = torch.randn(n, n, device="cuda", dtype=dt)
        mm = functools.partial(torch.matmul, a, b)
        for _ in range(3):
            mm()
        ms = statistics.median(_events_ms(torch, mm, 10))
        out[f"matmul_flops_per_s_{mode}"] = 2 * n**3 / (ms / 1e3)
    x = torch.empty(2**28, device="cuda", dtype=torch.float32)  # 1 GiB
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    ms = statistics.median(_events_ms(torch, lambda: y.copy_(x), 10))
    out["copy_bytes_per_s"] = 2 * x.numel() * 4 / (ms / 1e3)  # read + write
    _set_mode(torch, "float32")
    return out


def measure(out_path: str, runs: int) -> int:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 1
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    doc: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "host": platform.node(),
        "attained": _attained(torch),
        "timings": [],
    }
    for name, build in MODELS.items():
        for mode in MODES:
            dt = _set_mode(torch, mode)
            module = build().cuda().to(dt).eval()
            for batch in BATCHES:
                x = torch.randn(batch, *IMAGE, device="cuda", dtype=dt)
                t = _time_model(torch, module, x, runs)
                doc["timings"].append({"model": name, "mode": mode, "batch": batch, **t})
                print(f"{name:13s} {mode:9s} b{batch:<3d} graph {t['graph_ms']:8.3f} ms  eager {t['eager_ms']:8.3f} ms", flush=True)
            del module
            torch.cuda.empty_cache()
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
    return 0


# --------------------------------------------------------------------------- compare (here)


def compare(path: str, device_id: str) -> int:
    import dataclasses

    import numpy as np
    import torch

    from nascost.predictors.analysis import analyze
    from nascost.predictors.devices import Catalogue
    from nascost.predictors.graph import load_graph_bytes
    from nascost.predictors.metrics import accuracy_report
    from nascost.predictors.roofline import predict_roofline

    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    device = Catalogue().get(device_id)
    spec = device.spec
    att = doc["attained"]
    print(f"{doc['gpu']} (torch {doc['torch']}, CUDA {doc['cuda']}, cuDNN {doc['cudnn']}) against catalogue {device.id}")
    print(f"  {'':28s} {'spec sheet':>12s} {'attained':>12s} {'ratio':>7s}")
    for mode in MODES:
        s, a = spec.peak_for(mode), att[f"matmul_flops_per_s_{mode}"]
        print(f"  matmul {mode + ' TFLOP/s':21s} {s / 1e12:12.1f} {a / 1e12:12.1f} {a / s:7.2f}")
    s, a = spec.memory_bandwidth_bytes_per_s, att["copy_bytes_per_s"]
    print(f"  {'copy bandwidth TB/s':28s} {s / 1e12:12.2f} {a / 1e12:12.2f} {a / s:7.2f}")
    attained = dataclasses.replace(
        device,
        spec=dataclasses.replace(
            spec,
            peak_flops_per_s={**spec.peak_flops_per_s, **{m: att[f"matmul_flops_per_s_{m}"] for m in MODES}},
            memory_bandwidth_bytes_per_s=att["copy_bytes_per_s"],
        ),
    )
    analyses: dict[tuple[str, int], Any] = {}
    rows = []
    torch.manual_seed(0)
    for t in doc["timings"]:
        key = (t["model"], t["batch"])
        if key not in analyses:
            module = MODELS[t["model"]]()
            onnx_bytes = models.export(module, torch.randn(t["batch"], *IMAGE))
            analyses[key] = analyze(load_graph_bytes(onnx_bytes))
        a = analyses[key]
        spec_ms = predict_roofline(a, device, dtype=t["mode"]).latency_ms
        att_ms = predict_roofline(a, attained, dtype=t["mode"]).latency_ms
        rows.append((t, spec_ms, att_ms))
    print(
        f"\nmeasured: medians of {rows[0][0]['runs']} timed runs each (spread: (max - min) / median of the"
        " CUDA-graph replays); roofline ms and its ratio to the CUDA-graph time"
    )
    print(
        f"{'model':13s} {'mode':9s} {'batch':>5s} {'graph ms':>9s} {'spread':>7s} {'eager ms':>9s}"
        f" {'roof(spec)':>10s} {'ratio':>6s} {'roof(att)':>10s} {'ratio':>6s}"
    )
    for t, s, a in rows:
        g = t["graph_ms"]
        print(
            f"{t['model']:13s} {t['mode']:9s} {t['batch']:5d} {g:9.3f} {t['graph_spread_pct']:6.1f}% {t['eager_ms']:9.3f}"
            f" {s:10.3f} {s / g:6.2f} {a:10.3f} {a / g:6.2f}"
        )
    print("\nagainst CUDA-graph times (the GPU's own), per mode:")
    for mode in (*MODES, "all"):
        sel = [r for r in rows if mode in ("all", r[0]["mode"])]
        g = np.array([r[0]["graph_ms"] for r in sel])
        for label, col in (("roofline, spec sheet", 1), ("roofline, attained", 2)):
            p = np.array([r[col] for r in sel])
            rep = accuracy_report(g, p)
            print(
                f"  {mode:9s} {label:22s} n {rep.n:3d}  within ±10 % {100 * rep.within_10:5.1f} %  ±25 % "
                f"{100 * float(np.mean(np.abs(p / g - 1) <= 0.25)):5.1f} %  MAPE {100 * rep.mape:6.1f} %  "
                f"median pred/meas {float(np.median(p / g)):5.2f}  Kendall {rep.kendall:.3f}"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="time the models on this machine's GPU (torch + CUDA only)")
    m.add_argument("--out", required=True)
    m.add_argument("--runs", type=int, default=30)
    c = sub.add_parser("compare", help="the catalogue device's roofline against a measure file")
    c.add_argument("path")
    c.add_argument("--device", default="nvidia-h200-sxm")
    args = parser.parse_args(argv)
    return measure(args.out, args.runs) if args.cmd == "measure" else compare(args.path, args.device)


if __name__ == "__main__":
    raise SystemExit(main())
