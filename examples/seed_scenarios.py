"""The seed's discrepancy scenarios: where params, FLOPs and structure disagree.

Run ``python examples/seed_scenarios.py`` to print a table. Each scenario builds its graphs
in code (small torch modules exported with the legacy exporter, or ``onnx.helper``) and
analyzes them with nascost:

1. **weight sharing** (Universal-Transformer-like): one encoder block applied L times vs L
   distinct blocks: params drop by (L - 1) blocks, FLOPs are equal.
2. **mixture of experts** (top-1 routing): params grow with the number of experts, MACs per
   token stay flat (only the router's ``d x E`` grows).
3. **pruning**: zeroing weights leaves dense FLOPs and params equal, drops non-zero params
   and effective (sparsity-aware) FLOPs.
4. **depth vs width** at equal FLOPs: a chain of L matmuls vs L parallel ones: depth and
   critical-path FLOPs differ, width differs the other way.
5. **ViT patch size** 32 / 16 / 8: params equal up to the patch projection and position
   embedding, MACs roughly x4 per halving of the patch.
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nascost.predictors.analysis import Analysis, analyze
from nascost.predictors.graph import load_graph_bytes


@dataclass(frozen=True)
class Row:
    scenario: str
    variant: str
    analysis: Analysis


def _analyze_model(model: onnx.ModelProto) -> Analysis:
    return analyze(load_graph_bytes(model.SerializeToString()))


def _export(module: Any, example: Any) -> Analysis:
    import torch

    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module.eval(), (example,), buf, opset_version=17, dynamo=False)
    return analyze(load_graph_bytes(buf.getvalue()))


def _rng_init(shape: tuple[int, ...], name: str, seed: int) -> onnx.TensorProto:
    arr = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return numpy_helper.from_array(arr, name)


# --------------------------------------------------------------------------- 1. sharing


def _block(dim: int, heads: int, mlp: int) -> Any:
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(dim)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.ln2 = nn.LayerNorm(dim)
            self.fc1 = nn.Linear(dim, mlp)
            self.fc2 = nn.Linear(mlp, dim)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            att = torch.softmax(q @ k.transpose(-2, -1) * (d // heads) ** -0.5, dim=-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
            return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))

    return Block()


def block_params(dim: int, mlp: int) -> int:
    """Parameters of one encoder block: 2 LayerNorms, qkv, proj, fc1, fc2 (with biases)."""
    return 4 * dim + (dim * 3 * dim + 3 * dim) + (dim * dim + dim) + (dim * mlp + mlp) + (mlp * dim + dim)


def weight_sharing(depth: int = 4, dim: int = 32, heads: int = 4, mlp: int = 64, tokens: int = 10) -> dict[str, Analysis]:
    """The same stack with one shared block vs ``depth`` distinct blocks."""
    import torch
    from torch import nn

    def stack(shared: bool) -> nn.Module:
        gen = torch.Generator().manual_seed(1)
        blocks = [_block(dim, heads, mlp)] * depth if shared else [_block(dim, heads, mlp) for _ in range(depth)]
        seq = nn.Sequential(*blocks)
        with torch.no_grad():
            for p in seq.parameters():  # distinct values: no exporter deduplication by accident
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        return seq

    x = torch.randn(1, tokens, dim)
    return {"shared": _export(stack(True), x), "unshared": _export(stack(False), x)}


# --------------------------------------------------------------------------- 2. MoE


def moe_model(experts: int, dim: int = 16, hidden: int = 64) -> onnx.ModelProto:
    """One token through a top-1 mixture of experts: router logits -> ArgMax -> Gather the
    chosen expert's two matrices (stacked ``(E, d, h)`` and ``(E, h, d)``) -> MLP."""
    nodes = [
        helper.make_node("MatMul", ["x", "router"], ["logits"]),
        helper.make_node("ArgMax", ["logits"], ["idx1"], axis=1, keepdims=0),
        helper.make_node("Squeeze", ["idx1", "axes0"], ["idx"]),
        helper.make_node("Gather", ["w1_all", "idx"], ["w1"], axis=0),
        helper.make_node("Gather", ["w2_all", "idx"], ["w2"], axis=0),
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("MatMul", ["a", "w2"], ["y"]),
    ]
    inits = [
        _rng_init((dim, experts), "router", 0),
        _rng_init((experts, dim, hidden), "w1_all", 1),
        _rng_init((experts, hidden, dim), "w2_all", 2),
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
    ]
    g = helper.make_graph(
        nodes, f"moe{experts}", [helper.make_tensor_value_info("x", T.FLOAT, [1, dim])],
        [helper.make_tensor_value_info("y", T.FLOAT, [1, dim])], initializer=inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def mixture_of_experts(expert_counts: tuple[int, ...] = (1, 4, 16)) -> dict[str, Analysis]:
    return {f"E={e}": _analyze_model(moe_model(e)) for e in expert_counts}


# --------------------------------------------------------------------------- 3. pruning


def mlp_model(dim: int = 64, depth: int = 3, keep: float = 1.0, seed: int = 0) -> onnx.ModelProto:
    """``depth`` square MatMuls with ReLU; ``keep`` < 1 zeroes the smallest weights
    (magnitude pruning: exactly ``round(keep * dim * dim)`` non-zeros per matrix)."""
    nodes, inits = [], []
    cur = "x"
    for i in range(depth):
        w = np.random.default_rng(seed + i).standard_normal((dim, dim)).astype(np.float32)
        if keep < 1.0:
            n_zero = dim * dim - round(keep * dim * dim)
            order = np.argsort(np.abs(w), axis=None)
            w.reshape(-1)[order[:n_zero]] = 0.0
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Relu", [f"m{i}"], [f"r{i}"]))
        cur = f"r{i}"
    g = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", T.FLOAT, [8, dim])],
        [helper.make_tensor_value_info(cur, T.FLOAT, [8, dim])], initializer=inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def pruning(keeps: tuple[float, ...] = (1.0, 0.5, 0.1)) -> dict[str, Analysis]:
    return {f"keep={k:g}": _analyze_model(mlp_model(keep=k)) for k in keeps}


# --------------------------------------------------------------------------- 4. depth/width


def chain_model(layers: int, dim: int = 32, *, parallel: bool) -> onnx.ModelProto:
    """``layers`` square MatMuls in a chain, or side by side on one input and summed."""
    nodes, inits = [], []
    outs = []
    cur = "x"
    for i in range(layers):
        inits.append(_rng_init((dim, dim), f"w{i}", i))
        src = "x" if parallel else cur
        nodes.append(helper.make_node("MatMul", [src, f"w{i}"], [f"m{i}"]))
        cur = f"m{i}"
        outs.append(cur)
    if parallel:
        nodes.append(helper.make_node("Sum", outs, ["y"]))
        cur = "y"
    g = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", T.FLOAT, [4, dim])],
        [helper.make_tensor_value_info(cur, T.FLOAT, [4, dim])], initializer=inits,
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def depth_vs_width(layers: int = 8) -> dict[str, Analysis]:
    return {
        "deep": _analyze_model(chain_model(layers, parallel=False)),
        "wide": _analyze_model(chain_model(layers, parallel=True)),
    }


# --------------------------------------------------------------------------- 5. ViT patch


VIT = {"image": 64, "dim": 32, "depth": 2, "heads": 2, "mlp": 64, "classes": 10}


def vit_module(patch: int) -> Any:
    import torch
    from torch import nn

    cfg = VIT

    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            dim = cfg["dim"]
            self.patch = nn.Conv2d(3, dim, patch, patch)
            tokens = (cfg["image"] // patch) ** 2 + 1
            self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
            self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
            self.blocks = nn.Sequential(*[_block(dim, cfg["heads"], cfg["mlp"]) for _ in range(cfg["depth"])])
            self.ln = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, cfg["classes"])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.cls, x], dim=1) + self.pos  # batch 1
            return self.head(self.ln(self.blocks(x))[:, 0])

    torch.manual_seed(0)
    module = ViT()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape) * 0.1)
    return module


def vit_macs(patch: int) -> int:
    """Closed form: the patch projection is ``H^2 * 3 * dim`` whatever the patch size;
    per block ``T (4 d^2 + 2 d mlp)`` for the linears and ``2 T^2 d`` for attention."""
    c = VIT
    d, tokens = c["dim"], (c["image"] // patch) ** 2 + 1
    per_block = tokens * (4 * d * d + 2 * d * c["mlp"]) + 2 * tokens * tokens * d
    return c["image"] ** 2 * 3 * d + c["depth"] * per_block + d * c["classes"]


def vit_patches(patches: tuple[int, ...] = (32, 16, 8)) -> dict[str, Analysis]:
    import torch

    x = torch.randn(1, 3, VIT["image"], VIT["image"])
    return {f"patch={p}": _export(vit_module(p), x) for p in patches}


# --------------------------------------------------------------------------- table


def all_scenarios() -> list[Row]:
    rows: list[Row] = []
    for name, fn in (
        ("weight sharing", weight_sharing),
        ("mixture of experts", mixture_of_experts),
        ("pruning", pruning),
        ("depth vs width", depth_vs_width),
        ("ViT patch size", vit_patches),
    ):
        for variant, a in fn().items():
            rows.append(Row(name, variant, a))
    return rows


def format_table(rows: list[Row]) -> str:
    head = f"{'scenario':<20} {'variant':<10} {'params':>9} {'nonzero':>9} {'MACs':>12} {'FLOPs':>12} {'eff. FLOPs':>12} {'depth':>6} {'width':>6} {'crit.path FLOPs':>16}"
    lines = [head, "-" * len(head)]
    for r in rows:
        a = r.analysis
        lines.append(
            f"{r.scenario:<20} {r.variant:<10} {a.params.trainable:>9} {a.params.nonzero:>9} {a.macs:>12} {a.flops:>12} "
            f"{a.effective_flops:>12} {a.depth:>6} {a.max_width:>6} {a.critical_path_flops:>16}"
        )
    return "\n".join(lines)


def main() -> int:
    print(format_table(all_scenarios()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
