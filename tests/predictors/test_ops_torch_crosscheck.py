"""Cross-checks of the MAC-heavy handlers against torch's own counter.

``torch.utils.flop_counter.FlopCounterMode`` counts 2 FLOPs per multiply-add of conv,
conv_transpose, mm, bmm and addmm (and ignores bias), so ``2 * macs`` of the exported
graph must equal its total. Where torch counts 0 (its fused LSTM, CPU
``scaled_dot_product_attention``) the reference is the same computation written out
with matmuls, which FlopCounterMode does count.
"""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goldenlib import In, Init, make_model, single

from nascost.predictors.analysis import analyze
from nascost.predictors.graph import load_graph


def _export(module: torch.nn.Module, *args: torch.Tensor) -> onnx.ModelProto:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, buf, dynamo=False, opset_version=17)  # type: ignore[arg-type]
    return onnx.load_from_string(buf.getvalue())


def _torch_flops(fn, *args) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fn(*args)
    return int(fc.get_total_flops())


def _op_macs(model: onnx.ModelProto, op_type: str) -> int:
    a = analyze(load_graph(model))
    nodes = [n for n in a.nodes if n.op_type == op_type]
    assert nodes, f"export holds no {op_type}"
    assert not any(n.unresolved or n.unsupported for n in nodes)
    return sum(n.macs for n in nodes)


@pytest.mark.parametrize(
    ("dims", "kwargs"),
    [
        (2, {"stride": 2, "groups": 2, "dilation": 2, "padding": 1, "output_padding": 1}),
        (2, {"stride": 3, "groups": 1, "dilation": 1, "padding": 0}),
        (2, {"stride": 1, "groups": 4, "dilation": 3, "padding": 2}),
        (1, {"stride": 2, "groups": 2, "dilation": 1, "padding": 1}),
        (3, {"stride": 2, "groups": 1, "dilation": 2, "padding": 0}),
    ],
)
def test_conv_transpose_matches_torch(dims: int, kwargs: dict) -> None:
    cls = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}[dims]
    m = cls(4, 8, 3, bias=False, **kwargs)
    x = torch.randn(2, 4, *([5] * dims))
    assert 2 * _op_macs(_export(m, x), "ConvTranspose") == _torch_flops(m, x)


@pytest.mark.parametrize("groups", [1, 2, 8])
def test_conv_matches_torch(groups: int) -> None:
    m = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=1, groups=groups, bias=False)
    x = torch.randn(1, 8, 9, 9)
    assert 2 * _op_macs(_export(m, x), "Conv") == _torch_flops(m, x)


def test_linear_and_matmul_match_torch() -> None:
    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(6, 5, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc(x)  # (2, 3, 5)
            return h @ h.transpose(1, 2)  # (2, 3, 3)

    m = M()
    x = torch.randn(2, 3, 6)
    a = analyze(load_graph(_export(m, x)))
    assert 2 * a.macs == _torch_flops(m, x)
    assert a.torchvision_macs == a.macs


def _unrolled_rnn_reference(kind: str, seq: int, batch: int, inp: int, hidden: int, directions: int) -> int:
    """FLOPs of the cell's matmuls written out per step, as FlopCounterMode counts them."""
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    w_ih = torch.randn(gates * hidden, inp)
    w_hh = torch.randn(gates * hidden, hidden)
    xs = torch.randn(seq, batch, inp)

    def run() -> None:
        for _ in range(directions):
            h = torch.zeros(batch, hidden)
            for t in range(seq):
                g = xs[t] @ w_ih.T + h @ w_hh.T
                h = torch.tanh(g[:, :hidden])

    return _torch_flops(run)


@pytest.mark.parametrize(
    ("kind", "bidirectional"), [("LSTM", False), ("LSTM", True), ("GRU", False), ("RNN", True)]
)
def test_recurrent_macs_match_unrolled_matmuls(kind: str, bidirectional: bool) -> None:
    seq, batch, inp, hidden = 5, 2, 3, 4
    m = getattr(torch.nn, kind)(inp, hidden, bidirectional=bidirectional)
    x = torch.randn(seq, batch, inp)
    macs = _op_macs(_export(m, x), kind)
    directions = 2 if bidirectional else 1
    assert 2 * macs == _unrolled_rnn_reference(kind, seq, batch, inp, hidden, directions)
    # torch 2.13 decomposes RNN/GRU into counted matmuls but counts its fused LSTM as 0.
    assert _torch_flops(m, x) == (0 if kind == "LSTM" else 2 * macs)


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("bhqd,bhkd->bhqk", [(2, 3, 4, 8), (2, 3, 6, 8)]),
        ("ij,jk->ik", [(3, 7), (7, 2)]),
        ("...ij,jk->...ik", [(2, 3, 4, 5), (5, 6)]),
    ],
)
def test_einsum_matches_torch(equation: str, shapes: list[tuple[int, ...]]) -> None:
    tensors = [torch.randn(*s) for s in shapes]
    ins = [In(f"a{i}", list(s)) for i, s in enumerate(shapes)]
    model = single("Einsum", ins, {"equation": equation})()
    assert 2 * _op_macs(model, "Einsum") == _torch_flops(torch.einsum, equation, *tensors)


@pytest.mark.parametrize(("hq", "hkv", "sq", "skv", "d", "dv"), [(8, 8, 16, 16, 32, 32), (8, 2, 4, 10, 16, 8), (4, 1, 1, 7, 8, 8)])
def test_attention_macs_match_matmuls(hq: int, hkv: int, sq: int, skv: int, d: int, dv: int) -> None:
    """GQA: K/V heads repeated to the query heads, then QK^T and AV as matmuls."""
    b = 2
    q, k, v = torch.randn(b, hq, sq, d), torch.randn(b, hkv, skv, d), torch.randn(b, hkv, skv, dv)

    def reference() -> None:
        kk = k.repeat_interleave(hq // hkv, dim=1)
        vv = v.repeat_interleave(hq // hkv, dim=1)
        torch.softmax(q @ kk.transpose(-1, -2), dim=-1) @ vv

    model = single("Attention", [In("q", list(q.shape)), In("k", list(k.shape)), In("v", list(v.shape))])()
    assert 2 * _op_macs(model, "Attention") == _torch_flops(reference)


def test_attention_op_equals_its_matmul_softmax_decomposition() -> None:
    """The fused op counts what the unfused MatMul + Mul + Softmax + MatMul graph counts."""
    b, h, s, d = 1, 2, 5, 8
    qkv = [In(n, [b, h, s, d]) for n in ("q", "k", "v")]
    fused = analyze(load_graph(single("Attention", qkv)()))
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"]),
        helper.make_node("MatMul", ["p", "v"], ["y"]),
    ]

    unfused = analyze(load_graph(make_model(nodes, [*qkv, Init("scale", np.array(0.3, np.float32))], ["y"])))
    assert fused.macs == unfused.macs
    assert fused.flops == unfused.flops
