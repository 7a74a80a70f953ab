"""Calibration of the CI check: A/A comparisons (the same file in both workers) give each model's noise."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..fileio import now_iso, sha256_file
from ..measure.device_profile import DeviceProfile
from ..measure.protocol import host_fingerprint
from .ab import MeasureSettings, measure
from .inputs import ModelSpec
from .stats import compare_rounds


def calibrate(specs: Sequence[ModelSpec], device: DeviceProfile, ms: MeasureSettings = MeasureSettings(),
              rounds: int = 20, progress: Callable[[int, str, int], None] | None = None) -> list[dict]:
    """A/A check of every candidate (the same file in two workers, ABBA, ``rounds`` rounds).

    A model's noise is the largest distance of its A/A 95% CI from 1 (in percent): a delta below it
    cannot be told apart from the machine's own variation at this many rounds. Returns noise-file entries
    (save them with :func:`hwnas.ci.baseline.save_noise`).
    """
    from ..runtimes import runtime_for

    rng = np.random.default_rng(ms.seed)
    fp = host_fingerprint()
    out = []
    for idx, spec in enumerate(specs):
        cb = (lambda r, _i=idx, _n=spec.name: progress(_i, _n, r)) if progress else None
        pr = measure(Path(spec.candidate), Path(spec.candidate), device, ms, rng, n_rounds=rounds, on_round=cb)
        st = compare_rounds(pr.medians("baseline"), pr.medians("candidate"), 0.0, True,
                            np.random.default_rng(ms.seed), n_boot=ms.n_boot)
        noise = max(abs(st.ci_low - 1.0), abs(st.ci_high - 1.0)) * 100.0
        out.append({"name": spec.name, "model": str(spec.candidate), "sha256": sha256_file(Path(spec.candidate)),
                    "device": device.name, "runtime": runtime_for(Path(spec.candidate)),
                    "runtime_version": pr.runtime_version, "fingerprint": fp, "rounds": len(pr.rounds),
                    "per_block": pr.per_block, "median_ms": st.baseline_ms, "ratio": st.ratio,
                    "ci_low": st.ci_low, "ci_high": st.ci_high, "noise_pct": noise, "created_at": now_iso(),
                    "source": "measured (A/A)", "round_medians_ms": {"a": pr.medians("baseline"),
                                                                      "b": pr.medians("candidate")}})
    return out
