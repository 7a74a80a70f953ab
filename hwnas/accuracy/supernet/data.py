"""The data a supernet trains and is evaluated on: the train and validation splits of
:func:`hwnas.accuracy.datasets.load_splits` (the same fixed, seeded, stratified splits a search's ``train``
source uses). The test split is never touched here: a supernet ranks candidates on validation data, so the test
split stays clean for the final report of the chosen architectures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datasets import VAL_FRACTION  # noqa: F401  (recorded in every supernet recipe)


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
