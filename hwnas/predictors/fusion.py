"""Kernels from any ONNX graph (nn-Meter style): read the graph, apply the runtime's fusion rules, describe
each fused kernel by type and shapes.

Fusion rules for ``onnxruntime`` (CPU execution provider, graph optimizations on; what its profiler shows as
one node, checked on exported MobileNet subnets):

- ``conv`` / ``dwconv``: Conv [+ BatchNormalization] [+ one activation: Relu, Clip (ReLU6), HardSwish,
  HardSigmoid, Sigmoid, LeakyRelu, Tanh]; ``dwconv`` when groups == Cin == Cout > 1. A Conv without
  activation whose only consumer is an Add of two feature maps also absorbs the Add [+ activation]
  (``residual`` = 1: ORT's NCHWc Conv+Sum fusion; the profiler shows no separate Add).
- ``se``: squeeze-excite as one kernel: GlobalAveragePool -> 1x1 Conv / Gemm -> act -> 1x1 Conv / Gemm ->
  (Hard)Sigmoid -> Mul with the block input (ORT runs it as several small nodes; they are summed).
- ``add``: Add / Sum of two feature maps [+ activation] that no conv absorbed; ``mul``: other element-wise Mul / Div /
  Sub, and a BatchNormalization no conv absorbed (a per-channel scale and shift, e.g. NB201's final BN).
- ``pool``: MaxPool / AveragePool; ``gap``: GlobalAveragePool / ReduceMean outside an SE block.
- ``fc``: Gemm, or MatMul [+ Add], [+ activation].
- ``act``: an activation no conv / add absorbed.
- ``concat``, ``transpose``, ``split`` (Split / Slice / Gather), ``reshape`` (Reshape / Flatten / Squeeze /
  Unsqueeze: memory kernels that ORT still runs).
- dropped (no kernel): Identity, Dropout, Constant, Shape (constant-folded or removed by ORT).

Any other op type raises ``GraphError`` (never a silent 0 ms). Each kernel carries: type, input H (= W),
Cin, Cout, kernel size, stride, groups, MACs, and memory traffic in bytes (fp32 input + output + weights),
and the ONNX node names and output tensor names it covers (to match profiler events).

TFLite graphs (``.tflite``, runtime ``litert``: the TFLite CPU / XNNPACK path) are read by
``fusion_tflite`` into the same description, with that path's rules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..graphs import GraphError, OnnxGraph, load_onnx

ACTS = {"Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "LeakyRelu", "Tanh"}
DROPPED = {"Identity", "Dropout", "Constant", "Shape"}
SIMPLE = {"MaxPool": "pool", "AveragePool": "pool", "GlobalAveragePool": "gap", "ReduceMean": "gap",
          "Concat": "concat", "Transpose": "transpose", "Split": "split", "Slice": "split", "Gather": "split",
          "Reshape": "reshape", "Flatten": "reshape", "Squeeze": "reshape", "Unsqueeze": "reshape",
          "Mul": "mul", "Div": "mul", "Sub": "mul", "Gemm": "fc", "MatMul": "fc", "BatchNormalization": "mul"}
KERNEL_TYPES = ("conv", "dwconv", "se", "add", "mul", "pool", "gap", "fc", "act", "concat", "transpose", "split",
                "reshape", "pad")
FEATURES = ("hw", "cin", "cout", "k", "stride", "groups", "residual", "mmacs", "mbytes")
RUNTIMES = ("onnxruntime", "litert")
SUFFIX_RUNTIME = {".onnx": "onnxruntime", ".tflite": "litert"}


@dataclass
class Kernel:
    type: str
    hw: int = 1
    cin: int = 1
    cout: int = 1
    k: int = 1
    stride: int = 1
    groups: int = 1
    mmacs: float = 0.0
    mbytes: float = 0.0
    residual: int = 0
    act: str = ""
    nodes: list = field(default_factory=list)
    outputs: list = field(default_factory=list)

    def features(self) -> list[float]:
        return [float(getattr(self, f)) for f in FEATURES]

    def describe(self) -> dict:
        d = asdict(self)
        d.pop("nodes"), d.pop("outputs")
        return d


class _Graph(OnnxGraph):
    """``hwnas.graphs.OnnxGraph`` (shapes resolved, never guessed) plus what the fusion rules ask of it."""

    def only_consumer(self, node):
        c = self.consumers.get(node.output[0], [])
        return c[0] if len(c) == 1 else None

    def is_data(self, name) -> bool:
        return bool(name) and name not in self.inits


def _nchw(shape) -> tuple[int, int]:
    """(channels, spatial H) of a tensor shape (NCHW or NC)."""
    if len(shape) >= 4:
        return int(shape[1]), int(shape[2])
    if len(shape) >= 2:
        return int(shape[-1]), 1
    return (int(shape[0]) if shape else 1), 1


def _numel(shape) -> int:
    return int(np.prod(shape)) if shape else 1


class _Fuser:
    """One pass over an ONNX graph: which nodes are already inside a kernel, and absorbing a node's only
    consumer into a kernel."""

    def __init__(self, G: _Graph):
        self.G = G
        self.done: set[int] = set()

    def absorb(self, k: Kernel, node, allowed) -> object:
        nxt = self.G.only_consumer(node)
        if nxt is not None and nxt.op_type in allowed and id(nxt) not in self.done:
            self.done.add(id(nxt))
            k.nodes.append(nxt.name)
            k.outputs.append(nxt.output[0])
            return nxt
        return node

    def absorb_act(self, k: Kernel, node) -> object:
        last = self.absorb(k, node, ACTS)
        k.act = last.op_type if last.op_type in ACTS else ""
        return last


# Each rule handler fills in kernel ``k`` for ``node`` (``ins`` / ``out``: the node's input / output shapes;
# ``k.hw``, ``k.cin``, ``k.cout`` already read from them) and returns (the output shape the kernel ends with,
# weight bytes).

def _conv(F: _Fuser, node, k: Kernel, ins, out):
    G = F.G
    a = G.attrs[id(node)]
    w = G.shape(node.input[1])
    k.k = int(w[2]) if len(w) >= 3 else 1
    k.stride = int((a.get("strides") or [1])[0])
    k.groups = int(a.get("group", 1))
    k.type = "dwconv" if k.groups > 1 and k.groups == k.cin == k.cout else "conv"
    last = F.absorb(k, node, {"BatchNormalization"})
    last = F.absorb(k, last, ACTS)
    nxt = G.only_consumer(last)
    if (last.op_type not in ACTS and nxt is not None and nxt.op_type in ("Add", "Sum")
            and _n_data(G, nxt) == 2):  # ORT's NCHWc Conv + Sum (+ act) fusion
        last = F.absorb(k, last, {"Add", "Sum"})
        k.residual = 1
        last = F.absorb(k, last, ACTS)
    k.act = last.op_type if last.op_type in ACTS else ""
    out = G.shape(last.output[0]) or out
    k.cout, ohw = _nchw(out)
    k.mmacs = k.cout * ohw * ohw * (k.cin // max(k.groups, 1)) * k.k * k.k / 1e6
    return out, _numel(w) * 4


def _se(F: _Fuser, node, k: Kernel, ins, out):
    k.type = "se"
    wbytes = 0
    for m in _se_members(F.G, node):
        F.done.add(id(m))
        k.nodes.append(m.name)
        k.outputs.append(m.output[0])
        if m.op_type in ("Conv", "Gemm"):
            ws = F.G.shape(m.input[1])
            wbytes += _numel(ws) * 4
            k.mmacs += _numel(ws) / 1e6
    k.cout = k.cin
    k.mmacs += 2 * k.cin * k.hw * k.hw / 1e6  # the pooling and the gating multiply
    return ins, wbytes


def _add(F: _Fuser, node, k: Kernel, ins, out):
    k.type = "add"
    F.absorb_act(k, node)
    k.mmacs = _numel(out) / 1e6
    return out, 0


def _act(F: _Fuser, node, k: Kernel, ins, out):
    k.type, k.act = "act", node.op_type
    k.mmacs = _numel(out) / 1e6
    return out, 0


def _fc(F: _Fuser, node, k: Kernel, ins, out):
    k.type = "fc"
    w = F.G.shape(node.input[1])
    last = F.absorb(k, node, {"Add"}) if node.op_type == "MatMul" else node
    F.absorb_act(k, last)
    if len(w) == 2:
        k.cin, k.cout = int(w[0]), int(w[1])
        if node.op_type == "Gemm" and int(F.G.attrs[id(node)].get("transB", 0)):
            k.cin, k.cout = k.cout, k.cin  # B stored (out, in): torch's Linear exports this way
    k.mmacs = _numel(w) / 1e6
    return out, _numel(w) * 4


def _bias(F: _Fuser, node, k: Kernel, ins, out):  # a bias or constant added to one tensor
    k.type = "mul"
    k.mmacs = _numel(out) / 1e6
    return out, 0


def _simple(F: _Fuser, node, k: Kernel, ins, out):
    k.type = SIMPLE[node.op_type]
    if k.type == "pool":
        a = F.G.attrs[id(node)]
        k.k = int((a.get("kernel_shape") or [1])[0])
        k.stride = int((a.get("strides") or [1])[0])
        k.mmacs = _numel(out) * k.k * k.k / 1e6
    else:
        k.mmacs = _numel(ins) / 1e6 if k.type in ("gap", "mul") else 0.0
    return out, 0


def _n_data(G: _Graph, node) -> int:
    return sum(G.is_data(i) for i in node.input)


# (does the rule apply to this node, its handler): the first that applies makes the kernel.
RULES = (
    (lambda G, n: n.op_type == "Conv", _conv),
    (lambda G, n: n.op_type in ("GlobalAveragePool", "ReduceMean") and _is_se(G, n), _se),
    (lambda G, n: n.op_type in ("Add", "Sum") and _n_data(G, n) >= 2, _add),
    (lambda G, n: n.op_type in ACTS, _act),
    (lambda G, n: n.op_type in ("Gemm", "MatMul"), _fc),
    (lambda G, n: n.op_type in ("Add", "Sum"), _bias),
    (lambda G, n: n.op_type in SIMPLE, _simple),
)


def fuse(model, runtime: str = "onnxruntime", input_shape=None, where: str = "model") -> list[Kernel]:
    """The kernels ``runtime`` executes for an ONNX ``ModelProto`` (see the module doc for the rules);
    ``input_shape`` (dims after the batch) for a model with a dynamic H, W."""
    if runtime != "onnxruntime":
        raise GraphError(f"no ONNX fusion rules for runtime {runtime!r}" + (
            " (litert rules read .tflite graphs)" if runtime == "litert" else f"; known: {', '.join(RUNTIMES)}"))
    F = _Fuser(_Graph(model, where, input_shape))
    kernels: list[Kernel] = []
    for node in F.G.nodes:
        if id(node) in F.done:
            continue
        F.done.add(id(node))
        if node.op_type not in DROPPED:
            kernels.append(_kernel(F, node, runtime))
    return kernels


def _kernel(F: _Fuser, node, runtime: str) -> Kernel:
    """The kernel that starts at ``node``: the first rule that applies fills it in."""
    G = F.G
    ins = G.shape(node.input[0]) if node.input else ()
    out = G.shape(node.output[0])
    k = Kernel("?", nodes=[node.name], outputs=[node.output[0]])
    k.cin, k.hw = _nchw(ins)
    k.cout = _nchw(out)[0]
    handler = next((h for applies, h in RULES if applies(G, node)), None)
    if handler is None:
        raise GraphError(f"op {node.op_type!r} (node {node.name!r}) has no fusion rule for {runtime}; known ops: "
                         f"Conv, BatchNormalization, {', '.join(sorted(ACTS | set(SIMPLE) | {'Add', 'Sum'}))}; "
                         f"dropped: {', '.join(sorted(DROPPED))}")
    out, wbytes = handler(F, node, k, ins, out)
    k.mbytes = (_numel(ins) * 4 + _numel(out) * 4 + wbytes) / 1e6
    return k


def _is_se(G: _Graph, node) -> bool:
    return _se_members(G, node) is not None


def _se_members(G: _Graph, node):
    """The nodes after a GlobalAveragePool that form an SE block ending in Mul with the pooled tensor's
    source, or None."""
    src = node.input[0]
    members, cur = [], node
    for _ in range(8):
        nxt = G.only_consumer(cur)
        if nxt is None:
            return None
        members.append(nxt)
        if nxt.op_type == "Mul":
            return members if src in nxt.input else None
        if nxt.op_type not in ACTS | {"Conv", "Gemm", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Add"}:
            return None
        cur = nxt
    return None


def graph_runtime(path: Path | str) -> str:
    """The runtime whose fusion rules apply to a model file: ``onnxruntime`` for .onnx, ``litert`` for .tflite."""
    suffix = Path(path).suffix
    if suffix not in SUFFIX_RUNTIME:
        raise GraphError(f"{path}: expected an .onnx or .tflite model file")
    return SUFFIX_RUNTIME[suffix]


def read_graph(path: Path | str, runtime: str | None = None, input_shape=None) -> list[Kernel]:
    """Fused kernels of an exported model file: ``.onnx`` (ONNX Runtime's rules) or ``.tflite`` (TFLite CPU /
    XNNPACK rules, ``fusion_tflite``). ``runtime``, when given, must be the one the file's format runs on."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"model file {path} does not exist")
    own = graph_runtime(path)
    if runtime is not None and runtime != own:
        raise GraphError(f"{path}: a {path.suffix} graph runs on {own}, not {runtime}; no fusion rules for that pair")
    if own == "litert":
        from .fusion_tflite import read_tflite

        return read_tflite(path)
    return fuse(load_onnx(path), own, input_shape, str(path))


__all__ = ["Kernel", "GraphError", "fuse", "read_graph", "graph_runtime", "KERNEL_TYPES", "FEATURES", "RUNTIMES"]
