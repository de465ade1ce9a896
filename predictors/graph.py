"""Graph intake: ONNX bytes -> a typed, shape-resolved, read-only graph view.

This is the one module that touches ``onnx`` protobuf messages. Everything after it
(cost handlers, the analysis engine, feature extraction) works on :class:`Graph`,
:class:`Node` and :class:`TensorInfo`.

Shapes come from ONNX shape inference run on a *skeleton* of the model: large weight
initializers are replaced by typed graph inputs, so inference never re-serializes weight
payloads (on a full-weight ResNet-50 that alone costs ~0.25 s). Nodes that ONNX cannot
infer (contrib ops such as ``com.microsoft.nchwc.Conv``) are filled in afterwards, node by
node, by the shape functions registered in :mod:`nascost.predictors.costs.shapes` and by
``onnx.shape_inference.infer_node_outputs`` for the standard ops downstream of them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from nascost.predictors.errors import InvalidModelError, InvalidRequestError, UnsafeModelError

logger = logging.getLogger(__name__)

DEFAULT_DOMAIN = ""
# Initializers up to this many elements keep their data in the inference skeleton (shape
# and axes tensors, small scales); larger ones travel as typed inputs only.
_SKELETON_KEEP_ELEMENTS = 4096
# Constant inputs up to this many elements are decoded for handlers (Reshape shapes,
# Resize scales, Loop trip counts, Pad pads, ...).
_CONST_VALUE_MAX_ELEMENTS = 4096

_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.FLOAT8E4M3FN,
        onnx.TensorProto.FLOAT8E4M3FNUZ,
        onnx.TensorProto.FLOAT8E5M2,
        onnx.TensorProto.FLOAT8E5M2FNUZ,
    }
)
_SUBBYTE_BITS = {onnx.TensorProto.INT4: 4, onnx.TensorProto.UINT4: 4}
for _name in ("FLOAT4E2M1", "INT2", "UINT2"):
    if hasattr(onnx.TensorProto, _name):
        _SUBBYTE_BITS[getattr(onnx.TensorProto, _name)] = 2 if "2" == _name[-1] else 4


def dtype_name(elem_type: int) -> str:
    """ONNX element type -> short lower-case name ("float32", "int8", "bfloat16", ...)."""
    if elem_type == onnx.TensorProto.FLOAT:
        return "float32"
    if elem_type == onnx.TensorProto.DOUBLE:
        return "float64"
    if elem_type == onnx.TensorProto.UNDEFINED:
        return "undefined"
    return onnx.TensorProto.DataType.Name(elem_type).lower()


def element_bits(elem_type: int) -> int:
    """Storage bits of one element (4 for int4, 32 for float32, 0 for unknown/string)."""
    if elem_type in _SUBBYTE_BITS:
        return _SUBBYTE_BITS[elem_type]
    if elem_type in (onnx.TensorProto.UNDEFINED, onnx.TensorProto.STRING):
        return 0
    try:
        return int(helper.tensor_dtype_to_np_dtype(elem_type).itemsize) * 8
    except (KeyError, TypeError, ValueError):
        return 0


def digest_of(data: bytes) -> str:
    """Content digest of serialized model bytes: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """What a cost handler may know of one tensor: never its payload, except small constants.

    ``shape`` is ``None`` when the rank is unknown; a ``None`` inside it is a dimension
    that stayed symbolic (its name is in ``symbolic``).
    """

    name: str
    elem_type: int
    shape: tuple[int | None, ...] | None
    is_weight: bool = False
    is_constant: bool = False
    value: np.ndarray | None = None
    symbolic: tuple[str, ...] = ()

    @property
    def dtype(self) -> str:
        return dtype_name(self.elem_type)

    @property
    def is_float(self) -> bool:
        return self.elem_type in _FLOAT_TYPES

    @property
    def known(self) -> bool:
        """Whether every dimension is a concrete integer."""
        return self.shape is not None and all(d is not None for d in self.shape)

    @property
    def rank(self) -> int:
        if self.shape is None:
            raise UnresolvedShapeError(self.name, self.symbolic)
        return len(self.shape)

    @property
    def dims(self) -> tuple[int, ...]:
        """The concrete shape; raises :class:`UnresolvedShapeError` when not known."""
        if self.shape is None or any(d is None for d in self.shape):
            raise UnresolvedShapeError(self.name, self.symbolic)
        return self.shape  # type: ignore[return-value]

    @property
    def numel(self) -> int:
        return int(np.prod(self.dims, dtype=np.int64)) if self.dims else 1

    @property
    def nbytes(self) -> int:
        return (self.numel * element_bits(self.elem_type) + 7) // 8


class UnresolvedShapeError(Exception):
    """A handler needed a shape that stayed symbolic or unknown (internal signal)."""

    def __init__(self, tensor: str, symbolic: Sequence[str] = ()) -> None:
        self.tensor = tensor
        self.symbolic = tuple(symbolic)
        detail = f" (symbolic dims: {', '.join(self.symbolic)})" if self.symbolic else ""
        super().__init__(f"shape of tensor {tensor!r} is not known{detail}")


class Attributes(Mapping[str, Any]):
    """Typed, read-only access to a node's attributes (``get_int(key, default)``...)."""

    __slots__ = ("_attrs",)

    def __init__(self, attrs: Iterable[onnx.AttributeProto]) -> None:
        self._attrs = {a.name: a for a in attrs}

    def __getitem__(self, key: str) -> Any:
        return helper.get_attribute_value(self._attrs[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._attrs)

    def __len__(self) -> int:
        return len(self._attrs)

    def get_int(self, key: str, default: int = 0) -> int:
        a = self._attrs.get(key)
        return int(a.i) if a is not None else default

    def get_float(self, key: str, default: float = 0.0) -> float:
        a = self._attrs.get(key)
        return float(a.f) if a is not None else default

    def get_ints(self, key: str, default: Sequence[int] = ()) -> tuple[int, ...]:
        a = self._attrs.get(key)
        return tuple(int(v) for v in a.ints) if a is not None else tuple(default)

    def get_floats(self, key: str, default: Sequence[float] = ()) -> tuple[float, ...]:
        a = self._attrs.get(key)
        return tuple(float(v) for v in a.floats) if a is not None else tuple(default)

    def get_string(self, key: str, default: str = "") -> str:
        a = self._attrs.get(key)
        return a.s.decode("utf-8", "replace") if a is not None else default

    def get_strings(self, key: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        a = self._attrs.get(key)
        return tuple(s.decode("utf-8", "replace") for s in a.strings) if a is not None else tuple(default)


@dataclass(frozen=True, slots=True)
class Node:
    """One node with its inputs' and outputs' tensor infos. ``None`` = omitted optional input."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo, ...]
    attrs: Attributes
    subgraphs: Mapping[str, Graph] = field(default_factory=dict)
    opset: int = 0

    def input(self, i: int) -> TensorInfo | None:
        """Input ``i``, or ``None`` when absent or omitted."""
        return self.inputs[i] if i < len(self.inputs) else None

    def out(self, i: int = 0) -> TensorInfo:
        return self.outputs[i]


@dataclass(frozen=True, slots=True)
class WeightInfo:
    """One unique initializer (or float Constant) of the graph."""

    name: str
    elem_type: int
    shape: tuple[int, ...]
    numel: int
    nbytes: int
    # Non-zero elements; None when the payload was not sent.
    nonzero: int | None
    # Name of an earlier initializer holding identical data, if any (tied weight).
    duplicate_of: str | None = None
    from_constant_node: bool = False

    @property
    def is_float(self) -> bool:
        return self.elem_type in _FLOAT_TYPES


@dataclass(frozen=True, slots=True)
class Graph:
    """A shape-resolved graph: nodes in a valid topological order."""

    nodes: tuple[Node, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    weights: Mapping[str, WeightInfo]
    opsets: Mapping[str, int]
    has_weight_data: bool
    # Names of tensors visible from an enclosing graph (for subgraphs).
    outer_names: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- parsing


def parse_model(data: bytes, *, max_bytes: int | None = None) -> onnx.ModelProto:
    """Bytes -> ``ModelProto``, refusing anything unsafe or obviously broken.

    Raises:
        InvalidModelError: not a parseable ONNX model, or empty.
        UnsafeModelError: it refers to external data.
    """
    if max_bytes is not None and len(data) > max_bytes:
        from nascost.predictors.errors import LimitExceededError

        raise LimitExceededError(f"model is {len(data)} bytes; this server accepts at most {max_bytes}")
    if not data:
        raise InvalidModelError("model is empty (0 bytes)")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise InvalidModelError(f"not a valid ONNX ModelProto ({len(data)} bytes): protobuf parse failed") from e
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise InvalidModelError("model has no graph or a graph without nodes (truncated or not an ONNX model?)")
    refuse_external_data(model)
    return model


def _iter_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _iter_graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _iter_graphs(g)


def _iter_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    for g in _iter_graphs(model.graph):
        yield from g.initializer
        for sp in g.sparse_initializer:
            yield sp.values
            yield sp.indices
        for node in g.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t
                elif a.type == onnx.AttributeProto.TENSORS:
                    yield from a.tensors
    for fn in model.functions:
        for node in fn.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t


def refuse_external_data(model: onnx.ModelProto) -> None:
    """Raise :class:`UnsafeModelError` if any tensor refers to data outside the message.

    Done before onnx or onnxruntime sees the model (CVE-2022-25882, CVE-2024-27318):
    a server never opens a path a model names.
    """
    for t in _iter_tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) > 0:
            where = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise UnsafeModelError(
                f"tensor {t.name!r} refers to external data ({where!r}); external data is refused: "
                "embed the weights in the model (onnx.save_model(..., save_as_external_data=False)) "
                "or send the graph without weight payloads"
            )


# --------------------------------------------------------------------------- shapes


@dataclass(frozen=True, slots=True)
class ShapeRequest:
    """Shapes chosen for one request."""

    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    dim_values: Mapping[str, int] = field(default_factory=dict)

    def validate(self) -> None:
        for name, dims in self.input_shapes.items():
            if any(int(d) < 1 for d in dims):
                raise InvalidRequestError(f"input shape for {name!r} must have every dim >= 1, got {list(dims)}")
        for name, v in self.dim_values.items():
            if int(v) < 1:
                raise InvalidRequestError(f"dim value {name}={v} must be >= 1")


def _type_shape(vi: onnx.ValueInfoProto | onnx.TypeProto) -> tuple[int, tuple[int | None, ...] | None, tuple[str, ...]]:
    tp = vi.type if isinstance(vi, onnx.ValueInfoProto) else vi
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        tt = tp.tensor_type
    elif which == "sparse_tensor_type":
        tt = tp.sparse_tensor_type  # type: ignore[assignment]
    else:
        return onnx.TensorProto.UNDEFINED, None, ()
    if not tt.HasField("shape"):
        return tt.elem_type, None, ()
    dims: list[int | None] = []
    syms: list[str] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(None)
            syms.append(d.dim_param or "?")
    return tt.elem_type, tuple(dims), tuple(syms)


def _set_input_shape(vi: onnx.ValueInfoProto, dims: Sequence[int]) -> None:
    tt = vi.type.tensor_type
    tt.ClearField("shape")
    for d in dims:
        tt.shape.dim.add().dim_value = int(d)


def _bind_inputs(
    graph: onnx.GraphProto, init_names: set[str], shapes: ShapeRequest
) -> onnx.GraphProto:
    """Copy the graph's real inputs with the request's shapes applied."""
    real_inputs = [vi for vi in graph.input if vi.name not in init_names]
    known = {vi.name for vi in real_inputs}
    unknown = sorted(set(shapes.input_shapes) - known)
    if unknown:
        raise InvalidRequestError(
            f"input shape given for {', '.join(map(repr, unknown))}, which is not a graph input; "
            f"graph inputs: {', '.join(sorted(known)) or '(none)'}"
        )
    out = onnx.GraphProto()
    for vi in real_inputs:
        new = out.input.add()
        new.CopyFrom(vi)
        if vi.name in shapes.input_shapes:
            dims = shapes.input_shapes[vi.name]
            _, declared, _ = _type_shape(vi)
            if declared is not None and len(declared) != len(dims):
                raise InvalidRequestError(
                    f"input {vi.name!r} has rank {len(declared)}, but the request gives {len(dims)} dims {list(dims)}"
                )
            if declared is not None:
                for axis, (want, have) in enumerate(zip(declared, dims, strict=True)):
                    if want is not None and want != have:
                        raise InvalidRequestError(
                            f"input {vi.name!r} axis {axis} is fixed at {want} by the graph; the request asks for {have}"
                        )
            _set_input_shape(new, dims)
        elif new.type.WhichOneof("value") == "tensor_type" and new.type.tensor_type.HasField("shape"):
            for d in new.type.tensor_type.shape.dim:
                if d.HasField("dim_param") and d.dim_param in shapes.dim_values:
                    value = int(shapes.dim_values[d.dim_param])
                    d.Clear()
                    d.dim_value = value
    return out


def _skeleton(model: onnx.ModelProto, shapes: ShapeRequest) -> onnx.ModelProto:
    """The model without large weight payloads: typed inputs stand in for them."""
    g = model.graph
    init_names = {t.name for t in g.initializer}
    skel = onnx.ModelProto()
    skel.ir_version = max(model.ir_version, 4)
    skel.opset_import.extend(model.opset_import)
    skel.functions.extend(model.functions)
    sg = skel.graph
    sg.name = g.name
    sg.input.extend(_bind_inputs(g, init_names, shapes).input)
    for t in g.initializer:
        numel = int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1
        if numel <= _SKELETON_KEEP_ELEMENTS and t.data_type not in _FLOAT_TYPES or numel <= 64:
            sg.initializer.append(t)
        else:
            vi = helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
            sg.input.append(vi)
    sg.node.extend(g.node)
    sg.output.extend(g.output)
    return skel


def _infer(skel: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Run ONNX shape inference; return name -> value info for every typed tensor."""
    try:
        inferred = onnx.shape_inference.infer_shapes(skel, check_type=False, strict_mode=False, data_prop=True)
    except onnx.shape_inference.InferenceError as e:
        raise InvalidModelError(f"shape inference failed: {_first_line(e)}") from e
    except Exception as e:  # onnx raises bare RuntimeError/ValidationError for broken graphs
        logger.info("shape inference failed with data propagation, retrying without: %s", e)
        try:
            inferred = onnx.shape_inference.infer_shapes(skel, check_type=False, strict_mode=False)
        except Exception as e2:
            raise InvalidModelError(f"shape inference failed: {_first_line(e2)}") from e2
    out: dict[str, onnx.ValueInfoProto] = {}
    for coll in (inferred.graph.input, inferred.graph.value_info, inferred.graph.output):
        for vi in coll:
            out[vi.name] = vi
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:500] if text else type(e).__name__


def _decode_small(t: onnx.TensorProto) -> np.ndarray | None:
    numel = int(np.prod(t.dims, dtype=np.int64)) if len(t.dims) else 1
    if numel > _CONST_VALUE_MAX_ELEMENTS or t.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    if t.data_type in _SUBBYTE_BITS:
        return None
    try:
        arr = numpy_helper.to_array(t)
    except Exception:  # payload absent or malformed: a handler then sees no value
        return None
    if arr.size != numel:
        return None
    return arr


def _has_payload(t: onnx.TensorProto) -> bool:
    return bool(
        t.raw_data
        or t.float_data
        or t.int32_data
        or t.int64_data
        or t.double_data
        or t.uint64_data
        or t.string_data
    )


def _nonzero(t: onnx.TensorProto) -> int | None:
    if not _has_payload(t) or t.data_type in _SUBBYTE_BITS:
        return None
    try:
        if t.raw_data:
            np_dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
            if t.data_type == onnx.TensorProto.BFLOAT16 or t.data_type == onnx.TensorProto.FLOAT16:
                np_dtype = np.dtype(np.uint16)  # a float is zero iff its bits are +0/-0
                arr = np.frombuffer(t.raw_data, dtype=np_dtype) & np.uint16(0x7FFF)
                return int(np.count_nonzero(arr))
            if np_dtype.kind == "f" and np_dtype.itemsize == 4:
                bits = np.frombuffer(t.raw_data, dtype=np.uint32) & np.uint32(0x7FFFFFFF)
                return int(np.count_nonzero(bits))
            return int(np.count_nonzero(np.frombuffer(t.raw_data, dtype=np_dtype)))
        return int(np.count_nonzero(numpy_helper.to_array(t)))
    except Exception:
        return None


def _weight_infos(g: onnx.GraphProto) -> tuple[dict[str, WeightInfo], bool]:
    """Unique initializers and float Constant tensors; identical payloads linked as tied."""
    weights: dict[str, WeightInfo] = {}
    has_data = False
    by_layout: dict[tuple[int, tuple[int, ...]], list[onnx.TensorProto]] = {}
    tensors: list[tuple[onnx.TensorProto, bool, str]] = [(t, False, t.name) for t in g.initializer]
    for node in g.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    tensors.append((a.t, True, node.output[0]))
    for t, from_const, name in tensors:
        dims = tuple(int(d) for d in t.dims)
        numel = int(np.prod(dims, dtype=np.int64)) if dims else 1
        payload = _has_payload(t)
        has_data = has_data or (payload and numel > 64)
        duplicate_of = None
        if payload and numel >= 256 and t.data_type in _FLOAT_TYPES:
            group = by_layout.setdefault((t.data_type, dims), [])
            for other in group:
                if other.raw_data and t.raw_data and other.raw_data == t.raw_data:
                    duplicate_of = other.name or None
                    break
            group.append(t)
        weights[name] = WeightInfo(
            name=name,
            elem_type=t.data_type,
            shape=dims,
            numel=numel,
            nbytes=(numel * element_bits(t.data_type) + 7) // 8,
            nonzero=_nonzero(t) if t.data_type in _FLOAT_TYPES else None,
            duplicate_of=duplicate_of,
            from_constant_node=from_const,
        )
    return weights, has_data


def _topological(nodes: Sequence[onnx.NodeProto], available: set[str], outer: frozenset[str]) -> list[int]:
    """Indices of ``nodes`` in a valid execution order; raises on cycles and undefined inputs."""
    producers: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if not o:
                continue
            if o in producers or o in available:
                raise InvalidModelError(f"tensor {o!r} is produced twice (node {n.name or n.op_type!r}); an ONNX graph is SSA")
            producers[o] = i
    indeg = [0] * len(nodes)
    consumers: dict[int, list[int]] = {}
    for i, n in enumerate(nodes):
        deps = set()
        for name in _node_inputs_with_implicit(n):
            if not name or name in available or name in outer:
                continue
            p = producers.get(name)
            if p is None:
                raise InvalidModelError(
                    f"node {n.name or n.op_type!r} reads tensor {name!r}, which no node, input or initializer defines "
                    "(truncated model?)"
                )
            deps.add(p)
        indeg[i] = len(deps)
        for p in deps:
            consumers.setdefault(p, []).append(i)
    ready = [i for i in range(len(nodes)) if indeg[i] == 0]
    ready.reverse()
    order: list[int] = []
    while ready:
        i = ready.pop()
        order.append(i)
        for c in reversed(consumers.get(i, [])):
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
    if len(order) != len(nodes):
        stuck = [nodes[i].name or nodes[i].op_type for i in range(len(nodes)) if indeg[i] > 0]
        raise InvalidModelError(f"graph has a cycle through {len(stuck)} node(s), e.g. {', '.join(stuck[:5])}")
    return order


def _node_inputs_with_implicit(n: onnx.NodeProto) -> list[str]:
    """Explicit inputs plus names a subgraph reads from the enclosing scope."""
    names = list(n.input)
    for a in n.attribute:
        subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs) if a.type == onnx.AttributeProto.GRAPHS else []
        for sg in subs:
            names.extend(_free_names(sg))
    return names


def _free_names(g: onnx.GraphProto) -> set[str]:
    defined = {vi.name for vi in g.input} | {t.name for t in g.initializer}
    for n in g.node:
        defined.update(o for o in n.output if o)
    free: set[str] = set()
    for n in g.node:
        for name in _node_inputs_with_implicit(n):
            if name and name not in defined:
                free.add(name)
    return free


# --------------------------------------------------------------------------- building


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    out = {}
    for o in model.opset_import:
        out["" if o.domain == "ai.onnx" else o.domain] = int(o.version)
    return out


class _Builder:
    """Builds :class:`Graph` views from a graph proto and a table of inferred types."""

    def __init__(self, types: dict[str, onnx.ValueInfoProto], opsets: Mapping[str, int]) -> None:
        self.types = types
        self.opsets = opsets

    def build(
        self,
        g: onnx.GraphProto,
        *,
        outer: Mapping[str, TensorInfo],
        input_infos: Sequence[TensorInfo] | None = None,
    ) -> Graph:
        weights, has_data = _weight_infos(g)
        init_names = {t.name for t in g.initializer}
        small_values: dict[str, np.ndarray] = {}
        for t in g.initializer:
            v = _decode_small(t)
            if v is not None:
                small_values[t.name] = v
        for n in g.node:
            if n.op_type == "Constant" and n.output:
                for a in n.attribute:
                    if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                        v = _decode_small(a.t)
                        if v is not None:
                            small_values[n.output[0]] = v
                    elif a.name in ("value_int", "value_ints"):
                        small_values[n.output[0]] = np.array(helper.get_attribute_value(a), dtype=np.int64)
                    elif a.name in ("value_float", "value_floats"):
                        small_values[n.output[0]] = np.array(helper.get_attribute_value(a), dtype=np.float32)

        infos: dict[str, TensorInfo] = dict(outer)
        if input_infos is None:
            inputs = []
            for vi in g.input:
                if vi.name in init_names:
                    continue
                info = self._info(vi.name, vi)
                inputs.append(info)
                infos[vi.name] = info
        else:
            inputs = list(input_infos)
            infos.update({i.name: i for i in inputs})
        for t in g.initializer:
            w = weights[t.name]
            infos[t.name] = TensorInfo(
                t.name, t.data_type, w.shape, is_weight=w.is_float, is_constant=True, value=small_values.get(t.name)
            )

        available = set(infos) - set(outer)
        order = _topological(list(g.node), available, frozenset(outer))
        nodes: list[Node] = []
        for idx in order:
            n = g.node[idx]
            domain = "" if n.domain == "ai.onnx" else n.domain
            ins: list[TensorInfo | None] = []
            for name in n.input:
                ins.append(infos[name] if name else None)
            subgraphs: dict[str, Graph] = {}
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    subgraphs[a.name] = self.build(a.g, outer=infos)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for k, sg in enumerate(a.graphs):
                        subgraphs[f"{a.name}[{k}]"] = self.build(sg, outer=infos)
            outs: list[TensorInfo] = []
            is_const = n.op_type == "Constant" and domain == ""
            for name in n.output:
                if not name:
                    continue
                vi = self.types.get(name)
                info = self._info(name, vi) if vi is not None else TensorInfo(name, onnx.TensorProto.UNDEFINED, None)
                if is_const:
                    w = weights.get(name)
                    info = TensorInfo(
                        name,
                        info.elem_type if w is None else w.elem_type,
                        info.shape if w is None else w.shape,
                        is_weight=w is not None and w.is_float,
                        is_constant=True,
                        value=small_values.get(name),
                    )
                infos[name] = info
                outs.append(info)
            node = Node(
                name=n.name or f"{n.op_type}_{idx}",
                op_type=n.op_type,
                domain=domain,
                inputs=tuple(ins),
                outputs=tuple(outs),
                attrs=Attributes(n.attribute),
                subgraphs=subgraphs,
                opset=self.opsets.get(domain, 0),
            )
            node = _fill_missing_shapes(node, infos)
            nodes.append(node)
        outputs = tuple(infos.get(vi.name) or self._info(vi.name, vi) for vi in g.output)
        return Graph(
            nodes=tuple(nodes),
            inputs=tuple(inputs),
            outputs=outputs,
            weights=weights,
            opsets=self.opsets,
            has_weight_data=has_data,
            outer_names=frozenset(outer),
        )

    def _info(self, name: str, vi: onnx.ValueInfoProto) -> TensorInfo:
        elem, shape, syms = _type_shape(vi)
        return TensorInfo(name, elem, shape, symbolic=syms)


def _fill_missing_shapes(node: Node, infos: dict[str, TensorInfo]) -> Node:
    """Give outputs ONNX inference left unknown a shape, from our shape functions or ONNX's
    per-node inference (now that upstream contrib ops have shapes)."""
    if all(o.shape is not None for o in node.outputs) or not node.outputs:
        return node
    if any(i is not None and i.shape is None for i in node.inputs):
        return node
    from nascost.predictors.costs import shapes as shape_fns

    new_shapes = shape_fns.infer(node)
    if new_shapes is None:
        return node
    outs = []
    for o, s in zip(node.outputs, new_shapes, strict=False):
        if o.shape is None and s is not None:
            elem_type = o.elem_type if o.elem_type != onnx.TensorProto.UNDEFINED else s[0]
            o = TensorInfo(o.name, elem_type, s[1], o.is_weight, o.is_constant, o.value)
            infos[o.name] = o
        outs.append(o)
    outs.extend(node.outputs[len(outs):])
    return Node(node.name, node.op_type, node.domain, node.inputs, tuple(outs), node.attrs, node.subgraphs, node.opset)


def load_graph(model: onnx.ModelProto, shapes: ShapeRequest | None = None) -> Graph:
    """``ModelProto`` -> shape-resolved :class:`Graph` at the request's input shapes."""
    shapes = shapes or ShapeRequest()
    shapes.validate()
    skel = _skeleton(model, shapes)
    types = _infer(skel)
    builder = _Builder(types, _opsets(model))
    bound = {vi.name: vi for vi in skel.graph.input}
    top_inputs = []
    init_names = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        elem, shape, syms = _type_shape(bound[vi.name])
        top_inputs.append(TensorInfo(vi.name, elem, shape, symbolic=syms))
    graph = builder.build(model.graph, outer={}, input_infos=top_inputs)
    warnings = []
    unresolved = sorted({s for i in top_inputs for s in i.symbolic})
    if unresolved:
        warnings.append(
            "symbolic dims left unresolved: "
            + ", ".join(unresolved)
            + " (give them with dim values or input shapes; costs that depend on them are not counted)"
        )
    return Graph(
        nodes=graph.nodes,
        inputs=graph.inputs,
        outputs=graph.outputs,
        weights=graph.weights,
        opsets=graph.opsets,
        has_weight_data=graph.has_weight_data,
        warnings=tuple(warnings),
    )


def load_graph_bytes(data: bytes, shapes: ShapeRequest | None = None, *, max_bytes: int | None = None) -> Graph:
    """Bytes -> :class:`Graph` (parse, refuse unsafe, infer shapes)."""
    return load_graph(parse_model(data, max_bytes=max_bytes), shapes)
