"""Predict and Estimate through a real server."""

from __future__ import annotations

import pytest

from nascost.client import Client, FailedPrecondition, InvalidArgument, NotFound
from nascost.predictors.devices import load_shipped_catalogue
from nascost.server.demo import tiny_resnet
from nascost.v1 import indicators_pb2, measurement_pb2


def test_roofline_follows_its_formula_on_a_registered_device(server_target: str) -> None:
    model = tiny_resnet(channels=8, blocks=1)
    with Client(server_target) as c:
        c.register_device(
            "toy-1gflops", peak_flops_per_s={"float32": 1e9}, memory_bandwidth_bytes_per_s=2e9, source="test"
        )
        a = c.analyze(model, dim_values={"batch": 1})
        r = c.predict(model, device_ids=["toy-1gflops"], dim_values={"batch": 1}, predictors=["roofline"])
    (device,) = r.devices
    (p,) = device.predictions
    expected_ms = 1e3 * sum(max(n.flops / 1e9, n.memory_access_bytes / 2e9) for n in a.nodes)
    assert p.latency_ms.value == pytest.approx(expected_ms, rel=1e-9)
    assert p.latency_ms.unit == "ms"
    assert p.latency_ms.provenance.source == indicators_pb2.SOURCE_PREDICTED
    assert p.latency_ms.provenance.method == "roofline"
    assert 0.0 <= p.compute_bound_fraction <= 1.0
    assert device.peak_memory_bytes.value == a.peak_activation_bytes + a.weight_bytes


def test_predict_every_device_and_bad_requests(server_target: str) -> None:
    model = tiny_resnet()
    with Client(server_target) as c:
        everything = c.predict(model, dim_values={"batch": 1})
        ids = {d.id for d in c.devices()}
        assert {d.device_id for d in everything.devices} == ids
        fast = {d.device_id: d.predictions[-1].latency_ms.value for d in everything.devices}
        assert fast["nvidia-h100-sxm5"] < fast["raspberry-pi-5"]  # a datacenter GPU beats a Pi
        with pytest.raises(NotFound):
            c.predict(model, device_ids=["nope"], dim_values={"batch": 1})
        with pytest.raises(InvalidArgument, match="unknown predictor"):
            c.predict(model, device_ids=["local"], dim_values={"batch": 1}, predictors=["oracle"])
        with pytest.raises(FailedPrecondition, match="calibrate"):
            c.predict(model, device_ids=["nvidia-t4"], dim_values={"batch": 1}, predictors=["learned"])


def test_the_roofline_says_how_far_off_it_was_where_the_catalogue_measured_it(server_target: str) -> None:
    model = tiny_resnet()
    with Client(server_target) as c:
        r = c.predict(model, device_ids=["nvidia-h200-sxm", "nvidia-h100-sxm5"], dim_values={"batch": 1}, predictors=["roofline"])
    got = {d.device_id: d.predictions[0] for d in r.devices}
    h200 = got["nvidia-h200-sxm"]
    ev = {d.id: d for d in load_shipped_catalogue()}["nvidia-h200-sxm"].roofline_evaluation
    # the catalogue's record (bench_gpu_roofline on the lent H200), not this server's measurements
    assert h200.latency_ms.provenance.error_is_evaluated
    assert h200.latency_ms.provenance.expected_error_pct == pytest.approx(100 * ev["mape"])
    assert h200.heldout_within_10pct == pytest.approx(ev["within_10"])
    note = h200.latency_ms.provenance.note
    assert "27 cases" in note and "CUDA-graph" in note and "not by this server" in note
    # a catalogue device nobody measured stays unevaluated
    h100 = got["nvidia-h100-sxm5"]
    assert not h100.latency_ms.provenance.error_is_evaluated and h100.heldout_within_10pct == 0
    assert "not yet evaluated" in h100.latency_ms.provenance.note


def test_estimate_counts_predicts_and_measures(server_target: str) -> None:
    options = measurement_pb2.MeasureOptions(time_budget_s=1.0, stable_windows=2, stability_threshold_pct=50.0)
    with Client(server_target) as c:
        from nascost.v1 import service_pb2

        request = service_pb2.EstimateRequest(
            graph=c.graph_ref(tiny_resnet()),
            device_ids=["local", "nvidia-t4"],
            measure=True,
            measure_options=options,
        )
        request.shapes.dim_values["batch"] = 1
        r = c._call(c.stub.Estimate, request, 120)
    assert r.counted.indicators.macs > 0 and r.counted.indicators.params > 0
    by_id = {d.device_id: d for d in r.devices}
    assert set(by_id) == {"local", "nvidia-t4"}
    assert by_id["local"].measurement.batches[0].latency.p50_ms > 0  # measurable: measured
    assert not by_id["nvidia-t4"].HasField("measurement")  # spec sheet only: predicted
    for d in r.devices:
        assert d.predictions and d.predictions[-1].predictor.startswith("roofline")
