"""nascost's own shape propagation against ONNX's shape inference.

The graph builder skips ONNX's whole-graph inference when every op has a fast shape
function (``costs/shapes.py``). The reference here is ONNX itself: every fast function is
run on the nodes of every golden graph and of torch-exported networks, as the ONNX-inferred
graph holds them, and must give ONNX's (elem_type, shape); and whole analyses through the
fast path must equal those through ONNX's inference.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torchnets
from goldenlib import collect_cases

from nascost.predictors import graph as graph_mod
from nascost.predictors.analysis import analyze
from nascost.predictors.costs import shapes
from nascost.predictors.graph import Graph, ShapeRequest, load_graph, load_graph_bytes


@pytest.fixture
def onnx_inference_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_mod, "_fast_eligible", lambda model: False)


def _nodes(g: Graph) -> Iterator[graph_mod.Node]:
    for n in g.nodes:
        yield n
        for sg in n.subgraphs.values():
            yield from _nodes(sg)


def _compare(g: Graph, seen: dict[str, int]) -> list[str]:
    bad = []
    for node in _nodes(g):
        if node.domain or node.op_type not in shapes.fast_ops():
            continue
        got = shapes.fast_infer(node)
        if got is None:
            continue
        for o, r in zip(node.outputs, got, strict=False):
            if r is None or o.shape is None or None in o.shape:
                continue
            seen[node.op_type] = seen.get(node.op_type, 0) + 1
            if (o.elem_type, tuple(o.shape)) != (r[0], tuple(r[1])):
                bad.append(f"{node.op_type} {node.name}: onnx {(o.elem_type, o.shape)} ours {r}")
    return bad


def test_fast_shape_functions_agree_with_onnx_on_every_golden_graph(onnx_inference_only: None) -> None:
    seen: dict[str, int] = {}
    bad: list[str] = []
    for case in collect_cases():
        try:
            g = load_graph(case.build(), case.shapes)
        except Exception:  # a golden graph ONNX cannot infer is not a reference here
            continue
        bad.extend(f"{case.id}: {b}" for b in _compare(g, seen))
    assert not bad, "\n".join(bad[:20])
    # every fast op was compared on at least one golden graph
    assert set(seen) == set(shapes.fast_ops()), sorted(shapes.fast_ops() - set(seen))


def _nets() -> list[tuple[str, torch.nn.Module, torch.Tensor, dict]]:
    torch.manual_seed(0)
    img = torch.randn(1, 3, 32, 32)
    return [
        ("resnet", torchnets.randomize(torchnets.TinyResNet()), img, {}),
        ("mobilenet", torchnets.randomize(torchnets.TinyMobileNetV2()), img, {}),
        ("vit", torchnets.randomize(torchnets.TinyViT()), img, {}),
        ("encoder", torchnets.randomize(torchnets.TinyEncoder()), torch.randint(0, 50, (1, 12)), {}),
        ("encoder-dynamic", torchnets.randomize(torchnets.TinyEncoder()), torch.randint(0, 50, (2, 12)),
         {"input_names": ["ids"], "dynamic_axes": {"ids": {0: "b"}}}),
    ]


NETS = _nets()


@pytest.mark.parametrize("name,module,example,kwargs", NETS, ids=[n[0] for n in NETS])
def test_fast_path_analysis_equals_onnx_inference_path(
    name: str, module: torch.nn.Module, example: torch.Tensor, kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = torchnets.export(module, example, **kwargs)
    req = ShapeRequest(dim_values={"b": 3}) if kwargs else None
    calls: list[int] = []
    real_infer = graph_mod._infer

    def counting_infer(skel: object) -> object:
        calls.append(1)
        return real_infer(skel)  # type: ignore[arg-type]

    monkeypatch.setattr(graph_mod, "_infer", counting_infer)
    fast = analyze(load_graph_bytes(data, req))
    assert not calls, "ONNX whole-graph inference ran although every op has a fast shape function"
    monkeypatch.setattr(graph_mod, "_fast_eligible", lambda model: False)
    slow_graph = load_graph_bytes(data, req)
    slow = analyze(slow_graph)
    assert calls
    assert fast == slow
    assert not _compare(slow_graph, {})


def test_symbolic_inputs_take_onnx_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unresolved symbolic dims keep ONNX's names (reported to the user): no fast path."""
    data = torchnets.export(torchnets.randomize(torchnets.TinyEncoder()), torch.randint(0, 50, (2, 12)),
                            input_names=["ids"], dynamic_axes={"ids": {0: "b"}})
    a = analyze(load_graph_bytes(data))
    assert "b" in " ".join(a.warnings)
    assert a.unresolved_dims


def test_every_golden_graph_analyzes_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Own propagation (where a graph qualifies) and ONNX inference give equal analyses."""
    fast_results: dict[str, object] = {}
    for case in collect_cases():
        try:
            fast_results[case.id] = analyze(load_graph(case.build(), case.shapes))
        except Exception as e:  # compared below: the other path must fail the same way
            fast_results[case.id] = type(e)
    monkeypatch.setattr(graph_mod, "_fast_eligible", lambda model: False)
    differ = []
    for case in collect_cases():
        try:
            slow: object = analyze(load_graph(case.build(), case.shapes))
        except Exception as e:
            slow = type(e)
        if fast_results[case.id] != slow:
            differ.append(case.id)
    assert not differ, differ
