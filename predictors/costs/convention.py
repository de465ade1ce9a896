"""The counting convention of nascost, written once.

* **MAC**: one multiply-accumulate. Conv, ConvTranspose, Gemm, MatMul, Einsum,
  attention and recurrent ops count MACs: ``macs = output elements x reduction length``
  (a bias add is counted as a non-MAC FLOP, one per output element).
* **FLOPs** = ``FLOPS_PER_MAC * macs`` + every other floating-point operation:
  elementwise arithmetic and comparisons 1 per output element, activations by the
  per-op cost below (one "op" per elementary function evaluation), reductions one per
  input element, normalizations and softmax by the formulas beside their handlers,
  pooling one per window element read, resize by the interpolation taps.
  Integer-only ops (shape arithmetic on int64, Gather indices) add no FLOPs.
* **torchvision MACs**: the MACs of conv, linear and matmul-like ops only (what
  torchvision publishes as ``_ops``/"GFLOPS" and most papers quote).
* **Memory access cost** (bytes): per node, every input read once (weights separately)
  plus every output written once, at the tensors' storage width; ops that only look at
  metadata (Shape, Size) read nothing, gathers read only the rows they take.
* **Effective MACs** (sparsity-aware): ``macs x nonzero(weight) / numel(weight)`` for the
  weight whose zeros would be skipped; dense elsewhere.
"""

from __future__ import annotations

FLOPS_PER_MAC = 2

# Cost, in FLOPs per element, of elementary functions: exp/log/tanh/erf/sqrt/div are 1
# op each, like an add; what matters for ranking is that no op is counted as zero.
TRANSCENDENTAL_FLOPS = 1
