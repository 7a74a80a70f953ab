"""How far to trust the accuracy axis of a search, measured in the run itself (``trust.json``).

For ``--accuracy train`` the values are short trainings: a second training seed can reorder them. After the
search, ``n_archs`` evaluated archs spanning the evaluated range (evenly spaced ranks of their validation
error, i.e. a stratified sample of what the search saw) are trained again with training seed ``seed + 1`` on
the same splits (the same validation images) and recipe. Written: Kendall tau between the search's values and
the second seed's, the median and largest |difference| in points, the seed standard deviation
``sqrt(mean(d^2) / 2)`` and the 95 % interval ``1.96 sd`` it gives one value, the validation-set size (and the
binomial standard deviation another draw of validation images would add, which re-training cannot show), the
archs and both values, and the cost (wall and CPU seconds: ``n_archs`` trainings). The search itself is not
changed by this check.

Other accuracy sources are not re-measured; ``trust.json`` says what is known: a table is imported (no
interval), a proxy is a score, not an accuracy, a supernet's values are inherited weights of one checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..fileio import atomic_path

TRUST_NAME = "trust.json"
DEFAULT_TRUST_ARCHS = 6


def spanning(evaluations, index: int, k: int) -> list:
    """``k`` evaluations at evenly spaced ranks of objective ``index`` (stratified: the midpoint of each of
    ``k`` equal rank bands), finite values only, in rank order."""
    ok = sorted((e for e in evaluations if math.isfinite(e.values[index])), key=lambda e: e.values[index])
    if k >= len(ok):
        return ok
    picks = sorted({min(len(ok) - 1, int((i + 0.5) * len(ok) / k)) for i in range(k)})
    return [ok[i] for i in picks]


def _known(source) -> dict:
    kind = getattr(source, "kind", "")
    if kind == "table":
        return {"measured": False, "interval": None,
                "summary": "accuracy imported from a table: no interval (hwnas re-trains nothing for a table "
                           "and does not know the table's own seed spread)"}
    if kind == "proxy":
        return {"measured": False, "interval": None,
                "summary": "a zero-cost proxy score, not an accuracy: no accuracy interval; how well it ranks "
                           "like trained accuracy was not measured in this run"}
    if kind == "supernet":
        return {"measured": False, "interval": None,
                "summary": "accuracy inherited from one supernet checkpoint (deterministic per checkpoint): not "
                           "re-measured in this run; for how supernet values rank like standalone training see "
                           "docs/supernet.md"}
    return {"measured": False, "interval": None,
            "summary": f"accuracy source {kind or '?'}: no seed check exists for it; no interval"}


def seeds_label(first, per: int) -> str:
    """``seed 0``, or ``mean of seeds 0-3`` for a value averaged over ``per`` trainings (``first`` not a number,
    as in a record without its seeds: ``seed ?``)."""
    return f"seed {first}" if per == 1 or not isinstance(first, int) else f"mean of seeds {first}-{first + per - 1}"


def _val_sampling(source, space, first: np.ndarray) -> dict:
    """The validation set's size and the binomial sd of an error at the picked archs' median accuracy."""
    n_val = int(source.val_images(space)) if hasattr(source, "val_images") else None
    p = 1.0 - float(np.median(first)) / 100.0
    binomial = 100.0 * math.sqrt(max(p * (1 - p), 0.0) / n_val) if n_val else None
    return {"val_images": n_val, "val_sampling_sd_points": None if binomial is None else round(binomial, 4),
            "val_sampling_note": "binomial sd of the error at the picked archs' median accuracy: another draw of "
                                 "validation images would add this much, which re-training on the same images "
                                 "cannot show"}


def accuracy_trust(evaluator, space, result, n_archs: int = DEFAULT_TRUST_ARCHS) -> dict | None:
    """The trust record of ``result``'s accuracy axis (see the module text); None when the search has no
    ``error`` objective. ``n_archs`` = 0 turns the re-training off (the record says so)."""
    labels = [o.name for o in result.objectives]
    source = getattr(evaluator, "accuracy", None)
    if source is None or "error" not in labels:
        return None
    record = {"accuracy_source": getattr(source, "kind", ""), "objective": "error"}
    if not hasattr(source, "seed_values"):
        return {**record, **_known(source)}
    if n_archs < 2:
        return {**record, "measured": False, "interval": None,
                "summary": "seed check off (trust_archs < 2): how far a second training seed moves these values "
                           "was not measured"}
    index = labels.index("error")
    picked = spanning(result.evaluations, index, int(n_archs))
    if len(picked) < 2:
        return {**record, "measured": False, "interval": None,
                "summary": "fewer than 2 evaluated archs have an accuracy: nothing to compare"}
    per = int(getattr(source, "seeds", 1))  # trainings per value: the check's seeds are the next ``per``
    seed2 = int(source.seed) + per
    wall, cpu = time.perf_counter(), time.process_time()
    second, provenance = source.seed_values(space, [e.arch for e in picked], "error", seed2)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    first = np.array([e.values[index] for e in picked], dtype=float)
    d = second - first
    from ..accuracy.retrain import kendall_tau

    tau = kendall_tau(first, second)
    sd = float(np.sqrt(np.mean(d ** 2) / 2.0))
    k = len(picked)
    tau_text = "n/a (all values tied)" if tau is None else f"{tau:+.2f}"
    again = "a second training seed" if per == 1 else f"a second set of {per} training seeds"
    summary = (f"accuracy axis: {again} on {k} archs spanning the evaluated range gives Kendall tau "
               f"{tau_text} with the search's values, median |difference| {float(np.median(np.abs(d))):.2f} "
               f"points (95 % seed interval of one value +-{1.96 * sd:.2f} points); cost {k * per} trainings, "
               f"{wall:.1f} s")
    return {**record, "measured": True, "summary": summary,
            "how": (f"after the search, {k} evaluated archs at evenly spaced ranks of validation error were trained "
                    f"again ({seeds_label(seed2, per)}; the search used {seeds_label(int(source.seed), per)}) on the "
                    "same splits and recipe; only the initial weights and the batch order differ"),
            "n_archs": k, "seeds": [int(source.seed), seed2], "train_seeds": per,
            "kendall_tau": None if tau is None else round(float(tau), 4),
            "median_abs_diff_points": round(float(np.median(np.abs(d))), 4),
            "max_abs_diff_points": round(float(np.max(np.abs(d))), 4),
            "seed_sd_points": round(sd, 4),
            "interval": {"kind": "95 % seed interval of one value (1.96 x seed sd)", "points": round(1.96 * sd, 4)},
            **_val_sampling(source, space, first),
            "archs": [{"arch": e.extras.get("arch") or space.to_string(e.arch), "arch_id": e.arch.arch_id,
                       "error_search": round(float(a), 4), "error_seed2": round(float(b), 4), "seed2_source": s}
                      for e, a, b, s in zip(picked, first, second, provenance)],
            "cost": {"trainings": k * per, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)},
            "caveat": (f"tau over {k} archs is itself rough (few pairs); the archs span the range, so neighbours "
                       "on the front are closer than most pairs here: compare their difference with the interval")}


def write_trust(out: Path, record: dict | None) -> None:
    path = Path(out) / TRUST_NAME
    if record is None:
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1))


def read_trust(out) -> dict | None:
    path = Path(out) / TRUST_NAME if out else None
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError):
        return None
    return data if isinstance(data, dict) else None
