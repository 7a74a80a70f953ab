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


def fuse_tflite(buf: bytes, where: str = "model") -> list[Kernel]:
    """The kernels the TFLite CPU / XNNPACK path executes for a ``.tflite`` flatbuffer (module doc: the rules)."""
    G = TfliteGraph(buf, where)
    done: set[int] = set()
    folded_pad: dict[int, int] = {}  # conv op -> the PAD op folded into it
    kernels: list[Kernel] = []
    for i, (name, ins, outs, opts) in enumerate(G.ops):
        if name in ("PAD", "PADV2") and ins and ins[0] not in G.const:
            c = G.only_consumer(i)
            if c is not None and G.ops[c][0] in CONVS and G.ops[c][1][0] == outs[0]:
                folded_pad[c] = i
                done.add(i)
    for i, (name, ins, outs, opts) in enumerate(G.ops):
        if i in done:
            continue
        done.add(i)
        data = G.data_inputs(i)
        if not data and name in ("DEQUANTIZE", "QUANTIZE"):
            continue  # unpacking constant weights: done once when the model loads
        x = ins[0] if ins else -1
        k = Kernel("?", nodes=[f"{name}:{i}"], outputs=[G.name(t) for t in outs])
        in_t = x
        if i in folded_pad:
            p = folded_pad[i]
            k.nodes.insert(0, f"{G.ops[p][0]}:{p}")
            in_t = G.ops[p][1][0]
        ish, osh = G.shape(in_t), G.shape(outs[0]) if outs else ()
        k.cin, k.hw = _nhwc(ish)
        k.cout = _nhwc(osh)[0]
        wbytes = 0.0
        last_out = outs[0] if outs else -1
        if name in CONVS:
            w = G.shape(ins[1])  # CONV_2D: [Cout, kh, kw, Cin / groups]; DEPTHWISE: [1, kh, kw, Cout]
            k.k = int(w[1]) if len(w) == 4 else 1
            k.stride = int(getattr(opts, "strideH", 1) or 1)
            k.act = _act(opts)
            if name == "DEPTHWISE_CONV_2D":
                k.groups = k.cin
                k.type = "dwconv" if k.cin == k.cout and k.cin > 1 else "conv"
                per_out = 1
            else:
                per_out = int(w[3]) if len(w) == 4 else k.cin
                k.groups = max(k.cin // max(per_out, 1), 1)
                k.type = "dwconv" if k.groups > 1 and k.groups == k.cin == k.cout else "conv"
            spatial = int(osh[1]) * int(osh[2]) if len(osh) == 4 else 1
            k.mmacs = k.cout * spatial * per_out * k.k * k.k / 1e6
            wbytes = sum(G.nbytes(t) for t in ins[1:] if t >= 0)
        elif name in ("MEAN", "SUM"):
            axes = set(G.const_ints(ins[1])) if len(ins) > 1 else set()
            nd = len(ish)
            axes = {a % nd for a in axes} if nd else axes
            kept = [d for a, d in enumerate(ish) if a not in axes and a != 0]
            red = [d for a, d in enumerate(ish) if a in axes]
            k.cin = k.cout = int(np.prod(kept)) if kept else 1
            k.hw = int(red[0]) if red else 1
            members = _se_members(G, i) if (len(ish) == 4 and axes == {1, 2}) else None
            if members is not None:
                k.type = "se"
                for m in members:
                    done.add(m)
                    k.nodes.append(f"{G.ops[m][0]}:{m}")
                    k.outputs.append(G.name(G.ops[m][2][0]))
                    if G.ops[m][0] in CONVS | {"FULLY_CONNECTED"}:
                        ws = G.shape(G.ops[m][1][1])
                        wbytes += sum(G.nbytes(t) for t in G.ops[m][1][1:] if t >= 0)
                        k.mmacs += float(np.prod(ws)) / 1e6
                last_out = G.ops[members[-1]][2][0]
                osh = ish
                k.mmacs += 2 * float(np.prod(ish)) / 1e6  # the pooling and the gating multiply
            elif not axes or axes == set(range(1, nd)):
                raise GraphError(f"{where}: op {name}:{i} reduces axes {sorted(axes)} of {ish}; only spatial "
                                 "(global pooling) reductions have a rule")
            else:
                k.type = "gap"
                k.mmacs = float(np.prod(ish)) / 1e6
        elif name in ("FULLY_CONNECTED", "BATCH_MATMUL"):
            k.type = "fc"
            w = G.shape(ins[1])
            k.act = _act(opts)
            if name == "FULLY_CONNECTED" and len(w) == 2:
                k.cout, k.cin = int(w[0]), int(w[1])
            rows = float(np.prod(ish)) / max(k.cin, 1)
            k.mmacs = rows * k.cin * k.cout / 1e6
            wbytes = sum(G.nbytes(t) for t in ins[1:] if t >= 0 and t in G.const)
        elif name == "ADD" and len(data) == 2 and G.shape(data[0]) == G.shape(data[1]):
            k.type, k.act = "add", _act(opts)
            k.mmacs = float(np.prod(osh or (1,))) / 1e6
        elif name in BINARY:
            k.type, k.act = "mul", _act(opts)
            k.mmacs = float(np.prod(osh or (1,))) / 1e6
            wbytes = sum(G.nbytes(t) for t in ins if t in G.const)
        elif name in ACTS:
            k.type, k.act = "act", name
            k.mmacs = float(np.prod(osh or (1,))) / 1e6
        elif name in SIMPLE:
            k.type = SIMPLE[name]
            if k.type == "pool":
                k.k = int(getattr(opts, "filterHeight", 1) or 1)
                k.stride = int(getattr(opts, "strideH", 1) or 1)
                k.mmacs = float(np.prod(osh or (1,))) * k.k * k.k / 1e6
            elif k.type == "mul":
                k.mmacs = float(np.prod(osh or (1,))) / 1e6
        else:
            raise GraphError(f"{where}: op {name} (op {i}) has no fusion rule for litert; known ops: "
                             f"{', '.join(KNOWN)}")
        k.mbytes = (sum(G.nbytes(t) for t in ([in_t] + [d for d in data if d != x])) + G.nbytes(last_out)
                    + wbytes) / 1e6
        kernels.append(k)
    return kernels


def read_tflite(path: Path) -> list[Kernel]:
    return fuse_tflite(read_tflite_bytes(path), str(path))


__all__ = ["fuse_tflite", "read_tflite", "KNOWN"]
