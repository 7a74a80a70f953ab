"""``proxy[:NAME]``: a zero-cost proxy score on one batch of real data."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...contracts import Arch
from ...errors import unknown
from .base import Source

PROXIES = ("naswot", "synflow", "jacob_cov")


class ProxySource(Source):
    """A zero-cost proxy score on one batch of real data (higher is better); the objective it stands in for
    is named ``neg_<proxy>`` and holds minus the score, because a proxy score is not an accuracy."""

    kind = "proxy"
    per_arch = True

    def __init__(self, proxy: str = "naswot", dataset: str = "digits", batch_size: int = 64, seed: int = 0,
                 data_dir: str | None = None, download: bool = False):
        if proxy not in PROXIES:
            raise unknown("proxy", proxy, PROXIES)
        self.proxy, self.dataset, self.batch_size, self.seed = proxy, dataset, int(batch_size), int(seed)
        self.data_dir, self.download = data_dir, bool(download)

    @classmethod
    def from_spec(cls, arg, device, settings):
        return cls(arg or settings.get("proxy", "naswot"), dataset=settings.get("dataset", "digits"),
                   batch_size=settings.get("batch_size", 64), seed=settings.get("seed", 0),
                   data_dir=settings.get("data_dir"), download=settings.get("download", False))

    def describe(self) -> str:
        return f"proxy:{self.proxy}({self.dataset},{self.batch_size})"

    def objective_name(self, quantity: str) -> str:
        return f"neg_{self.proxy}"

    def score(self, space, arch: Arch) -> float:
        from ...accuracy.datasets import load_dataset
        from ...accuracy.proxies import proxy_score

        data = load_dataset(self.dataset, space.input_shape(), root=self.data_dir, download=self.download)
        x, y = data.batch(self.batch_size, self.seed)
        return proxy_score(self.proxy, space, arch, x, y, seed=self.seed)

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        return np.array([-self.score(space, a) for a in archs], dtype=float), [self.describe()] * len(archs)
