"""What every value source shares (the contract is ``hwnas.contracts.ValueSource``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...contracts import Arch


class Source:
    """Defaults of a value source.

    ``per_arch``: the source is called one arch at a time through the executor (training, proxies, counting:
    parallel work); otherwise once per batch in the evaluator's process (tables, predictors, and the device in
    the loop, which serialises anyway). ``cheap``: its values cost no search budget (tables, predictors,
    counting), so a strategy may look them up for candidates it never evaluates.
    """

    kind = ""
    per_arch = False
    cheap = False

    @classmethod
    def from_spec(cls, arg: str, device: str | None, settings: dict) -> "Source":
        """The source for ``KIND[:ARG]`` (``settings``: dataset, epochs, seed, ... of the search)."""
        raise NotImplementedError

    def objective_name(self, quantity: str) -> str:
        """The name the search shows for ``quantity`` (a proxy score is not an error rate: ``neg_naswot``)."""
        return quantity

    def check(self, space, quantity: str) -> None:
        """Fail now on bad input (a missing file, an unknown device), not in the middle of a search."""

    def values(self, space, archs: Sequence[Arch], quantity: str) -> tuple[np.ndarray, list[str]]:
        raise NotImplementedError
