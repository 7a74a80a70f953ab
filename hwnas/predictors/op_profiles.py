"""Stored op-level profiles -> per-kernel times: each profiled op row is mapped to the fused kernel of its graph.

Rows come from the measurement store's ``op_profile`` column (written by ``hwnas profile``):

- ONNX Runtime (host runner and the agent, ``ort_op_profile``): the row's ``name`` is the ONNX node name
  (``_nchwc`` suffix of ORT's layout-transformed nodes dropped; ``<tensor>_bn``: a lone BatchNormalization ORT
  runs as a conv) -> the kernel covering that node / tensor.
- ``benchmark_model --enable_op_profiling`` without a delegate: ``[node type]`` is the TFLite builtin
  (``CONV_2D``) and ``[Name]`` its output tensor name, in recent versions followed by ``:<op index>`` -> the
  kernel whose ``nodes`` hold ``CONV_2D:<index>`` or whose outputs hold that tensor.
- ``benchmark_model`` with the XNNPACK delegate: rows are XNNPACK operators (``Delegate/Convolution (NHWC,
  F32) IGEMM:4``) in execution order, numbered within the delegate, not by TFLite op index. They are aligned
  in order: each row goes to the next TFLite op (in graph order) of a compatible class (XNNPACK Convolution
  -> CONV_2D / DEPTHWISE_CONV_2D, Multiply -> MUL, Constant Pad -> PAD, Copy -> RESHAPE, ...); ops XNNPACK
  elided or merged (a PAD folded into a conv) get no row. A container row for the whole delegate node is
  ignored when per-operator rows are present (it would count them twice).

Rows no kernel takes are returned as unmatched time (it ends up in the overhead between kernels).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from ..errors import ParametersError
from .fusion import Kernel, read_graph

# XNNPACK operator name (lower case, first keyword that matches) -> the TFLite builtins it can come from
_XNN_CLASSES = [
    ("dwconv", {"DEPTHWISE_CONV_2D"}), ("depthwise", {"DEPTHWISE_CONV_2D"}),
    ("convolution", {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"}),
    ("fully connected", {"FULLY_CONNECTED", "BATCH_MATMUL"}), ("batch matrix", {"BATCH_MATMUL"}),
    ("global average pooling", {"MEAN", "SUM"}), ("global sum pooling", {"MEAN", "SUM"}),
    ("mean", {"MEAN"}), ("sum", {"SUM"}), ("reduce", {"MEAN", "SUM"}),
    ("max pooling", {"MAX_POOL_2D"}), ("average pooling", {"AVERAGE_POOL_2D"}),
    ("constant pad", {"PAD", "PADV2"}), ("add", {"ADD"}), ("multiply", {"MUL"}), ("subtract", {"SUB"}),
    ("divide", {"DIV"}), ("squared difference", {"SQUARED_DIFFERENCE"}), ("maximum", {"MAXIMUM"}),
    ("minimum", {"MINIMUM"}), ("hardswish", {"HARD_SWISH"}), ("hard swish", {"HARD_SWISH"}),
    ("sigmoid", {"LOGISTIC"}), ("clamp", {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"}), ("tanh", {"TANH"}),
    ("leaky relu", {"LEAKY_RELU"}), ("gelu", {"GELU"}), ("prelu", {"PRELU"}), ("elu", {"ELU"}),
    ("transpose", {"TRANSPOSE"}), ("copy", {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}),
    ("reshape", {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}), ("concatenat", {"CONCATENATION"}),
    ("slice", {"SLICE", "STRIDED_SLICE"}), ("split", {"SPLIT", "SPLIT_V"}), ("convert", {"QUANTIZE", "DEQUANTIZE"}),
]
_INDEX_RE = re.compile(r"^(.*):(\d+)$")
_BUILTIN_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def xnnpack_builtins(op_type: str) -> set[str]:
    """The TFLite builtins an XNNPACK operator row can stand for (empty: unknown)."""
    low = op_type.lower()
    for key, ops in _XNN_CLASSES:
        if key in low:
            return ops
    return set()


def ort_kernel_index(where: dict, name: str) -> int | None:
    """The kernel of an ONNX Runtime profiler node name: the ONNX node / output tensor name, less the suffixes
    ORT's graph transformers add (``_nchwc`` layout nodes; ``<tensor>_bn`` a lone BatchNormalization it turned
    into a conv)."""
    for cand in (name, name.removesuffix("_nchwc"), name.removesuffix("_nchwc").removesuffix("_bn")):
        if cand in where:
            return where[cand]
    return None


def _is_container(row: dict) -> bool:
    t = str(row.get("op_type", "")).lower()
    return t == "delegate" or "xnnpackdelegate" in t.replace(" ", "")


def kernel_times(kernels: list[Kernel], rows: list[dict]) -> tuple[np.ndarray, float]:
    """(per-kernel ms, unmatched ms) of one model's profiled op rows (module doc: how rows are matched)."""
    where: dict[str, int] = {}
    ops: list[tuple[int, str, int]] = []  # (TFLite op index, builtin, kernel) in graph order
    for i, k in enumerate(kernels):
        for n in k.nodes + k.outputs:
            where.setdefault(n, i)
        for n in k.nodes:
            m = _INDEX_RE.match(n)
            if m and _BUILTIN_RE.match(m.group(1)):
                ops.append((int(m.group(2)), m.group(1), i))
    ops.sort()
    out = np.zeros(len(kernels))
    unmatched = 0.0
    delegated = any(str(r.get("name", "")).startswith("Delegate/") for r in rows)
    pos = 0
    for r in rows:
        name, op_type, ms = str(r.get("name", "")), str(r.get("op_type", "")), float(r.get("ms") or 0.0)
        if delegated and _is_container(r):
            continue
        i = ort_kernel_index(where, name)
        m = _INDEX_RE.match(name)
        if i is None and m and _BUILTIN_RE.match(op_type):  # benchmark_model, no delegate: tensor:index
            i = where.get(f"{op_type}:{m.group(2)}", where.get(m.group(1)))
        if i is None and name.startswith("Delegate/"):  # XNNPACK operators: align in execution order
            allowed = xnnpack_builtins(op_type)
            for j in range(pos, len(ops)):
                if ops[j][1] in allowed:
                    i, pos = ops[j][2], j + 1
                    break
        if i is None:
            unmatched += ms
        else:
            out[i] += ms
    return out, unmatched


def _space_of(space_name: str, settings: dict, cache: dict):
    from ..spaces import create_space

    key = (space_name, repr(sorted((settings.get("space") or {}).items())))
    if key not in cache:
        cache[key] = create_space(space_name, **(settings.get("space") or {}))
    return cache[key]


def samples_from_store(store, device: str, runtime: str | None = None, cache_dir=None, progress=None,
                       min_matched: float = 0.5) -> tuple[list[dict], str, list[str]]:
    """Training samples for ``GraphKernelPredictor.fit`` from the op-profiled rows of ``device`` in ``store``.

    Each row's arch is exported again with the row's settings (format, precision, opset, batch; the export
    cache makes this a lookup when the profile run exported it here), fused, and its op rows mapped to the
    kernels; ``latency_ms`` / ``cpu_ms`` are the row's whole-model latency (the device's median). Rows whose
    mapped time is below ``min_matched`` of their profiled time are left out (a note says so).
    Returns (samples, runtime, notes)."""
    from ..export import ExportSettings, export_arch
    from ..spaces import arch_from_text

    rows = [m for m in store.query(device=device, runtime=runtime) if m.op_profile]
    if not rows:
        have = store.query(device=device)
        raise ParametersError(f"no op-level profiles of device {device!r}"
                         + (f" (runtime {runtime})" if runtime else "") + " in the store "
                         + (f"({len(have)} rows without one); " if have else "; ")
                         + "profile models with `hwnas profile` (op profiles are on by default; adb needs "
                         "benchmark_model), or fit from ONNX files with `onnx`")
    counts = Counter(m.runtime for m in rows)
    runtime = runtime or counts.most_common(1)[0][0]
    notes = [f"{n} op-profiled rows of runtime {rt} left out (fitting {runtime})" for rt, n in counts.items()
             if rt != runtime]
    rows = [m for m in rows if m.runtime == runtime]
    spaces: dict = {}
    samples = []
    for n, m in enumerate(rows, 1):
        if progress:
            progress(f"mapping op profile {n}/{len(rows)} ({m.space} {m.arch_id})")
        s = m.settings
        sp = _space_of(m.space, s, spaces)
        es = ExportSettings(format=s.get("format", "onnx"), precision=s.get("precision", "fp32"),
                            **{k: s[k] for k in ("opset", "batch") if k in s})
        path = export_arch(sp, arch_from_text(sp, m.arch), es, cache_dir=cache_dir)
        kernels = read_graph(path)
        kms, unmatched = kernel_times(kernels, m.op_profile)
        total = float(kms.sum() + unmatched)
        if total <= 0 or kms.sum() < min_matched * total:
            notes.append(f"{m.space} {m.arch_id}: only {kms.sum():.3g} of {total:.3g} profiled ms map to its "
                         f"{len(kernels)} kernels; left out")
            continue
        samples.append({"kernels": kernels, "kernel_ms": kms, "unmatched_ms": unmatched,
                        "latency_ms": float(m.latency_ms), "cpu_ms": float(m.latency_ms),
                        "source": f"store row {m.id} ({m.runtime} {m.runtime_version})"})
    return samples, runtime, notes


__all__ = ["kernel_times", "samples_from_store", "xnnpack_builtins", "ort_kernel_index"]
