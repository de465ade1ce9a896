"""Every registered op has a golden test; ``coverage()`` reports the ai.onnx domain.

How the golden table works (several files contribute to it):

* A golden case is a :class:`goldenlib.GoldenCase`: ``(domain, op_type)``, a builder of a
  small ONNX graph, and the closed-form indicators expected of that op's nodes.
* Each table module is a file ``tests/predictors/golden_<topic>.py`` that defines
  ``GOLDEN_CASES: list[GoldenCase]`` (``golden_onnx.py`` holds the ai.onnx domain; contrib
  domains add their own file, e.g. ``golden_contrib.py``). Add cases there, never in
  this file. Case ids (``domain::op_type[::name]``) must be unique across files.
* ``goldenlib.collect_cases()`` imports every ``golden_*.py`` beside it;
  ``test_ops_golden.py`` runs each case through ``load_graph`` + ``analyze``.
* The test below fails when ``registry.registered()`` holds a ``(domain, op_type)`` no
  case covers, so registering a handler without a golden test breaks the build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx.defs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goldenlib import collect_cases

from nascost.predictors.costs import registry
from nascost.predictors.costs.coverage import coverage


def test_every_registered_op_has_a_golden_case() -> None:
    covered = {c.key for c in collect_cases()}
    missing = sorted(set(registry.registered()) - covered)
    assert not missing, f"registered ops without a golden case: {missing}"


def test_golden_cases_name_registered_ops() -> None:
    stale = sorted({c.key for c in collect_cases()} - set(registry.registered()))
    assert not stale, f"golden cases for ops nobody registers: {stale}"


def test_coverage_report_matches_onnx_schemas() -> None:
    report = coverage()
    json.dumps(report)  # the CLI prints it as JSON
    ai = report["ai_onnx"]
    schemas = {s.name for s in onnx.defs.get_all_schemas() if s.domain in ("", "ai.onnx")}
    assert ai["total"] == len(schemas)
    listed = set(ai["counted"]) | set(ai["free"]) | set(ai["not_covered"])
    assert listed == schemas
    assert not set(ai["counted"]) & set(ai["free"])
    for op in ai["counted"] + list(ai["free"]):
        assert registry.lookup("", op) is not None
    for op in ai["not_covered"]:
        assert registry.lookup("", op) is None
    assert ai["coverage_percent"] == round(100 * (len(ai["counted"]) + len(ai["free"])) / len(schemas), 2)
    assert "Reshape" in ai["free"] and "Conv" in ai["counted"] and "Upsample" in ai["deprecated"]
    assert all(reason for reason in ai["free"].values())
    assert report["registered_count"] == len(registry.registered())


def test_every_ai_onnx_op_is_covered() -> None:
    """The issue's bar: every standard op has a handler (counted or free with a reason)."""
    assert coverage()["ai_onnx"]["not_covered"] == []
