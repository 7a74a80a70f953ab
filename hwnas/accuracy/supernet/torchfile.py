"""Reading PyTorch files without running code: ``torch.load(weights_only=True)`` (tensors and plain values only),
its refusals turned into one-line errors, and checks shared by every weights file hwnas loads.

This is the only ``torch.load`` in hwnas: supernet checkpoints (``train.read_checkpoint``,
``evaluate.load_supernet``) and Once-for-All weights (``mobilenet.read_ofa_state_dict``) are all read through
:func:`load_weights_file`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

from ...errors import HwnasError


def load_weights_file(path: Path, what: str):
    """The object in the PyTorch file ``path`` (``what`` names it in errors), read with ``weights_only=True``:
    a file that holds pickled Python objects (classes, functions: code) is refused, never unpickled."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        found = f" ({m.group(1)})" if m else ""
        raise HwnasError(f"cannot read {what} {path}: it holds pickled Python objects{found}, which hwnas never "
                         "loads (only tensors and plain values)") from None
    except Exception as exc:  # noqa: BLE001 - truncated, not a torch file, zip errors ...
        raise HwnasError(f"cannot read {what} {path}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"\s*(Check|See) the documentation[^.]*https?://\S+", "", text)
    text = re.sub(r"\s*https?://\S+", "", text).strip()
    return text[:300] + ("..." if len(text) > 300 else "")


def non_finite_tensor(state: dict) -> str | None:
    """The name of the first floating-point tensor of ``state`` holding NaN or infinity, else None."""
    import torch

    for key, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return str(key)
    return None


def load_matching_state(net, state: dict, path, what: str) -> None:
    """``net.load_state_dict(state)`` after checking names and shapes, so a mismatch is one clear line (not
    torch's multi-line "size mismatch" / "Missing key(s)")."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        raise HwnasError(f"{what} {path} does not fit this supernet: tensors {', '.join(parts)}")
    for k, mine in own.items():
        theirs = state[k]
        if tuple(theirs.shape) != tuple(mine.shape):
            raise HwnasError(f"{what} {path} does not fit this supernet: tensor {k} has shape "
                             f"{tuple(theirs.shape)}, expected {tuple(mine.shape)}")
    net.load_state_dict(state, strict=True)


__all__ = ["load_weights_file", "non_finite_tensor", "load_matching_state"]
