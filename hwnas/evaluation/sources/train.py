"""``train[:DATASET]``: real PyTorch training of each candidate (see :mod:`hwnas.accuracy.training`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError
from .base import Source


class TrainSource(Source):
    """Real PyTorch training of each candidate for ``epochs`` epochs; ``error`` = 100 - test accuracy %."""

    kind = "train"
    per_arch = True

    def __init__(self, dataset: str = "digits", epochs: int = 3, batch_size: int = 64, lr: float = 0.05,
                 seed: int = 0, data_dir: str | None = None, download: bool = False, max_train: int | None = None,
                 threads: int = 1):
        if int(epochs) < 1:
            raise HwnasError(f"--epochs must be >= 1, got {epochs}")
        self.dataset, self.epochs, self.batch_size, self.lr, self.seed = dataset, int(epochs), int(batch_size), float(lr), int(seed)
        self.data_dir, self.download, self.max_train, self.threads = data_dir, bool(download), max_train, int(threads)

    @classmethod
    def from_spec(cls, arg, device, settings):
        return cls(arg or settings.get("dataset", "digits"), epochs=settings.get("epochs", 3),
                   batch_size=settings.get("batch_size", 64), seed=settings.get("seed", 0),
                   data_dir=settings.get("data_dir"), download=settings.get("download", False),
                   max_train=settings.get("max_train"))

    def describe(self) -> str:
        return f"trained:{self.dataset}({self.epochs} epochs, seed {self.seed})"

    def accuracy(self, space, arch: Arch) -> float:
        from ...accuracy.datasets import load_dataset
        from ...accuracy.training import train_and_test

        data = load_dataset(self.dataset, space.input_shape(), root=self.data_dir, download=self.download)
        return train_and_test(space, arch, data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                              seed=self.seed, max_train=self.max_train, threads=self.threads)

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        return (np.array([100.0 - self.accuracy(space, a) for a in archs], dtype=float),
                [self.describe()] * len(archs))
