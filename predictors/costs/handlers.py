"""Imports every handler module so that each registers its ops (one place to add one)."""

from __future__ import annotations

from nascost.predictors.costs import (  # noqa: F401
    ops_data,
    ops_elementwise,
    ops_linear,
    ops_norm,
    ops_pool,
)
