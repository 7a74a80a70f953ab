"""sklearn-style parameters: ``get_params`` read from the constructor's signature (predictors, strategies)."""

from __future__ import annotations

import inspect


class Params:
    """A mixin for classes whose ``__init__`` only stores its arguments under their own names:
    ``get_params()`` returns them in signature order (what result files and model cards record)."""

    def get_params(self) -> dict:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}
