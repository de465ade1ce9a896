"""Recurrent ops: RNN, GRU, LSTM (ai.onnx), counted per time step x sequence length x directions.

Notation: ``S`` sequence length (``X`` axis 0, or axis 1 when ``layout=1``), ``B`` batch,
``I`` input size, ``H`` hidden size, ``D`` directions (2 when ``direction=bidirectional``),
``G`` gates (RNN 1, GRU 3, LSTM 4).

* **MACs** = ``D * S * B * G*H * (I + H)``: the input projection ``X_t W^T`` and the
  recurrent projection ``H_{t-1} R^T`` of every gate, at every step, in every direction.
  (GRU's ``(r_t . H_{t-1}) R_h^T`` is still ``H x H`` MACs per element.)
* **Bias** (input ``B`` given): ``Wb + Rb`` are two adds per gate element:
  ``D * S * B * 2*G*H`` FLOPs.
* **Gate elementwise FLOPs** per step and batch row (``f``, ``g``, ``h`` = the
  activations, each at its per-element cost: Sigmoid 3, Tanh 1, Relu 1, Affine 2,
  LeakyRelu 2, ThresholdedRelu 1, ScaledTanh 3, HardSigmoid 4, Elu 4, Softsign 3,
  Softplus 3):

  - RNN:  ``H`` (add the two projections) + ``f(H)``.
  - GRU:  ``3H`` (adds) + ``2 f(H)`` (z, r) + ``H`` (r . H_{t-1}, or r . (H R_h^T + Rb_h) when
    ``linear_before_reset``) + ``g(H)`` + ``4H`` (``(1 - z) . h + z . H_{t-1}``).
    With default activations: ``15 H``.
  - LSTM: ``4H`` (adds) + ``3 f(H)`` (i, o, f) + ``g(H)`` + ``3H`` (``f . C + i . c``) +
    ``h(H)`` + ``H`` (``o . h(C)``); peepholes (input ``P``) add ``6H`` (3 mul + 3 add);
    ``input_forget=1`` adds ``H`` (``f = 1 - i``) and drops the forget gate's sigmoid.
    With default activations: ``19 H``.
  - ``clip`` adds 2 per gate pre-activation (min and max): ``2 G H``.

``sequence_lens`` (data) can only shorten the run: the count is for the full ``S`` steps,
an upper bound when it is given (the node says so). The MACs count toward the
torchvision convention (they are the linear layers of the cell).
"""

from __future__ import annotations

from nascost.predictors.costs.common import need
from nascost.predictors.costs.registry import OpCost, register_cost
from nascost.predictors.graph import Node

# Per-element FLOPs of the activation functions the recurrent ops accept.
ACTIVATION_FLOPS: dict[str, int] = {
    "relu": 1, "tanh": 1, "sigmoid": 3, "affine": 2, "leakyrelu": 2, "thresholdedrelu": 1,
    "scaledtanh": 3, "hardsigmoid": 4, "elu": 4, "softsign": 3, "softplus": 3,
}

_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_DEFAULT_ACTS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh")}


def _activation_costs(node: Node, per_direction: int, directions: int) -> list[list[int]]:
    """Per-direction activation costs, from the ``activations`` attribute or the defaults."""
    names = node.attrs.get_strings("activations")
    if not names:
        names = _DEFAULT_ACTS[node.op_type] * directions
    if len(names) < per_direction * directions:  # a single direction's list reused
        names = tuple(names[:per_direction]) * directions
    out = []
    for d in range(directions):
        chunk = names[d * per_direction:(d + 1) * per_direction]
        costs = []
        for n in chunk:
            key = n.lower()
            if key not in ACTIVATION_FLOPS:
                raise ValueError(f"unknown recurrent activation {n!r}")
            costs.append(ACTIVATION_FLOPS[key])
        out.append(costs)
    return out


@register_cost("RNN", "GRU", "LSTM")
def recurrent(node: Node) -> OpCost:
    """MACs ``D*S*B*G*H*(I+H)`` plus bias and gate FLOPs (module docstring)."""
    op = node.op_type
    x = need(node, 0).dims
    w = need(node, 1).dims  # [D, G*H, I]
    gates = _GATES[op]
    layout = node.attrs.get_int("layout", 0)
    seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
    input_size = x[2]
    directions = w[0]
    hidden = node.attrs.get_int("hidden_size", 0) or w[1] // gates
    steps = directions * seq * batch

    macs = steps * gates * hidden * (input_size + hidden)
    flops = 0
    if node.input(3) is not None:
        flops += steps * 2 * gates * hidden
    if node.attrs.get("clip") is not None:
        flops += steps * 2 * gates * hidden
    per_dir_acts = {"RNN": 1, "GRU": 2, "LSTM": 3}[op]
    acts = _activation_costs(node, per_dir_acts, directions)
    per_row = 0  # summed over directions, per step and batch row
    for a in acts:
        if op == "RNN":
            per_row += hidden + a[0] * hidden
        elif op == "GRU":
            f, g = a
            per_row += 3 * hidden + 2 * f * hidden + hidden + g * hidden + 4 * hidden
        else:
            f, g, h = a
            sigmoids = 2 if node.attrs.get_int("input_forget", 0) else 3
            per_row += 4 * hidden + sigmoids * f * hidden + g * hidden + 3 * hidden + h * hidden + hidden
            if node.attrs.get_int("input_forget", 0):
                per_row += hidden
            if node.input(7) is not None:
                per_row += 6 * hidden
    flops += seq * batch * per_row
    note = ""
    if node.input(4) is not None:
        note = f"counted for the full {seq} steps; sequence_lens may stop rows earlier (upper bound)"
    return OpCost(macs=macs, flops=flops, torchvision=True, sparse_input=1, note=note)
