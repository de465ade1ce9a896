"""The ``nascost`` command line.

Stable forms (scripts depend on them)::

    nascost serve [--host H] [--port P] [--data-dir DIR] [--demo]
    nascost analyze MODEL.onnx [--server HOST:PORT] [--input-shape NAME=1x3x224x224]... [--dim NAME=V]... [--json]
    nascost devices [--server HOST:PORT] [--json]
    nascost measure MODEL.onnx [--server HOST:PORT] [--batch-size N]... [--threads N] [--json]
    nascost predict MODEL.onnx [--device ID]... [--server HOST:PORT] [--json]
    nascost calibrate --device local --budget-minutes N [--batch-size N]... [--prior DIR]... [--server HOST:PORT] [--json]
    nascost refit [--device local] [--version V] [--seed N] [--data-dir DIR] [--json]
    nascost ops [--json]
    nascost health [--server HOST:PORT]
    nascost example OUT.onnx

Without ``--server``, ``analyze`` runs in-process; with it, it asks that server. Both
paths go through the same ``nascost.v1`` reply, so they print the same thing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from nascost.client.errors import NascostClientError
from nascost.client.results import Analysis, Device

logger = logging.getLogger("nascost")


# ---------------------------------------------------------------------------- parsing helpers


def _parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=D1xD2x..., got {text!r}")
    try:
        parsed = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"dims must be integers separated by 'x', got {dims!r}") from e
    return name, parsed


def _parse_dim(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, int(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"dim value must be an integer, got {value!r}") from e


def _human(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {suffix}{unit}"
    return f"{n:g} {unit}".rstrip()


def _short(n: float) -> str:
    for scale, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{suffix}"
    return f"{n:.3g}"


# ---------------------------------------------------------------------------- printing


def print_analysis(a: Analysis, *, nodes: bool = True, title: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    shapes = ", ".join(f"{k}={'x'.join(map(str, v))}" for k, v in a.input_shapes.items())
    summary = Table(title=title or f"counted indicators ({shapes})", show_header=True, header_style="bold")
    summary.add_column("indicator")
    summary.add_column("value", justify="right")
    summary.add_column("unit / note")
    pb = a.param_breakdown
    rows: list[tuple[str, str, str]] = [
        ("params", f"{a.params:,}", "elements, trainable float weights, each unique tensor once"),
        ("  non-zero params", f"{pb.nonzero:,}" if pb.has_weight_data else "n/a", "no weight payloads sent" if not pb.has_weight_data else ""),
        ("  embedding params", f"{pb.embedding:,}", ""),
        ("  buffers (BN stats)", f"{pb.buffers:,}", "not params"),
        ("weight bytes", f"{a.weight_bytes:,}", ", ".join(f"{k}: {v:,}" for k, v in a.weight_bytes_by_dtype.items())),
        ("MACs", f"{a.macs:,}", _human(a.macs, "MAC")),
        ("FLOPs", f"{a.flops:,}", f"{_human(a.flops, 'FLOP')} = 2 x MACs + other float ops"),
        ("effective FLOPs", f"{a.effective_flops:,}", "MACs on non-zero weights only"),
        ("torchvision MACs", f"{a.torchvision_macs:,}", "conv + linear + matmul (papers' 'FLOPs')"),
        ("memory access", f"{a.memory_access_bytes:,}", f"bytes = {_human(a.activation_read_bytes, 'B')} act read + {_human(a.weight_read_bytes, 'B')} weights + {_human(a.write_bytes, 'B')} written"),
        ("peak activations", f"{a.peak_activation_bytes:,}", "bytes, topological schedule"),
        ("arithmetic intensity", f"{a.arithmetic_intensity:.2f}", "FLOPs / byte"),
        ("depth / max width", f"{a.depth} / {a.max_width}", f"ops; critical path {_human(a.critical_path_flops, 'FLOP')}"),
        ("nodes", f"{a.node_count}", ""),
    ]
    for r in rows:
        summary.add_row(*r)
    console.print(summary)
    if nodes and a.nodes:
        t = Table(title="per node", header_style="bold")
        for col in ("node", "op", "output", "MACs", "FLOPs", "mem bytes", "params", "note"):
            t.add_column(col, justify="right" if col in ("MACs", "FLOPs", "mem bytes", "params") else "left")
        for n in a.nodes:
            t.add_row(
                n.name,
                (n.domain + "." if n.domain else "") + n.op_type,
                "x".join(map(str, n.output_shape)),
                f"{n.macs:,}",
                f"{n.flops:,}",
                f"{n.memory_access_bytes:,}",
                f"{n.params:,}",
                n.note,
            )
        console.print(t)
    if a.unsupported_ops:
        console.print("[bold red]unsupported ops (compute not counted):[/] " + ", ".join(f"{k} x{v}" for k, v in a.unsupported_ops.items()))
    for w in a.warnings:
        console.print(f"[yellow]note:[/] {w}")
    console.print(f"[dim]provenance: {a.provenance.source} ({a.provenance.method} v{a.provenance.version}); graph {a.graph_digest[:19]}…[/]")


def print_devices(devices: Sequence[Device]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="devices (sources of the figures: --json)", header_style="bold")
    for col in ("id", "kind", "fp32 FLOP/s", "fp16 FLOP/s", "memory B/s", "measurable", "predictors"):
        t.add_column(col, no_wrap=col == "id")
    for d in devices:
        fp32 = d.peak_flops_per_s.get("float32", 0.0)
        fp16 = d.peak_flops_per_s.get("float16", 0.0)
        t.add_row(
            d.id,
            d.kind,
            _short(fp32) if fp32 else "-",
            _short(fp16) if fp16 else "-",
            _short(d.memory_bandwidth_bytes_per_s) if d.memory_bandwidth_bytes_per_s else "-",
            "yes" if d.measurable else "no",
            ", ".join(d.predictors),
        )
    Console().print(t)
    local = next((d for d in devices if d.kind == "local"), None)
    if local is not None:
        Console().print(f"[dim]local: {local.name}; {local.source}[/]")
    for d in devices:
        if ev := d.roofline_evaluation:
            Console().print(
                f"[dim]{d.id}: the roofline put {100 * ev['within_10pct']:.1f} % of {ev['n']} measured cases within "
                f"±10 % (MAPE {100 * ev['mape']:.1f} %), timed with {ev['measured_with']}[/]"
            )


# ---------------------------------------------------------------------------- commands


def _analysis(args: argparse.Namespace) -> Analysis:
    from nascost.client.models import model_bytes

    shapes = dict(args.input_shape or [])
    dims = dict(args.dim or [])
    if args.server:
        from nascost.client import Client

        with Client(args.server, token=os.environ.get("NASCOST_AUTH_TOKEN")) as c:
            return c.analyze(args.model, input_shapes=shapes, dim_values=dims, include_nodes=True)
    from nascost.server.config import ServerConfig
    from nascost.server.encode import shape_request
    from nascost.server.engine import Engine
    from nascost.v1 import graph_pb2

    engine = Engine(ServerConfig.from_env())
    bindings = graph_pb2.ShapeBindings(
        input_shapes=[graph_pb2.InputShape(name=k, dims=list(v)) for k, v in shapes.items()], dim_values=dims
    )
    response = engine.analyze(
        graph_pb2.GraphRef(onnx_model=model_bytes(args.model)), shape_request(bindings), include_nodes=True
    )
    return Analysis.from_proto(response)


def cmd_analyze(args: argparse.Namespace) -> int:
    a = _analysis(args)
    if args.json:
        print(json.dumps(a.to_dict(), indent=None if args.compact else 2))
    else:
        print_analysis(a, nodes=not args.summary)
    return 0


def _measure_options(args: argparse.Namespace) -> Any:
    from nascost.v1 import measurement_pb2

    return measurement_pb2.MeasureOptions(
        batch_sizes=args.batch_size or [],
        intra_op_threads=args.threads or 0,
        time_budget_s=args.budget_s or 0.0,
        profile_nodes=not args.no_profile,
        count_optimized_graph=args.count_optimized,
    )


def cmd_measure(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nascost.client.models import model_bytes
    from nascost.client.results import Measurement
    from nascost.v1 import graph_pb2, measurement_pb2

    err = Console(stderr=True)

    def progress(p: Any) -> None:
        if not args.json:
            err.print(f"[dim]{p.stage:>10} {100 * p.fraction:5.1f} %  {p.message}[/]")

    shapes = dict(args.input_shape or [])
    dims = dict(args.dim or [])
    options = _measure_options(args)
    if args.server:
        from nascost.client import Client

        with Client(args.server, token=os.environ.get("NASCOST_AUTH_TOKEN"), timeout=None) as c:
            m = c.measure_result(
                args.model, options=options, input_shapes=shapes, dim_values=dims,
                device_id=args.device, on_progress=progress,
            )
    else:
        from nascost.server.config import ServerConfig
        from nascost.server.engine import Engine

        engine = Engine(ServerConfig.from_env(data_dir=args.data_dir))
        request = measurement_pb2.MeasureRequest(
            graph=graph_pb2.GraphRef(onnx_model=model_bytes(args.model)),
            shapes=graph_pb2.ShapeBindings(
                input_shapes=[graph_pb2.InputShape(name=k, dims=list(v)) for k, v in shapes.items()],
                dim_values=dims,
            ),
            device_id=args.device,
            options=options,
        )
        result = None
        for event in engine.measure(request, cancelled=lambda: False):
            if event.HasField("result"):
                result = event.result
            else:
                progress(event.progress)
        assert result is not None
        m = Measurement.from_proto(result)
    if args.json:
        print(json.dumps(m.to_dict(), indent=2))
    else:
        print_measurement(m)
    return 0


def print_measurement(m: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"measured on {m.device_id} ({m.execution_provider}, {m.intra_op_threads} thread(s))", header_style="bold")
    for col in ("batch", "p50 ms", "p90 ms", "p99 ms", "mean ms", "n", "stable", "spread %", "examples/s", "peak memory"):
        t.add_column(col, justify="right")
    for b in m.batches:
        t.add_row(
            str(b.batch_size), f"{b.p50_ms:.3f}", f"{b.p90_ms:.3f}", f"{b.p99_ms:.3f}", f"{b.mean_ms:.3f}",
            str(b.n), "yes" if b.stable else "no", f"{b.window_spread_pct:.1f}",
            f"{b.throughput_examples_per_s:,.1f}", _human(b.peak_memory_bytes, "B"),
        )
    console.print(t)
    if m.batches and m.batches[0].kernels:
        k = Table(title=f"kernels (batch {m.batches[0].batch_size}, optimized graph)", header_style="bold")
        for col in ("kernel", "op", "median µs", "share"):
            k.add_column(col, justify="right" if col in ("median µs", "share") else "left")
        kernels = sorted(m.batches[0].kernels, key=lambda x: -x.median_us)
        total = sum(x.median_us for x in kernels) or 1.0
        for x in kernels[:25]:
            k.add_row(x.node_name, x.op_type, f"{x.median_us:.1f}", f"{100 * x.median_us / total:.1f} %")
        console.print(k)
    if m.optimized_graph:
        og = m.optimized_graph
        console.print(f"optimized graph (what runs): {og['node_count']} nodes, {og['macs']:,} MACs, {og['flops']:,} FLOPs, {og['memory_access_bytes']:,} bytes accessed")
    p = m.provenance
    console.print(f"[dim]provenance: {p.source} ({p.method} {p.version}), n={p.samples}, spread {p.spread_pct:.1f} %; {p.note}; record {m.measurement_id}[/]")


def _predict_dict(response: Any) -> dict[str, Any]:
    """PredictResponse -> JSON: per device, the best prediction on top and all of them listed."""
    from nascost.client.results import Provenance

    devices = []
    for d in response.devices:
        preds = []
        for p in d.predictions:
            f = p.latency_ms
            preds.append(
                {
                    "latency_ms": f.value,
                    "latency_ms_low": f.low,
                    "latency_ms_high": f.high,
                    "predictor": {
                        "name": p.predictor.partition("@")[0],
                        "version": p.predictor.partition("@")[2],
                        "heldout_within_10pct": p.heldout_within_10pct,
                        "expected_error_pct": f.provenance.expected_error_pct,
                    },
                    "compute_bound_fraction": p.compute_bound_fraction,
                    "provenance": dataclasses.asdict(Provenance.from_proto(f.provenance)),
                }
            )
        entry: dict[str, Any] = {"device_id": d.device_id}
        if preds:
            entry.update({k: preds[0][k] for k in ("latency_ms", "latency_ms_low", "latency_ms_high", "predictor")})
        entry["predictions"] = preds
        entry["peak_memory_bytes"] = int(d.peak_memory_bytes.value)
        devices.append(entry)
    return {"graph_digest": response.graph_digest, "devices": devices}


def cmd_predict(args: argparse.Namespace) -> int:
    from nascost.client.models import model_bytes
    from nascost.v1 import graph_pb2, prediction_pb2

    shapes = dict(args.input_shape or [])
    dims = dict(args.dim or [])
    if args.server:
        from nascost.client import Client

        with Client(args.server, token=os.environ.get("NASCOST_AUTH_TOKEN")) as c:
            response = c.predict(
                args.model, device_ids=args.device or [], input_shapes=shapes, dim_values=dims,
                predictors=args.predictor or [],
            )
    else:
        from nascost.server.config import ServerConfig
        from nascost.server.engine import Engine

        engine = Engine(ServerConfig.from_env(data_dir=args.data_dir))
        response = engine.predict(
            prediction_pb2.PredictRequest(
                graph=graph_pb2.GraphRef(onnx_model=model_bytes(args.model)),
                shapes=graph_pb2.ShapeBindings(
                    input_shapes=[graph_pb2.InputShape(name=k, dims=list(v)) for k, v in shapes.items()],
                    dim_values=dims,
                ),
                device_ids=args.device or [],
                predictors=args.predictor or [],
            )
        )
    out = _predict_dict(response)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title="predicted latency per device (ms per batch)", header_style="bold")
    for col in ("device", "predictor", "latency ms", "interval ms", "compute-bound", "held-out ±10 %"):
        t.add_column(col, justify="left" if col in ("device", "predictor") else "right")
    for d in out["devices"]:
        for p in d["predictions"]:
            t.add_row(
                d["device_id"], p["predictor"]["name"], f"{p['latency_ms']:.4g}",
                f"{p['latency_ms_low']:.4g} – {p['latency_ms_high']:.4g}",
                f"{100 * p['compute_bound_fraction']:.0f} %",
                f"{100 * p['predictor']['heldout_within_10pct']:.0f} %" if p["provenance"]["error_is_evaluated"] else "not evaluated",
            )
    Console().print(t)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from nascost.v1 import prediction_pb2

    err = Console(stderr=True)
    request = prediction_pb2.CalibrateRequest(
        device_id=args.device, budget_minutes=args.budget_minutes, batch_sizes=args.batch_size or [], seed=args.seed
    )
    if args.server:
        from nascost.client import Client

        if args.prior:
            from nascost.predictors.errors import InvalidRequestError

            raise InvalidRequestError("--prior is in-process only: a server takes its priors from NASCOST_CALIBRATION_PRIORS")
        with Client(args.server, token=os.environ.get("NASCOST_AUTH_TOKEN"), timeout=None) as c:
            events = list(_calibrate_events(c.calibrate(request), err, quiet=args.json))
    else:
        from pathlib import Path

        from nascost.server.config import ServerConfig
        from nascost.server.engine import Engine

        priors = tuple(Path(p) for p in args.prior) if args.prior else None
        engine = Engine(ServerConfig.from_env(data_dir=args.data_dir, calibration_priors=priors))
        events = list(_calibrate_events(engine.calibrate(request, cancelled=lambda: False), err, quiet=args.json))
    report = events[-1]
    if args.json:
        from google.protobuf.json_format import MessageToDict

        print(json.dumps(MessageToDict(report, preserving_proto_field_name=True), indent=2))
    else:
        print_calibration(report)
    return 0


def cmd_refit(args: argparse.Namespace) -> int:
    """Fit a device's predictor again on a calibration's kept measurements (no measuring)."""
    from nascost.predictors.calibration import refit
    from nascost.predictors.calibration_data import read_calibration_data
    from nascost.predictors.devices import Device
    from nascost.predictors.errors import NotCalibratedError
    from nascost.predictors.learned import artifact_root, list_versions, read_metadata
    from nascost.server.config import ServerConfig

    config = ServerConfig.from_env(data_dir=args.data_dir)
    versions = list_versions(config.data_dir, args.device)
    version = args.version or (versions[-1] if versions else None)
    if version is None or version not in versions:
        which = f" version {args.version!r}" if args.version else ""
        raise NotCalibratedError(f"no calibration of {args.device!r}{which} in {config.data_dir}")
    path = artifact_root(config.data_dir, args.device) / version
    meta = read_metadata(path)
    data = read_calibration_data(path)
    report = refit(Device.from_dict(meta["device"]), data, seed=args.seed, data_dir=config.data_dir, source_metadata=meta)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(f"refit of {args.device} version {path.name} (no measuring) -> {report.artifact_path}")
        print(report.table())
    return 0


def _calibrate_events(stream: Any, err: Any, *, quiet: bool) -> Iterator[Any]:
    for event in stream:
        if event.HasField("report"):
            yield event.report
        elif not quiet:
            p = event.progress
            err.print(f"[dim]{p.stage:>10} {100 * p.fraction:5.1f} %  {p.message}[/]")


def print_calibration(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title=f"calibration of {report.device_id} ({report.artifact_version}): {report.train_models} training, "
        f"{report.heldout_models} held-out (model, batch) pairs, {report.elapsed_s:.0f} s",
        header_style="bold",
    )
    width = max((len(m.predictor) for m in report.metrics), default=9)
    for col in ("predictor", "n", "±5 %", "±10 %", "±15 %", "RMSPE", "MAPE", "Spearman", "Kendall"):
        if col == "predictor":  # names in full: "learned_kernel_sum" vs "learned_kernel_sum_prior"
            t.add_column(col, no_wrap=True, min_width=width)
        else:
            t.add_column(col, justify="right")
    for m in report.metrics:
        t.add_row(
            m.predictor, str(m.n), f"{100 * m.within_5pct:.1f}", f"{100 * m.within_10pct:.1f}",
            f"{100 * m.within_15pct:.1f}", f"{100 * m.rmspe:.1f}", f"{100 * m.mape:.1f}",
            f"{m.spearman:.3f}", f"{m.kendall:.3f}",
        )
    console = Console(width=max(Console().width, width + 70))
    console.print(t)
    if report.selected_predictor:
        console.print(
            f"[dim]'learned' = {report.selected_predictor}; every figure is on all held-out models "
            "(the variants are printed for comparison, none is chosen per calibration)[/]"
        )
    console.print(f"[dim]held-out families (never sampled for training): {', '.join(report.heldout_families)}[/]")
    if report.prior_train_models:
        console.print(
            f"[dim]'learned' also trained on {report.prior_train_models} examples of {len(report.prior_calibrations)} "
            "earlier calibrations of this device class; 'learned_own_data' on this calibration's alone[/]"
        )
    if report.heldout_measurements:
        counts = ", ".join(f"{v} from {k}" for k, v in sorted(report.heldout_measurements.items()))
        console.print(f"[dim]held-out reference latencies: the fastest of measurements at different times ({counts})[/]")
    if report.repeat_agreement:
        from nascost.predictors.calibration_data import RepeatAgreement

        for r in report.repeat_agreement:
            confirmed = r.confirmed_5pct if r.HasField("confirmed_5pct") else None
            console.print(f"[dim]{RepeatAgreement(r.n, r.within_10pct, r.median_difference, confirmed).describe(r.batch)}[/]")


def cmd_devices(args: argparse.Namespace) -> int:
    if args.server:
        from nascost.client import Client

        with Client(args.server, token=os.environ.get("NASCOST_AUTH_TOKEN")) as c:
            devices = c.devices()
    else:
        from nascost.server.config import ServerConfig
        from nascost.server.engine import Engine

        devices = [Device.from_proto(d) for d in Engine(ServerConfig.from_env()).list_devices()]
    if args.json:
        print(json.dumps([d.to_dict() for d in devices], indent=2))
    else:
        print_devices(devices)
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from nascost.predictors.costs.coverage import coverage

    cov = coverage()
    if args.json:
        print(json.dumps(cov, indent=2))
        return 0
    from rich.console import Console

    console = Console()
    ai = cov["ai_onnx"]
    console.print(
        f"ai.onnx coverage: {ai['coverage_percent']:.1f} % of {ai['total']} ops at onnx {cov['onnx_version']} "
        f"(opset {cov['opset']}): {len(ai['counted'])} counted, {len(ai['free'])} free on purpose, "
        f"{len(ai['not_covered'])} without a handler; {cov['registered_count']} ops registered in all domains"
    )
    for domain, ops in cov["registered"].items():
        console.print(f"[bold]{domain}[/] ({len(ops)}): " + ", ".join(ops))
    if ai["not_covered"]:
        console.print("[yellow]ai.onnx ops without a handler:[/] " + ", ".join(ai["not_covered"]))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 when the server's health service answers SERVING (container health checks)."""
    from nascost.client import Client

    with Client(args.server, token=os.environ.get("NASCOST_AUTH_TOKEN")) as c:
        status = c.health(args.service, timeout=args.timeout)
    print(status)
    return 0 if status == "SERVING" else 1


def cmd_example(args: argparse.Namespace) -> int:
    from nascost.server.demo import tiny_resnet

    with open(args.out, "wb") as f:
        f.write(tiny_resnet().SerializeToString())
    print(args.out)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from nascost.server.app import serve
    from nascost.server.config import ServerConfig

    config = ServerConfig.from_env(data_dir=args.data_dir, workers=args.workers, metrics_port=args.metrics_port)
    config.data_dir.mkdir(parents=True, exist_ok=True)

    def ready(port: int) -> None:
        print(f"nascost serving on {args.host}:{port} (data dir {config.data_dir}); Ctrl-C stops", flush=True)
        if args.demo:
            _demo(f"{args.host if args.host not in ('0.0.0.0', '::', '[::]') else '127.0.0.1'}:{port}", config.auth_token)

    serve(args.host, args.port, config, ready=ready)
    return 0


def _demo(target: str, token: str | None) -> None:
    """Ask the running server about the bundled example, as a user would."""
    from nascost.client import Client
    from nascost.server.demo import tiny_resnet

    with Client(target, token=token) as c:
        print(f"health: {c.health()}", flush=True)
        a = c.analyze(tiny_resnet(), dim_values={"batch": 1})
        print_analysis(a, title="demo: tiny ResNet (batch 1), asked over gRPC")
        print_devices(c.devices())
    print("still serving; Ctrl-C stops", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nascost", description="Every cost indicator of an ONNX graph, per device.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the gRPC server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=50051)
    s.add_argument("--data-dir", default=None, help="embedded store and artifacts (default: $NASCOST_DATA_DIR or ~/.local/share/nascost)")
    s.add_argument("--workers", type=int, default=None, help="gRPC worker threads")
    s.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this HTTP port")
    s.add_argument("--demo", action="store_true", help="after start, analyze a bundled example through the server and print it")
    s.set_defaults(fn=cmd_serve)

    a = sub.add_parser("analyze", help="counted indicators of a model")
    a.add_argument("model")
    a.add_argument("--server", help="HOST:PORT of a nascost server (default: run in-process)")
    a.add_argument("--input-shape", action="append", type=_parse_input_shape, metavar="NAME=1x3x224x224")
    a.add_argument("--dim", action="append", type=_parse_dim, metavar="NAME=VALUE", help="value of a symbolic dim")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.add_argument("--compact", action="store_true", help="with --json: on one line")
    a.add_argument("--summary", action="store_true", help="table without the per-node breakdown")
    a.set_defaults(fn=cmd_analyze)

    m = sub.add_parser("measure", help="measure latency on a device (sandboxed onnxruntime)")
    m.add_argument("model")
    m.add_argument("--server", help="HOST:PORT of a nascost server (default: in-process)")
    m.add_argument("--device", default="local")
    m.add_argument("--batch-size", action="append", type=int, metavar="N")
    m.add_argument("--threads", type=int, default=None, help="intra-op threads (default: the device's, 1)")
    m.add_argument("--budget-s", type=float, default=None, help="time budget per batch size, seconds")
    m.add_argument("--input-shape", action="append", type=_parse_input_shape, metavar="NAME=1x3x224x224")
    m.add_argument("--dim", action="append", type=_parse_dim, metavar="NAME=VALUE")
    m.add_argument("--no-profile", action="store_true", help="skip per-kernel profiling")
    m.add_argument("--count-optimized", action="store_true", help="count the runtime's optimized graph again")
    m.add_argument("--data-dir", default=None, help="in-process only: the store to write to")
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=cmd_measure)

    pr = sub.add_parser("predict", help="predicted latency per device")
    pr.add_argument("model")
    pr.add_argument("--server", help="HOST:PORT of a nascost server (default: in-process)")
    pr.add_argument("--device", action="append", metavar="ID", help="device id (repeat; default: all)")
    pr.add_argument("--predictor", action="append", choices=("learned", "roofline"), help="default: all available")
    pr.add_argument("--input-shape", action="append", type=_parse_input_shape, metavar="NAME=1x3x224x224")
    pr.add_argument("--dim", action="append", type=_parse_dim, metavar="NAME=VALUE")
    pr.add_argument("--data-dir", default=None, help="in-process only: where calibrations live")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(fn=cmd_predict)

    ca = sub.add_parser("calibrate", help="sample, measure, fit and evaluate a device's learned predictor")
    ca.add_argument("--device", default="local")
    ca.add_argument("--budget-minutes", type=float, required=True)
    ca.add_argument("--batch-size", action="append", type=int, metavar="N", help="repeat; default 1")
    ca.add_argument("--seed", type=int, default=0)
    ca.add_argument("--server", help="HOST:PORT of a nascost server (default: in-process)")
    ca.add_argument("--data-dir", default=None, help="in-process only: where the artifact is written")
    ca.add_argument(
        "--prior",
        action="append",
        metavar="DIR",
        help="in-process only, repeat: an earlier calibration (or a directory of them) whose training data "
        "joins the fit when its device class (CPU, cores, memory, runtime; not the OS build) "
        "is this one's (a server: NASCOST_CALIBRATION_PRIORS)",
    )
    ca.add_argument("--json", action="store_true")
    ca.set_defaults(fn=cmd_calibrate)

    rf = sub.add_parser("refit", help="fit a device's predictor again on a calibration's kept measurements")
    rf.add_argument("--device", default="local")
    rf.add_argument("--version", default=None, help="the calibration's artifact version (default: the latest)")
    rf.add_argument("--seed", type=int, default=None, help="the boosters' seed (default: the calibration's)")
    rf.add_argument("--data-dir", default=None, help="where the artifacts are (default: $NASCOST_DATA_DIR or ~/.local/share/nascost)")
    rf.add_argument("--json", action="store_true")
    rf.set_defaults(fn=cmd_refit)

    d = sub.add_parser("devices", help="the device catalogue")
    d.add_argument("--server", help="HOST:PORT of a nascost server (default: in-process)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_devices)

    o = sub.add_parser("ops", help="op types covered by the cost counter")
    o.add_argument("--json", action="store_true")
    o.set_defaults(fn=cmd_ops)

    h = sub.add_parser("health", help="ask a server's health service (exit 0 when SERVING)")
    h.add_argument("--server", default="127.0.0.1:50051")
    h.add_argument("--service", default="", help="service name ('' = the whole server)")
    h.add_argument("--timeout", type=float, default=5.0)
    h.set_defaults(fn=cmd_health)

    e = sub.add_parser("example", help="write the bundled example model")
    e.add_argument("out")
    e.set_defaults(fn=cmd_example)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.fn(args))
    except NascostClientError as e:
        print(f"nascost: {e.code.name}: {e.details}", file=sys.stderr)
        return 2
    except Exception as e:
        from nascost.predictors.errors import NascostError

        if isinstance(e, NascostError):
            print(f"nascost: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        if isinstance(e, OSError):
            print(f"nascost: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
