from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from nascost.predictors.analysis import analyze
from nascost.predictors.errors import InvalidRequestError
from nascost.predictors.graph import ShapeRequest, load_graph
from nascost.predictors.sampler import (
    BATCH_DIM,
    HELDOUT_FAMILIES,
    TRAIN_FAMILIES,
    ArchitectureSampler,
    build,
    heldout_samples,
)

ALL = TRAIN_FAMILIES + HELDOUT_FAMILIES


def _run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("family", ALL)
@pytest.mark.parametrize("seed", [0, 5])
def test_every_family_checks_loads_and_runs(family: str, seed: int) -> None:
    s = build(family, seed, max_macs_per_example=60e6)
    onnx.checker.check_model(s.model, full_check=True)
    assert s.family == family and s.config
    for batch in (1, 3):
        y = _run(s.model_bytes(), s.input_array(batch))
        assert y.shape[0] == batch and np.isfinite(y).all()
    # the builder's MAC count agrees with the analysis engine's count of conv/linear/matmul
    a = analyze(load_graph(s.model, ShapeRequest(dim_values={BATCH_DIM: 2})))
    assert a.torchvision_macs == 2 * s.macs_per_example
    assert not a.unsupported


def test_deterministic_from_seed() -> None:
    a = [s.model_bytes() for s in ArchitectureSampler(11).samples(6)]
    b = [s.model_bytes() for s in ArchitectureSampler(11).samples(6)]
    c = [s.model_bytes() for s in ArchitectureSampler(12).samples(6)]
    assert a == b and a != c


def test_training_sampler_never_produces_heldout_families() -> None:
    fams = {s.family for s in ArchitectureSampler(0).samples(60)}
    assert fams <= set(TRAIN_FAMILIES) and not fams & set(HELDOUT_FAMILIES)
    assert len(fams) >= 8  # uniform draw covers the families
    held = heldout_samples(1, seed=2, max_macs_per_example=50e6)
    assert [s.family for s in held] == list(HELDOUT_FAMILIES)


def test_weights_steer_family_draws_and_caps_hold() -> None:
    w = [0.0] * len(TRAIN_FAMILIES)
    w[TRAIN_FAMILIES.index("mixer")] = 1.0
    sampler = ArchitectureSampler(3, max_macs_per_example=20e6)
    drawn = [sampler.sample(weights=w) for _ in range(5)]
    assert {s.family for s in drawn} == {"mixer"}
    assert all(s.macs_per_example <= 20e6 for s in drawn)
    with pytest.raises(InvalidRequestError):
        ArchitectureSampler(0, families=["nope"])
    with pytest.raises(InvalidRequestError):
        sampler.sample("resnet50_like")
