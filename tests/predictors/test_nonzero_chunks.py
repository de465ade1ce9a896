"""Non-zero weight counts on payloads larger than the counting chunk, from model bytes.

Reference: numpy's ``count_nonzero`` on the float values (-0.0 is zero, NaN is not).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from nascost.predictors import graph as graph_mod
from nascost.predictors.analysis import analyze
from nascost.predictors.graph import load_graph_bytes


@pytest.mark.parametrize("dtype,elem", [(np.float32, T.FLOAT), (np.float16, T.FLOAT16)])
def test_nonzero_count_across_chunk_boundaries(dtype: type, elem: int) -> None:
    rng = np.random.default_rng(1)
    n_out = 3 * graph_mod._NONZERO_CHUNK_BYTES // (64 * np.dtype(dtype).itemsize) + 7  # > 3 chunks, ragged end
    w = rng.standard_normal((64, n_out)).astype(dtype)
    flat = w.reshape(-1)
    flat[rng.random(flat.size) < 0.3] = 0.0
    flat[rng.random(flat.size) < 0.05] = -0.0
    flat[:: 9973] = np.nan
    step = graph_mod._NONZERO_CHUNK_BYTES // np.dtype(dtype).itemsize
    flat[step - 1: step + 1] = -0.0  # zeros straddling a chunk edge
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", elem, [1, 64])],
                          [helper.make_tensor_value_info("y", elem, [1, n_out])],
                          [numpy_helper.from_array(w, "w")])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]).SerializeToString()
    a = analyze(load_graph_bytes(data))
    assert a.params.trainable == w.size
    assert a.params.nonzero == int(np.count_nonzero(w))
