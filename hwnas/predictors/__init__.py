"""Latency predictors behind one interface (``base.LatencyPredictor``): fit, predict -> (mean_ms, std_ms),
save / load as artifacts with a model card.

Kinds (a plain dict registry, filled here explicitly): ``lut`` (per-(position, op) lookup table), ``kernel``
(nn-Meter-style kernel-level model), ``arch`` (LightGBM / MLP ensemble on the arch encoding), ``transfer``
(few-sample fit on top of other devices' predictors), ``fallback`` (lut / kernel / arch where it saw every
op, transfer or lut elsewhere, labelled) and ``auto`` (cross-validation picks one, composed with a covering
lut or transfer model for the archs it cannot answer).

Artifacts live in ``latency_models/<device>/<name>/``; ``load_predictor(device)`` looks in ``root`` when
given, else in ``./latency_models`` and then ``$HWNAS_HOME/latency_models``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import unknown
from .arch import ArchPredictor
from .auto import AutoPredictor
from .base import ArtifactError, LatencyPredictor, PredictorError, UnknownOpError, read_card
from .fallback import FallbackPredictor
from .kernel import KernelPredictor
from .lut import LUTPredictor
from .transfer import TransferPredictor

PREDICTORS: dict[str, Callable[..., LatencyPredictor]] = {
    "lut": LUTPredictor,
    "kernel": KernelPredictor,
    "arch": ArchPredictor,
    "transfer": TransferPredictor,
    "auto": AutoPredictor,
    "fallback": FallbackPredictor,
}

MODELS_DIR = "latency_models"


def create_predictor(kind: str, **params) -> LatencyPredictor:
    try:
        factory = PREDICTORS[kind]
    except KeyError:
        raise unknown("predictor kind", kind, PREDICTORS) from None
    return factory(**params)


def default_roots() -> list[Path]:
    from ..paths import hwnas_home

    return [Path.cwd() / MODELS_DIR, hwnas_home() / MODELS_DIR]


def list_artifacts(device: str | None = None, space: str | None = None, root: Path | str | None = None,
                   corrupt: list | None = None) -> list[tuple[Path, dict]]:
    """(directory, card) of every artifact under the roots, newest first. Unreadable or malformed cards are
    skipped; ``corrupt``, when given, receives the ``ArtifactError`` of each."""
    from ..paths import check_device_name
    from .base import parse_card

    if device is not None:
        check_device_name(device)
    roots = [Path(root)] if root is not None else default_roots()
    found = []
    for r in roots:
        if not r.is_dir():
            continue
        pattern = f"{device}/*/card.json" if device else "*/*/card.json"
        for card_path in sorted(r.glob(pattern)):
            try:
                card = parse_card(card_path)
            except ArtifactError as exc:
                if corrupt is not None:
                    corrupt.append(exc)
                continue
            if space is not None and card.get("space") != (space if isinstance(space, str) else space.name):
                continue
            found.append((card_path.parent, card))
        if found:
            break  # the first root that has models wins
    found.sort(key=lambda t: str(t[1].get("created_at", "")), reverse=True)
    return found


class NoPredictorError(ArtifactError):
    """No predictor artifact exists for the device (and space): not an error in an artifact that exists."""


def load_predictor(device: str, space=None, root: Path | str | None = None, name: str | None = None) -> LatencyPredictor:
    """The newest predictor artifact for ``device`` (and ``space``: a name or a space object)."""
    corrupt: list = []
    arts = [a for a in list_artifacts(device, space, root, corrupt) if a[1].get("kind") in PREDICTORS]  # not graph-kernel
    if name is not None:
        arts = [a for a in arts if a[0].name == name]
    if not arts and corrupt:  # a broken artifact is not "no artifact": say which and why
        raise corrupt[0]
    if not arts:
        roots = [Path(root)] if root is not None else default_roots()
        where = " or ".join(str(r / device) for r in roots)
        sp = f" for space {space if isinstance(space, str) else space.name!r}" if space is not None else ""
        raise NoPredictorError(f"no latency predictor for device {device!r}{sp} in {where}; "
                            f"train one with: hwnas fit-predictor --device {device}")
    return LatencyPredictor.load(arts[0][0], space=space)


__all__ = ["PREDICTORS", "create_predictor", "load_predictor", "list_artifacts", "LatencyPredictor",
           "LUTPredictor", "KernelPredictor", "ArchPredictor", "TransferPredictor", "AutoPredictor",
           "FallbackPredictor",
           "PredictorError", "UnknownOpError", "ArtifactError", "NoPredictorError", "read_card", "MODELS_DIR"]
