"""The data a supernet trains and is evaluated on: the train and validation splits of
:func:`hwnas.accuracy.datasets.load_splits` (the same fixed, seeded, stratified splits a search's ``train``
source uses). The test split is never touched here: a supernet ranks candidates on validation data, so the test
split stays clean for the final report of the chosen architectures.

Weights trained elsewhere (Once-for-All's, on ImageNet) are scored on the search's data set
(:func:`pretrained_splits`), which must say which of the weights' outputs each of its classes is. The rule:

* class folders named by ImageNet WordNet id (``n01440764``, ... as in ImageNet's own folders and subsets such as
  Imagenette), with 1,000-output weights: the class's ImageNet index (``hwnas/data/imagenet_wnids.txt``);
* class folders named by output index (``0`` .. ``num_classes - 1``): that output;
* otherwise only a data set with exactly as many classes as the weights have outputs, in label order (the
  ImageFolder convention the weights' own training used); any other data set is a one-line error, since which
  output is which class is unknown (a score against guessed labels would be a fabricated number).

Inputs are normalised with ImageNet's per-channel mean and std (what OFA's training pipeline used), not the
folder's own statistics.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import HwnasError, ParametersError
from ..datasets import VAL_FRACTION  # noqa: F401  (recorded in every supernet recipe)

WNID = re.compile(r"n\d{8}", re.ASCII)
INDEX = re.compile(r"\d+", re.ASCII)
IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Splits:
    name: str
    x_train: np.ndarray  # (n, C, H, W) float32
    y_train: np.ndarray  # (n,) int64
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int


def splits_for(dataset: str, input_shape, root: str | None = None, download: bool = False) -> Splits:
    """Train and validation splits of ``dataset`` fitted to ``input_shape`` (C, H, W)."""
    from ..datasets import load_splits

    s = load_splits(dataset, tuple(input_shape), data_dir=root, download=download)
    return Splits(s.name, s.train.x, s.train.y, s.val.x, s.val.y, s.num_classes)


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple[str, ...]:
    """ImageNet-1k's 1,000 WordNet ids in class-index order (id k is output k of an ImageNet classifier)."""
    path = Path(__file__).resolve().parents[2] / "data" / "imagenet_wnids.txt"
    wnids = tuple(line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    if len(wnids) != IMAGENET_CLASSES or list(wnids) != sorted(set(wnids)):
        raise RuntimeError(f"{path} is damaged: expected the 1,000 sorted ImageNet WordNet ids")
    return wnids


def output_indices(classes: Sequence[str], n_classes: int, n_outputs: int, where: str) -> np.ndarray:
    """For each class of a data set (in label order; ``classes`` its names, () if unnamed), the output of
    ``n_outputs``-output weights that is that class. Raises :class:`HwnasError` when that is not known."""
    classes = [str(c) for c in classes]
    if n_classes > n_outputs:
        raise HwnasError(f"{where} has {n_classes} classes but the weights have {n_outputs} outputs "
                         f"(num_classes={n_outputs}): every class must be one of the weights' outputs")
    if classes and n_outputs == IMAGENET_CLASSES and all(WNID.fullmatch(c) for c in classes):
        index = {w: i for i, w in enumerate(imagenet_wnids())}
        unknown = [c for c in classes if c not in index]
        if unknown:
            raise HwnasError(f"{where}: class folder(s) {', '.join(unknown[:3])} are not ImageNet-1k classes "
                             "(the WordNet ids of its 1,000 classes)")
        return np.array([index[c] for c in classes], dtype=np.int64)
    if classes and all(INDEX.fullmatch(c) for c in classes):
        out = [int(c) for c in classes]
        if max(out) >= n_outputs:
            raise HwnasError(f"{where}: class folder {classes[out.index(max(out))]} names output {max(out)}, "
                             f"but the weights have outputs 0..{n_outputs - 1}")
        if len(set(out)) != len(out):
            raise HwnasError(f"{where}: two class folders name the same output ({', '.join(classes)})")
        return np.array(out, dtype=np.int64)
    if n_classes == n_outputs:
        return np.arange(n_classes, dtype=np.int64)
    shown = f" ({', '.join(classes[:3])}{', ...' if len(classes) > 3 else ''})" if classes else ""
    how = "name each class folder by its output index (0.." + str(n_outputs - 1) + ")"
    if n_outputs == IMAGENET_CLASSES:
        how += " or, for ImageNet weights, its ImageNet WordNet id (n01440764 is output 0)"
    if not classes:
        how = "give your images with `dataset` imagefolder `data_dir` DIR and " + how
    raise ParametersError(f"{where} has {n_classes} classes{shown} but the weights have {n_outputs} outputs, and which "
                          f"output is which class is unknown: {how}")


def pretrained_splits(dataset: str, input_shape, n_outputs: int, root: str | None = None,
                      download: bool = False) -> Splits:
    """Train and validation splits of ``dataset`` for weights trained elsewhere (Once-for-All's, on ImageNet):
    the same images as :func:`splits_for`, labels mapped to the weights' outputs (:func:`output_indices`),
    normalised with ImageNet's statistics."""
    from ..datasets import IMAGENET_NORMALISE, load_splits

    s = load_splits(dataset, tuple(input_shape), data_dir=root, download=download, normalise=IMAGENET_NORMALISE)
    where = f"{Path(root) / 'train'}" if dataset == "imagefolder" and root else f"dataset {dataset}"
    out = output_indices(s.classes, s.num_classes, int(n_outputs), where)
    return Splits(s.name, s.train.x, out[s.train.y], s.val.x, out[s.val.y], int(n_outputs))
