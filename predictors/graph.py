"""Graph intake: ONNX bytes -> a typed, shape-resolved, read-only graph view.

This is the one module that touches ``onnx`` protobuf messages. Everything after it
(cost handlers, the analysis engine, feature extraction) works on :class:`Graph`,
:class:`Node` and :class:`TensorInfo`.

Shapes are found in one of two ways:

* **Own propagation** (the common case): when every input shape is concrete and the graph
  holds only standard ops with a shape function in
  :mod:`nascost.predictors.costs.shapes` (Conv, MatMul, Gemm, elementwise, pooling,
  Reshape, Concat, ...; a few others go to ONNX's per-node inference), shapes are
  propagated node by node while the graph view is built. No protobuf is rebuilt or
  re-read: a ResNet-50 without payloads takes ~4 ms end to end.
* **ONNX shape inference** otherwise (symbolic inputs, control flow, contrib ops, model
  functions), run on a *skeleton* of the model: large weight initializers are replaced by
  typed graph inputs, so inference never re-serializes weight payloads (on a full-weight
  ResNet-50 that alone costs ~0.25 s). Nodes that ONNX cannot infer (contrib ops such as
  ``com.microsoft.nchwc.Conv``) are filled in afterwards, node by node, by the shape
  functions and by ``onnx.shape_inference.infer_node_outputs``.

Either way, small integer tensors computed from shapes (``Shape -> Gather -> Concat ->
Reshape``, ``expand(x.shape[0], -1, -1)``) are folded to values once the shapes they read
are concrete (:func:`nascost.predictors.costs.shapes.fold`), so that a dynamic-batch
export resolves at the request's batch.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import logging
import math
from collections import ChainMap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from nascost.predictors.errors import InvalidModelError, InvalidRequestError, UnsafeModelError
from nascost.predictors.shapes import ShapeRequest

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
_SUBBYTE_BITS: dict[int, int] = {onnx.TensorProto.INT4: 4, onnx.TensorProto.UINT4: 4}
for _name in ("FLOAT4E2M1", "INT2", "UINT2"):
    if hasattr(onnx.TensorProto, _name):
        _SUBBYTE_BITS[getattr(onnx.TensorProto, _name)] = 2 if _name[-1] == "2" else 4


def dtype_name(elem_type: int) -> str:
    """ONNX element type -> short lower-case name ("float32", "int8", "bfloat16", ...)."""
    if elem_type == onnx.TensorProto.FLOAT:
        return "float32"
    if elem_type == onnx.TensorProto.DOUBLE:
        return "float64"
    if elem_type == onnx.TensorProto.UNDEFINED:
        return "undefined"
    return onnx.TensorProto.DataType.Name(elem_type).lower()


@functools.lru_cache(maxsize=64)
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
        s = self.shape
        return s is not None and None not in s

    @property
    def rank(self) -> int:
        if self.shape is None:
            raise UnresolvedShapeError(self.name, self.symbolic)
        return len(self.shape)

    @property
    def dims(self) -> tuple[int, ...]:
        """The concrete shape; raises :class:`UnresolvedShapeError` when not known."""
        s = self.shape
        if s is None or None in s:
            raise UnresolvedShapeError(self.name, self.symbolic)
        return s  # type: ignore[return-value]

    @property
    def numel(self) -> int:
        return math.prod(self.dims)

    @property
    def nbytes(self) -> int:
        return (math.prod(self.dims) * element_bits(self.elem_type) + 7) // 8


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
        return tuple(a.ints) if a is not None else tuple(default)  # upb yields Python ints

    def get_floats(self, key: str, default: Sequence[float] = ()) -> tuple[float, ...]:
        a = self._attrs.get(key)
        return tuple(a.floats) if a is not None else tuple(default)

    def get_string(self, key: str, default: str = "") -> str:
        a = self._attrs.get(key)
        return a.s.decode("utf-8", "replace") if a is not None else default

    def get_strings(self, key: str, default: Sequence[str] = ()) -> tuple[str, ...]:
        a = self._attrs.get(key)
        return tuple(s.decode("utf-8", "replace") for s in a.strings) if a is not None else tuple(default)


@dataclass(frozen=True, slots=True)
class Node:
    """One node with its inputs' and outputs' tensor infos. ``None`` = omitted optional input.

    ``implicit_inputs`` are the tensors of an enclosing scope that the node's subgraphs
    (If branches, Loop/Scan bodies) read without them being explicit inputs: outer
    activations and weights, in order of first appearance. Empty for nodes without
    subgraphs.
    """

    name: str
    op_type: str
    domain: str
    inputs: tuple[TensorInfo | None, ...]
    outputs: tuple[TensorInfo, ...]
    attrs: Attributes
    subgraphs: Mapping[str, Graph] = field(default_factory=dict)
    opset: int = 0
    implicit_inputs: tuple[TensorInfo, ...] = ()

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
    # Weights of the enclosing graphs a subgraph can read (their payload facts, for
    # sparsity); empty for a top-level graph. Params are counted by the enclosing graph.
    outer_weights: Mapping[str, WeightInfo] = field(default_factory=dict)


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


_TENSOR_ATTR, _TENSORS_ATTR = onnx.AttributeProto.TENSOR, onnx.AttributeProto.TENSORS
_GRAPH_ATTR, _GRAPHS_ATTR = onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Initializers, sparse initializer parts and tensor attributes of ``graph`` and of its
    subgraphs, in one walk over the nodes' attributes."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for a in node.attribute:
            kind = a.type
            if kind == _TENSOR_ATTR:
                yield a.t
            elif kind == _TENSORS_ATTR:
                yield from a.tensors
            elif kind == _GRAPH_ATTR:
                yield from _graph_tensors(a.g)
            elif kind == _GRAPHS_ATTR:
                for g in a.graphs:
                    yield from _graph_tensors(g)


def _iter_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    yield from _graph_tensors(model.graph)
    for fn in model.functions:
        for node in fn.node:
            for a in node.attribute:
                if a.type == _TENSOR_ATTR:
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
    dims = [d.dim_value for d in tt.shape.dim]  # 0 when unset (a dim_param or unknown)
    if 0 not in dims and all(v > 0 for v in dims):
        return tt.elem_type, tuple(dims), ()
    out: list[int | None] = []
    syms: list[str] = []
    for d, v in zip(tt.shape.dim, dims, strict=True):
        if v > 0:
            out.append(v)
        else:
            out.append(None)
            syms.append(d.dim_param or "?")
    return tt.elem_type, tuple(out), tuple(syms)


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


def _add_value_info(coll: Any, name: str, elem_type: int, dims: Sequence[int]) -> None:
    """Append a typed value info to ``coll`` (cheaper than ``helper.make_tensor_value_info``)."""
    vi = coll.add()
    vi.name = name
    tt = vi.type.tensor_type
    tt.elem_type = elem_type
    shape = tt.shape
    shape.SetInParent()
    for d in dims:
        shape.dim.add().dim_value = d


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
        numel = math.prod(t.dims)
        if ((numel <= _SKELETON_KEEP_ELEMENTS and t.data_type not in _FLOAT_TYPES) or numel <= 64) and _has_payload(t):
            sg.initializer.append(t)
        else:
            _add_value_info(sg.input, t.name, t.data_type, t.dims)
    sg.node.extend(g.node)
    sg.output.extend(g.output)
    return skel


def _collect_value_infos(g: onnx.GraphProto, out: dict[str, onnx.ValueInfoProto]) -> None:
    """Every typed tensor of ``g`` and of its subgraphs (inference types subgraph tensors in
    the subgraph's own ``value_info``, not the top graph's)."""
    for coll in (g.input, g.value_info, g.output):
        for vi in coll:
            if vi.type.WhichOneof("value") is not None:
                out[vi.name] = vi
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _collect_value_infos(a.g, out)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    _collect_value_infos(sg, out)


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
    _collect_value_infos(inferred.graph, out)
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:500] if text else type(e).__name__


# --------------------------------------------------------------------------- payloads

# Raw payloads longer than this are cut out of the message before protobuf parses it (see
# :func:`_split_payloads`); shorter ones (shape constants, scales) stay in place.
_SPLIT_MIN_BYTES = 8 * _CONST_VALUE_MAX_ELEMENTS
_CHUNK_BYTES = 1 << 22
# Non-zero counting shifts a chunk into a scratch buffer: one that stays in the L2 cache
# (256 KiB) makes the pass ~25% faster than 4 MiB chunks (10.7 vs 14.5 ms on 100 MB here).
_NONZERO_CHUNK_BYTES = 1 << 18


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _scan(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Protobuf wire fields of ``buf[start:end]``: (field, wire type, field start, value
    start, value end); for a varint the value span is its bytes."""
    pos = start
    while pos < end:
        fstart = pos
        key, pos = _varint(buf, pos)
        field_no, wt = key >> 3, key & 7
        if wt == 0:
            _, vend = _varint(buf, pos)
            yield field_no, wt, fstart, pos, vend
            pos = vend
        elif wt == 2:
            n, vstart = _varint(buf, pos)
            pos = vstart + n
            if pos > end:
                raise ValueError("length-delimited field runs past its message")
            yield field_no, wt, fstart, vstart, pos
        elif wt == 1:
            pos += 8
            yield field_no, wt, fstart, pos - 8, pos
        elif wt == 5:
            pos += 4
            yield field_no, wt, fstart, pos - 4, pos
        else:
            raise ValueError(f"unsupported wire type {wt}")
    if pos != end:
        raise ValueError("message ends inside a field")


# ModelProto.graph, GraphProto.initializer, TensorProto.raw_data
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


def _split_payloads(data: bytes) -> tuple[bytes, list[memoryview | None]] | None:
    """Cut large ``raw_data`` payloads of the top graph's initializers out of ``data``.

    Returns the model bytes without them (so protobuf parses kilobytes, not the weights)
    and, per initializer in order, a zero-copy view of its payload in ``data`` (``None``
    where the payload stayed in the message). Returns ``None`` when the message does not
    have the plain layout this expects; the caller then parses ``data`` whole.
    """
    try:
        graph_fields = [f for f in _scan(data, 0, len(data)) if f[0] == _MODEL_GRAPH]
        if len(graph_fields) != 1 or graph_fields[0][1] != 2:
            return None
        _, _, g_field_start, g_start, g_end = graph_fields[0]
        view = memoryview(data)
        graph_pieces: list[bytes | memoryview] = []
        payloads: list[memoryview | None] = []
        cut = False
        for field_no, wt, fstart, vstart, vend in _scan(data, g_start, g_end):
            if field_no != _GRAPH_INITIALIZER or wt != 2:
                graph_pieces.append(view[fstart:vend])
                continue
            raw = [f for f in _scan(data, vstart, vend) if f[0] == _TENSOR_RAW_DATA and f[1] == 2]
            if not raw or raw[-1][4] - raw[-1][3] < _SPLIT_MIN_BYTES:
                payloads.append(None)
                graph_pieces.append(view[fstart:vend])
                continue
            cut = True
            payloads.append(view[raw[-1][3]:raw[-1][4]])
            tensor_pieces: list[memoryview] = []
            pos = vstart
            for _, _, rstart, _, rend in raw:
                tensor_pieces.append(view[pos:rstart])
                pos = rend
            tensor_pieces.append(view[pos:vend])
            tensor = b"".join(tensor_pieces)
            graph_pieces.append(view[fstart:vstart - len(_encode_varint(vend - vstart))])
            graph_pieces.append(_encode_varint(len(tensor)))
            graph_pieces.append(tensor)
        if not cut:
            return None
        graph = b"".join(graph_pieces)
        model = b"".join(
            (view[:g_field_start], _encode_varint((_MODEL_GRAPH << 3) | 2), _encode_varint(len(graph)), graph, view[g_end:])
        )
        return model, payloads
    except (ValueError, IndexError) as e:
        logger.debug("payload split failed, parsing whole: %s", e)
        return None


def _decode_small(t: onnx.TensorProto) -> np.ndarray | None:
    if t.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED) or t.data_type in _SUBBYTE_BITS:
        return None
    numel = math.prod(t.dims)
    if numel > _CONST_VALUE_MAX_ELEMENTS or not _has_payload(t):
        return None
    try:
        arr = numpy_helper.to_array(t)
    except Exception:  # payload malformed: a handler then sees no value
        return None
    if arr.size != numel:
        return None
    return arr


def _has_payload(t: onnx.TensorProto) -> bool:
    """Whether the tensor carries data (without copying ``raw_data`` out of the message)."""
    return bool(
        t.HasField("raw_data")
        or len(t.float_data)
        or len(t.int32_data)
        or len(t.int64_data)
        or len(t.double_data)
        or len(t.uint64_data)
        or len(t.string_data)
    )


_FP8_NEG_ZERO_IS_ZERO = frozenset(
    getattr(onnx.TensorProto, n) for n in ("FLOAT8E4M3FN", "FLOAT8E5M2") if hasattr(onnx.TensorProto, n)
)


_UINT_OF_BITS: dict[int, np.dtype[Any]] = {
    8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: np.dtype(np.uint32), 64: np.dtype(np.uint64)
}


def _nonzero_raw(raw: bytes | memoryview, elem_type: int, numel: int) -> int | None:
    """Non-zero elements of a raw little-endian payload, counted in place (no copy of it).

    A float is zero when it compares equal to 0 (+0 and -0: pruning by ``w * mask`` leaves
    -0); NaN counts as non-zero. Floats are counted on their bits with the sign shifted
    out, a chunk at a time (an integer count is ~6x faster than numpy's float compare).
    """
    if elem_type in _SUBBYTE_BITS or elem_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    bits = element_bits(elem_type)
    udt = _UINT_OF_BITS.get(bits)
    if udt is None or len(raw) != numel * bits // 8:
        return None
    arr = np.frombuffer(raw, dtype=udt)
    if elem_type not in _FLOAT_TYPES or (bits == 8 and elem_type not in _FP8_NEG_ZERO_IS_ZERO):
        return int(np.count_nonzero(arr))  # integers; fp8 "fnuz" types have no -0 (0x80 is NaN)
    step = _NONZERO_CHUNK_BYTES // udt.itemsize
    buf = np.empty(min(step, arr.size), dtype=udt)
    total = 0
    for i in range(0, arr.size, step):
        part = arr[i:i + step]
        out = buf[:part.size]
        np.left_shift(part, 1, out=out)
        total += int(np.count_nonzero(out))
    return total


def _nonzero(t: onnx.TensorProto, raw: bytes | memoryview | None, numel: int) -> int | None:
    if raw is not None:
        return _nonzero_raw(raw, t.data_type, numel)
    if not _has_payload(t) or t.data_type in _SUBBYTE_BITS:
        return None
    try:
        return int(np.count_nonzero(numpy_helper.to_array(t)))
    except Exception:  # malformed typed-field payload: not counted
        return None


def _same_bytes(a: bytes | memoryview, b: bytes | memoryview) -> bool:
    if len(a) != len(b):
        return False
    ua = np.frombuffer(a, dtype=np.uint8)
    ub = np.frombuffer(b, dtype=np.uint8)
    for i in range(0, ua.size, _CHUNK_BYTES):
        if not np.array_equal(ua[i:i + _CHUNK_BYTES], ub[i:i + _CHUNK_BYTES]):
            return False
    return True


def _fingerprint(raw: bytes | memoryview) -> bytes:
    n = len(raw)
    step = max(n // 64, 1)
    return bytes(raw[:64]) + bytes(raw[-64:]) + bytes(np.frombuffer(raw, dtype=np.uint8)[::step][:64])


def _transposed_twin(
    name: str,
    raw: bytes | memoryview,
    elem_type: int,
    dims: tuple[int, ...],
    by_shape2d: dict[tuple[int, tuple[int, ...]], list[tuple[str, bytes | memoryview]]],
) -> str | None:
    """An earlier 2-D weight whose transpose this one is (exporters store ``W^T`` of a
    tied weight as a new initializer: GPT-style tied output projections)."""
    bits = element_bits(elem_type)
    udt = _UINT_OF_BITS.get(bits)
    found = None
    if udt is not None and len(raw) == dims[0] * dims[1] * bits // 8:
        mine = np.frombuffer(raw, dtype=udt).reshape(dims)
        for other_name, other_raw in by_shape2d.get((elem_type, (dims[1], dims[0])), ()):
            other = np.frombuffer(other_raw, dtype=udt).reshape(dims[1], dims[0])
            k = min(64, dims[1])
            if np.array_equal(mine[0, :k], other[:k, 0]) and np.array_equal(mine, other.T):
                found = other_name
                break
    by_shape2d.setdefault((elem_type, dims), []).append((name, raw))
    return found


def _weight_infos(
    g: onnx.GraphProto, payloads: Sequence[memoryview | None] | None = None
) -> tuple[dict[str, WeightInfo], bool]:
    """Unique initializers and float Constant tensors; identical payloads linked as tied.

    ``payloads`` holds, per initializer, the raw payload cut out of the message by
    :func:`_split_payloads` (``None`` where the payload is still in the tensor).
    """
    weights: dict[str, WeightInfo] = {}
    has_data = False
    by_layout: dict[tuple[int, tuple[int, ...], bytes], list[tuple[str, bytes | memoryview]]] = {}
    tensors: list[tuple[onnx.TensorProto, bool, str, memoryview | None]] = [
        (t, False, t.name, payloads[i] if payloads is not None and i < len(payloads) else None)
        for i, t in enumerate(g.initializer)
    ]
    for node in g.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    tensors.append((a.t, True, node.output[0], None))
    by_shape2d: dict[tuple[int, tuple[int, ...]], list[tuple[str, bytes | memoryview]]] = {}
    for t, from_const, name, cut in tensors:
        dims = tuple(t.dims)
        numel = math.prod(dims)
        elem_type = t.data_type
        is_float = elem_type in _FLOAT_TYPES
        raw: bytes | memoryview | None = cut
        if raw is None and is_float and t.HasField("raw_data"):
            raw = t.raw_data  # one copy, for a payload left in the message
        payload = cut is not None or _has_payload(t)
        has_data = has_data or (payload and numel > 64)
        duplicate_of = None
        if raw is not None and numel >= 256 and is_float:
            group = by_layout.setdefault((elem_type, dims, _fingerprint(raw)), [])
            for other_name, other_raw in group:
                if _same_bytes(other_raw, raw):
                    duplicate_of = other_name or None
                    break
            group.append((name, raw))
            if duplicate_of is None and len(dims) == 2 and dims[0] != dims[1]:
                duplicate_of = _transposed_twin(name, raw, elem_type, dims, by_shape2d)
        weights[name] = WeightInfo(
            name=name,
            elem_type=elem_type,
            shape=dims,
            numel=numel,
            nbytes=(numel * element_bits(elem_type) + 7) // 8,
            nonzero=_nonzero(t, raw, numel) if is_float else None,
            duplicate_of=duplicate_of,
            from_constant_node=from_const,
        )
    return weights, has_data


def _topological(nodes: Sequence[onnx.NodeProto], available: set[str], outer: frozenset[str]) -> list[int]:
    """Indices of ``nodes`` in a valid execution order; raises on cycles and undefined inputs.

    The graph's own order is kept when it is valid (it is what exporters and runtimes
    schedule, and what peak-memory figures should follow); otherwise nodes are ordered by
    Kahn's algorithm, taking the earliest ready node of the original order first.
    """
    producers: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for o in n.output:
            if not o:
                continue
            if o in producers or o in available:
                raise InvalidModelError(f"tensor {o!r} is produced twice (node {n.name or n.op_type!r}); an ONNX graph is SSA")
            producers[o] = i
    deps_of: list[set[int]] = []
    in_order = True
    for i, n in enumerate(nodes):
        deps: set[int] = set()
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
            if p >= i:
                in_order = False
        deps_of.append(deps)
    if in_order:
        return list(range(len(nodes)))
    indeg = [len(d) for d in deps_of]
    consumers: dict[int, list[int]] = {}
    for i, deps in enumerate(deps_of):
        for p in deps:
            consumers.setdefault(p, []).append(i)
    ready = [i for i in range(len(nodes)) if indeg[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for c in consumers.get(i, ()):
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(ready, c)
    if len(order) != len(nodes):
        stuck = [nodes[i].name or nodes[i].op_type for i in range(len(nodes)) if indeg[i] > 0]
        raise InvalidModelError(f"graph has a cycle through {len(stuck)} node(s), e.g. {', '.join(stuck[:5])}")
    return order


# ai.onnx ops that hold subgraphs; nodes of other domains are checked attribute by attribute.
_SUBGRAPH_OPS = frozenset({"If", "Loop", "Scan", "SequenceMap"})


def _node_inputs_with_implicit(n: onnx.NodeProto) -> list[str]:
    """Explicit inputs plus names a subgraph reads from the enclosing scope."""
    names = list(n.input)
    if n.op_type not in _SUBGRAPH_OPS and not n.domain:
        return names
    for a in n.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            names.extend(_free_names(a.g))
        elif a.type == onnx.AttributeProto.GRAPHS:
            for sg in a.graphs:
                names.extend(_free_names(sg))
    return names


def _free_names(g: onnx.GraphProto) -> dict[str, None]:
    """Names ``g`` (and its nested subgraphs) read from enclosing scopes, in order of first
    appearance (a dict used as an ordered set)."""
    defined = {vi.name for vi in g.input} | {t.name for t in g.initializer}
    for n in g.node:
        defined.update(o for o in n.output if o)
    free: dict[str, None] = {}
    for n in g.node:
        for name in _node_inputs_with_implicit(n):
            if name and name not in defined:
                free[name] = None
    return free


# --------------------------------------------------------------------------- building


def _opsets(model: onnx.ModelProto) -> dict[str, int]:
    out = {}
    for o in model.opset_import:
        out["" if o.domain == "ai.onnx" else o.domain] = int(o.version)
    return out


_UNDEFINED = onnx.TensorProto.UNDEFINED


class _OutOfOrder(Exception):
    """A node of a graph being built in its own order reads a tensor not yet defined."""


class _Builder:
    """Builds :class:`Graph` views from a graph proto and a table of inferred types."""

    def __init__(
        self,
        types: dict[str, onnx.ValueInfoProto],
        opsets: Mapping[str, int],
        fallback_types: Mapping[str, onnx.ValueInfoProto] | None = None,
    ) -> None:
        self.types = types
        self.opsets = opsets
        # The model's own value_info, for tensors inference leaves untyped (contrib ops).
        self.fallback_types = fallback_types or {}

    def build(
        self,
        g: onnx.GraphProto,
        *,
        outer: Mapping[str, TensorInfo],
        input_infos: Sequence[TensorInfo] | None = None,
        payloads: Sequence[memoryview | None] | None = None,
        outer_weights: Mapping[str, WeightInfo] | None = None,
    ) -> Graph:
        weights, has_data = _weight_infos(g, payloads)
        scope_weights: Mapping[str, WeightInfo] = (
            weights if not outer_weights else ChainMap(weights, dict(outer_weights))  # type: ignore[arg-type]
        )
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
                info = self._info(vi.name, self.types.get(vi.name, vi))
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

        # The graph's own order is tried first (exporters write nodes in execution order);
        # a node reading a tensor not yet defined sends the build to a topological order
        # (which also reports undefined tensors and cycles).
        base = infos
        try:
            infos = dict(base)
            nodes = self._nodes(g, range(len(g.node)), infos, outer, scope_weights, small_values, check_order=True)
        except _OutOfOrder:
            infos = dict(base)
            order = _topological(g.node, set(base) - set(outer), frozenset(outer))
            nodes = self._nodes(g, order, infos, outer, scope_weights, small_values, check_order=False)
        outputs = tuple(infos.get(vi.name) or self._info(vi.name, vi) for vi in g.output)
        return Graph(
            nodes=tuple(nodes),
            inputs=tuple(inputs),
            outputs=outputs,
            weights=weights,
            opsets=self.opsets,
            has_weight_data=has_data,
            outer_names=frozenset(outer),
            outer_weights=outer_weights or {},
        )

    def _nodes(
        self,
        g: onnx.GraphProto,
        order: Iterable[int],
        infos: dict[str, TensorInfo],
        outer: Mapping[str, TensorInfo],
        weights: Mapping[str, WeightInfo],
        small_values: Mapping[str, np.ndarray],
        *,
        check_order: bool,
    ) -> list[Node]:
        """The :class:`Node` views of ``g``'s nodes in ``order``, typing ``infos`` as it goes.

        ``weights`` are this graph's and its enclosing graphs' weights, innermost first.

        With ``check_order`` (the graph's own order, not validated yet), raises
        :class:`_OutOfOrder` when a node reads a tensor no earlier node defined, and
        :class:`InvalidModelError` when a tensor is produced twice.
        """
        nodes: list[Node] = []
        types = self.types
        fallback = self.fallback_types
        opsets = self.opsets
        fold_ops = _fold_op_set()
        for idx in order:
            n = g.node[idx]
            op = n.op_type
            domain = "" if n.domain == "ai.onnx" else n.domain
            try:
                ins = [infos[name] if name else None for name in n.input]
            except KeyError as e:
                if check_order:
                    raise _OutOfOrder from e
                raise
            subgraphs: dict[str, Graph] = {}
            implicit: dict[str, None] = {}
            if op in _SUBGRAPH_OPS or domain:
                if check_order and any(k not in infos for k in _node_inputs_with_implicit(n)[len(n.input):]):
                    raise _OutOfOrder  # a subgraph reads a tensor produced further down
                for a in n.attribute:
                    if a.type == onnx.AttributeProto.GRAPH:
                        body_inputs = self._body_inputs(n, domain, a.g, ins)
                        subgraphs[a.name] = self.build(a.g, outer=infos, input_infos=body_inputs,
                                                       outer_weights=weights)
                        implicit.update(_free_names(a.g))
                    elif a.type == onnx.AttributeProto.GRAPHS:
                        for k, sg in enumerate(a.graphs):
                            subgraphs[f"{a.name}[{k}]"] = self.build(sg, outer=infos, outer_weights=weights)
                            implicit.update(_free_names(sg))
            outs: list[TensorInfo] = []
            is_const = op == "Constant" and domain == ""
            unknown = False
            for name in n.output:
                if not name:
                    continue
                vi_or_none = types.get(name) or fallback.get(name)
                info = self._info(name, vi_or_none) if vi_or_none is not None else TensorInfo(name, _UNDEFINED, None)
                if info.shape is None and op == "Loop" and domain == "" and "body" in subgraphs:
                    info = _loop_output_info(info, len(outs), len(n.input) - 2, subgraphs["body"], ins)
                if is_const:
                    cw = weights.get(name)
                    info = TensorInfo(
                        name,
                        info.elem_type if cw is None else cw.elem_type,
                        info.shape if cw is None else cw.shape,
                        is_weight=cw is not None and cw.is_float,
                        is_constant=True,
                        value=small_values.get(name),
                    )
                if info.shape is None or None in info.shape:
                    unknown = True
                if check_order and name in infos and name not in outer:
                    raise InvalidModelError(
                        f"tensor {name!r} is produced twice (node {n.name or op!r}); an ONNX graph is SSA"
                    )
                infos[name] = info
                outs.append(info)
            node = Node(
                n.name or f"{op}_{idx}",
                op,
                domain,
                tuple(ins),
                tuple(outs),
                Attributes(n.attribute),
                subgraphs,
                opsets.get(domain, 0),
                tuple(infos[k] for k in implicit if k in infos) if implicit else (),
            )
            if op in fold_ops and not domain and (
                op in ("Shape", "Size") or all(t is None or t.value is not None for t in ins)
            ):
                node = _fold(node, infos)
                unknown = not all(o.shape is not None and None not in o.shape for o in node.outputs)
            if unknown:
                node = _fill_missing_shapes(node, infos, fresh=True)
            nodes.append(node)
        return nodes

    def _info(self, name: str, vi: onnx.ValueInfoProto) -> TensorInfo:
        elem, shape, syms = _type_shape(vi)
        return TensorInfo(name, elem, shape, symbolic=syms)

    def _body_inputs(
        self, n: onnx.NodeProto, domain: str, body: onnx.GraphProto, ins: Sequence[TensorInfo | None]
    ) -> list[TensorInfo] | None:
        """A Loop body's inputs, typed from the Loop's own inputs where the body leaves them
        unshaped (loop-carried values enter with the shape they have outside)."""
        if n.op_type != "Loop" or domain != "":
            return None
        out: list[TensorInfo] = []
        for k, vi in enumerate(body.input):
            info = self._info(vi.name, self.types.get(vi.name, vi))
            outer_in = ins[k] if k >= 2 and k < len(ins) else None
            if info.shape is None and outer_in is not None and outer_in.shape is not None:
                elem = info.elem_type if info.elem_type != _UNDEFINED else outer_in.elem_type
                info = TensorInfo(vi.name, elem, outer_in.shape, symbolic=outer_in.symbolic)
            out.append(info)
        return out


def _loop_output_info(
    info: TensorInfo, k: int, n_carried: int, body: Graph, ins: Sequence[TensorInfo | None]
) -> TensorInfo:
    """Shape of Loop output ``k`` when inference left it unknown: a loop-carried value keeps
    the shape it has in the body when that equals its initial shape."""
    if k >= n_carried or k + 1 >= len(body.outputs) or k + 2 >= len(ins):
        return info
    initial, final = ins[k + 2], body.outputs[k + 1]
    if initial is None or final.shape is None or final.shape != initial.shape:
        return info
    elem = info.elem_type if info.elem_type != _UNDEFINED else final.elem_type
    return TensorInfo(info.name, elem, final.shape, symbolic=final.symbolic)


def _fill_missing_shapes(node: Node, infos: dict[str, TensorInfo], *, fresh: bool = False) -> Node:
    """Give outputs ONNX inference left unknown or partly unknown a shape, from our shape
    functions or ONNX's per-node inference (now that upstream contrib ops have shapes and
    folded shape tensors have values).

    An output of unknown rank is always retried; one with some unknown dims only when every
    input is fully known (else the dims are truly symbolic and a retry would change
    nothing, at ~50 us a node). ``fresh``: ``node`` was just made by the builder and no one
    else holds it; its outputs are then set in place rather than on a copy (this runs for
    every node of a graph whose shapes we propagate ourselves).
    """
    outputs = node.outputs
    if not outputs:
        return node
    if outputs[0].shape is not None and all(o.shape is not None for o in outputs) and not all(
        t.shape is not None and None not in t.shape for t in node.inputs if t is not None
    ):
        return node
    new_shapes = _shapes_module().infer(node)
    if new_shapes is None:
        return node
    outs = list(outputs)
    changed = False
    for k, s in enumerate(new_shapes[: len(outs)]):
        o = outs[k]
        if s is not None and (o.shape is None or _more_known(s[1], o.shape)):
            elem_type = o.elem_type if o.elem_type != _UNDEFINED else s[0]
            syms = () if None not in s[1] else o.symbolic
            outs[k] = o = TensorInfo(o.name, elem_type, s[1], o.is_weight, o.is_constant, o.value, syms)
            infos[o.name] = o
            changed = True
    if not changed:
        return node
    if fresh:
        object.__setattr__(node, "outputs", tuple(outs))  # not yet published: see docstring
        return node
    return _with_outputs(node, outs)


def _more_known(new: tuple[int | None, ...], old: tuple[int | None, ...] | None) -> bool:
    if old is None:
        return True
    if len(new) != len(old):
        return False
    return sum(d is None for d in new) < sum(d is None for d in old)


def _with_outputs(node: Node, outs: Sequence[TensorInfo]) -> Node:
    return Node(
        node.name, node.op_type, node.domain, node.inputs, tuple(outs), node.attrs, node.subgraphs, node.opset,
        node.implicit_inputs,
    )


def _fold(node: Node, infos: dict[str, TensorInfo]) -> Node:
    """Attach the values of small integer tensors computed from known shapes (see
    :func:`nascost.predictors.costs.shapes.fold`) to ``node``'s outputs."""
    if all(o.value is not None for o in node.outputs):
        return node
    values = _shapes_module().fold(node)
    if values is None or len(values) != len(node.outputs):
        return node
    outs = []
    for o, v in zip(node.outputs, values, strict=True):
        elem_type = o.elem_type
        if elem_type == onnx.TensorProto.UNDEFINED:
            elem_type = helper.np_dtype_to_tensor_dtype(v.dtype)
        o = TensorInfo(o.name, elem_type, tuple(int(d) for d in v.shape), o.is_weight, o.is_constant, v)
        infos[o.name] = o
        outs.append(o)
    return _with_outputs(node, outs)


_NCHWC_DOMAIN = "com.microsoft.nchwc"


def _set_nchwc_block(g: onnx.GraphProto) -> Any:
    """Tell the NCHWc shape functions the channel block of this graph (onnxruntime picks 8
    or 16 by CPU); it shows in the padded output channels of the nchwc Conv weights."""
    if not any(n.domain == _NCHWC_DOMAIN for n in g.node):
        return None
    from nascost.predictors.costs import shapes as shape_fns

    dims = {t.name: t.dims for t in g.initializer}
    channels = [dims[n.input[1]][0] for n in g.node if n.domain == _NCHWC_DOMAIN and n.op_type == "Conv"
                and len(n.input) > 1 and n.input[1] in dims and len(dims[n.input[1]])]
    return shape_fns.set_nchwc_block(shape_fns.nchwc_block_from_weights(channels))


# Graphs with more nodes than this outside the fast shape functions go to ONNX inference.
_FAST_MAX_OTHER_NODES = 8


@functools.cache
def _shapes_module() -> Any:
    """:mod:`nascost.predictors.costs.shapes` (imported late: it imports this module)."""
    from nascost.predictors.costs import shapes as shape_fns

    return shape_fns


@functools.cache
def _fold_op_set() -> frozenset[str]:
    from nascost.predictors.costs import shapes as shape_fns

    return shape_fns.fold_ops()


@functools.cache
def _fast_shape_ops() -> frozenset[str]:
    from nascost.predictors.costs import shapes as shape_fns

    return shape_fns.fast_ops() | shape_fns.fold_ops()


def _fast_eligible(model: onnx.ModelProto) -> bool:
    """Whether the graph's shapes can be propagated by our shape functions: standard ops
    only, no subgraphs or model-local functions, nearly every op a fast one."""
    if len(model.functions):
        return False
    fast = _fast_shape_ops()
    others = 0
    for n in model.graph.node:
        op = n.op_type
        if op in fast and not n.domain:
            continue
        if n.domain not in ("", "ai.onnx") or op in _SUBGRAPH_OPS:
            return False
        others += 1
        if others > _FAST_MAX_OTHER_NODES:
            return False
    return True


def _all_shapes_known(graph: Graph) -> bool:
    for node in graph.nodes:
        for o in node.outputs:
            s = o.shape
            if s is None or None in s:
                return False
    return True


def _build_top(builder: _Builder, model: onnx.ModelProto, top_inputs: list[TensorInfo],
               payloads: Sequence[memoryview | None] | None) -> Graph:
    token = _set_nchwc_block(model.graph)
    try:
        return builder.build(model.graph, outer={}, input_infos=top_inputs, payloads=payloads)
    finally:
        if token is not None:
            from nascost.predictors.costs import shapes as shape_fns

            shape_fns.reset_nchwc_block(token)


def _load(model: onnx.ModelProto, shapes: ShapeRequest | None, payloads: Sequence[memoryview | None] | None) -> Graph:
    shapes = shapes or ShapeRequest()
    shapes.validate()
    init_names = {t.name for t in model.graph.initializer}
    opsets = _opsets(model)
    graph: Graph | None = None
    top_inputs: list[TensorInfo] = []
    if _fast_eligible(model):
        # Every op has a shape function of ours and the inputs are concrete: propagate
        # shapes node by node, without ONNX's whole-graph inference.
        for vi in _bind_inputs(model.graph, init_names, shapes).input:
            elem, shape, syms = _type_shape(vi)
            top_inputs.append(TensorInfo(vi.name, elem, shape, symbolic=syms))
        if all(t.known for t in top_inputs):
            graph = _build_top(_Builder({}, opsets), model, top_inputs, payloads)
            if not _all_shapes_known(graph):
                logger.debug("own shape propagation left dims unknown; running ONNX inference")
                graph = None
    if graph is None:
        skel = _skeleton(model, shapes)
        types = _infer(skel)
        # The model's own value_info types tensors inference cannot (contrib ops); its dims
        # are trusted only when the request keeps the graph's declared input shapes.
        fallback: dict[str, onnx.ValueInfoProto] = {}
        if model.graph.value_info:
            for vi in model.graph.value_info:
                if vi.name in types or vi.type.WhichOneof("value") != "tensor_type":
                    continue
                if shapes.input_shapes or shapes.dim_values:
                    vi = onnx.ValueInfoProto(name=vi.name, type=onnx.TypeProto(
                        tensor_type=onnx.TypeProto.Tensor(elem_type=vi.type.tensor_type.elem_type)))
                fallback[vi.name] = vi
        bound = {vi.name: vi for vi in skel.graph.input}
        top_inputs = []
        for vi in model.graph.input:
            if vi.name in init_names:
                continue
            elem, shape, syms = _type_shape(bound[vi.name])
            top_inputs.append(TensorInfo(vi.name, elem, shape, symbolic=syms))
        graph = _build_top(_Builder(types, opsets, fallback), model, top_inputs, payloads)
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


STRIP_KEEP_ELEMENTS = 64  # shapes, axes, scalars: what shape inference and folding read


def strip_weights(data: bytes, graph: Graph | None = None) -> bytes:
    """The same model with its weights' payloads removed; dims and dtypes stay.

    Kept are the payloads the analysis reads: small initializers (at most
    :data:`STRIP_KEEP_ELEMENTS` elements: shapes, axes, scalars), all-zero ones (a zero
    bias is not counted as parameters) and tied ones (both sides: a tie is counted once),
    as :func:`load_graph_bytes` found them in ``graph`` (``data`` loaded, when not given);
    constants inside nodes stay too. The stripped model analyses as the full one does
    (``tests/predictors/test_calibration_data.py``) at a fraction of the size: what a
    calibration keeps of each model it measured. Large payloads are cut out of ``data``
    before protobuf parses it; only the kept ones are copied back.
    """
    if graph is None:
        graph = load_graph_bytes(data)
    tied = {w.duplicate_of for w in graph.weights.values() if w.duplicate_of}
    keep = {
        name
        for name, w in graph.weights.items()
        if w.numel <= STRIP_KEEP_ELEMENTS or w.duplicate_of or name in tied or w.nonzero == 0
    }
    split = _split_payloads(data)
    model = parse_model(split[0] if split is not None else data)
    cut: Sequence[memoryview | None] = split[1] if split is not None else [None] * len(model.graph.initializer)
    for t, payload in zip(model.graph.initializer, cut, strict=True):
        if t.name not in keep:
            for f in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                t.ClearField(f)
        elif payload is not None:
            t.raw_data = bytes(payload)
    return model.SerializeToString()


def load_graph(model: onnx.ModelProto, shapes: ShapeRequest | None = None) -> Graph:
    """``ModelProto`` -> shape-resolved :class:`Graph` at the request's input shapes."""
    return _load(model, shapes, None)


def load_graph_bytes(data: bytes, shapes: ShapeRequest | None = None, *, max_bytes: int | None = None) -> Graph:
    """Bytes -> :class:`Graph` (parse, refuse unsafe, infer shapes).

    Large initializer payloads are cut out of the message before protobuf parses it and
    read in place (non-zero counts, tied-weight detection): no copy of the weights is made.
    """
    if max_bytes is not None and len(data) > max_bytes:
        from nascost.predictors.errors import LimitExceededError

        raise LimitExceededError(f"model is {len(data)} bytes; this server accepts at most {max_bytes}")
    split = _split_payloads(data) if len(data) > 4 * _SPLIT_MIN_BYTES else None
    if split is None:
        return _load(parse_model(data), shapes, None)
    stripped, payloads = split
    return _load(parse_model(stripped), shapes, payloads)
