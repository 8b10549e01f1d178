"""A static check that no integer in a graph can leave int32, at any input size the graph accepts.

OpenVINO runs int64 tensors as int32 (issue 23): the format-6 fused graph's C²·h·w, an int64
product of shape values cast to float, wrapped from about 1024×512 pixels and scaled the shallow
style gradients by −3 while the loss stayed right. Bounding every integer tensor over all sizes
up to the exporter's 2¹⁶ per dimension catches that class of bug at export, on any machine and
at any size, which no single numeric check can.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper, shape_inference

INT32_MAX = 2**31 - 1
MAX_DIM = 1 << 16  # every dynamic dimension the exporter declares is at most this
_INTEGER = {
    TensorProto.INT8, TensorProto.INT16, TensorProto.INT32, TensorProto.INT64,
    TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64,
}  # fmt: skip
_PASS_FIRST = {"Squeeze", "Unsqueeze", "Reshape", "Identity", "Slice", "Gather", "GatherElements", "Expand",
               "Transpose", "Flatten", "Tile", "ReduceMax", "ReduceMin", "Abs", "Neg", "Split",
               "DepthToSpace", "SpaceToDepth"}  # fmt: skip
_PASS_ALL = {"Concat", "Max", "Min", "Pad"}
_INDEX = {"ArgMax", "ArgMin"}  # an index along one dimension


def _types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def _constant(node: onnx.NodeProto) -> float | None:
    for attr in node.attribute:
        if attr.name == "value":
            values = numpy_helper.to_array(attr.t)
            return float(np.abs(values).max()) if values.size else 0.0
        if attr.name in ("value_int", "value_ints"):
            return float(max((abs(v) for v in onnx.helper.get_attribute_value(attr)), default=0))
    return None


def _bound(node: onnx.NodeProto, inputs: list[float], types: dict[str, int]) -> float:
    """An upper bound on |value| of ``node``'s integer outputs, from its inputs' bounds."""
    op = node.op_type
    if op == "Shape":
        return MAX_DIM
    if op == "Constant":
        value = _constant(node)
        return math.inf if value is None else value
    if op in _PASS_FIRST:
        return inputs[0]
    if op in _PASS_ALL:
        return max(inputs)
    if op in _INDEX:
        return MAX_DIM
    if op == "Where":
        return max(inputs[1:])
    if op == "Cast":
        source = types.get(node.input[0])
        return 1 if source == TensorProto.BOOL else inputs[0] if source in _INTEGER else math.inf
    if op == "Mul":
        return inputs[0] * inputs[1]
    if op in ("Add", "Sub"):
        return inputs[0] + inputs[1]
    if op == "Div":  # integer division by a non-zero integer never grows
        return inputs[0]
    if op == "Mod":
        return min(inputs)
    if op == "Range":
        return max(inputs[0], inputs[1])
    return math.inf  # Size, ReduceSum, Pow, CumSum, …: unbounded unless shown otherwise


def int32_overflows(model: onnx.ModelProto) -> list[str]:
    """Each node with an integer output that may pass int32, as "op name: bound" (none: the graph is safe)."""
    model = shape_inference.infer_shapes(model)
    types = _types(model)
    bounds: dict[str, float] = {
        t.name: float(np.abs(numpy_helper.to_array(t)).max()) if t.data_type in _INTEGER and _size(t) else 0.0
        for t in model.graph.initializer
    }
    problems = []
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        outputs = [o for o in node.output if types.get(o) in _INTEGER]
        if not outputs:
            continue
        bound = _bound(node, [bounds.get(i, math.inf) for i in node.input if i], types)
        for name in outputs:
            bounds[name] = bound
        if bound > INT32_MAX:
            problems.append(f"{node.op_type} {node.name or outputs[0]}: up to {bound:.3g}")
    return problems


def _size(tensor: onnx.TensorProto) -> int:
    return math.prod(tensor.dims)


def check_file(path: Path) -> list[str]:
    """``int32_overflows`` of the graph at ``path`` (read without its weights' values mattering)."""
    return int32_overflows(onnx.load(str(path)))
