"""The seed's discrepancy scenarios (examples/seed_scenarios.py): the indicators move as
the paper says, by closed-form amounts."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import seed_scenarios as s


def test_weight_sharing_drops_params_keeps_flops() -> None:
    depth, dim, mlp = 4, 32, 64
    r = s.weight_sharing(depth=depth, dim=dim, heads=4, mlp=mlp, tokens=10)
    shared, unshared = r["shared"], r["unshared"]
    block = s.block_params(dim, mlp)
    assert unshared.params.trainable == depth * block
    assert shared.params.trainable == block
    assert shared.macs == unshared.macs
    assert shared.flops == unshared.flops
    assert shared.depth == unshared.depth


def test_moe_params_rise_macs_flat() -> None:
    dim, hidden = 16, 64
    r = s.mixture_of_experts((1, 4, 16))
    for e in (1, 4, 16):
        a = r[f"E={e}"]
        assert a.params.trainable == dim * e + e * 2 * dim * hidden
        # router d x E, then one expert's two matmuls whatever E is
        assert a.macs == dim * e + 2 * dim * hidden
        assert not a.unsupported
    assert r["E=16"].params.trainable > 10 * r["E=1"].params.trainable
    assert r["E=16"].macs < 1.2 * r["E=1"].macs


def test_pruning_drops_nonzero_and_effective_flops_only() -> None:
    r = s.pruning((1.0, 0.5, 0.1))
    dense = r["keep=1"]
    dim, depth, rows = 64, 3, 8
    relu_flops = depth * rows * dim
    for keep in (0.5, 0.1):
        a = r[f"keep={keep:g}"]
        kept = round(keep * dim * dim)
        assert a.params.trainable == dense.params.trainable == depth * dim * dim
        assert a.params.nonzero == depth * kept
        assert a.flops == dense.flops
        assert a.macs == dense.macs == depth * rows * dim * dim
        # effective MACs: rows x kept weights per layer
        assert a.effective_flops == 2 * depth * rows * kept + relu_flops
    assert dense.params.nonzero == dense.params.trainable


def test_depth_vs_width_at_equal_macs() -> None:
    layers, dim, rows = 8, 32, 4
    r = s.depth_vs_width(layers)
    deep, wide = r["deep"], r["wide"]
    assert deep.macs == wide.macs == layers * rows * dim * dim
    assert deep.params.trainable == wide.params.trainable
    assert deep.depth == layers and wide.depth == 2
    assert deep.max_width == 1 and wide.max_width == layers
    mm_flops = 2 * rows * dim * dim
    assert deep.critical_path_flops == layers * mm_flops
    assert wide.critical_path_flops == mm_flops + (layers - 1) * rows * dim  # one matmul + the Sum


def test_vit_patch_size_quadruples_macs() -> None:
    r = s.vit_patches((32, 16, 8))
    c = s.VIT
    d = c["dim"]
    for p in (32, 16, 8):
        a = r[f"patch={p}"]
        assert a.macs == s.vit_macs(p)
        assert not a.unsupported and not a.unresolved_dims
    # params equal up to the patch projection (3 p^2 d) and the position table ((H/p)^2 + 1) d
    def variable(p: int) -> int:
        return 3 * p * p * d + ((c["image"] // p) ** 2 + 1) * d

    base = r["patch=16"].params.trainable - variable(16)
    for p in (32, 8):
        assert r[f"patch={p}"].params.trainable - variable(p) == base
    # the token-wise MACs grow ~x4 per halving (tokens x4, +1 cls), attention's T^2 more;
    # the patch projection's MACs (H^2 * 3 * d) do not depend on the patch size
    def body(p: int) -> int:
        return r[f"patch={p}"].macs - c["image"] ** 2 * 3 * d

    tokens = {p: (c["image"] // p) ** 2 + 1 for p in (32, 16, 8)}
    for big, small in ((32, 16), (16, 8)):
        linear_ratio = tokens[small] / tokens[big]
        assert linear_ratio < body(small) / body(big) < linear_ratio**2
        assert r[f"patch={small}"].macs > 1.4 * r[f"patch={big}"].macs
