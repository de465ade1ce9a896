from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from nascost.predictors.devices import (
    Catalogue,
    Device,
    DeviceSpec,
    load_shipped_catalogue,
    parse_roofline_evaluation,
    validate_device_id,
)
from nascost.predictors.errors import DeviceExistsError, InvalidRequestError, UnknownDeviceError


class MemoryStore:
    def __init__(self, devices: list[dict[str, Any]] | None = None) -> None:
        self.devices: dict[str, dict[str, Any]] = {d["id"]: d for d in devices or []}
        self.saves = 0

    def load_devices(self) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(d)) for d in self.devices.values()]

    def save_device(self, device_id: str, device: dict[str, Any]) -> None:
        self.saves += 1
        self.devices[device_id] = json.loads(json.dumps(device))


def _spec(**kw: Any) -> DeviceSpec:
    base: dict[str, Any] = {"peak_flops_per_s": {"float32": 1e12}, "memory_bandwidth_bytes_per_s": 1e11}
    base.update(kw)
    return DeviceSpec(**base)


def test_shipped_catalogue_has_named_sources_and_dense_figures() -> None:
    devs = {d.id: d for d in load_shipped_catalogue()}
    for want in (
        "nvidia-a100-sxm4-80gb",
        "nvidia-h100-sxm5",
        "nvidia-h200-sxm",
        "nvidia-l4",
        "nvidia-t4",
        "nvidia-jetson-orin-nano-8gb",
        "nvidia-jetson-agx-orin-64gb",
        "intel-xeon-platinum-8480plus",
        "amd-epyc-9654",
        "apple-m2-gpu",
        "raspberry-pi-5",
    ):
        assert want in devs
    for d in devs.values():
        assert d.kind == "spec" and not d.measurable
        assert len(d.spec.source) > 40, d.id
        assert d.spec.peak_flops_per_s["float32" if "float32" in d.spec.peak_flops_per_s else "float16"] > 0
    a100 = devs["nvidia-a100-sxm4-80gb"].spec
    # dense figures: A100 FP16 tensor 312 TFLOPS (624 is the sparse one), TF32 156
    assert a100.peak_flops_per_s["float16"] == pytest.approx(312e12)
    assert a100.peak_flops_per_s["tf32"] == pytest.approx(156e12)
    h100 = devs["nvidia-h100-sxm5"].spec
    assert h100.peak_flops_per_s["float16"] < 1000e12  # 1979 is with sparsity
    # H200 differs from H100 in memory, not compute
    assert devs["nvidia-h200-sxm"].spec.memory_bandwidth_bytes_per_s > h100.memory_bandwidth_bytes_per_s
    assert devs["nvidia-h200-sxm"].spec.peak_flops_per_s == h100.peak_flops_per_s
    # derived CPU peak: Raspberry Pi 5 = 4 cores x 16 FLOP/cycle x 2.4 GHz
    assert devs["raspberry-pi-5"].spec.peak_flops_per_s["float32"] == pytest.approx(4 * 16 * 2.4e9)


def test_a_catalogue_record_may_carry_the_rooflines_measured_error() -> None:
    devs = {d.id: d for d in load_shipped_catalogue()}
    ev = devs["nvidia-h200-sxm"].roofline_evaluation
    assert ev["n"] == 27 and 0 < ev["within_10"] < 1 and ev["mape"] > 0
    assert "not onnxruntime" in ev["measured_with"]  # the runtime it timed is named
    assert devs["nvidia-h100-sxm5"].roofline_evaluation == {}
    again = Device.from_dict(json.loads(json.dumps(devs["nvidia-h200-sxm"].to_dict())))
    assert again.roofline_evaluation == ev
    assert parse_roofline_evaluation(None) == {} and parse_roofline_evaluation({}) == {}
    for bad in (
        {"n": 27, "within_10": 0.1, "mape": 0.5},  # what it was timed with is missing
        {"n": 0, "within_10": 0.1, "mape": 0.5, "measured_with": "x"},
        {"n": 3, "within_10": 1.5, "mape": 0.5, "measured_with": "x"},
        {"n": 3, "within_10": 0.5, "mape": "much", "measured_with": "x"},
        {"n": 3, "within_10": 0.5, "mape": 0.2, "measured_with": "x", "kendall": "high"},
        {"n": 3, "within_10": 0.5, "mape": 0.2, "measured_with": "x", "kendall": 1.5},
        ["n", 3],
    ):
        with pytest.raises(InvalidRequestError):
            parse_roofline_evaluation(bad)


def test_catalogue_file_is_package_data() -> None:
    raw = json.loads(resources.files("nascost.predictors").joinpath("data/devices.json").read_text("utf-8"))
    assert raw["format"] == "nascost-devices/1"
    ids = [d["id"] for d in raw["devices"]]
    assert len(ids) == len(set(ids))


def test_catalogue_is_lazy_and_resolves() -> None:
    cat = Catalogue()
    assert cat._devices is None  # nothing read before first use
    assert cat.get("nvidia-t4").name.startswith("NVIDIA T4")
    assert [d.id for d in cat.resolve(["nvidia-t4", "nvidia-l4", "nvidia-t4"])] == ["nvidia-t4", "nvidia-l4"]
    with pytest.raises(UnknownDeviceError):
        cat.get("nope")
    with pytest.raises(UnknownDeviceError):
        cat.resolve(["nvidia-t4", "nope"])


def test_local_device_from_measured_peaks() -> None:
    cat = Catalogue()
    dev = cat.set_local(
        fingerprint={"cpu": "Xeon", "onnxruntime": "1.32.0"},
        peak_flops_per_s={"float32": 2e11},
        memory_bandwidth_bytes_per_s=2e10,
        cores=2,
        intra_op_threads=1,
    )
    assert cat.get("local") is dev
    assert dev.kind == "local" and dev.measurable and dev.fingerprint["cpu"] == "Xeon"
    assert cat.list_devices(["local"]) == [dev]
    with pytest.raises(InvalidRequestError):
        cat.set_local(fingerprint={}, peak_flops_per_s={"float32": 0}, memory_bandwidth_bytes_per_s=1, cores=1)


def test_custom_devices_persist_through_store() -> None:
    store = MemoryStore()
    cat = Catalogue(store=store)
    dev = cat.add("my-board.v2", _spec(cache_bytes={"l2": 1024}), name="My board")
    assert store.saves == 1 and cat.get("my-board.v2") == dev
    with pytest.raises(DeviceExistsError):
        cat.add("my-board.v2", _spec())
    with pytest.raises(DeviceExistsError):
        cat.add("nvidia-t4", _spec())
    # a fresh catalogue over the same store sees it, equal field by field
    again = Catalogue(store=store).get("my-board.v2")
    assert again == dev
    assert again.spec.peak_for("float16") == 1e12  # falls back to float32


@pytest.mark.parametrize("bad", ["", "Upper", "-lead", "a" * 65, "sp ace", "x/y", "local\n"])
def test_invalid_ids_rejected(bad: str) -> None:
    with pytest.raises(InvalidRequestError):
        validate_device_id(bad)
    with pytest.raises(InvalidRequestError):
        Catalogue(store=MemoryStore()).add(bad, _spec())


def test_invalid_specs_rejected() -> None:
    cat = Catalogue(store=MemoryStore())
    with pytest.raises(InvalidRequestError):
        cat.add("x", _spec(peak_flops_per_s={}))
    with pytest.raises(InvalidRequestError):
        cat.add("x", _spec(memory_bandwidth_bytes_per_s=-1.0))
    with pytest.raises(InvalidRequestError):
        DeviceSpec.from_dict({"peak_flops_per_s": {"float32": "fast"}, "memory_bandwidth_bytes_per_s": 1})
    with pytest.raises(InvalidRequestError):
        Device.from_dict({"id": "x", "kind": "alien", "spec": _spec().to_dict()})


def test_corrupt_stored_device_is_skipped() -> None:
    store = MemoryStore([{"id": "broken", "spec": {"peak_flops_per_s": {}}}])
    cat = Catalogue(store=store)
    with pytest.raises(UnknownDeviceError):
        cat.get("broken")
    assert cat.get("nvidia-t4")


def test_peak_fallback_order() -> None:
    s = _spec(peak_flops_per_s={"float32": 1.0, "bfloat16": 5.0, "int8": 9.0})
    assert s.peak_for("float16") == 5.0
    assert s.peak_for("tf32") == 1.0
    assert s.peak_for("int8") == 9.0
    assert s.peak_for("uint8") == 9.0
    assert s.peak_for("float64") == 1.0
