"""Non-dominated sorting and hypervolume (all objectives minimised)."""

from __future__ import annotations

import numpy as np


def non_dominated_mask(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of F (n, m) that no other row dominates (duplicates are all kept)."""
    F = np.asarray(F, dtype=float)
    n = len(F)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated = np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1)
        mask &= ~dominated
    return mask


def hypervolume(F: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume dominated by F and bounded by ``ref`` (pymoo's exact indicator)."""
    from pymoo.indicators.hv import HV

    F = np.asarray(F, dtype=float)
    ref = np.asarray(ref, dtype=float)
    F = F[np.all(F <= ref, axis=1)]
    if len(F) == 0:
        return 0.0
    return float(HV(ref_point=ref)(F))
