"""The data a supernet trains and is evaluated on: the data set's training part, split into train / validation.

``_train_val_split`` is a stop-gap: it carves a fixed, seeded, stratified validation split out of the training
part of :func:`hwnas.accuracy.datasets.load_dataset`. Replace it by issue 16's ``load_splits`` once that lands
(the one call in :func:`splits_for` changes). The test part is never touched here: a supernet ranks candidates on
the validation split, so the test split stays clean for the final report of the chosen architectures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VAL_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class Splits:
    name: str
    x_train: np.ndarray  # (n, C, H, W) float32
    y_train: np.ndarray  # (n,) int64
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int


def _train_val_split(data, val_fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED) -> Splits:
    """TODO(issue 16): replace by ``load_splits``. A fixed stratified train/validation split of ``data.x_train``."""
    from sklearn.model_selection import train_test_split

    x_tr, x_val, y_tr, y_val = train_test_split(data.x_train, data.y_train, test_size=val_fraction,
                                                random_state=seed, stratify=data.y_train)
    return Splits(data.name, x_tr, y_tr, x_val, y_val, data.num_classes)


def splits_for(dataset: str, input_shape, root: str | None = None, download: bool = False) -> Splits:
    """Train and validation splits of ``dataset`` fitted to ``input_shape`` (C, H, W)."""
    from ..datasets import load_dataset

    return _train_val_split(load_dataset(dataset, tuple(input_shape), root, download))
