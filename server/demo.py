"""A small ResNet-style example graph, built with onnx.helper (no downloads, no torch).

Used by ``nascost serve --demo`` (what ``make run`` shows) and ``nascost example``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def tiny_resnet(*, channels: int = 16, blocks: int = 2, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """Stem conv -> max pool -> ``blocks`` residual blocks -> global pool -> linear.

    Input ``input`` is ``[batch, 3, 64, 64]`` with a symbolic ``batch``.
    """
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(name: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name))
        return name

    def conv(x: str, out: str, cin: int, cout: int, k: int, stride: int = 1) -> str:
        w = weight(f"{out}.weight", (cout, cin, k, k))
        b = weight(f"{out}.bias", (cout,))
        pad = k // 2
        nodes.append(
            helper.make_node(
                "Conv", [x, w, b], [out], name=out, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4
            )
        )
        return out

    x = conv("input", "stem", 3, channels, 7, 2)
    nodes.append(helper.make_node("Relu", [x], ["stem_relu"], name="stem_relu"))
    nodes.append(
        helper.make_node("MaxPool", ["stem_relu"], ["pool"], name="pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4)
    )
    x = "pool"
    for i in range(blocks):
        a = conv(x, f"block{i}.conv1", channels, channels, 3)
        nodes.append(helper.make_node("Relu", [a], [f"block{i}.relu1"], name=f"block{i}.relu1"))
        b = conv(f"block{i}.relu1", f"block{i}.conv2", channels, channels, 3)
        nodes.append(helper.make_node("Add", [b, x], [f"block{i}.add"], name=f"block{i}.add"))
        nodes.append(helper.make_node("Relu", [f"block{i}.add"], [f"block{i}.out"], name=f"block{i}.out"))
        x = f"block{i}.out"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    w = weight("fc.weight", (classes, channels))
    b = weight("fc.bias", (classes,))
    nodes.append(helper.make_node("Gemm", ["flat", w, b], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes,
        "tiny_resnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nascost-demo")
    model.ir_version = 8
    return model
