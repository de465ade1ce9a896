"""The service end to end, through a real server on a loopback port."""

from __future__ import annotations

import io

import grpc
import numpy as np
import onnx
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from onnx import TensorProto, helper, numpy_helper

from nascost.client import Client, InvalidArgument, NotFound, Unauthenticated
from nascost.server.app import create_server
from nascost.server.config import ServerConfig
from nascost.server.demo import tiny_resnet


def _float_initializer_elements(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT)


def _assert_healthy(target: str) -> None:
    with Client(target) as c:
        assert c.health() == "SERVING"


def test_health_serving_and_reflection_lists_service(server_target: str) -> None:
    _assert_healthy(server_target)
    with grpc.insecure_channel(server_target) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert "nascost.v1.CostModel" in names
    assert "grpc.health.v1.Health" in names


def test_analyze_counts_params_and_macs_of_tiny_resnet(server_target: str) -> None:
    model = tiny_resnet(channels=8, blocks=1)
    with Client(server_target) as c:
        a = c.analyze(model, dim_values={"batch": 2})
    assert a.params == _float_initializer_elements(model)
    # closed form: stem 7x7 conv 3->8 at 32x32, two 3x3 convs 8->8 at 16x16, fc 8->10, batch 2
    stem = 2 * 8 * 32 * 32 * 3 * 7 * 7
    block = 2 * (2 * 8 * 16 * 16 * 8 * 3 * 3)
    fc = 2 * 8 * 10
    assert a.macs == stem + block + fc
    assert a.flops > 2 * a.macs  # bias adds, relus, pooling are counted too
    assert a.input_shapes == {"input": (2, 3, 64, 64)}
    assert a.unsupported_ops == {}
    assert a.provenance.source == "counted"
    assert sum(n.params for n in a.nodes) == a.params
    assert sum(n.macs for n in a.nodes) == a.macs


def test_analyze_torch_resnet_matches_flop_counter(server_target: str) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.b1 = nn.BatchNorm2d(c)
            self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.b2 = nn.BatchNorm2d(c)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))

    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(3, 16, 7, 2, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
        Block(16), Block(16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ).eval()
    x = torch.randn(1, 3, 64, 64)
    with FlopCounterMode(display=False) as fc:
        m(x)
    buf = io.BytesIO()
    torch.onnx.export(m, (x,), buf, input_names=["x"], dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    with Client(server_target) as c:
        a = c.analyze(buf.getvalue())
    assert a.macs * 2 == fc.get_total_flops()
    assert a.params == _float_initializer_elements(model)


def _conv_model(**kw: object) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
    g = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        initializer=[w],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], **kw)


@pytest.mark.parametrize(
    ("name", "payload", "needle"),
    [
        ("garbage", b"\x00\xffthis is not a model" * 10, "ModelProto"),
        ("empty", b"", "empty"),
        ("truncated", None, ""),
    ],
)
def test_bad_bytes_give_invalid_argument_and_server_keeps_serving(
    server_target: str, name: str, payload: bytes | None, needle: str
) -> None:
    if payload is None:
        full = tiny_resnet().SerializeToString()
        payload = full[: len(full) // 2]
    with Client(server_target) as c, pytest.raises(InvalidArgument) as err:
        c.analyze(payload)
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.value.details
    assert "Traceback" not in err.value.details
    _assert_healthy(server_target)


def test_cycle_gives_invalid_argument(server_target: str) -> None:
    g = helper.make_graph(
        [
            helper.make_node("Relu", ["b"], ["a"], name="r1"),
            helper.make_node("Relu", ["a"], ["b"], name="r2"),
            helper.make_node("Relu", ["x"], ["y"], name="r3"),
        ],
        "cyc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with Client(server_target) as c, pytest.raises(InvalidArgument, match="cycle"):
        c.analyze(model)
    _assert_healthy(server_target)


def test_unknown_op_is_reported_not_zero(server_target: str) -> None:
    g = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("FrobnicateV9", ["r"], ["y"], name="mystery", domain="com.example"),
        ],
        "unk",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    model = helper.make_model(
        g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    with Client(server_target) as c:
        a = c.analyze(model)
    assert a.unsupported_ops == {"com.example.FrobnicateV9": 1}
    mystery = next(n for n in a.nodes if n.name == "mystery")
    assert mystery.unsupported and "no cost handler" in mystery.note
    assert any("FrobnicateV9" in w for w in a.warnings)
    _assert_healthy(server_target)


def test_external_data_is_refused(server_target: str) -> None:
    model = _conv_model()
    w = model.graph.initializer[0]
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../../../etc/passwd"
    with Client(server_target) as c, pytest.raises(InvalidArgument, match="external data"):
        c.analyze(model)
    _assert_healthy(server_target)


def test_bad_shapes_give_invalid_argument(server_target: str) -> None:
    with Client(server_target) as c:
        with pytest.raises(InvalidArgument, match="not a graph input"):
            c.analyze(_conv_model(), input_shapes={"nope": [1, 3, 8, 8]})
        with pytest.raises(InvalidArgument, match=">= 1"):
            c.analyze(tiny_resnet(), dim_values={"batch": 0})
        with pytest.raises(InvalidArgument, match="rank"):
            c.analyze(tiny_resnet(), input_shapes={"input": [1, 3, 64]})


def test_symbolic_batch_resolved_per_request(server_target: str) -> None:
    with Client(server_target) as c:
        one = c.analyze(tiny_resnet(), dim_values={"batch": 1})
        eight = c.analyze(tiny_resnet(), input_shapes={"input": [8, 3, 64, 64]})
        unresolved = c.analyze(tiny_resnet())
    assert eight.macs == 8 * one.macs
    assert eight.params == one.params
    assert "batch" in unresolved.unresolved_dims
    assert any("batch" in w for w in unresolved.warnings)


def test_large_model_is_uploaded_once_and_referred_by_digest(server_target: str) -> None:
    model = tiny_resnet(channels=64, blocks=2)  # ~0.6 MB of weights
    data = model.SerializeToString()
    with Client(server_target, inline_limit_bytes=64 * 1024) as c:
        first = c.analyze(data)
        ref = c.graph_ref(data)
        assert ref.WhichOneof("source") == "digest"
        again = c.analyze(data)
    assert first.graph_digest == again.graph_digest == ref.digest
    assert first.params == again.params == _float_initializer_elements(model)


def test_unknown_and_malformed_digests(server_target: str) -> None:
    from nascost.v1 import graph_pb2, service_pb2

    with Client(server_target) as c:
        with pytest.raises(NotFound):
            c._call(c.stub.Analyze, service_pb2.AnalyzeRequest(graph=graph_pb2.GraphRef(digest="sha256:" + "0" * 64)))
        with pytest.raises(InvalidArgument, match="sha256"):
            c._call(c.stub.Analyze, service_pb2.AnalyzeRequest(graph=graph_pb2.GraphRef(digest="md5:abc")))
        with pytest.raises(InvalidArgument, match="names no graph"):
            c._call(c.stub.Analyze, service_pb2.AnalyzeRequest())


def test_analyze_stream_goes_on_after_a_bad_graph(server_target: str) -> None:
    from nascost.client import Analysis, NascostClientError

    models = [tiny_resnet(channels=4), b"junk", tiny_resnet(channels=8)]
    with Client(server_target) as c:
        results = list(c.analyze_many(models, dim_values={"batch": 1}))
    assert isinstance(results[0], Analysis) and isinstance(results[2], Analysis)
    assert isinstance(results[1], NascostClientError)
    assert results[1].code == grpc.StatusCode.INVALID_ARGUMENT
    assert results[2].macs > results[0].macs


async def test_async_client(server_target: str) -> None:
    from nascost.client import AsyncClient

    async with AsyncClient(server_target) as c:
        assert await c.health() == "SERVING"
        a = await c.analyze(tiny_resnet(), dim_values={"batch": 1})
        results = [r async for r in c.analyze_many([tiny_resnet(), tiny_resnet(channels=4)], dim_values={"batch": 1})]
    assert a.params == _float_initializer_elements(tiny_resnet())
    assert [r.params for r in results] == [a.params, _float_initializer_elements(tiny_resnet(channels=4))]


def test_token_auth(tmp_path: object) -> None:
    server, port, _ = create_server("127.0.0.1:0", ServerConfig(data_dir=tmp_path, auth_token="s3cret", workers=2))  # type: ignore[arg-type]
    target = f"127.0.0.1:{port}"
    try:
        with Client(target) as anonymous:
            assert anonymous.health() == "SERVING"  # orchestrators probe without a token
            with pytest.raises(Unauthenticated):
                anonymous.analyze(tiny_resnet())
        with Client(target, token="wrong") as wrong, pytest.raises(Unauthenticated):
            wrong.analyze(tiny_resnet())
        with Client(target, token="s3cret") as ok:
            assert ok.analyze(tiny_resnet(), dim_values={"batch": 1}).params > 0
    finally:
        server.stop(grace=None)


def test_deadline_is_honoured(server_target: str) -> None:
    from nascost.client import DeadlineExceeded

    # 5,000 nodes take ~0.25 s to analyze: 50x the deadline, so the deadline must win (a
    # tiny graph could be answered before the client's deadline timer even fires)
    deep = tiny_resnet(channels=4, blocks=1000).SerializeToString()
    with Client(server_target) as c, pytest.raises(DeadlineExceeded):
        c.analyze(deep, timeout=0.005, dim_values={"batch": 3})
    _assert_healthy(server_target)


def test_metrics_count_calls_by_status(tmp_path: object) -> None:
    import urllib.request

    from nascost.server.engine import Engine

    config = ServerConfig(data_dir=tmp_path, workers=2, metrics_port=0)  # type: ignore[arg-type]
    engine = Engine(config)
    server, port, _ = create_server("127.0.0.1:0", config, engine=engine)
    try:
        with Client(f"127.0.0.1:{port}") as c:
            c.analyze(tiny_resnet(), dim_values={"batch": 1})
            with pytest.raises(InvalidArgument):
                c.analyze(b"junk")
        ok = engine.metrics.calls.labels("Analyze", "OK")._value.get()
        bad = engine.metrics.calls.labels("Analyze", "INVALID_ARGUMENT")._value.get()
        assert (ok, bad) == (1, 1)
        http_port = engine.metrics.serve_http(0)
        text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
        assert 'nascost_rpc_calls_total{code="INVALID_ARGUMENT",method="Analyze"} 1.0' in text
    finally:
        server.stop(grace=None)
