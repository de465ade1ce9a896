"""Machinery of the per-op golden tests (the mechanism is described in test_op_coverage.py).

A golden case builds a small ONNX graph with ``onnx.helper``, runs it through
``load_graph`` + ``analyze`` and compares the indicators of the nodes of one
``(domain, op_type)`` (summed when there are several) with closed-form values written in
the case. Case tables live in ``tests/predictors/golden_*.py`` modules, each exposing a
``GOLDEN_CASES`` list; :func:`collect_cases` gathers them all.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.defs
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nascost.predictors.analysis import Analysis, NodeResult, analyze
from nascost.predictors.graph import ShapeRequest, load_graph

HERE = Path(__file__).resolve().parent
DEFAULT_OPSET = 21

F32 = T.FLOAT
I64 = T.INT64


@dataclass(frozen=True)
class GoldenCase:
    """One golden test: a graph builder and the closed-form indicators of one op's nodes.

    Attributes:
        domain: ``""`` for ai.onnx, else the op's domain (``"com.microsoft"``...).
        op_type: the op checked (its nodes' results are summed).
        build: returns the ``ModelProto`` (built lazily, at test time).
        expect: ``NodeResult`` attribute -> expected value (``macs``, ``flops`` = total
            FLOPs including ``2 * macs``, ``torchvision_macs``, ``flops_min``, ``flops_max``,
            ``activation_read_bytes``, ``write_bytes``, ``memory_access_bytes``...).
        name: distinguishes several cases of one op.
        shapes: request shapes, for graphs with symbolic dims.
        check: extra assertions on the whole analysis.
        note_contains: a substring the (summed) nodes' notes must contain.
    """

    domain: str
    op_type: str
    build: Callable[[], onnx.ModelProto]
    expect: Mapping[str, int]
    name: str = ""
    shapes: ShapeRequest | None = None
    check: Callable[[Analysis], None] | None = None
    note_contains: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return ("" if self.domain == "ai.onnx" else self.domain, self.op_type)

    @property
    def id(self) -> str:
        d = self.domain or "ai.onnx"
        return f"{d}::{self.op_type}" + (f"::{self.name}" if self.name else "")


@dataclass(frozen=True)
class Init:
    """An initializer input of a test graph."""

    name: str
    value: np.ndarray


@dataclass(frozen=True)
class In:
    """A graph input: name, shape, element type."""

    name: str
    shape: Sequence[int | str | None] | None
    dtype: int = F32
    kind: str = "tensor"  # or "sequence"


InputSpec = In | Init | str  # "" = omitted optional input; another str = a tensor made upstream


def first_opset(op_type: str, domain: str = "") -> int:
    """The first opset version in which ``op_type`` exists."""
    versions = [s.since_version for s in onnx.defs.get_all_schemas_with_history() if s.name == op_type and s.domain == domain]
    return min(versions) if versions else DEFAULT_OPSET


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[InputSpec],
    outputs: Sequence[str],
    *,
    opset: int | None = None,
    extra_opsets: Mapping[str, int] | None = None,
) -> onnx.ModelProto:
    graph_inputs = []
    inits = []
    for spec in inputs:
        if isinstance(spec, In):
            if spec.kind == "sequence":
                tp = helper.make_sequence_type_proto(helper.make_tensor_type_proto(spec.dtype, spec.shape))
                graph_inputs.append(helper.make_value_info(spec.name, tp))
            else:
                graph_inputs.append(helper.make_tensor_value_info(spec.name, spec.dtype, spec.shape))
        elif isinstance(spec, Init):
            inits.append(numpy_helper.from_array(spec.value, spec.name))
    if opset is None:
        opset = max([DEFAULT_OPSET, *(first_opset(n.op_type) for n in nodes if n.domain in ("", "ai.onnx"))])
    imports = [helper.make_opsetid("", opset)]
    for d, v in (extra_opsets or {}).items():
        imports.append(helper.make_opsetid(d, v))
    g = helper.make_graph(
        list(nodes), "golden", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outputs], initializer=inits
    )
    return helper.make_model(g, opset_imports=imports)


def single(
    op_type: str,
    inputs: Sequence[InputSpec],
    attrs: Mapping[str, Any] | None = None,
    *,
    n_outputs: int = 1,
    opset: int | None = None,
    domain: str = "",
    extra_opsets: Mapping[str, int] | None = None,
    pre: Sequence[onnx.NodeProto] = (),
) -> Callable[[], onnx.ModelProto]:
    """A builder of a graph with one ``op_type`` node (after the ``pre`` nodes)."""

    def build() -> onnx.ModelProto:
        names = [s if isinstance(s, str) else s.name for s in inputs]
        outs = [f"y{i}" for i in range(n_outputs)]
        node = helper.make_node(op_type, names, outs, domain=domain or None, **(attrs or {}))
        return make_model([*pre, node], inputs, outs, opset=opset, extra_opsets=extra_opsets)

    return build


def floats(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def run(case: GoldenCase) -> tuple[Analysis, list[NodeResult]]:
    analysis = analyze(load_graph(case.build(), case.shapes))
    nodes = [n for n in analysis.nodes if ("" if n.domain == "ai.onnx" else n.domain, n.op_type) == case.key]
    return analysis, nodes


def node_value(nodes: Sequence[NodeResult], attr: str) -> int:
    return sum(int(getattr(n, attr)) for n in nodes)


def _load(path: Path) -> list[GoldenCase]:
    mod_name = f"_nascost_golden_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load golden table {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    cases = getattr(module, "GOLDEN_CASES", None)
    if not isinstance(cases, list) or not all(isinstance(c, GoldenCase) for c in cases):
        raise TypeError(f"{path.name} must define GOLDEN_CASES: list[GoldenCase]")
    return cases


@cache
def collect_cases() -> tuple[GoldenCase, ...]:
    """Every ``GOLDEN_CASES`` entry of ``tests/predictors/golden_*.py``; ids must be unique."""
    cases: list[GoldenCase] = []
    for path in sorted(HERE.glob("golden_*.py")):
        cases.extend(_load(path))
    seen: set[str] = set()
    for c in cases:
        if c.id in seen:
            raise ValueError(f"duplicate golden case id {c.id}")
        seen.add(c.id)
    return tuple(cases)
