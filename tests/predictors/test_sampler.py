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
    LARGE_MACS,
    TRAIN_FAMILIES,
    ArchitectureSampler,
    build,
    config_key,
    heldout_samples,
    log_uniform_target,
    resnet50_sample,
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


def test_sizes_are_log_uniform_under_the_cap_with_a_small_large_share() -> None:
    # the target distribution itself, from a grid of uniform draws
    grid = np.linspace(0, 1, 201, endpoint=False)
    small = [log_uniform_target(u, 0.5, min_macs=1e6, max_macs=5e9, large_share=0.1) for u in grid]
    assert min(small) == pytest.approx(1e6) and max(small) <= LARGE_MACS
    # log-uniform: the median target is the geometric mean of the range's ends
    assert np.median(small) == pytest.approx(np.sqrt(1e6 * 1e9), rel=0.05)
    large = [log_uniform_target(u, 0.05, min_macs=1e6, max_macs=5e9, large_share=0.1) for u in grid]
    assert min(large) == pytest.approx(LARGE_MACS) and max(large) <= 5e9
    # a cap under LARGE_MACS: no large draws at all
    assert max(log_uniform_target(u, 0.0, min_macs=1e5, max_macs=2e6) for u in grid) <= 2e6
    # the sampler: sizes under the cap and spread over the range (not piled at the cap)
    sampler = ArchitectureSampler(4, max_macs_per_example=20e6, min_macs_per_example=2e5)
    macs = np.asarray([sampler.sample().macs_per_example for _ in range(40)])
    assert macs.max() <= 20e6
    assert np.mean(macs < 2e6) >= 0.2 and np.mean(macs > 4e6) >= 0.2
    with pytest.raises(InvalidRequestError):
        ArchitectureSampler(0, max_macs_per_example=1e6, min_macs_per_example=2e6)


def test_target_build_counts_the_same_macs_as_the_analysis() -> None:
    for family in ("conv_residual", "transformer_block", "vit_like"):
        s = build(family, 9, max_macs_per_example=40e6, target_macs=5e6)
        assert s.macs_per_example <= 40e6
        a = analyze(load_graph(s.model, ShapeRequest(dim_values={BATCH_DIM: 1})))
        assert a.torchvision_macs == s.macs_per_example


def test_resnet50_sample_has_torchvisions_macs() -> None:
    s = resnet50_sample()
    # torchvision's resnet50 _ops: 4.089 GMACs (conv + linear); weights without BN: 25.5 M
    assert s.macs_per_example == pytest.approx(4.089e9, rel=1e-3)
    a = analyze(load_graph(s.model, ShapeRequest(dim_values={BATCH_DIM: 1})))
    assert a.torchvision_macs == s.macs_per_example
    assert a.params.trainable == pytest.approx(25.5e6, rel=0.01)


def test_mixed_cnns_vary_their_blocks_by_stage_and_mlps_run_channel_last() -> None:
    kinds: set[str] = set()
    for seed in range(12):
        s = build("conv_mixed", seed, max_macs_per_example=60e6)
        assert len(s.config["stage_kinds"]) == s.config["stages"]
        kinds |= set(s.config["stage_kinds"])
    assert len(kinds) >= 4
    grids = [s for s in (build("transformer_mlp", seed, max_macs_per_example=60e6) for seed in range(24)) if s.config["layout"] == "grid"]
    assert grids
    for s in grids:
        g, d = s.config["grid"], s.config["dim"]
        assert s.input_shape == (g, g, d)
        y = _run(s.model_bytes(), s.input_array(2))
        assert y.shape == ((2, 1000) if s.config["head"] == "mean" else (2, g, g, d))
        a = analyze(load_graph(s.model, ShapeRequest(dim_values={BATCH_DIM: 2})))
        # per token: two d x (d * ratio) linears per layer
        assert a.torchvision_macs == 2 * s.macs_per_example
        assert s.macs_per_example >= s.config["depth"] * 2 * g * g * d * d * s.config["mlp_ratio"]


def test_build_passes_over_excluded_configurations_while_others_are_left() -> None:
    first = build("mobilenetv2_like", 7, max_macs_per_example=1e8, target_macs=2e7)
    key = config_key(first.family, first.config)
    other = build("mobilenetv2_like", 7, max_macs_per_example=1e8, target_macs=2e7, exclude={key})
    assert config_key(other.family, other.config) != key
    assert other.macs_per_example <= 1e8
    # same draw, same model: the exclusion is the only difference
    again = build("mobilenetv2_like", 7, max_macs_per_example=1e8, target_macs=2e7)
    assert config_key(again.family, again.config) == key
    # when every draw is excluded, a repeat rather than nothing
    one = build("mobilenetv2_like", 7, max_macs_per_example=1e8, target_macs=2e7, max_tries=1)
    one_key = config_key(one.family, one.config)
    only = build("mobilenetv2_like", 7, max_macs_per_example=1e8, target_macs=2e7, max_tries=1, exclude={one_key})
    assert config_key(only.family, only.config) == one_key
