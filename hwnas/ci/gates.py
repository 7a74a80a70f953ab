"""Deterministic gates of the CI check: exact, machine-independent facts counted from the model file itself.

MACs, parameters, file size in bytes and operator count, read from the ONNX graph (after ONNX shape
inference) or the TFLite flatbuffer by ``hwnas.graphs`` (the graph reader the latency predictors use too). Any
growth fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..graphs import model_facts
from .stats import FAIL, PASS

GATES = ("macs", "params", "size_bytes", "op_count")


def model_gates(path: Path, input_shape: Sequence[int] | None = None) -> dict:
    """Exact, machine-independent facts of a model file: MACs, params, size in bytes, operator count
    (``hwnas.graphs.model_facts``: shapes are resolved, never guessed; ``input_shape`` for a dynamic H, W)."""
    return model_facts(path, input_shape)


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
