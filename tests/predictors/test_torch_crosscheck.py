"""nascost's counts against torch's own on the module that was exported.

MACs: torch's ``FlopCounterMode`` total / 2 (it counts conv, linear and matmul, 2 FLOPs
per multiply-add, ignores biases and elementwise ops; attention is written with matmuls
so that it counts them). Params: torch's ``parameters()`` (each tensor once), adjusted for
what the exporter folds (BatchNorm into the preceding Conv: its 4 per-channel vectors
become one conv bias).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from torchnets import (
    TinyEncoder,
    TinyMobileNetV2,
    TinyResNet,
    TinyViT,
    export,
    randomize,
    torch_macs,
    unique_param_count,
)

from nascost.predictors.analysis import analyze
from nascost.predictors.graph import load_graph_bytes


def _bn_fold_delta(module: torch.nn.Module) -> int:
    """Params the exporter removes by folding each BatchNorm (weight, bias) into a conv
    bias of the same width; a bias-free conv gains that bias."""
    delta = 0
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            delta += m.num_features  # gamma + beta (2C) -> conv bias (C)
    return delta


def _float_initializer_elements(data: bytes) -> int:
    model = onnx.load_from_string(data)
    seen: set[bytes] = set()
    total = 0
    for t in model.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        arr = onnx.numpy_helper.to_array(t)
        key = arr.tobytes() + str(arr.shape).encode()
        if arr.size >= 256 and key in seen:
            continue
        seen.add(key)
        total += int(arr.size)
    return total


CASES = [
    ("resnet", lambda: TinyResNet(), lambda: torch.randn(1, 3, 32, 32)),
    ("mobilenet_v2", lambda: TinyMobileNetV2(), lambda: torch.randn(1, 3, 32, 32)),
    ("vit", lambda: TinyViT(), lambda: torch.randn(1, 3, 32, 32)),
    ("encoder", lambda: TinyEncoder(), lambda: torch.randint(0, 50, (2, 12))),
]


@pytest.mark.parametrize(("name", "make", "example"), CASES, ids=[c[0] for c in CASES])
def test_macs_and_params_match_torch(name: str, make, example) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    module = randomize(make())
    x = example()
    data = export(module, x)
    a = analyze(load_graph_bytes(data))
    assert not a.unsupported, a.unsupported
    assert not a.unresolved_dims
    assert a.macs == torch_macs(module, x)
    # torchvision convention: conv + linear + matmul MACs = all MACs in these nets
    assert a.torchvision_macs == a.macs
    expected_params = unique_param_count(module) - _bn_fold_delta(module)
    assert a.params.trainable == expected_params
    assert a.params.trainable == _float_initializer_elements(data)


def test_tied_embedding_counted_once() -> None:
    """An output projection tied to the embedding table: one tensor, counted once."""
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (2, 12))
    tied = randomize(TinyEncoder(tied_head=True))
    untied = randomize(TinyEncoder(tied_head=False))
    a_tied = analyze(load_graph_bytes(export(tied, ids)))
    a_untied = analyze(load_graph_bytes(export(untied, ids)))
    table = 50 * 32
    assert a_tied.params.trainable == unique_param_count(tied)
    assert a_untied.params.trainable == unique_param_count(untied)
    assert a_untied.params.trainable - a_tied.params.trainable == table
    assert a_tied.macs == a_untied.macs == torch_macs(tied, ids)


def test_shared_weight_under_two_names_counted_once() -> None:
    """Two initializers with identical payloads (an exporter duplicating a tied weight)."""
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", T.FLOAT, [4, 16])],
        [helper.make_tensor_value_info("y", T.FLOAT, [4, 16])],
        initializer=[numpy_helper.from_array(w, "w1"), numpy_helper.from_array(w.copy(), "w2")],
    )
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    a = analyze(load_graph_bytes(data))
    assert a.params.trainable == 256
    assert a.params.deduplicated == 256
    assert a.macs == 2 * 4 * 16 * 16
