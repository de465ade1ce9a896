"""The device catalogue over gRPC: shipped, local (measured peaks), registered (persisted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nascost.client import AlreadyExists, Client, InvalidArgument, NotFound
from nascost.measurements.fingerprint import local_fingerprint
from nascost.predictors.devices import load_shipped_catalogue
from nascost.server.app import create_server
from nascost.server.config import ServerConfig


def test_catalogue_register_and_persist(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path, workers=2)
    server, port, _ = create_server("127.0.0.1:0", config)
    target = f"127.0.0.1:{port}"
    try:
        with Client(target) as c:
            devices = {d.id: d for d in c.devices()}
            local = devices["local"]
            assert local.kind == "local" and local.measurable
            assert local.peak_flops_per_s["float32"] > 1e9  # measured GEMM rate, FLOP/s
            assert local.memory_bandwidth_bytes_per_s > 1e8  # measured copy bandwidth, B/s
            assert local.fingerprint["digest"].startswith("sha256:")
            # the device class (what calibrations and peaks are matched by) and the CPU's
            # numbers it hashes come through the API as the server's machine has them
            fp = local_fingerprint()
            assert local.fingerprint["device_class"] == fp.device_class != fp.digest
            assert local.fingerprint["cpu_family"] == fp.cpu_family and local.fingerprint["cpu_isa"] == list(fp.cpu_isa)
            a100 = devices["nvidia-a100-sxm4-80gb"]
            assert a100.kind == "spec" and not a100.measurable and a100.source
            assert a100.roofline_evaluation == {} and local.roofline_evaluation == {}  # never measured
            # the shipped H200 carries the roofline's measured error, as in the catalogue file
            h200 = devices["nvidia-h200-sxm"].roofline_evaluation
            shipped = {d.id: d for d in load_shipped_catalogue()}["nvidia-h200-sxm"].roofline_evaluation
            assert h200["n"] == shipped["n"] == 27 and h200["within_10pct"] == shipped["within_10"]
            assert h200["mape"] == shipped["mape"] and h200["kendall"] == shipped["kendall"]
            assert h200["measured_with"] == shipped["measured_with"] and h200["how"] == shipped["how"]
            added = c.register_device(
                "edge-npu-1", name="my NPU", peak_flops_per_s={"int8": 4e12, "float16": 2e12},
                memory_bandwidth_bytes_per_s=25.6e9, source="vendor brief",
            )
            assert added.kind == "custom" and added.peak_flops_per_s["int8"] == 4e12
            assert added.roofline_evaluation == {}
            evaluated = c.register_device(
                "edge-npu-2", peak_flops_per_s={"int8": 4e12}, memory_bandwidth_bytes_per_s=25.6e9,
                roofline_evaluation={"n": 12, "within_10pct": 0.25, "mape": 0.3, "measured_with": "vendor SDK", "date": "2026-12-01"},
            )
            ev = evaluated.roofline_evaluation
            assert (ev["n"], ev["within_10pct"], ev["mape"], ev["measured_with"], ev["date"]) == (12, 0.25, 0.3, "vendor SDK", "2026-12-01")
            assert "kendall" not in ev and "cases" not in ev  # not given
            tau0 = c.register_device(
                "edge-npu-4", peak_flops_per_s={"int8": 4e12}, memory_bandwidth_bytes_per_s=1e9,
                roofline_evaluation={"n": 5, "within_10pct": 0.0, "mape": 0.5, "kendall": 0.0, "measured_with": "x"},
            )
            assert tau0.roofline_evaluation["kendall"] == 0.0 and tau0.roofline_evaluation["within_10pct"] == 0.0
            with pytest.raises(InvalidArgument, match="roofline_evaluation"):
                c.register_device(
                    "edge-npu-3", peak_flops_per_s={"int8": 4e12}, memory_bandwidth_bytes_per_s=1e9,
                    roofline_evaluation={"n": 0, "within_10pct": 0.5, "mape": 0.1, "measured_with": "x"},
                )
            with pytest.raises(InvalidArgument, match="roofline_evaluation"):
                c.register_device(
                    "edge-npu-3", peak_flops_per_s={"int8": 4e12}, memory_bandwidth_bytes_per_s=1e9,
                    roofline_evaluation={"n": 3, "within_10pct": 1.5, "mape": 0.1, "measured_with": "x"},
                )
            with pytest.raises(AlreadyExists):
                c.register_device("edge-npu-1", peak_flops_per_s={"float32": 1e9}, memory_bandwidth_bytes_per_s=1e9)
            with pytest.raises(InvalidArgument, match="invalid"):
                c.register_device("Bad Id!", peak_flops_per_s={"float32": 1e9}, memory_bandwidth_bytes_per_s=1e9)
            with pytest.raises(InvalidArgument, match="peak"):
                c.register_device("no-peaks", peak_flops_per_s={}, memory_bandwidth_bytes_per_s=1e9)
            with pytest.raises(NotFound):
                c.device("no-such-device")
    finally:
        server.stop(grace=None)
    server, port, _ = create_server("127.0.0.1:0", config)  # same data dir: the device is still there
    try:
        with Client(f"127.0.0.1:{port}") as c:
            again = c.device("edge-npu-1")
            assert again.name == "my NPU" and again.memory_bandwidth_bytes_per_s == 25.6e9
            assert c.device("edge-npu-2").roofline_evaluation == ev  # kept with the device
    finally:
        server.stop(grace=None)
