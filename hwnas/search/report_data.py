"""The data an interactive report page carries: every evaluation (arch, values with their provenance,
feasibility, Pareto rank) and the hypervolume curve, as one JSON document embedded in the page; the page's own
script (``hwnas/data/report.js``, inlined) draws the SVG plots from it. Nothing is fetched at view time."""

from __future__ import annotations

import json
import math
import shlex
from importlib import resources

import numpy as np

from ..errors import HwnasError
from ..pareto import pareto_ranks

# one colour per run (a comparison) and the Pareto-front colour of a single run
COLOURS = ["#d1495b", "#00798c", "#edae49", "#2e4057", "#66a182", "#9b5de5", "#f15bb5", "#8d6a9f"]


def _num(v) -> float | None:
    """A JSON number, or null for NaN / infinity (JSON has neither)."""
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def export_prefix(config: dict) -> str:
    """The ``hwnas export`` command of an arch of this run, up to the arch string (the page appends it, quoted)."""
    words = ["hwnas", "export", "--space", shlex.quote(str(config.get("space") or "nb201"))]
    for key, value in sorted((config.get("space_opt") or {}).items()):
        words += ["--space-opt", shlex.quote(f"{key}={value}")]
    return " ".join(words + ["--format", "onnx", "--out", "model.onnx", "--arch"])


class _Sources:
    """Provenance strings, each stored once (1,000 evaluations share a handful)."""

    def __init__(self):
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, source: str) -> int:
        if source not in self._index:
            self._index[source] = len(self.names)
            self.names.append(source)
        return self._index[source]


def _eval_row(e, cols, feasible: bool, rank: int, front: bool, src: _Sources, measured=()) -> dict:
    """One evaluation: o order, a arch, v values, s provenance indices, x violation, ok feasible, r rank,
    f on the front, t (test error, provenance), c constraints and m measurements from the store
    [(label, value, provenance)]."""
    row = {"o": e.extras.get("order", 0), "a": e.extras.get("arch", e.arch.arch_id),
           "v": [_num(e.values[j]) for j in cols], "s": [src(e.sources[j]) for j in cols],
           "x": _num(e.violation), "ok": int(feasible), "r": int(rank), "f": int(front)}
    if "test_error" in e.extras:
        value, source = e.extras["test_error"]
        row["t"] = [_num(value), src(source)]
    constraints = e.extras.get("constraints") or {}
    if constraints:
        where = e.extras.get("constraint_sources") or {}
        row["c"] = [[k, _num(v), src(where.get(k, ""))] for k, v in sorted(constraints.items())]
    if measured:
        row["m"] = [[label, _num(v), src(how)] for label, v, how in measured]
    return row


def store_measurements(result, store=None) -> dict[str, list[tuple[str, float, str]]]:
    """{arch id: [(objective label, latency_ms, provenance)]}: what the measurement store (``store``, default
    $HWNAS_STORE, else $HWNAS_HOME/measurements.db; read only if it exists) measured for the run's archs on each
    device whose latency the run *predicted*, same space settings: the report sets measured beside predicted."""
    predicted = [o for j, o in enumerate(result.objectives) if o.name == "latency_ms" and o.device
                 and any(e.sources[j].startswith("predicted:") for e in result.evaluations)]
    if not predicted:
        return {}
    from pathlib import Path

    from ..spaces import create_space
    from ..store import MeasurementStore, is_store_url, store_target

    target = store_target(store)
    if not is_store_url(target) and not Path(target).is_file():
        return {}
    cfg = result.config or {}
    space_config = create_space(result.space, **(cfg.get("space_opt") or {})).config()
    ids, out = {e.arch.arch_id for e in result.evaluations}, {}
    try:
        with MeasurementStore(target) as db:
            rows = [(o, m) for o in predicted for m in db.query(device=o.device, space=result.space, source="measured")]
    except (HwnasError, OSError, ImportError):
        if store is not None:  # the store named on the command line: its problem is the user's to see
            raise
        return {}  # the default store is only a bonus: a report is never lost to it
    for o, m in rows:
        if m.arch_id in ids and (m.settings or {}).get("space", space_config) == space_config:
            how = f"measured:{m.runtime} {m.runtime_version}@{m.device}, median of {m.n_runs} runs (store row {m.id})"
            out.setdefault(m.arch_id, []).append((o.label, m.latency_ms, how))
    return out


def ranks_of(result, cols) -> np.ndarray:
    """Pareto rank of every evaluation on the objectives ``cols`` (0 = the front; infeasible rows after every
    feasible one; non-finite values rank as the worst)."""
    if not result.evaluations:
        return np.zeros(0, dtype=int)
    F = result.values()[:, cols]
    F = np.where(np.isfinite(F), F, np.finfo(float).max)
    violation = np.where(result.feasible_mask(), 0.0, np.maximum([e.violation for e in result.evaluations], 1e-12))
    return pareto_ranks(F, violation)


def run_payload(result, name: str, cols, src: _Sources, history, colour: str, front_ids=None,
                measured: dict | None = None) -> dict:
    """One run's evaluations on the objectives ``cols`` (indices into ``result.objectives``). ``front_ids``:
    the arch ids drawn as the front (default: the run's own ``pareto()``); ``measured``: ``store_measurements``."""
    feasible = result.feasible_mask() if result.evaluations else np.zeros(0, dtype=bool)
    ranks = ranks_of(result, list(cols))
    if front_ids is None:
        front_ids = {e.arch.arch_id for e in result.pareto()}
    measured = measured or {}
    evals = [_eval_row(e, cols, bool(feasible[i]), int(ranks[i]), e.arch.arch_id in front_ids, src,
                       measured.get(e.arch.arch_id, ())) for i, e in enumerate(result.evaluations)]
    return {"name": name, "colour": colour, "export": export_prefix(result.config or {}),
            "evals": evals, "history": [[int(n), _num(hv)] for n, hv in history]}


def page_data(kind: str, objectives, runs: list[dict], src: _Sources, **extra) -> str:
    """The JSON document of a page, safe inside ``<script type="application/json">``."""
    doc = {"kind": kind, "objectives": [{"label": o.label, "bound": o.bound} for o in objectives],
           "sources": src.names, "runs": runs, **extra}
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")  # "<" appears only inside strings: no "</script>" can end the block


def script() -> str:
    """The page's script (vanilla JS, no library): plots, tooltip, details panel, sortable and filterable tables."""
    return resources.files("hwnas").joinpath("data/report.js").read_text(encoding="utf-8")


def data_and_script(kind: str, objectives, runs: list[dict], src: _Sources, **extra) -> str:
    return (f"<script type='application/json' id='hwnas-data'>{page_data(kind, objectives, runs, src, **extra)}"
            f"</script>\n<script>{script()}</script>")


def new_sources() -> _Sources:
    return _Sources()
