"""``supernet:PATH``: accuracy of a subnet that inherits a trained weight-sharing supernet's weights
(:mod:`hwnas.accuracy.supernet`): batch norm recalibrated on fixed training images, scored on the
validation split. Provenance ``supernet:<hash>(val, bn-recal N)``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import HwnasError
from .base import Source


class SupernetSource(Source):
    """Validation accuracy from a supernet checkpoint (the checkpoint is loaded once per batch of archs)."""

    kind = "supernet"

    def __init__(self, path: str, data_dir: str | None = None, download: bool = False):
        if not path:
            raise HwnasError("supernet needs a checkpoint: --accuracy supernet:PATH (hwnas supernet train makes one)")
        self.path, self.data_dir, self.download = str(path), data_dir, bool(download)

    @classmethod
    def from_spec(cls, arg, device, settings):
        return cls(arg, data_dir=settings.get("data_dir"), download=settings.get("download", False))

    def check(self, space, quantity: str) -> None:
        """A missing file, an unfinished checkpoint or one for another space/settings fails before the search."""
        from ...accuracy.supernet import load_supernet

        if not Path(self.path).is_file():
            raise HwnasError(f"supernet checkpoint {self.path} does not exist")
        load_supernet(space, self.path)

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        from ...accuracy.supernet import supernet_values

        acc, provenance = supernet_values(space, list(archs), self.path, data_root=self.data_dir,
                                          download=self.download)
        return 100.0 - np.asarray(acc, dtype=float), list(provenance)
