"""Graphs onnxruntime's optimizer rewrote: every node gets shapes and costs, and the counts
agree with the original graph (exactly, or up to the NCHWc channel padding)."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from torchnets import TinyViT, export, randomize

from nascost.predictors.analysis import Analysis, analyze
from nascost.predictors.graph import load_graph_bytes

ort = pytest.importorskip("onnxruntime")


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 20, 3, 2, 1)
        self.bn = nn.BatchNorm2d(20)
        self.c2 = nn.Conv2d(20, 36, 3, 1, 1)
        self.c3 = nn.Conv2d(36, 36, 3, 1, 1, groups=36)
        self.fc = nn.Linear(36, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.c1(x)))
        y = nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        y = y + torch.sigmoid(self.c3(y))
        y = nn.functional.avg_pool2d(y, 2)
        return self.fc(y.mean((2, 3)))


def _optimize(data: bytes, level: object, tmp_path: Path) -> bytes:
    src, dst = tmp_path / "in.onnx", tmp_path / "opt.onnx"
    src.write_bytes(data)
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.optimized_model_filepath = str(dst)
    so.log_severity_level = 3
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    return dst.read_bytes()


def _all_counted(a: Analysis) -> None:
    assert not a.unsupported, a.unsupported
    for n in a.nodes:
        assert not n.unresolved, (n.name, n.note)
        assert n.output_shape and all(d > 0 for d in n.output_shape), (n.name, n.output_shape)


def test_nchwc_graph_macs_match_up_to_padding(tmp_path: Path) -> None:
    module = randomize(ConvNet())
    data = export(module, torch.randn(1, 3, 32, 32))
    opt = _optimize(data, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp_path)
    model = onnx.load_from_string(opt)
    if not any(n.domain == "com.microsoft.nchwc" for n in model.graph.node):
        pytest.skip("this CPU's onnxruntime did not emit NCHWc ops")
    a0 = analyze(load_graph_bytes(data))
    a1 = analyze(load_graph_bytes(opt))
    _all_counted(a1)
    # each nchwc conv computes its original conv over channel counts padded to the block:
    # MACs scale by (padded out / out) x (padded in / in), read off the reordered weights
    dims = {t.name: list(t.dims) for t in model.graph.initializer}
    orig_convs = [n for n in a0.nodes if n.op_type == "Conv"]
    opt_convs = [n for n in model.graph.node if n.op_type == "Conv" and n.domain == "com.microsoft.nchwc"]
    assert len(orig_convs) == len(opt_convs) == 3
    real = [(20, 3, 1), (36, 20, 1), (36, 36, 36)]  # (out, in, group) of c1, c2, c3
    expected = 0
    for res, node, (cout, cin, group) in zip(orig_convs, opt_convs, real, strict=True):
        w = dims[node.input[1]]
        if group == 1:  # dense: out and in channels padded
            expected += res.macs * w[0] * w[1] // (cout * cin)
        else:  # depthwise: one input channel per output channel
            expected += res.macs * w[0] // cout
    gemm = sum(n.macs for n in a0.nodes if n.op_type == "Gemm")
    assert a1.macs == expected + gemm
    assert a0.macs < a1.macs < 3 * a0.macs
    # padding adds zeros only: the non-zero weights are the same
    assert a1.params.nonzero == a0.params.nonzero


def test_fused_transformer_graph_counts_equal(tmp_path: Path) -> None:
    """FusedMatMul, Gelu, SkipLayerNormalization: fusion changes no arithmetic."""
    module = randomize(TinyViT())
    data = export(module, torch.randn(1, 3, 32, 32))
    opt = _optimize(data, ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, tmp_path)
    model = onnx.load_from_string(opt)
    contrib = {n.op_type for n in model.graph.node if n.domain == "com.microsoft"}
    assert contrib, "expected onnxruntime to fuse into com.microsoft ops"
    a0 = analyze(load_graph_bytes(data))
    a1 = analyze(load_graph_bytes(opt))
    _all_counted(a1)
    assert a1.macs == a0.macs
    # constant folding of scalar arithmetic by the optimizer may move a handful of FLOPs
    assert abs(a1.flops - a0.flops) <= 1e-4 * a0.flops
    assert a1.params.trainable == a0.params.trainable
