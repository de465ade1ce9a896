from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nascost.predictors.analysis import analyze
from nascost.predictors.devices import Device, DeviceSpec
from nascost.predictors.graph import ShapeRequest, load_graph
from nascost.predictors.roofline import node_dtypes, predict_roofline


def _device(peak32: float = 1e12, peak16: float = 4e12, bw: float = 1e11, overhead: float = 1e-6) -> Device:
    spec = DeviceSpec({"float32": peak32, "float16": peak16}, bw, per_op_overhead_s=overhead)
    return Device("d", "d", "custom", spec)


def _matmul_relu(m: int, k: int, n: int, elem: int = TensorProto.FLOAT) -> onnx.ModelProto:
    np_t = np.float16 if elem == TensorProto.FLOAT16 else np.float32
    w = numpy_helper.from_array(np.ones((k, n), np_t), "W")
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["y"], name="mm"),
        helper.make_node("Relu", ["y"], ["z"], name="relu"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", elem, [m, k])],
        [helper.make_tensor_value_info("z", elem, [m, n])],
        [w],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("m,k,n", [(256, 256, 256), (1, 1024, 1024)])
def test_matmul_relu_closed_form(m: int, k: int, n: int) -> None:
    dev = _device()
    a = analyze(load_graph(_matmul_relu(m, k, n)))
    r = predict_roofline(a, dev)
    # MatMul: 2mkn FLOPs; reads x (m*k) + W (k*n), writes y (m*n), float32
    mm_compute = 2 * m * k * n / 1e12
    mm_memory = 4 * (m * k + k * n + m * n) / 1e11
    # Relu: m*n FLOPs, reads and writes m*n floats
    relu_compute = m * n / 1e12
    relu_memory = 4 * (2 * m * n) / 1e11
    want_s = max(mm_compute, mm_memory) + max(relu_compute, relu_memory) + 2e-6
    assert r.latency_ms == pytest.approx(1e3 * want_s, rel=1e-9)
    assert [t.name for t in r.nodes] == ["mm", "relu"]
    mm_bound = mm_compute >= mm_memory
    body = max(mm_compute, mm_memory) + max(relu_compute, relu_memory)
    assert r.compute_bound_fraction == pytest.approx((max(mm_compute, mm_memory) if mm_bound else 0.0) / body)
    assert r.nodes[0].compute_bound == mm_bound
    assert r.overhead_ms == pytest.approx(2e-3)


def test_dtype_picks_peak() -> None:
    dev = _device(overhead=0.0, bw=1e15)  # compute-bound everywhere
    model16 = _matmul_relu(512, 512, 512, TensorProto.FLOAT16)
    g = load_graph(model16)
    a = analyze(g)
    by_node = predict_roofline(a, dev, dtypes=node_dtypes(g))
    forced32 = predict_roofline(a, dev, dtype="float32")
    assert node_dtypes(g) == {"mm": "float16", "relu": "float16"}
    # without overrides every node runs at its own dtype (NodeResult.dtype), not float32
    assert predict_roofline(a, dev).latency_ms == pytest.approx(by_node.latency_ms, rel=1e-12)
    assert forced32.latency_ms / by_node.latency_ms == pytest.approx(4.0, rel=1e-3)
    flops = 2 * 512**3 + 512 * 512
    assert by_node.latency_ms == pytest.approx(1e3 * flops / 4e12, rel=1e-6)


def test_roofline_scales_with_batch_and_bandwidth() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])
    g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"], name="add")], "g", [x], [y])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    a1 = analyze(load_graph(model, ShapeRequest(dim_values={"N": 1})))
    a8 = analyze(load_graph(model, ShapeRequest(dim_values={"N": 8})))
    dev = _device(overhead=0.0)
    # memory-bound Add: each input slot is read once (2 x 64 floats) and the output written (64)
    assert predict_roofline(a1, dev).latency_ms == pytest.approx(1e3 * (3 * 64 * 4) / 1e11)
    assert predict_roofline(a8, dev).latency_ms == pytest.approx(8 * predict_roofline(a1, dev).latency_ms)
    assert predict_roofline(a1, dev).compute_bound_fraction == 0.0
