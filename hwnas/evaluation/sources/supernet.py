"""``supernet:PATH``: accuracy of a subnet that inherits a trained weight-sharing supernet's weights
(:mod:`hwnas.accuracy.supernet`): batch norm recalibrated on fixed training images, scored on the
validation split. Provenance ``supernet:<hash>(val, bn-recal N)``.

An hwnas checkpoint is scored on the data set it was trained on (``--data-dir`` says where its files are);
Once-for-All weights (ImageNet) on the search's ``--dataset``/``--data-dir``, provenance
``supernet:ofa-<sha>(<dataset> val, bn-recal N)``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError, ParameterError
from .base import Source


class SupernetSource(Source):
    """Validation accuracy from a supernet checkpoint (the checkpoint is loaded once per batch of archs)."""

    kind = "supernet"

    def __init__(self, path: str, data_dir: str | None = None, download: bool = False, dataset: str | None = None):
        if not path:
            raise ParameterError("accuracy", "supernet needs a checkpoint: supernet:PATH (hwnas supernet train makes one)")
        self.path, self.data_dir, self.download, self.dataset = str(path), data_dir, bool(download), dataset

    @classmethod
    def from_spec(cls, arg, device, settings):
        return cls(arg, data_dir=settings.get("data_dir"), download=settings.get("download", False),
                   dataset=settings.get("dataset"))

    def check(self, space, quantity: str) -> None:
        """A missing file, an unfinished checkpoint, one for another space/settings, or data its subnets cannot
        be scored on (OFA weights and a folder whose classes are not the weights' outputs) fails before the search."""
        from ...accuracy.supernet import load_supernet, supernet_data

        if not Path(self.path).is_file():
            raise HwnasError(f"supernet checkpoint {self.path} does not exist")
        load_supernet(space, self.path)
        supernet_data(space, self.path, dataset=self.dataset, data_root=self.data_dir, download=self.download)

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        from ...accuracy.supernet import supernet_values

        acc, provenance = supernet_values(space, list(archs), self.path, dataset=self.dataset,
                                          data_root=self.data_dir, download=self.download)
        return 100.0 - np.asarray(acc, dtype=float), list(provenance)
