"""Retrain a search's Pareto front from scratch with the full recipe, and compare with search-time accuracy.

``retrain_front(RUN_DIR)`` reads ``RUN_DIR/pareto.csv`` and ``RUN_DIR/config.yaml`` (written by
``hwnas pareto-search``), trains the ``top`` K front architectures (lowest search-time error first) from scratch
for every seed 0..S-1 with :func:`hwnas.accuracy.training.train_arch` on the run's train split, and measures
validation and (unlocked: this is the final step) test accuracy. It writes

``retrained.csv``
    one row per arch: ``arch, arch_id, search_accuracy, search_source, val_seed<k>, test_seed<k>`` per seed,
    ``val_mean, val_std, test_mean, test_std`` (std over seeds, ddof 0; blank with one seed), ``seeds_done``,
    ``source`` (provenance of the retrained numbers). Rewritten atomically after every finished (arch, seed),
    so a killed retrain loses at most the training in flight and continues where it stopped.
``retrain.json``
    the settings (recipe, data set, seeds) and Kendall tau of search-time accuracy vs retrained mean val and
    test accuracy over the archs with every seed done, for the report.

A proxy search (``neg_<proxy>`` objective, no ``error``) is compared through its proxy score instead
(``search_<proxy>`` column); a tau then says how well the proxy ranked the front.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from ..errors import HwnasError, ParameterError, ParametersError
from ..fileio import atomic_path
from .training import FULL_EPOCHS, Recipe, train_arch

RETRAINED_CSV = "retrained.csv"
RETRAIN_JSON = "retrain.json"


@dataclass
class RetrainSummary:
    csv_path: Path
    rows: list[dict]
    search_column: str
    kendall_tau_val: float | None
    kendall_tau_test: float | None
    trained: int  # (arch, seed) trainings run by this call
    reused: int  # (arch, seed) results found from an earlier, interrupted call


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _run_inputs(run_dir: Path) -> tuple[dict, list[dict]]:
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "pareto.csv").is_file():
        raise HwnasError(f"{run_dir} is not a finished search (needs config.yaml and pareto.csv)")
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise HwnasError(f"{run_dir / 'config.yaml'} is not valid YAML: {exc}") from None
    front = _read_csv(run_dir / "pareto.csv")
    if not front:
        raise HwnasError(f"{run_dir / 'pareto.csv'} holds no architectures")
    if "arch" not in front[0]:
        raise HwnasError(f"{run_dir / 'pareto.csv'} has no arch column")
    return config, front


def _search_metric(front: list[dict]) -> tuple[str, str, Callable[[dict], float]]:
    """(column name in retrained.csv, column in pareto.csv, value getter; higher = better)."""
    if "error" in front[0]:
        return "search_accuracy", "error", lambda r: 100.0 - float(r["error"])
    for col in front[0]:
        if col.startswith("neg_") and not col.endswith("_source"):
            return f"search_{col[4:]}", col, lambda r, c=col: -float(r[c])
    raise HwnasError("pareto.csv has no error or proxy (neg_<proxy>) column: nothing to compare retraining with")


def kendall_tau(a, b) -> float | None:
    from scipy.stats import kendalltau

    if len(a) < 2:
        return None
    tau = kendalltau(a, b).statistic
    return None if tau is None or not math.isfinite(float(tau)) else float(tau)


def _fmt(v) -> str:
    return "" if v is None else f"{v:.6g}"


@dataclass
class RetrainSettings:
    """How ``retrain_front`` retrains a front (the ``hwnas retrain`` options): the ``top`` archs by search
    accuracy (all when None), ``epochs`` x ``seeds`` each on ``device``; ``dataset`` / ``data_dir`` /
    ``batch_size`` default to the search's own."""
    top: int | None = None
    epochs: int = FULL_EPOCHS
    seeds: int = 1
    device: str = "auto"
    dataset: str | None = None
    data_dir: str | None = None
    batch_size: int | None = None
    lr: float = 0.05
    label_smoothing: float = 0.0
    threads: int = 1

    def check(self) -> None:
        if int(self.seeds) < 1:
            raise ParameterError("seeds", f"must be >= 1, got {self.seeds}")
        if self.top is not None and int(self.top) < 1:
            raise ParameterError("top", f"must be >= 1, got {self.top}")


def retrain_front(run_dir, settings: RetrainSettings | None = None, *,
                  progress: Callable[[dict], None] | None = None, **options) -> RetrainSummary:
    """Retrain the front of the search in ``run_dir`` (``settings``, or its fields as keyword ``options``:
    ``retrain_front(d, top=3, epochs=1)``); resumes a ``retrained.csv`` made with the same settings."""
    from ..spaces import create_space
    from .datasets import load_splits

    if settings is not None and options:
        raise TypeError("retrain_front: pass settings or keyword options, not both")
    st = settings if settings is not None else RetrainSettings(**options)
    run_dir = Path(run_dir)
    config, front = _run_inputs(run_dir)
    st.check()
    search_col, pareto_col, search_value = _search_metric(front)
    front = _best_first(front, search_value, st.top, run_dir / "pareto.csv", pareto_col)
    space = create_space(str(config.get("space", "nb201")), **dict(config.get("space_opt") or {}))
    name, data_dir, recipe, split_seed = _training_inputs(config, st)
    saved = {"dataset": name, "data_dir": data_dir, "split_seed": split_seed, "recipe": asdict(recipe),
             "seeds": list(range(int(st.seeds)))}
    table = _RetrainTable(run_dir, saved, search_col)
    table.start(front, search_value, f"{pareto_col}_source")
    splits = load_splits(name, space.input_shape(), data_dir=data_dir, download=bool(config.get("download")),
                         seed=split_seed).unlock_test()  # the final step: the front is fixed, test may be read
    trained = reused = 0
    summary = table.write()
    for i, row in enumerate(table.rows):
        arch = space.from_string(row["arch"])
        for s in table.seeds:
            if row[f"val_seed{s}"] != "":
                reused += 1
                continue
            r = train_arch(space, arch, splits, recipe, device=st.device, seed=s, test=True, threads=st.threads)
            table.record(row, s, r)
            trained += 1
            summary = table.write()
            if progress is not None:
                progress({"arch": row["arch"], "index": i, "n_archs": len(table.rows), "seed": s,
                          "val": r.val_accuracy, "test": r.test_accuracy, "seconds": r.seconds})
    return RetrainSummary(table.csv_path, table.rows, search_col, summary["kendall_tau_val"],
                          summary["kendall_tau_test"], trained, reused)


def _best_first(front: list[dict], search_value, top, pareto: Path, pareto_col: str) -> list[dict]:
    try:
        front.sort(key=lambda r: -search_value(r))
    except ValueError:
        raise HwnasError(f"{pareto}: a {pareto_col} value is not a number") from None
    return front[: int(top)] if top else front


def _training_inputs(config: dict, st: RetrainSettings) -> tuple[str, str | None, Recipe, int]:
    """(dataset, data dir, recipe, split seed): the options', else the search's."""
    accuracy = str(config.get("accuracy") or "")
    kind, _, arg = accuracy.partition(":")
    name = st.dataset or (arg if kind == "train" and arg else None) or str(config.get("dataset") or "digits")
    data_dir = st.data_dir if st.data_dir is not None else config.get("data_dir")
    recipe = Recipe(epochs=int(st.epochs), batch_size=int(st.batch_size or config.get("batch_size") or 64),
                    lr=float(st.lr), label_smoothing=float(st.label_smoothing))
    return name, data_dir, recipe, int(config.get("seed") or 0)


class _RetrainTable:
    """retrained.csv (one row per arch: per-seed val / test, their mean and std) and retrain.json (settings,
    Kendall tau of search vs retrained accuracy), rewritten atomically after every training."""

    def __init__(self, run_dir: Path, settings: dict, search_col: str):
        self.csv_path, self.json_path = run_dir / RETRAINED_CSV, run_dir / RETRAIN_JSON
        self.settings, self.search_col = settings, search_col
        self.seeds = settings["seeds"]
        self.header = ["arch", "arch_id", search_col, "search_source"]
        for s in self.seeds:
            self.header += [f"val_seed{s}", f"test_seed{s}"]
        self.header += ["val_mean", "val_std", "test_mean", "test_std", "seeds_done", "source"]
        self.rows: list[dict] = []

    def _previous(self) -> dict[str, dict]:
        """The rows a previous run with the same settings wrote (by arch_id); other settings: an error."""
        if not (self.csv_path.is_file() and self.json_path.is_file()):
            return {}
        old = json.loads(self.json_path.read_text()).get("settings", {})
        new = self.settings
        if old.get("dataset") != new["dataset"] or old.get("recipe") != new["recipe"] \
                or old.get("split_seed") != new["split_seed"]:
            raise ParametersError(f"{self.csv_path} was made with other settings ({old.get('dataset')}, recipe "
                                  f"{old.get('recipe')}); use the same `epochs`/`batch_size`/`lr`/`dataset`, or "
                                  "delete it to start over")
        return {r["arch_id"]: r for r in _read_csv(self.csv_path)}

    def start(self, front: list[dict], search_value, err_source: str) -> None:
        done = self._previous()
        self.rows = [{"arch": r["arch"], "arch_id": r.get("arch_id", ""), self.search_col: _fmt(search_value(r)),
                      "search_source": r.get(err_source, "")} for r in front]
        for row in self.rows:
            prev = done.get(row["arch_id"]) or {}
            for s in self.seeds:
                for part in ("val", "test"):
                    row[f"{part}_seed{s}"] = prev.get(f"{part}_seed{s}", "")
            row["source"] = prev.get("source", "")

    def record(self, row: dict, s: int, r) -> None:
        row[f"val_seed{s}"], row[f"test_seed{s}"] = _fmt(r.val_accuracy), _fmt(r.test_accuracy)
        n = len(self.seeds)
        row["source"] = r.source.replace(f"seed {s})", f"seeds 0-{n - 1})" if n > 1 else f"seed {s})")

    def _finish(self, row: dict) -> None:
        for part in ("val", "test"):
            vals = [float(row[f"{part}_seed{s}"]) for s in self.seeds if row[f"{part}_seed{s}"] != ""]
            row[f"{part}_mean"] = _fmt(float(np.mean(vals))) if vals else ""
            row[f"{part}_std"] = _fmt(float(np.std(vals))) if len(vals) > 1 else ""
        row["seeds_done"] = sum(row[f"val_seed{s}"] != "" for s in self.seeds)

    def write(self) -> dict:
        for row in self.rows:
            self._finish(row)
        complete = [r for r in self.rows if r["seeds_done"] == len(self.seeds)]
        xs = [float(r[self.search_col]) for r in complete]
        summary = {"settings": self.settings, "search_column": self.search_col, "n_archs": len(self.rows),
                   "n_complete": len(complete),
                   "kendall_tau_val": kendall_tau(xs, [float(r["val_mean"]) for r in complete]),
                   "kendall_tau_test": kendall_tau(xs, [float(r["test_mean"]) for r in complete])}
        with atomic_path(self.csv_path) as tmp, tmp.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.header)
            w.writeheader()
            w.writerows(self.rows)
        with atomic_path(self.json_path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
        return summary
