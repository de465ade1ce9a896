"""One golden test per registered op: closed-form counts on small ``onnx.helper`` graphs.

Cases come from every ``tests/predictors/golden_*.py`` table (see test_op_coverage.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goldenlib import GoldenCase, collect_cases, node_value, run

CASES = collect_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case: GoldenCase) -> None:
    analysis, nodes = run(case)
    assert nodes, f"graph holds no {case.op_type} node"
    for n in nodes:
        assert not n.unsupported, f"{n.name}: no handler"
        assert not n.unresolved, f"{n.name}: {n.note}"
    got = {k: node_value(nodes, k) for k in case.expect}
    assert got == dict(case.expect)
    if case.note_contains:
        notes = " ".join(n.note for n in nodes)
        assert case.note_contains in notes, notes
    if case.check is not None:
        case.check(analysis)
