"""The files of a results directory: evaluations.csv, pareto.csv, history.csv, the resolved config.yaml, the
report; and ``load_result`` to read a directory back (``hwnas report``)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import yaml

from ..contracts import Objective, SearchResult
from ..errors import HwnasError
from ..evaluation import build_evaluator, read_log
from ..fileio import atomic_path
from ..spaces import create_space
from .config import SearchConfig, make_config
from .report import write_report

LOG_NAME = "evaluations.jsonl"


def write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def write_csv(path: Path, header, rows) -> None:
    """Write atomically: a reader (or a crash) never sees half a file."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


_HISTORY_NUMBERS = {"step": int, "n_evals": int, "front_size": int, "hypervolume": float}


def _history_value(key: str, value):
    """history.csv's numbers back as numbers; a strategy's own columns (mobo's ``phase``) stay as written."""
    if value in ("", None):
        return value
    if key in _HISTORY_NUMBERS:
        return _HISTORY_NUMBERS[key](float(value))
    try:
        return float(value)
    except ValueError:
        return value


def write_history(path: Path, history: list[dict]) -> None:
    keys = ["step", "n_evals", "hypervolume", "front_size"]
    write_csv(path, keys + sorted({k for row in history for k in row} - set(keys)), history)


def _rows(result, evaluations, front_ids: set) -> tuple[list[str], list[dict]]:
    labels = [o.label for o in result.objectives]
    con_labels = sorted({k for e in evaluations for k in (e.extras.get("constraints") or {})})
    header = ["order", "arch", "arch_id"]
    for lb in labels:
        header += [lb, f"{lb}_source"]
    for lb in con_labels:
        header += [lb, f"{lb}_source"]
    rungs = ((result.config or {}).get("strategy_params") or result.config or {}).get("rungs")  # multi-fidelity (moasha): say each row's fidelity
    header += ["violation"] + (["fidelity"] if rungs else []) + ["on_front"]
    rows = []
    for e in evaluations:
        row = {"order": e.extras.get("order", ""), "arch": e.extras.get("arch", ""), "arch_id": e.arch.arch_id,
               "violation": f"{e.violation:.6g}", "on_front": e.arch.arch_id in front_ids}
        for lb, v, s in zip(labels, e.values, e.sources):
            row[lb], row[f"{lb}_source"] = f"{v:.6g}", s
        for lb in con_labels:
            row[lb] = f"{(e.extras.get('constraints') or {}).get(lb, float('nan')):.6g}"
            row[f"{lb}_source"] = (e.extras.get("constraint_sources") or {}).get(lb, "")
        if rungs:
            row["fidelity"] = f"full ({rungs[-1]} of {rungs[-1]} epochs)"
        rows.append(row)
    return header, rows


def write_results(result, out: Path, space=None, test: dict[str, tuple[float, str]] | None = None) -> None:
    """evaluations.csv, pareto.csv, history.csv, config.yaml (resolved), pareto.png, report.html.
    ``test``: {arch_id: (test error, provenance)} of the front (trained accuracy only): pareto.csv gets
    ``test_error`` and ``test_error_source`` columns and the report shows validation vs test."""
    out = Path(out)
    for i, e in enumerate(result.evaluations):
        e.extras["order"] = i + 1
        if space is not None and "arch" not in e.extras:
            e.extras["arch"] = space.to_string(e.arch)
    front = result.pareto()
    front_ids = {e.arch.arch_id for e in front}
    header, rows = _rows(result, result.evaluations, front_ids)
    write_csv(out / "evaluations.csv", header, rows)
    front_rows = [r for r in rows if r["on_front"]]
    front_rows.sort(key=lambda r: float(r[result.objectives[0].label]))
    front_header = [h for h in header if h not in ("on_front",)]
    if test:
        front_header += ["test_error", "test_error_source"]
        for r in front_rows:
            value, source = test.get(r["arch_id"], (float("nan"), "missing"))
            r["test_error"], r["test_error_source"] = f"{value:.6g}", source
        for e in front:
            if e.arch.arch_id in test:
                e.extras["test_error"] = test[e.arch.arch_id]
    write_csv(out / "pareto.csv", front_header,
              [{k: v for k, v in r.items() if k != "on_front"} for r in front_rows])
    write_history(out / "history.csv", result.history)
    resolved = dict(result.config)
    resolved["objectives_resolved"] = [{"label": o.label, "bound": o.bound} for o in result.objectives]
    resolved["feasible_found"] = result.any_feasible
    (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    write_report(dataclasses.replace(result, config=resolved), out)  # the settings config.yaml holds: `hwnas report` re-renders the same page


def _attach_test_errors(pareto_csv: Path, evaluations) -> None:
    """Put the front's test errors (written once, after the search) back on its evaluations for the report."""
    if not pareto_csv.is_file():
        return
    with pareto_csv.open(newline="") as fh:
        tested = {r["arch_id"]: (float(r["test_error"]), r.get("test_error_source", ""))
                  for r in csv.DictReader(fh) if r.get("test_error") not in (None, "")}
    for e in evaluations:
        if e.arch.arch_id in tested:
            e.extras["test_error"] = tested[e.arch.arch_id]


def load_result(out: Path) -> SearchResult:
    """Rebuild the SearchResult of a results directory (for ``hwnas report``)."""
    out = Path(out)
    if not out.is_dir():
        raise HwnasError(f"{out} is not a directory")
    if not (out / "config.yaml").is_file() or not (out / LOG_NAME).is_file():
        raise HwnasError(f"{out} is not a search results directory (needs config.yaml and {LOG_NAME})")
    try:
        config = yaml.safe_load((out / "config.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise HwnasError(f"{out / 'config.yaml'} is not valid YAML: {exc}") from None
    evaluations = read_log(out / LOG_NAME)
    if not evaluations:
        raise HwnasError(f"{out / LOG_NAME} holds no evaluations")
    if "objectives_resolved" in config:
        objectives = []
        for o in config["objectives_resolved"]:
            name, _, device = o["label"].partition("@")
            objectives.append(Objective(name, bound=o.get("bound"), device=device or None))
    else:  # an interrupted run: rebuild the objectives the way the evaluator names them
        cfg = make_config({k: v for k, v in config.items() if k in SearchConfig.keys()})
        evaluator = build_evaluator(create_space(cfg.space, **cfg.space_opt), cfg.evaluator_spec())
        objectives = list(evaluator.objectives)
    history = []
    if (out / "history.csv").is_file():
        with (out / "history.csv").open() as fh:
            for row in csv.DictReader(fh):
                history.append({k: _history_value(k, v) for k, v in row.items()})
    for i, e in enumerate(evaluations):
        e.extras["order"] = i + 1
    _attach_test_errors(out / "pareto.csv", evaluations)
    return SearchResult(strategy=str(config.get("strategy_ran") or config.get("strategy", "")),
                        space=str(config.get("space", "")),
                        objectives=tuple(objectives), evaluations=evaluations, history=history, config=config)
