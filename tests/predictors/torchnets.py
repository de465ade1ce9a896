"""Small torch modules for the cross-check tests (random weights; no torchvision).

ResNet-, MobileNet-V2-, ViT- and transformer-encoder-style networks, written with plain
layers; attention is written with matmuls so that ``FlopCounterMode`` counts it (it counts
CPU ``scaled_dot_product_attention`` as 0).
"""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class TinyResNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.blocks = nn.Sequential(Bottleneck(16, 8, 1), Bottleneck(32, 16, 2))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.use_res else y


class TinyMobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1, 1), InvertedResidual(16, 24, 2, 6), InvertedResidual(24, 24, 1, 6))
        self.head = nn.Linear(24, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block; attention as explicit matmuls."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // h) ** -0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


class TinyViT(nn.Module):
    def __init__(self, patch: int = 8, image: int = 32, dim: int = 32, depth: int = 2, heads: int = 2,
                 mlp: int = 64, num_classes: int = 10, shared: bool = False) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, patch)
        tokens = (image // patch) ** 2 + 1
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        block = EncoderBlock(dim, heads, mlp)
        self.blocks = nn.ModuleList([block if shared else EncoderBlock(dim, heads, mlp) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)
        # batch 1 (the tests' shape): no Expand over a computed shape in the graph
        x = torch.cat([self.cls, x], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x)[:, 0])


class TinyEncoder(nn.Module):
    """Transformer encoder over token ids: embedding table, blocks, classifier."""

    def __init__(self, vocab: int = 50, seq: int = 12, dim: int = 32, depth: int = 2, heads: int = 4, mlp: int = 64,
                 shared: bool = False, tied_head: bool = False) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, seq, dim) * 0.02)
        block = EncoderBlock(dim, heads, mlp)
        self.blocks = nn.ModuleList([block if shared else EncoderBlock(dim, heads, mlp) for _ in range(depth)])
        self.out = nn.Linear(dim, vocab, bias=False)
        if tied_head:
            self.out.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.out(x)


def export(module: nn.Module, example: torch.Tensor, **kwargs: Any) -> bytes:
    """Legacy-exporter ONNX bytes (eval mode; BatchNorm folds into Conv)."""
    module.eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (example,), buf, opset_version=17, dynamo=False, **kwargs)
    return buf.getvalue()


def torch_macs(module: nn.Module, example: torch.Tensor) -> int:
    """MACs as torch's FlopCounterMode counts them (its FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(example)
    total = int(counter.get_total_flops())
    assert total % 2 == 0
    return total // 2


def unique_param_count(module: nn.Module) -> int:
    """Parameters, each tensor once (tied weights once), as torch's ``parameters()`` yields."""
    return sum(p.numel() for p in module.parameters())


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter and BatchNorm statistic distinct random values, so that the
    exporter's deduplication of identical initializers (fresh LayerNorms are all ones)
    and zero-bias folding do not blur the counts; returns the module in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return module.eval()
