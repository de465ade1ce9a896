"""The ``nascost`` CLI: stable forms, in-process and against a real server process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nascost.server.cli import main
from nascost.server.demo import tiny_resnet

REQUIRED_INT_KEYS = ("params", "macs", "flops", "memory_access_bytes")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_resnet().SerializeToString())
    return path


def test_analyze_json_in_process(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(example), "--json", "--input-shape", "input=2x3x64x64"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in REQUIRED_INT_KEYS:
        assert isinstance(out[key], int) and out[key] > 0
    assert isinstance(out["unsupported_ops"], dict)
    assert isinstance(out["nodes"], list) and {n["op_type"] for n in out["nodes"]} >= {"Conv", "Gemm"}
    assert out["input_shapes"] == {"input": [2, 3, 64, 64]}


def test_analyze_table_and_errors(example: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["analyze", str(example), "--dim", "batch=1"]) == 0
    text = capsys.readouterr().out
    assert "MACs" in text and "memory access" in text and "per node" in text
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    assert main(["analyze", str(bad)]) == 2
    assert "not a valid ONNX" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "missing.onnx")]) == 2


def _start_server(tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nascost.server.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"serving on ([\d.]+:\d+)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("server did not start")


def test_serve_answers_and_stops_gracefully_on_sigterm(example: Path, tmp_path: Path) -> None:
    proc, target = _start_server(tmp_path)
    try:
        cli = [sys.executable, "-m", "nascost.server.cli"]
        health = subprocess.run([*cli, "health", "--server", target], capture_output=True, text=True, timeout=60)
        assert health.returncode == 0 and health.stdout.strip() == "SERVING"
        remote = subprocess.run(
            [*cli, "analyze", str(example), "--server", target, "--json", "--dim", "batch=1"],
            capture_output=True, text=True, timeout=60,
        )
        assert remote.returncode == 0, remote.stderr
        local = subprocess.run(
            [*cli, "analyze", str(example), "--json", "--dim", "batch=1"], capture_output=True, text=True, timeout=60
        )
        r, lo = json.loads(remote.stdout), json.loads(local.stdout)
        assert {k: r[k] for k in REQUIRED_INT_KEYS} == {k: lo[k] for k in REQUIRED_INT_KEYS}
        devices = subprocess.run([*cli, "devices", "--server", target, "--json"], capture_output=True, text=True, timeout=60)
        assert devices.returncode == 0 and any(d["id"] == "local" for d in json.loads(devices.stdout))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_ops_lists_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    import onnx

    from nascost.predictors.costs.registry import registered

    assert main(["ops", "--json"]) == 0
    cov = json.loads(capsys.readouterr().out)
    schemas = {s.name for s in onnx.defs.get_all_schemas_with_history() if s.domain in ("", "ai.onnx")}
    assert cov["ai_onnx"]["total"] == len(schemas)
    assert cov["registered_count"] == len(registered())
    assert main(["ops"]) == 0
    assert "ai.onnx coverage" in capsys.readouterr().out


def test_devices_show_the_roofline_error_measured_on_a_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nascost.predictors.devices import load_shipped_catalogue

    monkeypatch.setenv("NASCOST_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "400")  # one line per device note
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    h200 = {d.id: d for d in load_shipped_catalogue()}["nvidia-h200-sxm"].roofline_evaluation
    line = next(x for x in out.splitlines() if x.startswith("nvidia-h200-sxm: the roofline"))
    assert f"{100 * h200['within_10']:.1f} % of {h200['n']} measured cases" in line
    assert f"MAPE {100 * h200['mape']:.1f} %" in line
    assert not any(x.startswith("nvidia-a100-sxm4-80gb: the roofline") for x in out.splitlines())
