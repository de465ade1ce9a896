"""Which ONNX ops the cost counter covers, against the installed onnx's operator list.

:func:`coverage` compares the registry with the latest schema of every op of the
``ai.onnx`` domain that the installed ``onnx`` package defines (``onnx.defs``). An op is

* **counted**: it has a cost handler that counts its arithmetic;
* **free**: registered on purpose as doing no arithmetic (with the reason);
* **not covered**: no handler; a graph holding it reports it as unsupported.

Coverage of the domain = (counted + free) / all ``ai.onnx`` ops, in percent.
"""

from __future__ import annotations

import logging
from typing import Any

from nascost.predictors.costs import registry

logger = logging.getLogger(__name__)

AI_ONNX = ""


def _ai_onnx_schemas() -> dict[str, Any]:
    import onnx.defs

    return {s.name: s for s in onnx.defs.get_all_schemas() if s.domain in ("", "ai.onnx")}


def coverage() -> dict[str, Any]:
    """Covered ops, and the ``ai.onnx`` domain's coverage at the installed onnx version.

    Returns:
        A JSON-serializable dict::

            {
              "onnx_version": "1.23.2", "opset": 28,
              "ai_onnx": {
                "total": 203, "counted": [...], "free": {"Reshape": "reason", ...},
                "not_covered": [...], "deprecated": [...],
                "coverage_percent": 100.0,
              },
              "registered": {"ai.onnx": [...], "com.microsoft": [...], ...},
              "registered_count": 230,
              "registered_not_in_onnx": [...],   # ai.onnx ops onnx no longer defines
            }
    """
    import onnx
    import onnx.defs

    schemas = _ai_onnx_schemas()
    handlers = registry.registered()
    counted: list[str] = []
    free: dict[str, str] = {}
    not_covered: list[str] = []
    for name in sorted(schemas):
        if (AI_ONNX, name) not in handlers:
            not_covered.append(name)
            continue
        reason = registry.free_reason(AI_ONNX, name)
        if reason is None:
            counted.append(name)
        else:
            free[name] = reason
    by_domain: dict[str, list[str]] = {}
    for domain, op in sorted(handlers):
        by_domain.setdefault(domain or "ai.onnx", []).append(op)
    total = len(schemas)
    covered = len(counted) + len(free)
    return {
        "onnx_version": onnx.__version__,
        "opset": onnx.defs.onnx_opset_version(),
        "ai_onnx": {
            "total": total,
            "counted": counted,
            "free": free,
            "not_covered": not_covered,
            "deprecated": sorted(n for n, s in schemas.items() if s.deprecated),
            "coverage_percent": round(100.0 * covered / total, 2) if total else 0.0,
        },
        "registered": by_domain,
        "registered_count": len(handlers),
        "registered_not_in_onnx": sorted(op for d, op in handlers if d == AI_ONNX and op not in schemas),
    }
