"""Several search runs on one page (``hwnas report RUN_A RUN_B ... --out compare.html``): their fronts overlaid,
their hypervolume curves on one normalisation (the ideal and nadir of the union of their feasible points, reference
1.1, ``hwnas.pareto.hypervolume``), the hypervolume at common budgets, and a visible warning when the runs do not
solve the same problem (space and its settings, objectives, constraints, accuracy / latency / energy sources)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ..errors import HwnasError, ParameterError
from ..pareto import hypervolume, non_dominated_mask
from .report import CSS, _table
from .report_data import COLOURS, data_and_script, new_sources, run_payload, store_measurements

# the settings that define a run's problem (config.yaml keys): runs differing in one of them are not comparable
PROBLEM = ("space", "space_opt", "objective", "constraint", "accuracy", "latency", "energy", "dataset", "data_dir")
BUDGET_SHARES = (0.25, 0.5, 1.0)


def run_names(dirs) -> list[str]:
    """A short, distinct name per run: its directory name (the parent joined on when two share a name)."""
    names = [Path(d).name or str(d) for d in dirs]
    for i, d in enumerate(dirs):
        if names.count(names[i]) > 1:
            names[i] = "/".join(Path(d).resolve().parts[-2:])
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]


def problem_differences(configs: list[dict]) -> list[tuple[str, list]]:
    """[(setting, [value per run])] for every problem setting whose value differs between the runs."""
    out = []
    for key in PROBLEM:
        values = [c.get(key) for c in configs]
        if any(v != values[0] for v in values[1:]):
            out.append((key, values))
    return out


def common_objectives(results) -> list[str]:
    """The objective labels every run has, in the first run's order."""
    labels = [o.label for o in results[0].objectives]
    common = [lb for lb in labels if all(lb in [o.label for o in r.objectives] for r in results[1:])]
    if not common:
        raise HwnasError("the runs share no objective: nothing to compare (" + "; ".join(
            ", ".join(o.label for o in r.objectives) for r in results) + ")")
    return common


def feasible_values(result, labels) -> np.ndarray:
    """(n, len(labels)) values of every evaluation (evaluation order); infeasible or non-finite rows are NaN."""
    cols = [[o.label for o in result.objectives].index(lb) for lb in labels]
    F = result.values()[:, cols]
    bad = ~result.feasible_mask() | ~np.all(np.isfinite(F), axis=1)
    F[bad] = np.nan
    return F


def union_bounds(values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ideal and nadir of the feasible points of every run together (the one normalisation of the page)."""
    F = np.vstack(values)
    F = F[np.all(np.isfinite(F), axis=1)]
    if not len(F):
        return np.zeros(values[0].shape[1]), np.ones(values[0].shape[1])
    return F.min(axis=0), F.max(axis=0)


def hv_at(F: np.ndarray, n: int, bounds) -> float:
    """Normalised hypervolume of the feasible points among the first ``n`` evaluations."""
    ideal, nadir = bounds
    P = F[:n]
    P = P[np.all(np.isfinite(P), axis=1)]
    if not len(P):
        return 0.0
    P = P[non_dominated_mask(P)]
    scale = np.where(nadir - ideal > 0, nadir - ideal, 1.0)
    return hypervolume((P - ideal) / scale, np.full(P.shape[1], 1.1))


def hv_curve(result, F: np.ndarray, bounds) -> list[tuple[int, float]]:
    """Hypervolume (union normalisation) after each generation of the run's history and every 2 % of its
    evaluations."""
    points = {int(r["n_evals"]) for r in result.history if r.get("n_evals") not in ("", None)}
    points |= {max(1, round(len(F) * k / 50)) for k in range(1, 51)}
    return [(n, hv_at(F, n, bounds)) for n in sorted(points) if n <= len(F)]


def budgets(results) -> list[int]:
    smallest = min(len(r.evaluations) for r in results)
    return sorted({max(1, int(round(smallest * share))) for share in BUDGET_SHARES})


def _warning(names, diffs) -> str:
    if not diffs:
        return "<p id='same-problem'>The runs solve the same problem (space and its settings, objectives, " \
               "constraints, accuracy and cost sources are equal in their config.yaml).</p>"
    rows = [[key] + [str(v) for v in values] for key, values in diffs]
    return ("<div id='mismatch'><p class='warn'>Warning: these runs do not solve the same problem ("
            + html.escape(", ".join(k for k, _ in diffs)) + " differ): their fronts and hypervolumes are not "
            "directly comparable.</p>" + _table(["setting"] + names, rows) + "</div>")


def render_compare(dirs, results, store=None) -> str:
    names = run_names(dirs)
    labels = common_objectives(results)
    objectives = [next(o for o in results[0].objectives if o.label == lb) for lb in labels]
    values = [feasible_values(r, labels) for r in results]
    bounds = union_bounds(values)
    src = new_sources()
    runs, curves = [], []
    for i, (name, r, F) in enumerate(zip(names, results, values)):
        cols = [[o.label for o in r.objectives].index(lb) for lb in labels]
        finite = np.all(np.isfinite(F), axis=1)
        front_ids = {r.evaluations[k].arch.arch_id for k in np.flatnonzero(finite)[non_dominated_mask(F[finite])]}
        curves.append(hv_curve(r, F, bounds))
        runs.append(run_payload(r, name, cols, src, curves[-1], COLOURS[i % len(COLOURS)], front_ids=front_ids,
                                measured=store_measurements(r, store)))
    steps = budgets(results)
    hv_rows = [[name] + [f"{hv_at(F, n, bounds):.4f}" for n in steps] + [len(r.evaluations), f"{hv_at(F, len(F), bounds):.4f}"]
               for name, r, F in zip(names, results, values)]
    summary = [[name, str(d), r.strategy, r.space, len(r.evaluations), len(r.pareto()), (r.config or {}).get("seed", "")]
               for name, d, r in zip(names, dirs, results)]
    ideal, nadir = bounds
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>hwnas: {html.escape(' vs '.join(names))}</title><style>{CSS}</style></head><body>",
        f"<h1>Comparison of {len(results)} search runs</h1>",
        _warning(names, problem_differences([r.config or {} for r in results])),
        _table(["run", "directory", "strategy", "space", "evaluations", "on its front", "seed"], summary, "t-runs"),
        "<h2>Fronts</h2>",
        f"<p>Objectives compared: {html.escape(', '.join(labels))}. One colour per run; each run's front (its "
        "feasible non-dominated points on these objectives) is highlighted and joined. Hover a point for its values "
        "and how each was obtained; click it for its details.</p>",
        "<noscript><p class='warn'>The plots need JavaScript (inline, nothing is fetched).</p></noscript>",
        "<div class='fronts'><div id='plots' class='plots'></div>",
        "<div id='details' class='details'><p>Click a point to see its details here.</p></div></div>",
        "<div id='tip' class='tip' hidden></div>",
        "<h2>Hypervolume</h2>",
        "<p>One normalisation for every run: the ideal and nadir of the feasible points of all runs together "
        f"(ideal {html.escape(str([round(float(v), 6) for v in ideal]))}, nadir "
        f"{html.escape(str([round(float(v), 6) for v in nadir]))}), reference point 1.1 per objective; so these "
        "figures differ from each run's own report, which normalises by its first generation.</p>",
        "<p><label><input type='checkbox' id='hv-log'> logarithmic evaluations axis</label></p>",
        "<div id='hv' class='plots'></div>",
        "<h3>Hypervolume at common budgets</h3>",
        f"<p>Budgets: 25, 50 and 100 % of the smallest run's {min(len(r.evaluations) for r in results)} evaluations "
        "(the first N evaluations of each run, in evaluation order).</p>",
        _table(["run"] + [f"HV after {n} evaluations" for n in steps] + ["evaluations", "HV at the end"], hv_rows,
               "t-hv"),
        data_and_script("compare", objectives, runs, src),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_compare(dirs, out: Path, store=None) -> Path:
    """Load every run (each must be a results directory with evaluations) and write the comparison page."""
    from .results import load_result

    results = [load_result(Path(d)) for d in dirs]
    out = Path(out)
    if out.is_dir():
        raise ParameterError("out", f"{out} is a directory: name the page to write, e.g. {out / 'compare.html'}")
    out.write_text(render_compare([Path(d) for d in dirs], results, store), encoding="utf-8")
    return out
