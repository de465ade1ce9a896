"""Earlier calibrations of a device's fingerprint as training data of a new one (priors),
on the real calibrations kept in ``benchmarks/calibrations``."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nascost.predictors.calibration import OWN_DATA_VARIANT, align_priors, load_priors, refit
from nascost.predictors.calibration_data import DATA_FILE, read_calibration_data
from nascost.predictors.devices import Device, device_class
from nascost.predictors.errors import InvalidRequestError
from nascost.predictors.learned import FeatureCache, LatencyPredictor, read_metadata

KEPT = Path(__file__).resolve().parents[2] / "benchmarks" / "calibrations"
TARGET = KEPT / "2026-12-02-seed581"  # the Xeon host's calibration with the fewest training models
PRIOR = KEPT / "2026-12-02-seed591"  # the same host type, the next calibration
OTHER_HOST = KEPT / "2026-12-01-seed301"  # an AMD EPYC host: another fingerprint


def test_a_refit_with_priors_fits_on_both_and_reports_its_own_data_alone_beside(tmp_path: Path) -> None:
    meta = read_metadata(TARGET)
    device = Device.from_dict(meta["device"])
    data = read_calibration_data(TARGET)
    own = data.examples().train
    prior_train = read_calibration_data(PRIOR).examples().train
    # the same data under another name, and the data being fitted: neither counts again
    shutil.copytree(PRIOR, tmp_path / "copy-of-591")
    paths = [PRIOR, tmp_path / "copy-of-591", OTHER_HOST, TARGET]

    rep = refit(device, data, variants=False, seed=0, prior_paths=paths, data_dir=tmp_path / "out", source_metadata=meta)
    assert rep.n_train == len(own) and rep.n_prior == len(prior_train) > 100
    why = {Path(s["path"]).name: (s["used"], s.get("why", "")) for s in rep.prior_sources}
    assert why == {
        PRIOR.name: (True, ""),
        "copy-of-591": (False, "the same data as another one (or as the data fitted)"),
        OTHER_HOST.name: (False, "another device fingerprint"),
        TARGET.name: (False, "the same data as another one (or as the data fitted)"),
    }
    assert rep.predictor is not None and rep.predictor.n_train_ == len(own) + len(prior_train)

    # "learned_own_data" is the predictor a refit without priors fits: the same figures
    plain = refit(device, data, variants=False, seed=0)
    for group in plain.accuracy:
        assert rep.accuracy[group][OWN_DATA_VARIANT].to_dict() == pytest.approx(plain.accuracy[group]["learned"].to_dict())
        # and the predictor fitted with the priors is another one, scored on the same references
        assert rep.accuracy[group]["learned"].n == plain.accuracy[group]["learned"].n
        assert rep.accuracy[group]["learned"].to_dict() != plain.accuracy[group]["learned"].to_dict()
    assert "fitted with" in rep.table() and OWN_DATA_VARIANT in rep.table()
    factor = next(s["level_factor"] for s in rep.prior_sources if s["used"])
    assert f"scaled by {factor:.3f}-{factor:.3f} to this host's level" in rep.table()

    # the artifact says what else it was fitted on; the data file beside it is the target's own
    assert rep.artifact_path is not None
    saved = json.loads((rep.artifact_path / "metadata.json").read_text())
    assert saved["prior"] == "kernel_sum"  # the predictor's own prior (its kernel sum) is another thing
    assert saved["calibration_priors"]["n_train"] == len(prior_train) and len(saved["calibration_priors"]["sources"]) == 4
    assert saved["n_train"] == len(own) + len(prior_train)
    # the prior was scaled to the target's level (the same host type: by a few per cent)
    (used,) = [s for s in saved["calibration_priors"]["sources"] if s["used"]]
    assert 0.8 < used["level_factor"] < 1.25
    assert read_calibration_data(rep.artifact_path).measurements == data.measurements


def test_priors_need_the_devices_fingerprint_and_a_real_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    device = Device.from_dict(read_metadata(TARGET)["device"])
    bare = dataclasses.replace(device, fingerprint={})
    examples, sources = load_priors([PRIOR], bare)
    assert examples == [] and sources[0]["used"] is False and "no fingerprint" in sources[0]["why"]
    # a directory of calibrations is searched; only training examples join (held-out ones never)
    (tmp_path / "kept").mkdir()
    shutil.copytree(PRIOR, tmp_path / "kept" / "a" / "b")
    examples, sources = load_priors([tmp_path / "kept"], device)
    prior = read_calibration_data(PRIOR).examples()
    assert len(examples) == len(prior.train) and sources[0]["n_train"] == len(prior.train)
    assert {e.family for e in examples}.isdisjoint({e.family for e in prior.heldout})
    with pytest.raises(InvalidRequestError, match="no calibration data"):
        load_priors([tmp_path / "missing"], device)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "measurements.json.gz").write_bytes(b"not gzip")
    (tmp_path / "broken" / "metadata.json").write_text(json.dumps(read_metadata(PRIOR)))
    examples, sources = load_priors([tmp_path / "broken"], device)
    assert examples == [] and sources[0]["why"].startswith("unreadable")
    # metadata that is not an object is no calibration either
    shutil.copytree(PRIOR, tmp_path / "odd")
    (tmp_path / "odd" / "metadata.json").write_text("[]")
    examples, sources = load_priors([tmp_path / "odd"], device)
    assert examples == [] and "metadata is not an object" in sources[0]["why"]
    # nor one whose fingerprint is malformed: skipped as unreadable, the others still read
    shutil.copytree(PRIOR, tmp_path / "bad-fingerprint")
    meta = read_metadata(PRIOR)
    for fp in (meta["device"]["fingerprint"], meta["device_fingerprint"]):
        fp.update(cpu_family="6", memory_bytes="lots")
    (tmp_path / "bad-fingerprint" / "metadata.json").write_text(json.dumps(meta))
    examples, sources = load_priors([tmp_path / "bad-fingerprint", PRIOR], device)
    assert sources[0]["why"].startswith("unreadable") and "memory_bytes" in sources[0]["why"]
    assert sources[1]["used"] and len(examples) == len(prior.train)
    # the data of another device's calibration is not read at all (its metadata says enough)
    shutil.copytree(PRIOR, tmp_path / "other-device")
    for fp in (meta["device"]["fingerprint"], meta["device_fingerprint"]):
        fp.update(memory_bytes=1 << 40)  # a valid fingerprint of another class
    (tmp_path / "other-device" / "metadata.json").write_text(json.dumps(meta))
    read: list[Path] = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or read_bytes(self))
    examples, sources = load_priors([tmp_path / "other-device", PRIOR], device)
    assert sources[0]["why"] == "another device fingerprint" and sources[1]["used"]
    assert tmp_path / "other-device" / DATA_FILE not in read and PRIOR / DATA_FILE in read


def test_each_prior_is_scaled_to_the_level_of_the_calibrations_own_predictor() -> None:
    device = Device.from_dict(read_metadata(TARGET)["device"])
    cache = FeatureCache()
    own = LatencyPredictor(device, prior="kernel_sum", random_state=0).fit(
        read_calibration_data(TARGET).examples().train, feature_cache=cache
    )
    prior = list(read_calibration_data(PRIOR).examples().train)
    # the same calibration again, as if the host had run 30 % slower then
    slowed = [dataclasses.replace(e, measured_ms=1.3 * e.measured_ms) for e in prior]
    sources = [
        {"path": "591", "used": True, "n_train": len(prior)},
        {"path": "elsewhere", "used": False, "why": "another device fingerprint"},
        {"path": "591 slowed", "used": True, "n_train": len(slowed)},
    ]
    aligned, noted = align_priors(own, [*prior, *slowed], sources, cache)
    assert [s["path"] for s in noted] == ["591", "elsewhere", "591 slowed"] and "level_factor" not in noted[1]
    assert noted[0]["level_factor"] == pytest.approx(1.3 * noted[2]["level_factor"], rel=1e-9)
    n = len(prior)
    assert [e.measured_ms for e in aligned[:n]] == pytest.approx([e.measured_ms for e in aligned[n:]], rel=1e-9)
    # what it means: the calibration's own predictor is right at the median of each source
    predicted = own.predict(prior, feature_cache=cache)
    for group in (aligned[:n], aligned[n:]):
        assert np.median(np.log(predicted / [e.measured_ms for e in group])) == pytest.approx(0.0, abs=1e-9)
    # the examples and the sources' counts must agree
    with pytest.raises(InvalidRequestError, match="prior examples"):
        align_priors(own, prior[:-1], sources[:1], cache)


def test_priors_match_by_device_class_not_by_the_os_build(tmp_path: Path) -> None:
    """The AMD EPYC Zen 5 VM came back from a reboot with another kernel build (``-v857``
    when 671-711 were measured, ``-v1098`` the next session): still the same device. The Zen 3
    of 2026-12-01, which ``/proc/cpuinfo`` names "AMD EPYC" as well, is not."""
    zen5 = KEPT / "2026-12-02-seed711"
    meta = read_metadata(zen5)
    fp = dict(meta["device"]["fingerprint"])
    assert (fp["cpu_model"], fp["cpu_family"], fp["cpu_model_number"]) == ("AMD EPYC", "26", "2")
    rebooted = {**fp, "os": "Linux 6.18.44-fc-v1098", "digest": "sha256:another-boot"}
    device = dataclasses.replace(Device.from_dict(meta["device"]), fingerprint=rebooted)
    zen3 = read_metadata(OTHER_HOST)["device"]["fingerprint"]
    assert zen3["cpu_model"] == "AMD EPYC" and "cpu_family" not in zen3  # recorded before the CPU numbers
    # a Zen 3 recorded with its numbers (family 25) would not match either
    shutil.copytree(OTHER_HOST, tmp_path / "zen3-numbered")
    numbered = json.loads((tmp_path / "zen3-numbered" / "metadata.json").read_text())
    for f in (numbered["device"]["fingerprint"], numbered["device_fingerprint"]):
        f.update({k: fp[k] for k in ("cpu_vendor", "cpu_model_number", "cpu_isa")}, cpu_family="25")
    (tmp_path / "zen3-numbered" / "metadata.json").write_text(json.dumps(numbered))

    examples, sources = load_priors([KEPT / "2026-12-02-seed701", OTHER_HOST, tmp_path / "zen3-numbered"], device)
    assert [(s["used"], s.get("why", "")) for s in sources] == [
        (True, ""),
        (False, "another device fingerprint"),
        (False, "another device fingerprint"),
    ]
    assert len(examples) == len(read_calibration_data(KEPT / "2026-12-02-seed701").examples().train) > 100
    # the digests differ (the OS build is in them); the classes are one
    assert sources[0]["fingerprint"] != rebooted["digest"] and sources[0]["device_class"] == device_class(rebooted)
