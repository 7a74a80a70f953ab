"""``check_predictor``: the conformance test every latency predictor passes (scikit-learn's check_estimator).

    from hwnas.predictors.testing import check_predictor
    check_predictor(lambda: create_predictor("kernel", space=space), train, y_train, test, y_test)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..contracts import Arch
from .base import LatencyPredictor, PredictorError
from .metrics import within


def check_predictor(make: Callable[[], LatencyPredictor], train: Sequence[Arch], y_train, test: Sequence[Arch],
                    y_test, min_within_10pct: float = 0.8) -> LatencyPredictor:
    """Assert the interface contract; returns the fitted predictor. Raises AssertionError on a violation."""
    p = make()
    # constructor only stores parameters
    params = p.get_params()
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(p)), "constructor set fitted state"
    q = type(p)(**params)
    assert q.get_params().keys() == params.keys()
    # predict before fit fails clearly
    try:
        p.predict(test[:1])
    except PredictorError:
        pass
    else:
        raise AssertionError("predict before fit must raise PredictorError")
    # fit returns self; predict shapes and values
    assert p.fit(train, y_train) is p, "fit must return self"
    mean, std = p.predict(test)
    assert isinstance(mean, np.ndarray) and isinstance(std, np.ndarray)
    assert mean.shape == std.shape == (len(test),), (mean.shape, std.shape)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std)), "predictions must be finite"
    assert np.all(std >= 0), "std must be non-negative"
    m0, s0 = p.predict([])
    assert m0.shape == (0,) and s0.shape == (0,)
    w = within(y_test, mean, 0.10)
    assert w >= min_within_10pct, f"{p.kind}: only {w:.2f} of test archs within +-10% (need {min_within_10pct})"
    # deterministic given the seed
    mean2, _ = make().fit(train, y_train).predict(test)
    assert np.allclose(mean, mean2), "two fits with the same seed must predict the same"
    # card
    card = p.card
    for key in ("kind", "name", "space", "space_config", "feature_schema", "training", "created_at"):
        assert key in card, f"card lacks {key!r}"
    assert card["training"]["count"] == len(train)
    # save / load round trip
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "model"
        p.save(d)
        assert (d / "card.json").is_file()
        assert not list(d.rglob("*.pkl")) and not list(d.rglob("*.pickle")), "artifacts must not pickle"
        loaded = LatencyPredictor.load(d)
        lm, ls = loaded.predict(test)
        assert np.allclose(lm, mean, rtol=1e-6, atol=1e-9), "loaded predictor predicts differently"
        assert np.allclose(ls, std, rtol=1e-6, atol=1e-9)
        assert loaded.card["kind"] == card["kind"] and loaded.card["training"] == card["training"]
    # an arch of another space is refused
    other = Arch("other-space", tuple(test[0].genes))
    try:
        p.predict([other])
    except PredictorError.__mro__[1]:  # HwnasError
        pass
    else:
        raise AssertionError("an arch of another space must be refused")
    return p


__all__ = ["check_predictor"]
