"""Output shapes for nodes ONNX shape inference leaves unknown.

ONNX infers the standard ops in one pass over the graph, but stops at ops it has no
schema for (``com.microsoft.nchwc.Conv``, ``com.microsoft.FusedConv``, ...) and at
everything downstream of them. The graph builder calls :func:`infer` on such nodes in
topological order: a shape function registered here for the contrib op, otherwise
ONNX's own per-node inference (which now sees the upstream shapes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import onnx
from onnx import helper

from nascost.predictors.graph import Node

logger = logging.getLogger(__name__)

# (elem_type, shape) per output, None where unknown.
OutputShapes = list[tuple[int, tuple[int | None, ...]] | None]
ShapeFn = Callable[[Node], OutputShapes]

_SHAPE_FNS: dict[tuple[str, str], ShapeFn] = {}


def register_shape(*op_types: str, domain: str) -> Callable[[ShapeFn], ShapeFn]:
    """Register the output-shape function of contrib ops (duplicates are an error)."""

    def deco(fn: ShapeFn) -> ShapeFn:
        for op in op_types:
            key = (domain, op)
            if key in _SHAPE_FNS:
                raise ValueError(f"shape function for {key} registered twice")
            _SHAPE_FNS[key] = fn
        return fn

    return deco


def _onnx_node_inference(node: Node) -> OutputShapes | None:
    try:
        schema = onnx.defs.get_schema(node.op_type, node.opset or onnx.defs.onnx_opset_version(), node.domain)
    except onnx.defs.SchemaError:
        return None
    proto = helper.make_node(
        node.op_type,
        [t.name if t is not None else "" for t in node.inputs],
        [t.name for t in node.outputs],
        domain=node.domain,
    )
    proto.attribute.extend(node.attrs._attrs.values())
    types = {}
    data = {}
    for t in node.inputs:
        if t is None or t.shape is None:
            continue
        types[t.name] = helper.make_tensor_type_proto(t.elem_type, [d if d is not None else None for d in t.shape])
        if t.value is not None:
            try:
                data[t.name] = onnx.numpy_helper.from_array(t.value, t.name)
            except Exception:  # a value we cannot re-encode is simply not passed
                pass
    try:
        out = onnx.shape_inference.infer_node_outputs(schema, proto, types, data)
    except Exception as e:  # ONNX raises several types; the node then stays unknown
        logger.debug("per-node inference failed for %s: %s", node.name, e)
        return None
    result: OutputShapes = []
    for o in node.outputs:
        tp = out.get(o.name)
        if tp is None or tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.HasField("shape"):
            result.append(None)
            continue
        dims = tuple(int(d.dim_value) if d.HasField("dim_value") else None for d in tp.tensor_type.shape.dim)
        result.append((tp.tensor_type.elem_type, dims))
    return result


def infer(node: Node) -> OutputShapes | None:
    """Shapes of ``node``'s outputs, or None when nothing is known."""
    fn = _SHAPE_FNS.get((node.domain, node.op_type))
    if fn is not None:
        try:
            return fn(node)
        except Exception as e:  # a malformed contrib node stays unknown and is reported
            logger.debug("shape function failed for %s: %s", node.name, e)
            return None
    return _onnx_node_inference(node)
