"""The local device fingerprint and the micro-benchmarked peaks."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import psutil
import pytest

from nascost.measurements import fingerprint as fpmod
from nascost.measurements.fingerprint import (
    DevicePeaks,
    cached_peaks,
    local_fingerprint,
    measure_peaks,
)
from nascost.measurements.store import Store
from nascost.predictors.devices import device_class
from nascost.predictors.errors import InvalidRequestError


def _first_model_name() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def test_fingerprint_matches_independent_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fpmod.shutil, "which", lambda name: None)  # no nvidia-smi
    fp = local_fingerprint()
    assert fp.logical_cores == psutil.cpu_count(logical=True)
    physical = psutil.cpu_count(logical=False)
    if physical is not None and fp.physical_cores is not None:
        assert fp.physical_cores == physical
    assert fp.memory_bytes == psutil.virtual_memory().total
    expected_model = _first_model_name()
    if expected_model:
        assert fp.cpu_model == expected_model
    assert fp.onnxruntime_version == ort.__version__
    assert fp.providers == tuple(ort.get_available_providers())
    assert fp.gpus == ()
    assert fp.digest == local_fingerprint().digest and fp.digest.startswith("sha256:")
    assert fp.to_dict()["cpu_model"] == fp.cpu_model


def _lscpu() -> dict[str, str]:
    exe = shutil.which("lscpu")
    if exe is None:
        return {}
    out = subprocess.run([exe], capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
    fields = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def test_cpu_identity_matches_lscpu() -> None:
    """Vendor, family, model, stepping and the instruction sets, as util-linux's lscpu reads them."""
    ls = _lscpu()
    if not ls.get("CPU family"):
        pytest.skip("no lscpu, or it shows no x86 CPU family here")
    fp = local_fingerprint()
    assert (fp.cpu_vendor, fp.cpu_family, fp.cpu_model_number) == (ls["Vendor ID"], ls["CPU family"], ls["Model"])
    if ls.get("Stepping"):
        assert fp.cpu_stepping == ls["Stepping"]
    flags = set(ls.get("Flags", "").split())
    assert set(fp.cpu_isa) == fpmod.ISA_FLAGS & flags and list(fp.cpu_isa) == sorted(fp.cpu_isa)
    # every x86-64 CPU onnxruntime runs on has SSE4.1 at least
    assert fp.machine != "x86_64" or "sse4_1" in fp.cpu_isa


def test_an_arm_cpu_is_identified_by_implementer_part_and_features(tmp_path: Path) -> None:
    # /proc/cpuinfo of an AWS Graviton3 (Neoverse V1), two cores, cut to the keys read
    core = (
        "processor\t: {i}\nBogoMIPS\t: 2100.00\n"
        "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
        "jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs "
        "paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng\n"
        "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd40\n"
        "CPU revision\t: 1\n\n"
    )
    path = tmp_path / "cpuinfo"
    path.write_text(core.format(i=0) + core.format(i=1))
    cpu = fpmod._cpuinfo(str(path))
    assert dict(cpu.ids) == {"vendor": "0x41", "family": "8", "stepping": "0x1", "model": "0xd40"}
    assert cpu.isa == ("asimd", "asimddp", "asimdhp", "bf16", "fphp", "i8mm", "sve")


def test_the_device_class_is_the_hardware_and_runtime_not_the_os_build() -> None:
    """Two boots of one VM (kernel build -v857, then -v1098) are one class; two CPUs that
    /proc/cpuinfo names alike ("AMD EPYC": a Zen 3 and a Zen 5) are two."""
    fp = local_fingerprint()
    rebooted = dataclasses.replace(fp, os=fp.os + "-rebuilt", memory_bytes=fp.memory_bytes - (3 << 20), python_version="3.99.0")
    assert rebooted.device_class == fp.device_class and rebooted.digest != fp.digest
    other = dataclasses.replace(fp, cpu_family=str(int(fp.cpu_family or 0) + 1))
    assert other.device_class != fp.device_class
    assert dataclasses.replace(fp, cpu_isa=fp.cpu_isa[1:]).device_class != fp.device_class
    assert dataclasses.replace(fp, onnxruntime_version="0.0.1").device_class != fp.device_class
    # as an artifact's metadata keeps it (JSON, with its digest beside): the same class
    stored = json.loads(json.dumps({**fp.to_dict(), "digest": fp.digest}))
    assert device_class(fp.to_dict()) == device_class(stored) == fp.device_class
    # the digest and the class round memory alike: a boot's few MiB change neither
    assert dataclasses.replace(fp, memory_bytes=fp.memory_bytes + (5 << 20)).digest == fp.digest
    with pytest.raises(InvalidRequestError, match="memory_bytes"):
        device_class({**stored, "memory_bytes": "lots"})
    with pytest.raises(InvalidRequestError, match="not an object"):
        device_class(["AMD EPYC"])  # type: ignore[arg-type]
    # a fingerprint recorded without the CPU numbers is its digest, as it always matched
    legacy = {k: v for k, v in fp.to_dict().items() if not k.startswith("cpu_") or k == "cpu_model"}
    assert device_class({**legacy, "digest": "sha256:old"}) == "sha256:old"
    assert device_class({}) is None


def test_gpus_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 550.54.15, 81559'\necho 'NVIDIA H100 80GB HBM3, 550.54.15, 81559'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    fp = local_fingerprint()
    assert len(fp.gpus) == 2
    assert fp.gpus[0].name == "NVIDIA H100 80GB HBM3" and fp.gpus[0].driver_version == "550.54.15"
    assert fp.gpus[0].memory_bytes == 81559 << 20
    assert fp.gpu_model == "NVIDIA H100 80GB HBM3, NVIDIA H100 80GB HBM3" and fp.gpu_driver == "550.54.15"
    monkeypatch.setattr(fpmod.shutil, "which", lambda name: None)
    assert local_fingerprint().digest != fp.digest  # the GPU is part of the identity


def test_failing_nvidia_smi_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert local_fingerprint().gpus == ()


def _fp32_flops_per_cycle() -> int:
    """Peak float32 FLOPs per cycle per core from the ISA (2 FMA units x lanes x 2)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return 64
    if "avx512f" in flags:
        return 64
    if "avx2" in flags or "fma" in flags:
        return 32
    return 64  # unknown ISA: stay permissive


def test_measured_peaks_agree_with_references() -> None:
    """GEMM FLOP/s: below the ISA's ceiling (a 2x FLOP overcount would break it) and within
    5x of the same GEMM in single-threaded numpy BLAS; bandwidth within 3x of a numpy copy."""
    from threadpoolctl import threadpool_limits

    peaks = measure_peaks(intra_op_threads=1, gemm_n=256, copy_bytes=64 << 20, duration_s=0.25)
    assert peaks.gemm_flops_per_s >= peaks.gemm_median_flops_per_s > 0
    ceiling = _fp32_flops_per_cycle() * 5.0e9  # one thread, at most 5 GHz
    assert peaks.gemm_flops_per_s < ceiling
    n = 256
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = float("inf")
    with threadpool_limits(1):
        for _ in range(50):
            t0 = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t0)
    numpy_flops = 2 * n**3 / best
    assert numpy_flops / 5 < peaks.gemm_flops_per_s < numpy_flops * 5
    src = np.ones((64 << 20) // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        dst[:] = src
        best = min(best, time.perf_counter() - t0)
    numpy_bw = 2 * src.nbytes / best
    assert numpy_bw / 3 < peaks.memory_bandwidth_bytes_per_s < numpy_bw * 3
    assert peaks.ridge_flops_per_byte == pytest.approx(peaks.gemm_flops_per_s / peaks.memory_bandwidth_bytes_per_s)
    assert DevicePeaks.from_dict(peaks.to_dict()) == peaks


def test_peaks_are_cached_by_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = fpmod.measure_peaks

    def counting(**kwargs: object) -> DevicePeaks:
        calls.append(1)
        return real(gemm_n=128, copy_bytes=16 << 20, duration_s=0.05, intra_op_threads=int(kwargs["intra_op_threads"]))  # type: ignore[call-overload]

    monkeypatch.setattr(fpmod, "measure_peaks", counting)
    fp = local_fingerprint()
    with Store(tmp_path / "s.db") as store:
        first = cached_peaks(store, fp)
        second = cached_peaks(store, fp)
        assert first == second and len(calls) == 1
        cached_peaks(store, fp, intra_op_threads=2)
        assert len(calls) == 2  # another thread count is another configuration
        cached_peaks(store, fp, refresh=True)
        assert len(calls) == 3
        # the same machine after a reboot into another kernel build: the same peaks
        rebooted = dataclasses.replace(fp, os=fp.os + "-rebuilt")
        assert cached_peaks(store, rebooted) == cached_peaks(store, fp) and len(calls) == 3


def test_dispatch_overhead_predicts_another_chain_length() -> None:
    """per-run + k * per-op, fitted on chains of 1 and 64 ops, predicts a 24-op chain.

    Both sides are timings of a few µs on a shared host: a round whose fit or check met
    another tenant's load is taken again (up to three rounds); a real bias fails every one.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(fpmod._relu_chain_model(24), so, providers=["CPUExecutionProvider"])
    feeds = {"x": np.ones(1, dtype=np.float32)}
    rounds = []
    for _ in range(3):
        per_op, per_run = fpmod.measure_dispatch_overhead(ops=64, duration_s=0.4)
        assert per_op > 0 and per_run > 0
        times = []
        for _ in range(2000):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            times.append(time.perf_counter() - t0)
        measured = float(np.median(times))
        predicted = per_run + 24 * per_op
        rounds.append((measured, predicted))
        if 0.6 < measured / predicted < 1.6:
            return
    pytest.fail(f"measured / predicted outside (0.6, 1.6) in every round: {rounds}")


def test_device_spec_fits_the_proto() -> None:
    from google.protobuf.json_format import ParseDict

    from nascost.v1 import devices_pb2

    peaks = DevicePeaks(1.5e11, 1.4e11, 1.4e10, 1, 512, 1 << 27, 0.0, per_op_overhead_s=2e-7, per_run_overhead_s=4e-6)
    fp = local_fingerprint()
    spec = ParseDict(fpmod.device_spec(fp, peaks), devices_pb2.DeviceSpec())
    assert spec.peak_flops_per_s["float32"] == 1.5e11
    assert spec.memory_bandwidth_bytes_per_s == 1.4e10 and spec.cores == fp.logical_cores
    assert spec.per_op_overhead_s == 2e-7 and "micro-benchmark" in spec.source


def _peaks(gflops: float, gbps: float, per_op_us: float, gemm_n: int = 512) -> DevicePeaks:
    return DevicePeaks(
        gemm_flops_per_s=gflops * 1e9,
        gemm_median_flops_per_s=0.9 * gflops * 1e9,
        memory_bandwidth_bytes_per_s=gbps * 1e9,
        intra_op_threads=1,
        gemm_size=gemm_n,
        copy_bytes=128 << 20,
        measured_at=time.time(),
        per_op_overhead_s=per_op_us * 1e-6,
    )


def test_refreshed_peaks_keep_the_best_rates_ever_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A slow phase only lowers a measured rate: a refresh keeps the highest GEMM rate and
    bandwidth of every measurement of the same method, and the latest overheads."""
    measured = iter(
        [_peaks(150, 20, 2.0), _peaks(100, 25, 3.0), _peaks(160, 15, 1.5), _peaks(90, 10, 1.0, gemm_n=256), _peaks(80, 9, 4.0, gemm_n=256)]
    )
    monkeypatch.setattr(fpmod, "measure_peaks", lambda **kwargs: next(measured))
    fp = local_fingerprint()
    with Store(tmp_path / "s.db") as store:
        got = [cached_peaks(store, fp)] + [cached_peaks(store, fp, refresh=True) for _ in range(2)]
        rates = [(p.gemm_flops_per_s / 1e9, p.memory_bandwidth_bytes_per_s / 1e9, p.per_op_overhead_s * 1e6) for p in got]
        assert rates == [pytest.approx(r) for r in [(150, 20, 2.0), (150, 25, 3.0), (160, 25, 1.5)]]
        assert cached_peaks(store, fp) == got[-1]  # stored
        # another GEMM size is another method: its figures replace, not merge
        assert cached_peaks(store, fp, refresh=True).gemm_flops_per_s == pytest.approx(90e9)
        # and without keep_best a refresh replaces whatever is stored
        assert cached_peaks(store, fp, refresh=True, keep_best=False).gemm_flops_per_s == pytest.approx(80e9)
        assert cached_peaks(store, fp).gemm_flops_per_s == pytest.approx(80e9)
