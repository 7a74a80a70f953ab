"""Reading a model graph: one place for ONNX and TFLite files, below everything that counts or fuses.

``OnnxGraph`` (an ONNX ``ModelProto`` or file after ONNX shape inference) and ``TfliteGraph`` (the flatbuffer read
through LiteRT's own schema, ``ai_edge_litert.schema_py_generated``: no interpreter, no private API) give nodes,
initializers / constants, consumers and tensor shapes. ``model_facts`` counts the exact, machine-independent facts
of a file (MACs, parameters, size, operator count) that ``hwnas ci-check`` gates on; ``predictors.fusion`` and
``predictors.fusion_tflite`` apply runtime fusion rules to the same graphs.

Shapes are never guessed. A graph input's unknown batch dimension is taken as 1 (the facts are per inference);
any other unknown input dimension (a dynamic H, W) must be given (``input_shape``: batch first, or without it), else
``DynamicShapeError``. A tensor whose shape is still unknown after inference raises ``GraphError`` when a count
needs it (a conv's output, a weight), never counts as 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import HwnasError, ParameterError


class GraphError(HwnasError):
    """A graph that cannot be read, holds an op no rule knows, or whose shapes cannot be resolved."""


class DynamicShapeError(GraphError):
    """A model input with a dynamic dimension other than the batch, and no input shape given."""


def resolve_input_dims(name: str, dims: Sequence, input_shape: Sequence[int] | None = None,
                       where: str = "model") -> tuple[int, ...]:
    """Concrete dims of a model input declared as ``dims`` (ints; None or a symbolic name where dynamic): an
    unknown batch (first) dim is 1; the others come from ``input_shape`` when given (the whole shape, batch first,
    or the dims after the batch), else ``DynamicShapeError``. A given ``input_shape`` must agree with every fixed
    dim."""
    dims = [d if isinstance(d, (int, np.integer)) and d > 0 else None for d in dims]
    if input_shape is not None:
        given = [int(d) for d in input_shape]
        if len(given) not in (len(dims), len(dims) - 1):
            raise GraphError(f"{where}: input {name!r} has {len(dims)} dims {_show(dims)}; the input shape given "
                             f"{tuple(given)} must list all {len(dims)} or the {len(dims) - 1} after the batch")
        if len(given) == len(dims) - 1:
            given = [int(dims[0]) if dims and dims[0] is not None else 1, *given]
        for i, (d, g) in enumerate(zip(dims, given)):
            if d is not None and d != g:
                raise GraphError(f"{where}: input {name!r} is {_show(dims)}; the input shape given {tuple(given)} "
                                 f"disagrees at dim {i}")
        return tuple(given)
    if any(d is None for d in dims[1:]):
        raise DynamicShapeError(f"{where}: input {name!r} has dynamic dimensions {_show(dims)}: its MACs and "
                                "latency depend on the input shape, which was not given: export it with a static "
                                "input shape (the batch may stay dynamic)")
    return tuple(int(d) if d is not None else 1 for d in dims)


def parse_input_shape(text: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"1x3x32x32"`` (or a sequence of ints) -> ``(1, 3, 32, 32)``; None stays None. Every dim a positive int."""
    if text is None:
        return None
    parts = text.lower().split("x") if isinstance(text, str) else list(text)
    try:
        dims = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ParameterError("input_shape", f"{text!r}: expected positive dims such as 1x3x32x32 (batch first)")
    return dims


def _show(dims) -> str:
    return "(" + ", ".join("?" if d is None else str(int(d)) for d in dims) + ")"


# -- ONNX --------------------------------------------------------------------------------------------------
def load_onnx(path: Path | str):
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse error becomes one line naming the file
        raise GraphError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0] if str(exc) else exc})") \
            from None


class OnnxGraph:
    """An ONNX graph with its inputs made concrete (``resolve_input_dims``) and shapes inferred."""

    def __init__(self, model, where: str = "model", input_shape: Sequence[int] | None = None):
        import onnx
        from onnx import shape_inference

        model = _static_inputs(model, where, input_shape)
        self.inference_error = None
        try:
            model = shape_inference.infer_shapes(model)
        except Exception as exc:  # noqa: BLE001 - recorded: a shape a count needs then raises naming this
            self.inference_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.where = where
        g = model.graph
        self.nodes = list(g.node)
        self.inits = {t.name: tuple(int(d) for d in t.dims) for t in g.initializer}
        self.constants: dict[str, np.ndarray] = {}
        for n in self.nodes:  # Constant nodes' outputs act as initializers (some exporters)
            if n.op_type == "Constant":
                for a in n.attribute:
                    if a.name == "value":
                        arr = onnx.numpy_helper.to_array(a.t)
                        self.constants[n.output[0]] = arr
                        self.inits[n.output[0]] = tuple(arr.shape)
        self._shapes: dict[str, tuple] = dict(self.inits)
        for vi in list(g.value_info) + list(g.input) + list(g.output):
            if vi.name not in self.inits:
                self._shapes[vi.name] = tuple(int(d.dim_value) if d.HasField("dim_value") else None
                                              for d in vi.type.tensor_type.shape.dim)
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.attrs = {id(n): {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in self.nodes}

    def has_shape(self, name: str) -> bool:
        return name in self._shapes

    def shape(self, name: str) -> tuple[int, ...]:
        """The inferred shape of tensor ``name``; ``()`` for a tensor the graph does not describe (a scalar or an
        optional input); ``GraphError`` when inference left a dimension unknown."""
        dims = self._shapes.get(name, ())
        if any(d is None for d in dims):
            why = f" (shape inference: {self.inference_error})" if self.inference_error else ""
            raise GraphError(f"{self.where}: the shape of tensor {name!r} is unknown {_show(dims)}{why}; "
                             "nothing is counted from a guessed shape")
        return dims

    def required_shape(self, name: str, node) -> tuple[int, ...]:
        """``shape(name)`` for a tensor that ``node`` needs counted: missing is an error too."""
        if name not in self._shapes:
            why = f" (shape inference: {self.inference_error})" if self.inference_error else ""
            raise GraphError(f"{self.where}: no shape for {name!r}, needed to count {node.op_type} "
                             f"{node.name or node.output[0]!r}{why}")
        return self.shape(name)


def _static_inputs(model, where: str, input_shape):
    """A copy of ``model`` whose graph inputs (not initializers) have concrete dims."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in inits]
    dynamic = [vi for vi in inputs if any(not d.HasField("dim_value") or d.dim_value <= 0
                                          for d in vi.type.tensor_type.shape.dim)]
    if not dynamic and input_shape is None:
        return model
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        concrete = resolve_input_dims(vi.name, declared, input_shape if vi is _first(model, inits) else None, where)
        for d, v in zip(dims, concrete):
            d.Clear()
            d.dim_value = int(v)
    return model


def _first(model, inits):
    return next(vi for vi in model.graph.input if vi.name not in inits)


def onnx_facts(g: OnnxGraph) -> dict:
    """MACs (Conv / Gemm / MatMul and their quantised forms), parameters (initializers + Constant nodes) and
    operator counts of an ONNX graph."""
    params = sum(int(np.prod(d)) if d else 1 for d in g.inits.values())
    macs = 0
    for node in g.nodes:
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            out = g.required_shape(node.output[0], node)
            w = g.required_shape(node.input[3] if node.op_type == "QLinearConv" else node.input[1], node)
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            out = g.required_shape(node.output[0], node)
            a = g.required_shape(node.input[0], node)
            trans_a = g.attrs[id(node)].get("transA", 0) if node.op_type == "Gemm" else 0
            macs += int(np.prod(out)) * int(a[0] if trans_a else a[-1])
    ops: dict[str, int] = {}
    for node in g.nodes:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"macs": int(macs), "params": int(params), "op_count": len(g.nodes), "op_types": dict(sorted(ops.items()))}


# -- TFLite ------------------------------------------------------------------------------------------------
# element size in bytes per TensorType (FLOAT32, FLOAT16, INT32, UINT8, INT64, ..., INT8 = 9, ...)
_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 12: 8, 15: 4, 16: 2, 18: 2}


def read_tflite_bytes(path: Path | str) -> bytes:
    try:
        buf = Path(path).read_bytes()
    except OSError as exc:
        raise GraphError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise GraphError(f"{path}: not a readable TFLite model (no TFL3 flatbuffer identifier)")
    return buf


class TfliteGraph:
    """The first subgraph of a TFLite flatbuffer: ops as (builtin name, inputs, outputs, options), tensors,
    buffers, producers / consumers and the constant tensors (data in a buffer, or a (DE)QUANTIZE of one)."""

    def __init__(self, buf: bytes, where: str = "model"):
        from ai_edge_litert import schema_py_generated as S

        try:
            model = S.ModelT.InitFromPackedBuf(buf, 0)
            g = model.subgraphs[0]
        except Exception as exc:  # noqa: BLE001 - any flatbuffer error
            raise GraphError(f"{where}: not a readable TFLite model ({type(exc).__name__})") from None
        self.where = where
        names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
        self.ops = []
        for op in g.operators or []:
            oc = model.operatorCodes[op.opcodeIndex]
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            name = names.get(code, str(code))
            if name == "CUSTOM":
                name = f"CUSTOM({(oc.customCode or b'?').decode(errors='replace')})"
            ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
            self.ops.append((name, ins, outs, op.builtinOptions))
        self.tensors = g.tensors or []
        self.buffers = model.buffers or []
        self.producer = {o: i for i, (_, _, outs, _) in enumerate(self.ops) for o in outs}
        self.consumers: dict[int, list[int]] = {}
        for i, (_, ins, _, _) in enumerate(self.ops):
            for t in ins:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(i)
        self.inputs = {int(i) for i in (g.inputs if g.inputs is not None else [])}
        self.const = {i for i, t in enumerate(self.tensors)
                      if 0 < t.buffer < len(self.buffers) and self.buffers[t.buffer].data is not None
                      and len(self.buffers[t.buffer].data) > 0}
        for name, ins, outs, _ in self.ops:
            if name in ("DEQUANTIZE", "QUANTIZE") and ins and ins[0] in self.const:
                self.const.update(outs)

    def shape(self, t: int) -> tuple:
        if t < 0 or self.tensors[t].shape is None:
            return ()
        sig = self.tensors[t].shapeSignature
        if sig is not None and any(int(d) < 0 for d in list(sig)[1:]):  # -1: dynamic (the batch aside)
            raise GraphError(f"{self.where}: tensor {self.name(t)!r} has dynamic dimensions "
                             f"{tuple(int(d) for d in sig)}; nothing is counted from a guessed shape")
        return tuple(int(d) for d in self.tensors[t].shape)

    def nbytes(self, t: int) -> float:
        if t < 0:
            return 0.0
        return float(np.prod(self.shape(t) or (1,))) * _ITEMSIZE.get(self.tensors[t].type, 4)

    def name(self, t: int) -> str:
        n = self.tensors[t].name
        return n.decode(errors="replace") if isinstance(n, bytes) else str(n)

    def data_inputs(self, i: int) -> list[int]:
        return [t for t in self.ops[i][1] if t >= 0 and t not in self.const]

    def only_consumer(self, i: int) -> int | None:
        outs = self.ops[i][2]
        c = self.consumers.get(outs[0], []) if outs else []
        return c[0] if len(c) == 1 else None

    def const_ints(self, t: int) -> list[int]:
        b = self.buffers[self.tensors[t].buffer].data if t in self.const else None
        return [] if b is None else np.frombuffer(np.asarray(b, np.uint8).tobytes(), np.int32).tolist()


def tflite_facts(g: TfliteGraph) -> dict:
    """MACs (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL), parameters (constant tensors that feed
    an op) and operator counts of a TFLite graph."""
    produced = {o for _, _, outs, _ in g.ops for o in outs}
    consumed = {i for _, ins, _, _ in g.ops for i in ins if i >= 0}
    const = consumed - produced - g.inputs
    params = sum(int(np.prod(g.shape(i))) if len(g.shape(i)) else 1 for i in const)
    macs = 0
    types: dict[str, int] = {}
    for name, ins, outs, _ in g.ops:
        types[name] = types.get(name, 0) + 1
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL"):
            continue
        out = g.shape(outs[0]) if outs else ()
        if not out:
            raise GraphError(f"{g.where}: {name} has no output shape; nothing is counted from a guessed shape")
        if name == "CONV_2D":
            macs += int(np.prod(out)) * int(np.prod(g.shape(ins[1])[1:]))  # weights [O, H, W, I]
        elif name == "DEPTHWISE_CONV_2D":
            w = g.shape(ins[1])  # [1, H, W, O]
            macs += int(np.prod(out)) * int(w[1] * w[2])
        elif name == "FULLY_CONNECTED":
            macs += int(np.prod(out)) * int(g.shape(ins[1])[-1])  # weights [O, I]
        else:
            macs += int(np.prod(out)) * int(g.shape(ins[0])[-1])
    return {"macs": int(macs), "params": int(params), "op_count": len(g.ops), "op_types": dict(sorted(types.items()))}


def model_facts(path: Path | str, input_shape: Sequence[int] | None = None) -> dict:
    """Exact, machine-independent facts of a model file: ``macs``, ``params``, ``size_bytes``, ``op_count``,
    ``op_types``. ``input_shape`` (batch first, or the dims after it) for an ONNX model with a dynamic H, W."""
    path = Path(path)
    if path.suffix == ".onnx":
        facts = onnx_facts(OnnxGraph(load_onnx(path), str(path), input_shape))
    elif path.suffix == ".tflite":
        facts = tflite_facts(TfliteGraph(read_tflite_bytes(path), str(path)))
    else:
        raise GraphError(f"cannot count the ops of {path}: expected a .onnx or .tflite file")
    return {**facts, "size_bytes": path.stat().st_size}
