from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from ortprofile import CPU_1T, ort_measure

from nascost.predictors.analysis import analyze
from nascost.predictors.calibration import calibrate, refit
from nascost.predictors.calibration_data import (
    DATA_FILE,
    CalibrationData,
    MeasuredProbe,
    Measurement,
    RepeatAgreement,
    read_calibration_data,
    repeat_agreement,
)
from nascost.predictors.errors import InvalidRequestError
from nascost.predictors.features import (
    graph_features,
    nchwc_block_from_examples,
    nchwc_block_from_kernels,
    pseudo_kernels,
)
from nascost.predictors.graph import ShapeRequest, load_graph_bytes, strip_weights
from nascost.predictors.learned import latest_artifact, list_versions, load_predictor
from nascost.predictors.sampler import (
    BATCH_DIM,
    HELDOUT_FAMILIES,
    TRAIN_FAMILIES,
    ArchitectureSampler,
)

DEV = CPU_1T


def _described(data: bytes, batch: int) -> tuple[Any, ...]:
    g = load_graph_bytes(data, ShapeRequest(dim_values={BATCH_DIM: batch}))
    a = analyze(g)
    feats = graph_features(a, graph=g, batch_size=batch, roofline_ms=1.0, roofline_compute_fraction=0.5, n_kernels=1)
    return a.flops, a.params.trainable, a.params.buffers, a.weight_bytes_by_dtype, a.peak_activation_bytes, feats, tuple(pseudo_kernels(g))


@pytest.mark.parametrize("families", [TRAIN_FAMILIES, HELDOUT_FAMILIES], ids=["training", "held-out"])
def test_a_stripped_model_is_described_as_the_full_one(families: tuple[str, ...]) -> None:
    sampler = ArchitectureSampler(3, families=families, max_macs_per_example=2e8)
    for family in families:
        full = sampler.sample(family).model_bytes()
        stripped = strip_weights(full)
        for batch in (1, 8):
            assert _described(stripped, batch) == _described(full, batch), (family, batch)
        if len(full) > 1_000_000:  # weights dominate: only shapes and small tensors are kept
            assert len(stripped) < len(full) / 20, family


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("data")
    rep = calibrate(
        DEV,
        budget_s=4.0,
        measure_fn=ort_measure,
        batch_sizes=(1, 2),
        seed=5,
        data_dir=data_dir,
        max_macs_per_example=8e6,
        variants=False,
        heldout_repeats=2,
        heldout_repeat_gap_s=0.3,
        train_repeat_gap_s=0.3,  # training models measured twice too: a refit must read them alike
    )
    return rep, data_dir


def test_a_calibration_keeps_every_measurement_beside_its_predictor(calibrated: Any) -> None:
    rep, _ = calibrated
    meta = json.loads((rep.artifact_path / "metadata.json").read_text())
    assert meta["calibration_data"] == DATA_FILE
    data = read_calibration_data(rep.artifact_path)
    assert data.batch_sizes == (1, 2) and data.seed == 5
    ex = data.examples()
    assert len(ex.train) == rep.n_train and len(ex.heldout) == rep.n_heldout
    assert ex.heldout_measurements == rep.heldout_measurements
    assert {m.phase for m in data.measurements} <= {"explore", "adapt", "heldout"}
    # a model measured at 2 batch sizes (and more than once) is stored once
    assert len(data.models) < len(data.measurements)
    trained: dict[tuple[str, int], list[float]] = {}
    for m in data.measurements:
        if m.phase != "heldout":
            trained.setdefault((m.model, m.batch_size), []).append(m.latency_ms)
    assert max(len(v) for v in trained.values()) >= 2  # repeats happened
    assert sorted(e.measured_ms for e in ex.train) == sorted(min(v) for v in trained.values())
    # and each training example names its model: the fastest measurement of that model and batch
    assert [e.measured_ms for e in ex.train] == [min(trained[(k, e.batch_size)]) for k, e in zip(ex.train_model, ex.train, strict=True)]
    assert all(k.latency_us is not None for e in ex.train for k in e.kernels)
    # the report says how closely each held-out model's repeats agreed, as the data does
    # (a short calibration on a slow machine may have no time for repeats: then there is none)
    assert rep.repeat_agreement == repeat_agreement(data)
    assert meta["repeat_agreement"] == {b: r.to_dict() for b, r in rep.repeat_agreement.items()}
    repeated = sum(n for k, n in rep.heldout_measurements.items() if k >= 2)
    assert sum(r.n for b, r in rep.repeat_agreement.items() if b != "all") == repeated
    # each held-out reference is the fastest of its model's measurements at that batch size
    for e, model in zip(ex.heldout, ex.heldout_model, strict=True):
        ys = [m.latency_ms for m in data.measurements if m.heldout_model == model and m.batch_size == e.batch_size]
        assert e.measured_ms == min(ys)


def test_a_refit_on_the_kept_data_reproduces_the_calibration(calibrated: Any, tmp_path: Path) -> None:
    rep, data_dir = calibrated
    data = read_calibration_data(rep.artifact_path)
    meta = json.loads((rep.artifact_path / "metadata.json").read_text())
    again = refit(DEV, data, variants=False, data_dir=data_dir, source_metadata=meta)
    # same examples, same seed, same code: the same predictor and the same figures
    for group, d in rep.accuracy.items():
        for name, r in d.items():
            assert again.accuracy[group][name].to_dict() == pytest.approx(r.to_dict()), (group, name)
    assert again.interval_coverage == pytest.approx(rep.interval_coverage)
    assert again.measurement == rep.measurement
    # saved as a new version that names its source and keeps the data
    assert latest_artifact(data_dir, DEV.id) == again.artifact_path != rep.artifact_path
    assert len(list_versions(data_dir, DEV.id)) == 2
    meta2 = json.loads((again.artifact_path / "metadata.json").read_text())
    assert meta2["refit_of"] == meta["version"] and meta2["sampler"] == meta["sampler"]
    assert (again.artifact_path / DATA_FILE).read_bytes() == (rep.artifact_path / DATA_FILE).read_bytes()
    load_predictor(again.artifact_path)
    # another seed is another fit of the same data
    other = refit(DEV, data, seed=6, variants=False)
    assert other.n_train == rep.n_train and other.artifact_path is None


def test_calibration_data_round_trips_and_bad_data_is_refused(calibrated: Any, tmp_path: Path) -> None:
    rep, _ = calibrated
    data = read_calibration_data(rep.artifact_path / DATA_FILE)
    back = CalibrationData.from_bytes(data.to_bytes())
    assert back.measurements == data.measurements and back.models == data.models
    # the host's probe around a measurement (kept when measure_fn gives it) round-trips too;
    # this measure_fn gave none
    assert all(m.probe is None for m in data.measurements)
    probed = dataclasses.replace(data, measurements=[
        dataclasses.replace(m, probe=MeasuredProbe(0.2 + i / 1e3, None if i % 2 else 0.25, float(i)))
        for i, m in enumerate(data.measurements)
    ])
    again = CalibrationData.from_bytes(probed.to_bytes()).measurements
    assert again == probed.measurements and again[1].probe == MeasuredProbe(0.201, None, 1.0)
    with pytest.raises(InvalidRequestError, match="not calibration data"):
        CalibrationData.from_bytes(b"not gzip")
    with pytest.raises(InvalidRequestError, match="format"):
        CalibrationData.from_bytes(gzip.compress(b'{"format": "other"}'))
    doc = json.loads(gzip.decompress(data.to_bytes()))
    doc["models"].pop(next(iter(doc["models"])))
    with pytest.raises(InvalidRequestError, match="lacks 1 measured model"):
        CalibrationData.from_bytes(gzip.compress(json.dumps(doc).encode()))
    with pytest.raises(InvalidRequestError, match="no calibration data"):
        read_calibration_data(tmp_path)
    # a malformed document is a clear error, whichever part is wrong
    for spoil in (
        lambda d: d["measurements"][0].pop("kernels"),
        lambda d: d["measurements"][0].update(phase="warmup"),
        lambda d: next(m for m in d["measurements"] if m["phase"] == "heldout").update(heldout_model=None),
        lambda d: d["measurements"][0].update(kernels=[["k"]]),
        lambda d: d.update(models=[]),
        lambda d: d["measurements"][0].update(probe={"before_ms": "fast", "at_s": 0}),
        lambda d: d["measurements"][0].update(probe={"after_ms": 0.2}),
    ):
        bad = json.loads(gzip.decompress(data.to_bytes()))
        spoil(bad)
        with pytest.raises(InvalidRequestError, match="malformed calibration data"):
            CalibrationData.from_bytes(gzip.compress(json.dumps(bad).encode()))


def test_repeat_agreement_compares_first_two_measurements_and_confirms_the_fastest() -> None:
    def m(held: int | None, batch: int, ms: float) -> Measurement:
        phase = "explore" if held is None else "heldout"
        return Measurement("k", "f", {}, phase, batch, ms, (), held)

    data = CalibrationData(
        batch_sizes=(1, 8),
        measurements=[
            m(0, 1, 1.00), m(None, 1, 5.0), m(0, 1, 1.05), m(0, 1, 2.0),  # 5 % apart; a third is ignored
            m(1, 1, 1.20), m(1, 1, 1.00), m(1, 1, 1.02),  # 20 % apart, the slower first; a third confirms the fastest
            m(2, 1, 3.00),  # measured once: no pair
            m(0, 8, 2.00), m(0, 8, 1.90),  # 5.3 % apart
            m(None, 8, 9.0), m(None, 8, 1.0),  # training: never compared
        ],
    )
    got = {b: r.to_dict() for b, r in repeat_agreement(data).items()}
    assert list(got) == ["all", "1", "8"]
    # confirmed: the two fastest within 5 % (1.00 and 1.05; 1.00 and 1.02; not 1.90 and 2.00)
    assert got["1"] == pytest.approx({"n": 2, "within_10": 0.5, "median_difference": (0.05 + 0.20) / 2, "confirmed": 1.0})
    assert got["8"] == pytest.approx({"n": 1, "within_10": 1.0, "median_difference": 2.0 / 1.9 - 1, "confirmed": 0.0})
    assert got["all"] == pytest.approx({"n": 3, "within_10": 2 / 3, "median_difference": 2.0 / 1.9 - 1, "confirmed": 2 / 3})
    lines = [r.describe(b) for b, r in repeat_agreement(data).items()]
    assert len(lines) == 3 and "50.0% of 2 agree within 10 % (median difference 12.5 %)" in lines[1]
    assert "100.0% of the references (each the fastest) have a second measurement within 5 %" in lines[1]
    # artifacts from before the share was kept: no claim either way
    old = RepeatAgreement(2, 0.5, 0.1)
    assert "confirmed" not in old.to_dict() and "second measurement" not in old.describe("1")
    # "all" only beside several batch sizes with repeats; batch sizes in numeric order
    single = CalibrationData(batch_sizes=(1, 8), measurements=[m(0, 1, 1.0), m(0, 1, 1.1), m(0, 8, 2.0)])
    assert list(repeat_agreement(single)) == ["1"]
    wide = CalibrationData(batch_sizes=(8, 16), measurements=[m(0, 16, 1.0), m(0, 16, 1.3), m(0, 8, 1.0), m(0, 8, 1.0)])
    assert list(repeat_agreement(wide)) == ["all", "8", "16"]
    # exactly 10 % apart agrees; a data set without repeats has nothing to say
    assert repeat_agreement(CalibrationData(batch_sizes=(1,), measurements=[m(0, 1, 1.0), m(0, 1, 1.1)]))["1"].within_10 == 1.0
    assert repeat_agreement(CalibrationData(batch_sizes=(1,), measurements=[m(0, 1, 1.0), m(None, 1, 1.0)])) == {}


KEPT = Path(__file__).resolve().parents[2] / "benchmarks" / "calibrations"
# run -> the NCHWc block of its host (README: AMD Zen 3 with AVX2, then an AVX-512 Xeon)
KEPT_RUNS = {
    "2026-12-01-seed281": 8,
    "2026-12-01-seed291": 8,
    "2026-12-01-seed301": 8,
    "2026-12-01-seed311": 8,
    "2026-12-01-seed321": 8,
    "2026-12-01-seed331": 16,
    "2026-12-01-seed341": 16,
    "2026-12-01-seed351": 16,
    "2026-12-01-seed361": 16,
    "2026-12-01-seed371": 16,
    "2026-12-01-seed381": 16,
    "2026-12-01-seed401": 16,
    "2026-12-01-seed411": 16,
    "2026-12-01-seed421": 16,
    "2026-12-01-seed431": 16,
    "2026-12-01-seed441": 16,
    "2026-12-01-seed451": 16,
    "2026-12-01-seed461": 16,
    "2026-12-01-seed471": 16,
    "2026-12-01-seed481": 16,
    "2026-12-01-seed491": 16,
    "2026-12-01-seed501": 16,
    "2026-12-01-seed511": 16,
    "2026-12-02-seed531": 16,
    "2026-12-02-seed541": 16,
    "2026-12-02-seed551": 16,
    "2026-12-02-seed561": 16,
    "2026-12-02-seed571": 16,
    "2026-12-02-seed581": 16,
    "2026-12-02-seed591": 16,
    "2026-12-02-seed601": 16,
    "2026-12-02-seed611": 16,
    "2026-12-02-seed621": 16,
    "2026-12-02-seed631": 16,
    "2026-12-02-seed641": 16,
    "2026-12-02-seed651": 16,
    "2026-12-02-seed661": 16,
    "2026-12-02-seed671": 16,
    "2026-12-02-seed681": 16,
    "2026-12-02-seed691": 16,
    "2026-12-02-seed701": 16,
    "2026-12-02-seed711": 16,
    "2026-12-02-seed721": 16,
    "2026-12-02-seed731": 16,
    "2026-12-02-seed741": 16,
    "2026-12-02-seed751": 16,
    "2026-12-02-seed761": 16,
    "2026-12-02-seed771": 16,
    "2026-12-02-seed781": 16,
    "2026-12-02-seed791": 16,
    "2026-12-02-seed801": 16,
    "2026-12-02-seed811": 16,
    "2026-12-02-seed821": 16,
    "2026-12-02-seed831": 16,
    "2026-12-02-seed841": 16,
    "2026-12-03-seed851": 16,
    "2026-12-03-seed861": 16,
    "2026-12-03-seed871": 16,
}


def test_the_kept_calibrations_are_there() -> None:
    assert all((KEPT / run / DATA_FILE).is_file() for run in KEPT_RUNS)


@pytest.mark.parametrize("path", [KEPT / run for run in KEPT_RUNS], ids=lambda p: p.name)
def test_the_kept_calibrations_still_read_and_show_their_hosts_nchwc_block(path: Path) -> None:
    # real measurements kept in the repository (benchmarks/calibrations/README.md): this
    # code must read them, and what their profiles show must decide the pseudo kernels
    meta = json.loads((path / "metadata.json").read_text())
    data = read_calibration_data(path)
    assert list(data.batch_sizes) == meta["batch_sizes"] == [1, 8]
    # one training example per (model, batch size); seeds 301-321 measured each twice
    # (seed 301's calibration counted two configurations that build one model as two)
    measured = sum(m.phase != "heldout" for m in data.measurements)
    pairs = {(m.model, m.batch_size) for m in data.measurements if m.phase != "heldout"}
    # (a calibration fitted with priors counts their examples too: the data holds its own)
    own = meta["n_train"] - (meta.get("calibration_priors") or {}).get("n_train", 0)
    assert len(pairs) <= own <= measured
    if meta.get("trust_settled"):
        # measured twice unless settled (a pair settled on its second measurement counts both)
        assert measured >= 2 * len(pairs) - meta["train_settled"] and meta["train_settled"] <= len(pairs)
    else:
        assert measured > 1.8 * len(pairs) if meta.get("train_repeats", 1) == 2 else measured == meta["n_train"]
    counts: dict[int, int] = {}
    for key in {(m.heldout_model, m.batch_size) for m in data.measurements if m.heldout_model is not None}:
        n = sum(1 for m in data.measurements if (m.heldout_model, m.batch_size) == key)
        counts[n] = counts.get(n, 0) + 1
    assert {str(k): v for k, v in counts.items()} == meta["heldout_measurements"]
    # from seed 491 on, every measurement keeps the host's probe around it, in time order
    probes = [m.probe for m in data.measurements]
    if path.name >= "2026-12-01-seed491":
        assert all(p is not None and 0.1 < p.before_ms < 10.0 for p in probes)
        assert [p.at_s for p in probes if p] == sorted(p.at_s for p in probes if p)
    else:
        assert probes == [None] * len(probes)
    # an AVX2 host pads blocked Convs to 8 channels (24 -> 24), an AVX-512 host to 16 (24 -> 32):
    # the profiles alone tell the first; the second needs the graphs' pseudo kernels beside them
    block = nchwc_block_from_kernels(k for m in data.measurements for k in m.kernels)
    if block is None:
        block = nchwc_block_from_examples((e.graph, e.kernels) for e in data.examples().train)
    assert block == KEPT_RUNS[path.name]
    agreement = repeat_agreement(data)
    assert agreement["all"].n == sum(v for k, v in counts.items() if k >= 2)
    # as the calibration reported it, where it did (noisy hosts: under 0.5 in four of the ten, README)
    assert agreement["all"].to_dict() | meta.get("repeat_agreement", {}).get("all", {}) == agreement["all"].to_dict()
    # from seed 421 on, each training model at one batch size, batch 1 twice as often
    if meta.get("train_batch_cycle") == [[1], [1], [8]]:
        at: dict[str, set[int]] = {}
        for model, batch in pairs:
            at.setdefault(model, set()).add(batch)
        assert sum(len(v) > 1 for v in at.values()) <= 2  # two configurations may build one model
        ones = sum(1 in v for v in at.values())
        assert 0 < ones < len(at) and 1.6 <= ones / (len(at) - ones) <= 2.5, (ones, len(at))
