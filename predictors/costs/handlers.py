"""Imports every handler module so that each registers its ops (one place to add one)."""

from __future__ import annotations

from nascost.predictors.costs import (  # noqa: F401
    ops_attention,
    ops_contrib,
    ops_control,
    ops_conv_ext,
    ops_data,
    ops_einsum,
    ops_elementwise,
    ops_linear,
    ops_misc,
    ops_norm,
    ops_pool,
    ops_quant,
    ops_resize,
    ops_sequence,
)
