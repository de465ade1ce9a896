"""The benchmark graphs are the architectures they are named after (published sizes)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import models  # noqa: E402  (benchmarks/ is not a package)

from nascost.predictors.analysis import analyze  # noqa: E402
from nascost.predictors.graph import load_graph_bytes  # noqa: E402


def test_mobilenet_v2_has_torchvisions_published_size() -> None:
    # torchvision's model card for mobilenet_v2: 3,504,872 parameters, 0.30 GFLOPS (multiply-adds)
    m = models.mobilenet_v2()
    assert sum(p.numel() for p in m.parameters()) == 3_504_872
    a = analyze(load_graph_bytes(models.export(m, torch.randn(1, 3, 224, 224))))
    assert a.macs == pytest.approx(300e6, rel=0.01)
    assert not a.unsupported
