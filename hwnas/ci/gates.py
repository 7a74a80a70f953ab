"""Deterministic gates of the CI check: exact, machine-independent facts counted from the model file itself.

MACs, parameters, file size in bytes and operator count, read from the ONNX graph (after ONNX shape
inference) or the TFLite flatbuffer (through LiteRT's interpreter). Any growth fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import HwnasError
from .stats import FAIL, PASS

GATES = ("macs", "params", "size_bytes", "op_count")


def _onnx_gates(path: Path) -> dict:
    import onnx
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf, OS and onnx errors alike: re-raised as one line naming the file
        raise HwnasError(f"cannot read ONNX model {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    try:
        model = shape_inference.infer_shapes(model)
    except (shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError, ValueError):
        pass  # shapes are then partly unknown: the gates that need one say so
    g = model.graph
    inits = {t.name: tuple(t.dims) for t in g.initializer}
    params = sum(int(np.prod(d)) if d else 1 for d in inits.values())
    shapes: dict[str, tuple] = dict(inits)
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
        shapes[vi.name] = dims
    for node in g.node:  # Constant nodes hold weights too (some exporters)
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    arr = numpy_helper.to_array(a.t)
                    params += int(arr.size)
                    shapes[node.output[0]] = arr.shape
    macs = 0
    for node in g.node:
        out = shapes.get(node.output[0]) if node.output else None
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w = shapes.get(node.input[3] if node.op_type == "QLinearConv" else node.input[1])
            if out and w and len(w) >= 2:
                macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            a = shapes.get(node.input[0])
            if out and a:
                k = a[-1]
                if node.op_type == "Gemm":
                    trans_a = next((at.i for at in node.attribute if at.name == "transA"), 0)
                    k = a[0] if trans_a else a[-1]
                macs += int(np.prod(out)) * int(k)
    ops: dict[str, int] = {}
    for node in g.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"macs": int(macs), "params": int(params), "size_bytes": path.stat().st_size,
            "op_count": len(g.node), "op_types": dict(sorted(ops.items()))}


def _tflite_gates(path: Path) -> dict:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        from tflite_runtime.interpreter import Interpreter  # type: ignore
    try:
        interp = Interpreter(model_path=str(path))
        ops = interp._get_ops_details()
        tensors = {t["index"]: t for t in interp.get_tensor_details()}
    except Exception as exc:  # the interpreter raises ValueError, RuntimeError ...: re-raised as one line
        raise HwnasError(f"cannot read TFLite model {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    model_inputs = {d["index"] for d in interp.get_input_details()}
    produced = {int(o) for op in ops for o in op["outputs"]}
    consumed = {int(i) for op in ops for i in op["inputs"] if int(i) >= 0}
    const = consumed - produced - model_inputs
    params = sum(int(np.prod(tensors[i]["shape"])) if len(tensors[i]["shape"]) else 1 for i in const if i in tensors)

    def shape(i):
        return tuple(int(s) for s in tensors[int(i)]["shape"]) if int(i) in tensors else ()

    macs = 0
    types: dict[str, int] = {}
    for op in ops:
        name = op["op_name"]
        types[name] = types.get(name, 0) + 1
        out = shape(op["outputs"][0]) if len(op["outputs"]) else ()
        if not out:
            continue
        if name == "CONV_2D":
            w = shape(op["inputs"][1])  # [O, H, W, I]
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif name == "DEPTHWISE_CONV_2D":
            w = shape(op["inputs"][1])  # [1, H, W, O]
            macs += int(np.prod(out)) * int(w[1] * w[2])
        elif name == "FULLY_CONNECTED":
            w = shape(op["inputs"][1])  # [O, I]
            macs += int(np.prod(out)) * int(w[-1])
        elif name == "BATCH_MATMUL":
            a = shape(op["inputs"][0])
            macs += int(np.prod(out)) * int(a[-1])
    return {"macs": int(macs), "params": int(params), "size_bytes": path.stat().st_size,
            "op_count": len(ops), "op_types": dict(sorted(types.items()))}


def model_gates(path: Path) -> dict:
    """Exact, machine-independent facts of a model file: MACs, params, size in bytes, operator count."""
    path = Path(path)
    if path.suffix == ".onnx":
        return _onnx_gates(path)
    if path.suffix == ".tflite":
        return _tflite_gates(path)
    raise HwnasError(f"cannot count the ops of {path}: expected a .onnx or .tflite file")


def compare_gates(base: dict | None, cand: dict, which: Sequence[str] = GATES) -> dict[str, dict]:
    """Exact comparison; growth fails, equality or shrinkage passes."""
    out = {}
    for g in which:
        c = cand.get(g)
        b = None if base is None else base.get(g)
        if b is None:
            out[g] = {"baseline": None, "candidate": c, "verdict": PASS, "reason": "no baseline value"}
        elif c > b:
            out[g] = {"baseline": b, "candidate": c, "verdict": FAIL,
                      "reason": f"{g} grew {b:,} -> {c:,} ({(c - b) / b * 100 if b else float('inf'):+.2f}%)"}
        else:
            out[g] = {"baseline": b, "candidate": c, "verdict": PASS,
                      "reason": "unchanged" if c == b else f"{g} shrank {b:,} -> {c:,}"}
    return out
