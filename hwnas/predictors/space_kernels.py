"""Fused kernels of a space's arch from the space's own layer description, without exporting it.

A space that describes its network (``space.layers(arch)``: conv / se / gap / flatten / linear records in
execution order, see ``hwnas.spaces.mobilenet``) gets the kernel list ``fusion.read_graph`` would read from the
exported ONNX graph, by the same ONNX Runtime fusion rules and the same shape arithmetic (tests check equality
on random archs): a pool of 10,000 candidates is scored by the graph-kernel predictor in seconds instead of
10,000 exports. A space without a description, a layer record these rules do not know, or a runtime other
than ``onnxruntime`` (TFLite graphs: their own rules) gives ``None``: the caller exports that arch and reads its
graph instead (never a guessed kernel).
"""

from __future__ import annotations

from .fusion import Kernel

_ACT = {"relu": "Relu", "hswish": "HardSwish", "": ""}
RUNTIME = "onnxruntime"


def describes(space, runtime: str = RUNTIME) -> bool:
    """True when ``space`` has a layer description these rules can turn into ``runtime``'s kernels."""
    return runtime == RUNTIME and callable(getattr(space, "layers", None))


def _conv(r: dict) -> list[Kernel]:
    cin, cout, k, stride, groups, hw = (int(r[f]) for f in ("cin", "cout", "k", "stride", "groups", "hw"))
    if r.get("act", "") not in _ACT:
        return None
    ohw = (hw + 2 * (k // 2) - k) // stride + 1
    kern = Kernel("dwconv" if groups > 1 and groups == cin == cout else "conv", hw=hw, cin=cin, cout=cout, k=k,
                  stride=stride, groups=groups, act=_ACT[r.get("act", "")], nodes=[f"{r['name']}/Conv"],
                  outputs=[f"{r['name']}/out"])
    kern.mmacs = cout * ohw * ohw * (cin // max(groups, 1)) * k * k / 1e6
    wbytes = cout * (cin // max(groups, 1)) * k * k * 4
    kern.mbytes = (cin * hw * hw * 4 + cout * ohw * ohw * 4 + wbytes) / 1e6
    out = [kern]
    if r.get("residual"):
        if not kern.act:  # ORT's NCHWc Conv + Sum fusion (fusion.fuse): the Add is part of the conv kernel
            kern.residual = 1
            kern.nodes.append(f"{r['name']}/Add")
        else:
            n = cout * ohw * ohw
            out.append(Kernel("add", hw=ohw, cin=cout, cout=cout, mmacs=n / 1e6, mbytes=(n * 4 + n * 4) / 1e6,
                              nodes=[f"{r['name']}/Add"], outputs=[f"{r['name']}/add_out"]))
    return out


def _se(r: dict) -> list[Kernel]:
    c, mid, hw = int(r["c"]), int(r["mid"]), int(r["hw"])
    kern = Kernel("se", hw=hw, cin=c, cout=c, nodes=[f"{r['name']}/GlobalAveragePool"], outputs=[f"{r['name']}/out"])
    wbytes = 0
    for w in (mid * c, c * mid):  # the reduce and expand 1x1 convs, in graph order
        wbytes += w * 4
        kern.mmacs += w / 1e6
    kern.mmacs += 2 * c * hw * hw / 1e6
    kern.mbytes = (c * hw * hw * 4 + c * hw * hw * 4 + wbytes) / 1e6
    return [kern]


def _gap(r: dict) -> list[Kernel]:
    c, hw = int(r["c"]), int(r["hw"])
    return [Kernel("gap", hw=hw, cin=c, cout=c, mmacs=c * hw * hw / 1e6, mbytes=(c * hw * hw * 4 + c * 4) / 1e6,
                   nodes=[f"{r['name']}/GlobalAveragePool"], outputs=[f"{r['name']}/out"])]


def _flatten(r: dict) -> list[Kernel]:
    c = int(r["c"])
    return [Kernel("reshape", hw=1, cin=c, cout=c, mmacs=0.0, mbytes=(c * 4 + c * 4) / 1e6,
                   nodes=[f"{r['name']}/Flatten"], outputs=[f"{r['name']}/out"])]


def _linear(r: dict) -> list[Kernel]:
    cin, cout = int(r["cin"]), int(r["cout"])
    return [Kernel("fc", hw=1, cin=cin, cout=cout, mmacs=cout * cin / 1e6,
                   mbytes=(cin * 4 + cout * 4 + cout * cin * 4) / 1e6, nodes=[f"{r['name']}/Gemm"],
                   outputs=[f"{r['name']}/out"])]


RULES = {"conv": _conv, "se": _se, "gap": _gap, "flatten": _flatten, "linear": _linear}


def space_kernels(space, arch, runtime: str = RUNTIME) -> list[Kernel] | None:
    """The fused kernels ``runtime`` executes for ``arch``, from ``space.layers(arch)``; ``None`` when the
    space has no layer description, a record has no rule here, or the runtime is not ``onnxruntime``."""
    if not describes(space, runtime):
        return None
    kernels: list[Kernel] = []
    for r in space.layers(arch):
        key = tuple(r.items())
        ks = _MEMO.get(key)
        if ks is None:
            rule = RULES.get(r.get("op"))
            ks = rule(r) if rule is not None else None
            if ks is None:
                return None
            if len(_MEMO) > 100_000:
                _MEMO.clear()
            _MEMO[key] = ks
        kernels.extend(ks)
    return kernels


_MEMO: dict = {}  # layer record -> its kernels; records repeat across a space's archs (shared, never mutated)


__all__ = ["space_kernels", "describes", "RULES"]
