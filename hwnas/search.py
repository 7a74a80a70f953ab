"""Running a search end to end: resolve a configuration (recipe + flags), run a strategy with checkpoints,
write the results directory. The CLI (``hwnas pareto-search``) is a thin layer over ``run_search``.

Results directory::

    config.yaml          the fully resolved configuration (written first; ``--resume`` reads it)
    evaluations.jsonl    every unique evaluation, appended the moment it is computed (the checkpoint)
    checkpoint.json      status (running | interrupted | finished), step, n_evals: rewritten every generation
    evaluations.csv      every unique arch in evaluation order, objectives + how each value was obtained
    history.csv          one row per generation: step, n_evals, hypervolume, front_size
    pareto.csv           the feasible non-dominated archs, objectives + provenance
    pareto.png           the front per objective pair (all evaluated points faint)
    report.html          a self-contained report (images embedded)

Resuming replays the strategy from the seed: evaluations in the log are served without recomputation, so a
killed run continues to exactly the result of an unbroken run with the same seed.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from .errors import HwnasError
from .io import atomic_path

LOG_NAME = "evaluations.jsonl"


@dataclass
class SearchConfig:
    """Every setting of a search; recipe keys and CLI flags use these names (``-`` or ``_``)."""

    space: str = "nb201"
    space_opt: dict = field(default_factory=dict)
    strategy: str = "nsga2"
    strategy_opt: dict = field(default_factory=dict)
    objective: list = field(default_factory=lambda: ["error", "latency_ms@host"])
    constraint: list = field(default_factory=list)
    accuracy: str | None = "train"
    latency: list = field(default_factory=list)
    energy: list = field(default_factory=list)
    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    epochs: int = 3
    proxy: str = "naswot"
    batch_size: int = 64
    max_train: int | None = None
    budget: int = 100
    seed: int = 0
    executor: str = "in-process"
    address: str | None = None
    out: str | None = None

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)


# The embedded default (``hwnas pareto-search`` with no arguments): a real, small problem that finishes in
# a few minutes on 2 cores. NB201 cells at C=8, N=1 on 8x8 inputs, trained for 2 epochs on scikit-learn's
# bundled digits; the cost objective is host latency when a host predictor or the profiler is available,
# else the MAC count (counted from the graph, an honest static proxy for cost; the run says which).
DEFAULT_RECIPE = {
    "space": "nb201",
    "space_opt": {"C": 8, "N": 1, "input_size": 8},
    "strategy": "nsga2",
    "strategy_opt": {"population_size": 8},
    "objective": ["error", "latency_ms@host"],
    "accuracy": "train",
    "dataset": "digits",
    "epochs": 2,
    "budget": 32,
    "seed": 0,
}


def _listify(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _dictify(value) -> dict:
    """A mapping, or KEY=VALUE strings (numbers parsed), -> dict."""
    from .cli.common import parse_space_options

    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return parse_space_options(_listify(value))


def load_recipe(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"recipe {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise HwnasError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise HwnasError(f"recipe {path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _absolute_table(spec):
    """``table:rel.csv`` -> ``table:/abs/rel.csv`` (also ``DEV=table:...``), so a resumed run finds it."""
    if not spec:
        return spec
    head, sep, rest = str(spec).partition("=")
    prefix, body = (head + sep, rest) if sep and not head.startswith("table:") else ("", str(spec))
    if body.startswith("table:") and len(body) > 6:
        return prefix + "table:" + str(Path(body[6:]).expanduser().absolute())
    return spec


def make_config(recipe: dict | None = None, overrides: dict | None = None) -> SearchConfig:
    """Recipe values, then explicit flag values (None = not given) on top; unknown keys are an error."""
    known = SearchConfig.keys()
    merged: dict[str, Any] = {}
    for source, values in (("recipe", recipe or {}), ("flag", overrides or {})):
        for key, value in values.items():
            k = str(key).replace("-", "_")
            if k == "objectives":
                k = "objective"
            if k == "constraints":
                k = "constraint"
            if k not in known:
                raise HwnasError(f"unknown {source} setting {key!r}; known: {', '.join(known)}")
            if value is None or (isinstance(value, (list, tuple, dict)) and not value and source == "flag"):
                continue
            merged[k] = value
    cfg = SearchConfig()
    for k, v in merged.items():
        if k in ("objective", "constraint", "latency", "energy"):
            v = _listify(v)
        elif k in ("space_opt", "strategy_opt"):
            v = _dictify(v)
        elif k in ("budget", "seed", "epochs", "batch_size"):
            try:
                v = int(v)
            except (TypeError, ValueError):
                raise HwnasError(f"{k} must be an integer, got {v!r}") from None
        elif k == "max_train" and v is not None:
            v = int(v)
        elif k == "download":
            v = bool(v)
        setattr(cfg, k, v)
    cfg.accuracy = _absolute_table(cfg.accuracy)
    cfg.latency = [_absolute_table(x) for x in cfg.latency]
    cfg.energy = [_absolute_table(x) for x in cfg.energy]
    if cfg.data_dir:
        cfg.data_dir = str(Path(cfg.data_dir).expanduser().absolute())
    if cfg.budget < 1:
        raise HwnasError(f"budget must be >= 1, got {cfg.budget}")
    if not cfg.objective:
        raise HwnasError("a search needs at least one --objective")
    return cfg


def host_cost_source(space_name: str) -> str | None:
    """How host latency can be obtained in this build: 'predictor', 'measure' or None."""
    try:
        from .predictors import load_predictor  # noqa: F401  (issue 4)

        try:
            load_predictor("host", space=space_name)
            return "predictor"
        except Exception:
            pass
    except ImportError:
        pass
    try:
        from .measure.device_profile import load_profile
        from .measure.campaign import measure_archs  # noqa: F401  (issue 3)

        load_profile("host")
        return "measure"
    except Exception:
        return None


def default_config(notes: list[str] | None = None) -> SearchConfig:
    recipe = dict(DEFAULT_RECIPE)
    how = host_cost_source(recipe["space"])
    if how is None:
        recipe["objective"] = ["error", "macs"]
        if notes is not None:
            notes.append("no host latency predictor or profiler in this build: the cost objective is MACs "
                         "(counted from the graph)")
    else:
        recipe["latency"] = [f"host={how}"]
    return make_config(recipe)


# --------------------------------------------------------------------------------------------------------
def _evaluator_spec(cfg: SearchConfig):
    from .evaluation import EvaluatorSpec

    return EvaluatorSpec(objectives=list(cfg.objective), constraints=list(cfg.constraint), accuracy=cfg.accuracy,
                         latency=list(cfg.latency), energy=list(cfg.energy), dataset=cfg.dataset,
                         epochs=cfg.epochs, proxy=cfg.proxy, data_dir=cfg.data_dir, download=cfg.download,
                         batch_size=cfg.batch_size, seed=cfg.seed, max_train=cfg.max_train)


def build(cfg: SearchConfig, log: Path | None = None, on_evaluated=None):
    """(space, evaluator, strategy) for a configuration; every name is checked before anything runs."""
    from .evaluation import build_evaluator, create_executor
    from .spaces import create_space
    from .strategies import create_strategy

    space = create_space(cfg.space, **cfg.space_opt)
    strategy = create_strategy(cfg.strategy, **cfg.strategy_opt)
    executor = create_executor(cfg.executor, cfg.address)
    evaluator = build_evaluator(space, _evaluator_spec(cfg), executor=executor, log=log, on_evaluated=on_evaluated)
    return space, evaluator, strategy


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def prepare_out(out: Path, resume: bool) -> Path:
    out = Path(out)
    if resume:
        if not (out / "config.yaml").is_file():
            raise HwnasError(f"{out} holds no search to resume (no config.yaml)")
        return out
    if out.exists() and not out.is_dir():
        raise HwnasError(f"--out {out} is a file")
    if out.is_dir() and ((out / "config.yaml").exists() or (out / LOG_NAME).exists()):
        raise HwnasError(f"{out} already holds a search: continue it with --resume {out}, or choose another --out")
    if not out.parent.is_dir():
        raise HwnasError(f"cannot write {out}: directory {out.parent} does not exist")
    return out


def run_search(cfg: SearchConfig, out: Path, resume: bool = False,
               progress: Callable[[str, dict], None] | None = None):
    """Run (or resume) a search into ``out``; returns the SearchResult. ``progress(kind, info)`` is called
    with kind "evaluated" (info: n_evals) and "generation" (a history row)."""
    from .evaluation import read_log

    out = prepare_out(out, resume)
    notify = progress or (lambda kind, info: None)
    counter = {"n": 0}

    def on_evaluated(e):
        counter["n"] += 1
        notify("evaluated", {"n_evals": counter["n"], "arch": e.extras.get("arch", "")})

    # build everything (and fail on bad input) before creating anything on disk
    space, evaluator, strategy = build(cfg, log=None, on_evaluated=on_evaluated)
    out.mkdir(parents=True, exist_ok=True)
    log = out / LOG_NAME
    if resume:
        evaluator.preload(read_log(log))
    else:
        (out / "config.yaml").write_text(yaml.safe_dump({**cfg.to_dict(), "out": str(out)}, sort_keys=False))
    evaluator.log = log
    started = time.time()
    history: list[dict] = []

    def on_generation(row):
        history.append(row)
        _write_json(out / "checkpoint.json", {"status": "running", "step": row["step"], "n_evals": row["n_evals"],
                                              "hypervolume": row["hypervolume"]})
        write_history(out / "history.csv", history)
        notify("generation", row)

    try:
        result = strategy.run(space, evaluator, cfg.budget, np.random.default_rng(cfg.seed), callback=on_generation)
    except KeyboardInterrupt:
        _write_json(out / "checkpoint.json", {"status": "interrupted", "n_evals": evaluator.n_unique,
                                              "step": len(history)})
        write_history(out / "history.csv", history)
        raise
    result.config = {**cfg.to_dict(), "out": str(out), "strategy_params": result.config,
                     "elapsed_s": round(time.time() - started, 1), "computed_in_this_session": evaluator.n_computed,
                     "replay_diverged": evaluator.replay_diverged}
    write_results(result, out, space)
    _write_json(out / "checkpoint.json", {"status": "finished", "n_evals": evaluator.n_unique,
                                          "step": len(result.history)})
    return result


# --------------------------------------------------------------------------------------------------------
def write_history(path: Path, history: list[dict]) -> None:
    keys = ["step", "n_evals", "hypervolume", "front_size"]
    _write_csv(path, keys + sorted({k for row in history for k in row} - set(keys)), history)


def _rows(result, evaluations, front_ids: set) -> tuple[list[str], list[dict]]:
    labels = [o.label for o in result.objectives]
    con_labels = sorted({k for e in evaluations for k in (e.extras.get("constraints") or {})})
    header = ["order", "arch", "arch_id"]
    for lb in labels:
        header += [lb, f"{lb}_source"]
    for lb in con_labels:
        header += [lb, f"{lb}_source"]
    header += ["violation", "on_front"]
    rows = []
    for e in evaluations:
        row = {"order": e.extras.get("order", ""), "arch": e.extras.get("arch", ""), "arch_id": e.arch.arch_id,
               "violation": f"{e.violation:.6g}", "on_front": e.arch.arch_id in front_ids}
        for lb, v, s in zip(labels, e.values, e.sources):
            row[lb], row[f"{lb}_source"] = f"{v:.6g}", s
        for lb in con_labels:
            row[lb] = f"{(e.extras.get('constraints') or {}).get(lb, float('nan')):.6g}"
            row[f"{lb}_source"] = (e.extras.get("constraint_sources") or {}).get(lb, "")
        rows.append(row)
    return header, rows


def _write_csv(path: Path, header, rows) -> None:
    """Write atomically: a reader (or a crash) never sees half a file."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def write_results(result, out: Path, space=None) -> None:
    """evaluations.csv, pareto.csv, history.csv, config.yaml (resolved), pareto.png, report.html."""
    from .report import write_report

    out = Path(out)
    for i, e in enumerate(result.evaluations):
        e.extras["order"] = i + 1
        if space is not None and "arch" not in e.extras:
            e.extras["arch"] = space.to_string(e.arch)
    front = result.pareto()
    front_ids = {e.arch.arch_id for e in front}
    header, rows = _rows(result, result.evaluations, front_ids)
    _write_csv(out / "evaluations.csv", header, rows)
    front_rows = [r for r in rows if r["on_front"]]
    front_rows.sort(key=lambda r: float(r[result.objectives[0].label]))
    _write_csv(out / "pareto.csv", [h for h in header if h not in ("on_front",)],
               [{k: v for k, v in r.items() if k != "on_front"} for r in front_rows])
    write_history(out / "history.csv", result.history)
    resolved = dict(result.config)
    resolved["objectives_resolved"] = [{"label": o.label, "bound": o.bound} for o in result.objectives]
    resolved["feasible_found"] = result.any_feasible
    (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    write_report(result, out)


def load_result(out: Path):
    """Rebuild the SearchResult of a results directory (for ``hwnas report``)."""
    from .contracts import Objective, SearchResult
    from .evaluation import read_log

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
        _, evaluator, _ = build(cfg)
        objectives = list(evaluator.objectives)
    history = []
    if (out / "history.csv").is_file():
        with (out / "history.csv").open() as fh:
            for row in csv.DictReader(fh):
                history.append({k: (float(v) if k == "hypervolume" else int(float(v))) if v not in ("", None) else v
                                for k, v in row.items()})
    for i, e in enumerate(evaluations):
        e.extras["order"] = i + 1
    return SearchResult(strategy=str(config.get("strategy", "")), space=str(config.get("space", "")),
                        objectives=tuple(objectives), evaluations=evaluations, history=history, config=config)
