"""Kernels from a TFLite graph: read the flatbuffer (LiteRT's own schema, ``ai_edge_litert.schema_py_generated``)
and apply the fusion rules of the TFLite CPU path (XNNPACK delegate, LiteRT's default on CPU).

The converter has already folded BatchNorm into the conv weights and fused ReLU / ReLU6 / ReLU_N1_TO_1 /
Tanh into CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and ADD (``fused_activation_function``), so most
TFLite ops are one XNNPACK operator each. Rules (runtime ``litert``):

- ``conv`` / ``dwconv``: CONV_2D / DEPTHWISE_CONV_2D [+ fused act]; a PAD / PADV2 whose only consumer is the
  conv is folded into it (XNNPACK merges a static spatial pad into the convolution's padding). ``dwconv``
  when the depthwise conv keeps the channel count, else ``conv`` with groups = Cin.
- ``se``: MEAN over H, W (keep dims) -> CONV_2D / FULLY_CONNECTED [+ act] -> ... -> LOGISTIC or
  HARD_SWISH / a fused RELU6 with MUL by a constant (hard-sigmoid) -> MUL with the MEAN's input (the gate):
  one kernel (XNNPACK runs its members back to back; their times are summed).
- ``gap``: MEAN / SUM over the spatial axes outside an SE block (global pooling).
- ``add``: ADD of two feature maps [+ fused act]; ``mul``: MUL / SUB / DIV / SQUARED_DIFFERENCE of two
  feature maps or with a constant (e.g. SiLU's LOGISTIC -> MUL stays ``act`` + ``mul``), QUANTIZE /
  DEQUANTIZE of a feature map.
- ``fc``: FULLY_CONNECTED [+ fused act] (or BATCH_MATMUL); ``pool``: MAX_POOL_2D / AVERAGE_POOL_2D.
- ``act``: a standalone activation (HARD_SWISH, LOGISTIC, RELU, RELU6, TANH, LEAKY_RELU, GELU, ELU, PRELU).
- ``transpose``, ``reshape`` (RESHAPE / SQUEEZE / EXPAND_DIMS), ``concat`` (CONCATENATION), ``split``
  (SPLIT / SPLIT_V / SLICE / STRIDED_SLICE / GATHER), ``pad`` (a PAD no conv absorbed).
- dropped (no kernel): DEQUANTIZE / QUANTIZE of a constant (fp16 / int8 weights, unpacked once at load).

Shapes are NHWC (TFLite's layout; litert-torch keeps NCHW only at the model's boundary, behind TRANSPOSE
ops). Memory traffic uses each tensor's real element size (int8 models move a quarter of fp32's bytes).
Each kernel's ``nodes`` are ``<BUILTIN>:<op index>`` (how benchmark_model names a node without a delegate)
and its ``outputs`` the output tensor names. Any other op raises ``GraphError`` (never a silent 0 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..graphs import GraphError, TfliteGraph, read_tflite_bytes
from .fusion import Kernel

ACT_NAMES = {0: "", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
ACTS = {"HARD_SWISH", "LOGISTIC", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "TANH", "LEAKY_RELU", "GELU",
        "ELU", "PRELU"}
BINARY = {"ADD", "MUL", "SUB", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM"}
SIMPLE = {"MAX_POOL_2D": "pool", "AVERAGE_POOL_2D": "pool", "TRANSPOSE": "transpose", "RESHAPE": "reshape",
          "SQUEEZE": "reshape", "EXPAND_DIMS": "reshape", "CONCATENATION": "concat", "SPLIT": "split",
          "SPLIT_V": "split", "SLICE": "split", "STRIDED_SLICE": "split", "GATHER": "split", "PAD": "pad",
          "PADV2": "pad", "QUANTIZE": "mul", "DEQUANTIZE": "mul"}
CONVS = {"CONV_2D", "DEPTHWISE_CONV_2D"}
KNOWN = sorted(CONVS | ACTS | BINARY | set(SIMPLE) | {"MEAN", "SUM", "FULLY_CONNECTED", "BATCH_MATMUL"})
def _nhwc(shape: tuple) -> tuple[int, int]:
    """(channels, spatial H) of an NHWC or NC tensor shape."""
    if len(shape) >= 4:
        return int(shape[3]), int(shape[1])
    if len(shape) >= 1:
        return int(shape[-1]), 1
    return 1, 1


def _act(opts) -> str:
    return ACT_NAMES.get(getattr(opts, "fusedActivationFunction", 0) or 0, "")


def _se_members(G: TfliteGraph, mean: int) -> list[int] | None:
    """The ops after a keep-dims MEAN that form an SE block ending in MUL with the MEAN's input, or None."""
    src = G.ops[mean][1][0]
    members, cur = [], mean
    for _ in range(10):
        nxt = G.only_consumer(cur)
        if nxt is None:
            return None
        name, ins, _, _ = G.ops[nxt]
        members.append(nxt)
        if name == "MUL" and len(G.data_inputs(nxt)) == 2:
            return members if src in ins else None
        if name not in ACTS | CONVS | {"FULLY_CONNECTED", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "MUL", "ADD", "SUB"}:
            return None
        cur = nxt
    return None


@dataclass
class _Op:
    """One TFLite op as the rules see it: index, builtin name, tensor ids, options, data (non-constant) inputs,
    the kernel's input shape (a folded PAD's input for a conv) and output shape."""
    i: int
    name: str
    ins: list
    outs: list
    opts: object
    data: list
    ish: tuple
    osh: tuple


# Each rule handler fills in kernel ``k`` for op ``o`` (``k.cin``, ``k.hw``, ``k.cout`` already read from its
# shapes; ``done``: the ops already inside a kernel) and returns (weight bytes, the tensor the kernel writes).

def _conv(G: TfliteGraph, o: _Op, k: Kernel, done: set[int]):
    w = G.shape(o.ins[1])  # CONV_2D: [Cout, kh, kw, Cin / groups]; DEPTHWISE: [1, kh, kw, Cout]
    k.k = int(w[1]) if len(w) == 4 else 1
    k.stride = int(getattr(o.opts, "strideH", 1) or 1)
    k.act = _act(o.opts)
    if o.name == "DEPTHWISE_CONV_2D":
        k.groups = k.cin
        k.type = "dwconv" if k.cin == k.cout and k.cin > 1 else "conv"
        per_out = 1
    else:
        per_out = int(w[3]) if len(w) == 4 else k.cin
        k.groups = max(k.cin // max(per_out, 1), 1)
        k.type = "dwconv" if k.groups > 1 and k.groups == k.cin == k.cout else "conv"
    spatial = int(o.osh[1]) * int(o.osh[2]) if len(o.osh) == 4 else 1
    k.mmacs = k.cout * spatial * per_out * k.k * k.k / 1e6
    return sum(G.nbytes(t) for t in o.ins[1:] if t >= 0), _out(o)


def _reduce(G: TfliteGraph, o: _Op, k: Kernel, done: set[int]):
    """MEAN / SUM: an SE block's start, else a global pooling over the spatial axes."""
    axes = set(G.const_ints(o.ins[1])) if len(o.ins) > 1 else set()
    nd = len(o.ish)
    axes = {a % nd for a in axes} if nd else axes
    kept = [d for a, d in enumerate(o.ish) if a not in axes and a != 0]
    red = [d for a, d in enumerate(o.ish) if a in axes]
    k.cin = k.cout = int(np.prod(kept)) if kept else 1
    k.hw = int(red[0]) if red else 1
    members = _se_members(G, o.i) if (nd == 4 and axes == {1, 2}) else None
    if members is not None:
        return _se(G, o, k, done, members)
    if not axes or axes == set(range(1, nd)):
        raise GraphError(f"{G.where}: op {o.name}:{o.i} reduces axes {sorted(axes)} of {o.ish}; only spatial "
                         "(global pooling) reductions have a rule")
    k.type = "gap"
    k.mmacs = float(np.prod(o.ish)) / 1e6
    return 0.0, _out(o)


def _se(G: TfliteGraph, o: _Op, k: Kernel, done: set[int], members: list[int]):
    k.type = "se"
    wbytes = 0.0
    for m in members:
        done.add(m)
        k.nodes.append(f"{G.ops[m][0]}:{m}")
        k.outputs.append(G.name(G.ops[m][2][0]))
        if G.ops[m][0] in CONVS | {"FULLY_CONNECTED"}:
            ws = G.shape(G.ops[m][1][1])
            wbytes += sum(G.nbytes(t) for t in G.ops[m][1][1:] if t >= 0)
            k.mmacs += float(np.prod(ws)) / 1e6
    k.mmacs += 2 * float(np.prod(o.ish)) / 1e6  # the pooling and the gating multiply
    return wbytes, G.ops[members[-1]][2][0]


def _fc(G: TfliteGraph, o: _Op, k: Kernel, done: set[int]):
    k.type = "fc"
    w = G.shape(o.ins[1])
    k.act = _act(o.opts)
    if o.name == "FULLY_CONNECTED" and len(w) == 2:
        k.cout, k.cin = int(w[0]), int(w[1])
    rows = float(np.prod(o.ish)) / max(k.cin, 1)
    k.mmacs = rows * k.cin * k.cout / 1e6
    return sum(G.nbytes(t) for t in o.ins[1:] if t >= 0 and t in G.const), _out(o)


def _add(G: TfliteGraph, o: _Op, k: Kernel, done: set[int]):
    k.type, k.act = "add", _act(o.opts)
    k.mmacs = _numel_out(o) / 1e6
    return 0.0, _out(o)


def _binary(G: TfliteGraph, o: _Op, k: Kernel, done: set[int]):
    k.type, k.act = "mul", _act(o.opts)
    k.mmacs = _numel_out(o) / 1e6
    return sum(G.nbytes(t) for t in o.ins if t in G.const), _out(o)


def _activation(G: TfliteGraph, o: _Op, k: Kernel, done: set[int]):
    k.type, k.act = "act", o.name
    k.mmacs = _numel_out(o) / 1e6
    return 0.0, _out(o)


def _simple(G: TfliteGraph, o: _Op, k: Kernel, done: set[int]):
    k.type = SIMPLE[o.name]
    if k.type == "pool":
        k.k = int(getattr(o.opts, "filterHeight", 1) or 1)
        k.stride = int(getattr(o.opts, "strideH", 1) or 1)
        k.mmacs = _numel_out(o) * k.k * k.k / 1e6
    elif k.type == "mul":
        k.mmacs = _numel_out(o) / 1e6
    return 0.0, _out(o)


def _out(o: _Op) -> int:
    return o.outs[0] if o.outs else -1


def _numel_out(o: _Op) -> float:
    return float(np.prod(o.osh or (1,)))


def _is_residual_add(G: TfliteGraph, o: _Op) -> bool:
    return o.name == "ADD" and len(o.data) == 2 and G.shape(o.data[0]) == G.shape(o.data[1])


# (does the rule apply to this op, its handler): the first that applies makes the kernel.
RULES = (
    (lambda G, o: o.name in CONVS, _conv),
    (lambda G, o: o.name in ("MEAN", "SUM"), _reduce),
    (lambda G, o: o.name in ("FULLY_CONNECTED", "BATCH_MATMUL"), _fc),
    (_is_residual_add, _add),
    (lambda G, o: o.name in BINARY, _binary),
    (lambda G, o: o.name in ACTS, _activation),
    (lambda G, o: o.name in SIMPLE, _simple),
)


def _folded_pads(G: TfliteGraph) -> dict[int, int]:
    """conv op -> the PAD op folded into it (a PAD of a feature map whose only consumer is the conv)."""
    folded = {}
    for i, (name, ins, outs, _) in enumerate(G.ops):
        if name in ("PAD", "PADV2") and ins and ins[0] not in G.const:
            c = G.only_consumer(i)
            if c is not None and G.ops[c][0] in CONVS and G.ops[c][1][0] == outs[0]:
                folded[c] = i
    return folded


def fuse_tflite(buf: bytes, where: str = "model") -> list[Kernel]:
    """The kernels the TFLite CPU / XNNPACK path executes for a ``.tflite`` flatbuffer (module doc: the rules)."""
    G = TfliteGraph(buf, where)
    folded_pad = _folded_pads(G)
    done: set[int] = set(folded_pad.values())
    kernels: list[Kernel] = []
    for i, (name, _, _, _) in enumerate(G.ops):
        if i in done:
            continue
        done.add(i)
        if not G.data_inputs(i) and name in ("DEQUANTIZE", "QUANTIZE"):
            continue  # unpacking constant weights: done once when the model loads
        kernels.append(_kernel(G, i, folded_pad.get(i), done))
    return kernels


def _kernel(G: TfliteGraph, i: int, pad: int | None, done: set[int]) -> Kernel:
    """The kernel that starts at op ``i`` (``pad``: the PAD op folded into it): the first rule that applies
    fills it in."""
    name, ins, outs, opts = G.ops[i]
    data = G.data_inputs(i)
    x = ins[0] if ins else -1
    k = Kernel("?", nodes=[f"{name}:{i}"], outputs=[G.name(t) for t in outs])
    in_t = x
    if pad is not None:
        k.nodes.insert(0, f"{G.ops[pad][0]}:{pad}")
        in_t = G.ops[pad][1][0]
    o = _Op(i, name, ins, outs, opts, data, G.shape(in_t), G.shape(outs[0]) if outs else ())
    k.cin, k.hw = _nhwc(o.ish)
    k.cout = _nhwc(o.osh)[0]
    handler = next((h for applies, h in RULES if applies(G, o)), None)
    if handler is None:
        raise GraphError(f"{G.where}: op {name} (op {i}) has no fusion rule for litert; known ops: "
                         f"{', '.join(KNOWN)}")
    wbytes, last_out = handler(G, o, k, done)
    k.mbytes = (sum(G.nbytes(t) for t in ([in_t] + [d for d in data if d != x])) + G.nbytes(last_out)
                + wbytes) / 1e6
    return k


def read_tflite(path: Path) -> list[Kernel]:
    return fuse_tflite(read_tflite_bytes(path), str(path))


__all__ = ["fuse_tflite", "read_tflite", "KNOWN"]
