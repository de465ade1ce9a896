from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from ortprofile import CPU_1T, ort_measure

from nascost.predictors.analysis import analyze
from nascost.predictors.calibration import CalibrationProgress, CalibrationReport, calibrate
from nascost.predictors.calibration_data import read_calibration_data
from nascost.predictors.devices import Device
from nascost.predictors.errors import InvalidModelError, InvalidRequestError
from nascost.predictors.graph import ShapeRequest, load_graph
from nascost.predictors.learned import latest_artifact, load_predictor
from nascost.predictors.sampler import BATCH_DIM

DEV = CPU_1T


@pytest.fixture(scope="module")
def small_calibration(tmp_path_factory: pytest.TempPathFactory) -> Any:
    seen: list[CalibrationProgress] = []
    data = tmp_path_factory.mktemp("data")
    rep = calibrate(
        DEV,
        budget_s=8.0,
        measure_fn=ort_measure,
        batch_sizes=(1, 2),
        seed=3,
        progress=seen.append,
        data_dir=data,
        max_macs_per_example=8e6,
        variants=True,
        heldout_repeats=1,  # more held-out models for the interval's cross-fitted coverage (repeats: tested below)
    )
    return rep, seen, data


def test_small_real_calibration_reports_every_predictor(small_calibration: Any) -> None:
    rep, seen, _ = small_calibration
    assert rep.n_train >= 8 and rep.n_heldout >= 4
    assert rep.selected_predictor == "learned_kernel_sum"
    # every held-out model is a test model: "learned" is the kernel sum, not chosen on half of them
    assert rep.accuracy["all"]["learned"].n == rep.n_heldout
    assert rep.accuracy["all"]["learned"].to_dict() == rep.accuracy["all"]["learned_kernel_sum"].to_dict()
    assert set(rep.accuracy) == {"all", "1", "2", "in_dist_cv"}
    for name, group in rep.accuracy.items():
        if name == "in_dist_cv":
            continue
        assert {
            "learned",
            "roofline",
            "flops_only",
            "learned_kernel_sum",
            "learned_roofline_prior",
            "learned_kernel_sum_prior",
            "learned_no_kernels",
            "learned_no_prior",
        } <= set(
            group
        )
        for r in group.values():
            assert 0 <= r.within_5 <= r.within_10 <= r.within_15 <= 1
            assert -1 <= r.kendall <= 1 and r.mape >= 0
    phases = {p.phase for p in seen}
    assert {"heldout", "explore", "fit"} <= phases
    assert [p.n_measured for p in seen if p.phase != "fit"] == sorted(p.n_measured for p in seen if p.phase != "fit")
    # latency grows with the batch: ranking across the held-out set is far from random
    assert rep.accuracy["all"]["learned"].spearman > 0.5
    assert set(rep.interval_coverage) == {"all", "1", "2"}
    assert all(0.0 <= c <= 1.0 for c in rep.interval_coverage.values())
    text = rep.table()
    assert "learned" in text and "flops_only" in text and "Kendall" in text
    assert json.loads(json.dumps(rep.to_dict()))["n_train"] == rep.n_train


def test_calibration_saved_a_loadable_artifact(small_calibration: Any) -> None:
    rep, _, data = small_calibration
    assert latest_artifact(data, DEV.id) == rep.artifact_path
    meta = json.loads((rep.artifact_path / "metadata.json").read_text())
    assert meta["heldout_metrics"]["all"]["learned"]["n"] == rep.accuracy["all"]["learned"].n
    assert meta["selected_variant"] == rep.selected_predictor
    # what each training latency is, as measure_fn describes itself
    assert meta["measurement"] == {
        "timing_statistic": "median of 7 runs after 1 warm-up",
        "settings": {"intra_op_threads": 1, "optimization_level": "default"},
    }
    assert rep.measurement == meta["measurement"]
    assert meta["sampler"]["max_macs_per_example"] == 8e6 and meta["sampler"]["resnet50_reference"] is None
    p = load_predictor(rep.artifact_path)
    # profile events became kernel records: variants that use kernels have a kernel model
    uses_kernels = rep.selected_predictor in ("learned_kernel_sum", "learned_roofline_prior", "learned_kernel_sum_prior")
    assert meta["has_kernel_model"] == uses_kernels == (p.kernel_model_ is not None)


def test_few_shot_curve_from_a_source_predictor(small_calibration: Any) -> None:
    rep, _, _ = small_calibration
    slower = Device("cpu-slow", "twice the source's time", "custom", DEV.spec)

    def slow_measure(model_bytes: bytes, batch: int) -> tuple[float, list[dict[str, Any]], None]:
        # a device exactly twice as slow as the source predictor says: what few-shot
        # adaptation should recover, free of this machine's timing noise (which made a
        # real-timed version of this test flaky on a noisy host)
        g = load_graph(onnx.load_from_string(model_bytes), ShapeRequest(dim_values={BATCH_DIM: batch}))
        return 2.0 * rep.predictor.predict_graph(g, analyze(g), batch).latency_ms, [], None

    rep2 = calibrate(
        slower,
        budget_s=4.0,
        measure_fn=slow_measure,
        batch_sizes=(1,),
        seed=5,
        source_predictor=rep.predictor,
        max_macs_per_example=8e6,
        variants=False,
        heldout_repeats=1,
    )
    curve = rep2.few_shot["all"]
    assert 0 in curve and 5 in curve
    # k = 0 is the source model as is (2x off: MAPE 50 %); 5 samples recover the scale
    assert curve[0].mape == pytest.approx(0.5, abs=1e-6)
    assert curve[5].mape < 0.05


def test_failed_measurements_are_skipped_and_bad_args_rejected() -> None:
    calls = {"n": 0}

    def flaky(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None]:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise InvalidModelError("worker refused it")
        return 1.0 + len(model_bytes) / 1e6, [], None

    rep = calibrate(DEV, budget_s=2.0, measure_fn=flaky, batch_sizes=(1,), max_macs_per_example=4e6, variants=False)
    assert rep.n_failed > 0 and rep.n_train > 0
    with pytest.raises(InvalidRequestError):
        calibrate(DEV, budget_s=0, measure_fn=flaky)
    with pytest.raises(InvalidRequestError):
        calibrate(DEV, budget_s=1, measure_fn=flaky, batch_sizes=(0,))


def test_measurement_description_args_win_and_resnet50_is_held_out() -> None:
    sizes: list[int] = []

    def by_size(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None]:
        sizes.append(len(model_bytes))
        return 0.5 + batch * len(model_bytes) / 2e6, [], None

    by_size.timing_statistic = "ignored: the argument wins"  # type: ignore[attr-defined]
    rep = calibrate(
        DEV,
        budget_s=1.0,
        measure_fn=by_size,
        batch_sizes=(1,),
        max_macs_per_example=5e9,
        variants=False,
        timing_statistic="lowest of 3 window medians",
        measurement_settings={"intra_op_threads": 1},
    )
    assert rep.measurement == {"timing_statistic": "lowest of 3 window medians", "settings": {"intra_op_threads": 1}}
    # the first held-out model is ResNet-50 itself: 25.5 M float32 weights, > 100 MB serialized
    assert sizes[0] > 100e6
    # undescribed measure_fn: recorded as such
    plain = calibrate(DEV, budget_s=0.5, measure_fn=lambda b, n: (1.0 + len(b) / 1e6, [], None), max_macs_per_example=4e6, variants=False)
    assert plain.measurement["timing_statistic"].startswith("p50_ms (as returned by measure_fn")


def test_held_out_models_are_interleaved_with_training_ones_in_time() -> None:
    # a machine that slows down steadily: without interleaving, the held-out models (all
    # measured first) would be the fast ones
    phases: list[tuple[str, float]] = []
    t0 = time.monotonic()

    def drifting(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None]:
        # measuring takes most of a turn, as on a real device (building a model here takes
        # 10-100 ms; with 4 ms measurements on a loaded machine the two first held-out turns
        # alone filled the held-out share of a 3 s budget)
        time.sleep(0.04)
        return (1.0 + len(model_bytes) / 1e6) * (1.0 + (time.monotonic() - t0)), [], None

    rep = calibrate(
        DEV,
        budget_s=6.0,
        measure_fn=drifting,
        batch_sizes=(1,),
        max_macs_per_example=4e6,
        variants=False,
        heldout_fraction=0.25,
        heldout_repeats=1,
        train_repeats=1,  # one measurement, one example (repeats: tested below)
        progress=lambda p: phases.append((p.phase, time.monotonic() - t0)),
    )
    measured = [(p, t) for p, t in phases if p != "fit"]
    held = [t for p, t in measured if p == "heldout"]
    trained = [t for p, t in measured if p != "heldout"]
    assert rep.n_heldout == len(held) and rep.n_train == len(trained)
    assert 4 <= len(held) < len(measured) / 2
    assert {"explore", "adapt"} <= {p for p, _ in measured}
    # both sets saw the same drift on average: their mean measuring times are close, on the
    # clock of measuring. A refit of the family errors measures nothing and can take a third of
    # this small budget on a loaded machine (the first: nothing tells how long it will be),
    # and held-out turns catch up on its time after it, so a pause between two measurements
    # counts as a typical turn. (On the wall clock a 6 s run failed 1 of 4 times with another
    # process busy: 2 s of refit, then the adapt phase's training models alone.)
    times = [t for _, t in measured]
    gaps = np.diff(times)
    turn = float(np.median(gaps))
    clock = dict(zip(times, np.concatenate([[0.0], np.cumsum(np.minimum(gaps, 3 * turn))]), strict=True))
    held_c = [clock[t] for t in held]
    trained_c = [clock[t] for t in trained]
    span = clock[times[-1]]
    assert abs(np.mean(held_c) - np.mean(trained_c)) < 0.2 * span, (held_c, trained_c)
    # measured first, the held-out set would sit at the start
    assert max(held) > min(trained)


def _calibrate_recorded(
    latency: Callable[[int, str, int], float], **kw: Any
) -> tuple[CalibrationReport, dict[tuple[str, int], list[tuple[float, float]]]]:
    """A 5 s calibration (batch 1 and 2, half of the time held out) on a made-up device whose
    latency is ``latency(model size, model digest, measurements of it so far)``; returns the
    report and every held-out (model digest, batch)'s measurements as (time, latency)."""
    calls: list[list[Any]] = []  # [model digest, batch, time, latency, phase]

    def measure(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None]:
        time.sleep(0.004)
        digest = hashlib.sha256(model_bytes).hexdigest()
        y = latency(len(model_bytes), digest, sum(1 for c in calls if c[0] == digest and c[1] == batch))
        calls.append([digest, batch, time.monotonic(), y, None])
        return y, [], None

    def tag(p: CalibrationProgress) -> None:
        if p.phase != "fit":
            calls[-1][4] = p.phase

    rep = calibrate(
        DEV,
        budget_s=5.0,
        measure_fn=measure,
        batch_sizes=(1, 2),
        max_macs_per_example=4e6,
        variants=False,
        heldout_fraction=0.5,
        progress=tag,
        **kw,
    )
    held: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for digest, batch, t, y, phase in calls:
        if phase == "heldout":
            held.setdefault((digest, batch), []).append((t, y))
    return rep, held


def _steady(size: int, digest: str, nth: int) -> float:
    return 1.0 + size / 1e6


def test_held_out_models_are_measured_again_later_and_referenced_by_their_fastest() -> None:
    gap = 0.4
    begun = time.monotonic()
    rep, by_pair = _calibrate_recorded(_steady, heldout_repeats=3, heldout_repeat_gap_s=gap)
    counts = rep.heldout_measurements
    assert sum(counts.values()) == rep.n_heldout  # every (model, batch) pair has one reference
    # made of every held-out measurement
    assert sum(k * v for k, v in counts.items()) == sum(len(ms) for ms in by_pair.values())
    # no model is drawn once too little of the budget (5 s) is left for its repeats (two gaps),
    # so all but a few get them all (a refit of the family errors can stall this small budget)
    # (a first measurement ends after its model is drawn, built and analysed: 0.08-0.13 s on a
    # slow moment of a 2-vCPU host, so the margin; the budget's last stretch is 0.8 s)
    firsts = [ms[0][0] - begun for ms in by_pair.values()]
    assert max(firsts) < 5.0 - 2 * gap + 0.25, sorted(firsts)
    assert counts.get(3, 0) >= 0.75 * rep.n_heldout, counts
    # repeats wait for the gap (sooner only in the budget's last stretch)
    gaps = [b[0] - a[0] for ms in by_pair.values() for a, b in itertools.pairwise(ms)]
    assert gaps and sorted(gaps)[len(gaps) // 2] >= gap
    assert "fastest of each model's measurements at different times" in rep.table()
    with pytest.raises(InvalidRequestError):
        calibrate(DEV, budget_s=1, measure_fn=lambda b, n: (1.0, [], None), heldout_repeats=0)


def test_a_held_out_pair_that_disagrees_is_measured_a_third_time() -> None:
    def disturbed(size: int, digest: str, nth: int) -> float:
        # half of the models are slowed by 30 % on their second measurement, the rest by 1 %
        slowed = 1.3 if int(digest, 16) % 2 == 0 else 1.01
        return (1.0 + size / 1e6) * (slowed if nth == 1 else 1.0)

    rep, held = _calibrate_recorded(
        disturbed, heldout_repeats=2, heldout_max_repeats=3, heldout_agreement=0.05, heldout_repeat_gap_s=0.3
    )
    by_pair = {k: [y for _, y in ms] for k, ms in held.items()}
    agreeing = [ys for (d, _), ys in by_pair.items() if int(d, 16) % 2 == 1]
    slowed = [ys for (d, _), ys in by_pair.items() if int(d, 16) % 2 == 0 and len(ys) >= 2]
    assert agreeing and slowed
    assert max(len(ys) for ys in agreeing) == 2  # a pair within 5 % is done
    assert max(len(ys) for ys in slowed) == 3  # never more than three
    # every slowed pair gets its third, unless its second came in the budget's last stretch
    # (how long that is depends on the machine: each sample is built and analysed first)
    last = max(t for ms in held.values() for t, _ in ms)
    without = [ms[1][0] - last for (d, _), ms in held.items() if int(d, 16) % 2 == 0 and len(ms) == 2]
    assert all(dt > -1.5 for dt in without), without
    assert any(len(ys) == 3 for ys in slowed)
    counts = rep.heldout_measurements
    assert sum(k * v for k, v in counts.items()) == sum(len(ys) for ys in by_pair.values())
    assert counts.get(3, 0) == sum(len(ys) == 3 for ys in slowed)
    with pytest.raises(InvalidRequestError):
        calibrate(DEV, budget_s=1, measure_fn=lambda b, n: (1.0, [], None), heldout_agreement=-0.1)


def test_a_held_out_pair_never_measured_on_a_quiet_host_is_measured_again(tmp_path: Path) -> None:
    from nascost.predictors.learned import read_metadata

    # measure_fn vouches for the measurements of half of the models (settled), never for the
    # rest; every measurement agrees with the others
    def measure(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None, bool]:
        time.sleep(0.004)
        quiet = int(hashlib.sha256(model_bytes).hexdigest(), 16) % 2 == 0
        return 1.0 + len(model_bytes) / 1e6, [], None, quiet

    seen: dict[tuple[bytes, int], int] = {}

    def counted(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None, bool]:
        seen[(model_bytes, batch)] = seen.get((model_bytes, batch), 0) + 1
        return measure(model_bytes, batch)

    rep = calibrate(
        DEV,
        budget_s=5.0,
        measure_fn=counted,
        batch_sizes=(1,),
        max_macs_per_example=4e6,
        variants=False,
        heldout_fraction=0.5,
        heldout_repeats=2,
        heldout_max_repeats=4,
        heldout_repeat_gap_s=0.2,
        data_dir=tmp_path,
    )
    assert rep.artifact_path is not None
    meta = read_metadata(rep.artifact_path)
    counts = rep.heldout_measurements
    # a quiet pair is done at two (its measurements agree), one never quiet goes on to four
    # (or fewer when the budget ended first: the stretch holds one model's repeats)
    assert counts.get(2, 0) >= 2 and counts.get(4, 0) >= 2, counts
    assert not set(counts) - {1, 2, 3, 4}, counts
    assert meta["heldout_vouched"] == rep.n_heldout
    assert 0 < meta["heldout_quiet"] < meta["heldout_vouched"]
    assert meta["heldout_until_quiet"] is True


def test_a_held_out_pair_is_due_again_only_while_it_disagrees() -> None:
    from nascost.predictors.calibration import _HeldOut
    from nascost.predictors.learned import TrainingExample
    from nascost.predictors.sampler import build

    s = build("vit_like", 0, max_macs_per_example=4e6)
    g = load_graph(s.model, ShapeRequest(dim_values={BATCH_DIM: 1}))
    e = TrainingExample(g, analyze(g), 1, 10.0, (), "vit_like")

    def due(ys: list[float], batch: int = 1, times: int | None = None, most: int = 3) -> bool:
        h = _HeldOut(s, 1, first={1: e}, latencies={1: ys}, times_measured=len(ys) if times is None else times)
        return h.due(batch, 2, most, 0.05)

    assert due([10.0])  # fewer than the repeats
    assert not due([10.0, 10.4]) and not due([10.4, 10.0])  # within 5 %
    assert due([10.0, 10.6]) and due([10.6, 10.0])
    assert not due([10.0, 13.0, 10.2])  # three at most
    # the two fastest decide: two slowed measurements agreeing with each other do not
    assert due([10.0, 13.0, 13.1], most=5) and not due([13.0, 10.0, 10.2], most=5)
    assert not due([10.0, 13.0, 13.1, 13.2, 12.9], most=5)
    assert not due([10.0], batch=8)  # a batch size whose first measurement failed is no reference
    assert not due([10.0, 10.6], times=3)  # a failed third measurement counts: no fourth turn

    def due_quiet(ys: list[float], quiet: bool | None, until_quiet: bool = True) -> bool:
        h = _HeldOut(s, 1, first={1: e}, latencies={1: ys}, times_measured=len(ys))
        if quiet is not None:
            h.quiet[1] = quiet
        return h.due(1, 2, 4, 0.05, until_quiet)

    # agreeing measurements none of which was settled: again, up to the most
    assert due_quiet([10.0, 10.1], quiet=False) and due_quiet([10.0, 10.1, 10.2], quiet=False)
    assert not due_quiet([10.0, 10.1, 10.2, 10.0], quiet=False)
    assert not due_quiet([10.0, 10.1], quiet=True)  # one settled: done
    assert not due_quiet([10.0, 10.1], quiet=None)  # measure_fn never said: the old rule
    assert not due_quiet([10.0, 10.1], quiet=False, until_quiet=False)
    assert due_quiet([10.0], quiet=True)  # settled, but fewer than the repeats


def test_a_held_out_reference_is_the_fastest_of_its_measurements() -> None:
    from nascost.predictors.calibration import _HeldOut
    from nascost.predictors.learned import TrainingExample
    from nascost.predictors.sampler import build

    s = build("vit_like", 0, max_macs_per_example=4e6)
    g = load_graph(s.model, ShapeRequest(dim_values={BATCH_DIM: 1}))
    first = TrainingExample(g, analyze(g), 1, 13.0, (), "vit_like")
    h = _HeldOut(s, 1, first={1: first}, latencies={1: [13.0, 10.0, 10.4]})
    ((e, n),) = h.examples()
    assert n == 3 and e.measured_ms == 10.0 and e.graph is g  # a slowed first measurement does not count


def _architecture_digest(model_bytes: bytes) -> str:
    """A model's digest without its random float weights: its architecture."""
    m = onnx.load_from_string(model_bytes)
    for w in m.graph.initializer:
        if w.data_type == onnx.TensorProto.FLOAT:
            w.ClearField("raw_data")
            w.ClearField("float_data")
    return hashlib.sha256(m.graph.SerializeToString()).hexdigest()


def test_training_models_are_measured_twice_apart_and_train_on_the_faster(tmp_path: Path) -> None:
    calls: list[tuple[str, int, float, float]] = []  # architecture digest, batch, time, latency

    def measure(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None]:
        time.sleep(0.004)
        digest = _architecture_digest(model_bytes)
        first = not any(c[0] == digest and c[1] == batch for c in calls)
        # half of the models are slowed by 30 % on their first measurement
        y = (1.0 + len(model_bytes) / 1e6) * (1.3 if first and int(digest, 16) % 2 == 0 else 1.0)
        calls.append((digest, batch, time.monotonic(), y))
        return y, [], None

    phases: list[str] = []
    gap, budget = 0.3, 5.0
    start = time.monotonic()
    rep = calibrate(
        DEV,
        budget_s=budget,
        measure_fn=measure,
        batch_sizes=(1, 2),
        max_macs_per_example=4e6,
        variants=False,
        train_repeat_gap_s=gap,
        data_dir=tmp_path,
        progress=lambda p: phases.append(p.phase) if p.phase != "fit" else None,
    )
    assert len(phases) == len(calls)  # progress follows every measurement
    trained: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for (digest, batch, t, y), phase in zip(calls, phases, strict=True):
        if phase != "heldout":
            trained.setdefault((digest, batch), []).append((t, y))
    # a gap apart unless the repeat came in the budget's last stretch
    assert all(
        ms[1][0] - ms[0][0] >= gap or ms[1][0] - start >= budget - gap for ms in trained.values() if len(ms) == 2
    )
    # the kept data knows a model by its stripped bytes (two configurations can build one):
    # most models measured at least twice, one example each, on its fastest measurement
    data = read_calibration_data(rep.artifact_path)
    groups: dict[tuple[str, int], list[float]] = {}
    for m in data.measurements:
        if m.phase != "heldout":
            groups.setdefault((m.model, m.batch_size), []).append(m.latency_ms)
    assert sum(len(v) for v in groups.values()) == sum(len(ms) for ms in trained.values())
    assert sum(len(v) >= 2 for v in groups.values()) >= len(groups) / 2, groups
    assert rep.n_train == len(groups)
    # the slowed first measurements are gone: each example is its model's fastest
    assert sorted(e.measured_ms for e in data.examples().train) == pytest.approx(sorted(min(v) for v in groups.values()))
    meta = json.loads((rep.artifact_path / "metadata.json").read_text())
    assert (meta["train_repeats"], meta["train_repeat_gap_s"]) == (2, gap)
    with pytest.raises(InvalidRequestError):
        calibrate(DEV, budget_s=1, measure_fn=lambda b, n: (1.0, [], None), train_repeats=0)


def _recorded_calibration(settled: Callable[[int], bool], **kwargs: Any) -> tuple[list[tuple[str, int, str]], CalibrationReport]:
    """A calibration of small models on a fake measurement (latency from the model's size,
    settled as ``settled(batch)`` says); every measurement's (architecture, batch, phase)."""
    calls: list[tuple[str, int]] = []

    def measure(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None, bool]:
        time.sleep(0.004)
        calls.append((_architecture_digest(model_bytes), batch))
        return 1.0 + len(model_bytes) / 1e6, [], None, settled(batch)

    phases: list[str] = []
    rep = calibrate(
        DEV,
        measure_fn=measure,
        max_macs_per_example=4e6,
        variants=False,
        progress=lambda p: phases.append(p.phase) if p.phase != "fit" else None,
        **kwargs,
    )
    return [(d, b, p) for (d, b), p in zip(calls, phases, strict=True)], rep


@pytest.mark.parametrize("trust", [True, False])
def test_a_settled_training_measurement_is_not_repeated(tmp_path: Path, trust: bool) -> None:
    # the host was quiet throughout every batch-1 measurement, never at batch 2
    calls, rep = _recorded_calibration(
        lambda batch: batch == 1,
        budget_s=3.0,
        batch_sizes=(1, 2),
        train_repeat_gap_s=0.2,
        trust_settled=trust,
        data_dir=tmp_path,
    )
    per: dict[tuple[str, int], int] = {}
    for digest, batch, phase in calls:
        if phase != "heldout":
            per[(digest, batch)] = per.get((digest, batch), 0) + 1
    once = {b: sum(n == 1 for (_, bb), n in per.items() if bb == b) for b in (1, 2)}
    total = {b: sum(bb == b for _, bb in per) for b in (1, 2)}
    # each training configuration at one batch size, batch 1 twice as often (train_batch_cycle)
    data = read_calibration_data(rep.artifact_path)
    at: dict[str, set[int]] = {}
    for m in data.measurements:
        if m.phase != "heldout":
            at.setdefault(m.family + json.dumps(dict(m.config), sort_keys=True), set()).add(m.batch_size)
    assert all(len(b) == 1 for b in at.values()), at
    configs = {b: sum(bs == {b} for bs in at.values()) for b in (1, 2)}
    assert 0 <= configs[1] - 2 * configs[2] <= 2, configs
    # two configurations that build one model are one model: a fast host draws enough small
    # models in 3 s (120) for a few such pairs, each one fewer model at its batch size
    merged = {b: configs[b] - total[b] for b in (1, 2)}
    assert total[2] >= 5 and abs(total[1] - 2 * total[2]) <= 2 + merged[1] + 2 * merged[2], (total, merged)
    assert len({d for d, b in per if b == 1} & {d for d, b in per if b == 2}) <= 2, per
    # unsettled batch-2 measurements are repeated (but in the budget's last stretch)
    assert once[2] <= total[2] / 3, per
    if trust:
        # settled batch-1 ones are not (a model drawn twice by two configurations is measured twice)
        assert once[1] >= 0.9 * total[1], per
    else:
        assert once[1] <= total[1] / 3, per
    meta = json.loads((rep.artifact_path / "metadata.json").read_text())
    batch1_models = {m.model for m in data.measurements if m.phase != "heldout" and m.batch_size == 1}
    assert meta["trust_settled"] is trust
    assert meta["train_settled"] == (len(batch1_models) if trust else 0)


def test_held_out_models_are_distinct_though_the_sampler_repeats_small_ones() -> None:
    from nascost.predictors.sampler import heldout_samples

    # small held-out configurations repeat when drawn plainly
    plain = [json.dumps([s.family, s.config], sort_keys=True) for s in heldout_samples(12, 3, max_macs_per_example=1e8)]
    assert len(set(plain)) < len(plain)
    digests: list[str] = []

    def recorded(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None]:
        time.sleep(0.004)
        digests.append(_architecture_digest(model_bytes))
        return 1.0 + len(model_bytes) / 1e6, [], None

    phases: list[str] = []
    rep = calibrate(
        DEV,
        budget_s=4.0,
        measure_fn=recorded,
        batch_sizes=(1,),
        max_macs_per_example=1e8,
        variants=False,
        heldout_fraction=0.75,
        heldout_repeats=1,
        progress=lambda p: phases.append(p.phase) if p.phase != "fit" else None,
    )
    held = [d for d, p in zip(digests, phases, strict=True) if p == "heldout"]
    assert len(held) == rep.n_heldout >= 8
    assert len(set(held)) == len(held), (len(set(held)), len(held))


def test_train_batch_cycle() -> None:
    from nascost.predictors.calibration import train_batch_cycle

    assert train_batch_cycle((8, 1)) == [[1], [1], [8]]
    assert train_batch_cycle((1, 4, 8)) == [[1], [1], [4], [8]]
    assert train_batch_cycle((2,)) == [[2]]
    assert train_batch_cycle((8, 1), one_batch=False) == [[8, 1]]  # in the order asked


@pytest.mark.parametrize("one_batch", [True, False])
def test_training_models_take_one_batch_size_each_unless_asked_for_all(tmp_path: Path, one_batch: bool) -> None:
    # settled: no training repeats
    calls, rep = _recorded_calibration(
        lambda batch: True, budget_s=2.5, batch_sizes=(1, 8), train_one_batch=one_batch, data_dir=tmp_path
    )
    batches: dict[str, set[int]] = {}
    held: dict[str, set[int]] = {}
    for digest, batch, phase in calls:
        (held if phase == "heldout" else batches).setdefault(digest, set()).add(batch)
    assert all(v == {1, 8} for v in held.values()), held
    sizes = [len(v) for v in batches.values()]
    assert len(sizes) >= 10
    if one_batch:
        # a model two configurations build may be at both; batch 1 about twice as often
        assert sum(n == 1 for n in sizes) >= len(sizes) - 2, batches
        at1 = sum(1 in v for v in batches.values())
        assert 1.5 <= at1 / max(1, sum(8 in v for v in batches.values())) <= 2.6, batches
    else:
        assert all(n == 2 for n in sizes), batches
    meta = json.loads((rep.artifact_path / "metadata.json").read_text())
    assert meta["train_batch_cycle"] == ([[1], [1], [8]] if one_batch else [[1, 8]])


def test_the_fit_and_report_use_the_device_as_it_stands_when_measuring_ends(tmp_path: Path) -> None:
    """The server measures the local peaks again during a calibration (a slow phase at
    start reads them low); ``refresh_device`` hands the final fit the device as it is then."""
    import dataclasses

    faster = dataclasses.replace(DEV, spec=dataclasses.replace(DEV.spec, peak_flops_per_s={"float32": 3 * DEV.spec.peak_for("float32")}))
    asked: list[int] = []

    def refresh() -> Device:
        asked.append(1)
        return faster

    def measure(model_bytes: bytes, batch: int) -> tuple[float, list[Any], None]:
        time.sleep(0.004)
        return 1.0 + len(model_bytes) / 1e6, [], None

    kwargs: dict[str, Any] = dict(budget_s=1.5, measure_fn=measure, max_macs_per_example=4e6, variants=False)
    before = calibrate(DEV, data_dir=tmp_path / "a", **kwargs)
    after = calibrate(DEV, data_dir=tmp_path / "b", refresh_device=refresh, **kwargs)
    assert asked == [1]
    assert Device.from_dict(json.loads((after.artifact_path / "metadata.json").read_text())["device"]) == faster
    assert Device.from_dict(json.loads((before.artifact_path / "metadata.json").read_text())["device"]) == DEV
    assert load_predictor(after.artifact_path).device == faster
