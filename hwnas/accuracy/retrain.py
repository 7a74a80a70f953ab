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

from ..errors import HwnasError, ParameterError
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


def retrain_front(run_dir, top: int | None = None, epochs: int = FULL_EPOCHS, seeds: int = 1,
                  device: str = "auto", dataset: str | None = None, data_dir: str | None = None,
                  batch_size: int | None = None, lr: float = 0.05, label_smoothing: float = 0.0,
                  threads: int = 1, progress: Callable[[dict], None] | None = None) -> RetrainSummary:
    from ..spaces import create_space
    from .datasets import load_splits

    run_dir = Path(run_dir)
    config, front = _run_inputs(run_dir)
    if int(seeds) < 1:
        raise ParameterError("seeds", f"must be >= 1, got {seeds}")
    if top is not None and int(top) < 1:
        raise ParameterError("top", f"must be >= 1, got {top}")
    search_col, pareto_col, search_value = _search_metric(front)
    try:
        front.sort(key=lambda r: -search_value(r))
    except ValueError:
        raise HwnasError(f"{run_dir / 'pareto.csv'}: a {pareto_col} value is not a number") from None
    front = front[: int(top)] if top else front

    accuracy = str(config.get("accuracy") or "")
    kind, _, arg = accuracy.partition(":")
    name = dataset or (arg if kind == "train" and arg else None) or str(config.get("dataset") or "digits")
    data_dir = data_dir if data_dir is not None else config.get("data_dir")
    space = create_space(str(config.get("space", "nb201")), **dict(config.get("space_opt") or {}))
    recipe = Recipe(epochs=int(epochs), batch_size=int(batch_size or config.get("batch_size") or 64), lr=float(lr),
                    label_smoothing=float(label_smoothing))
    split_seed = int(config.get("seed") or 0)
    settings = {"dataset": name, "data_dir": data_dir, "split_seed": split_seed, "recipe": asdict(recipe),
                "seeds": list(range(int(seeds)))}

    out_csv, out_json = run_dir / RETRAINED_CSV, run_dir / RETRAIN_JSON
    done: dict[str, dict] = {}
    if out_csv.is_file() and out_json.is_file():
        old = json.loads(out_json.read_text()).get("settings", {})
        if old.get("dataset") != name or old.get("recipe") != settings["recipe"] or old.get("split_seed") != split_seed:
            raise HwnasError(f"{out_csv} was made with other settings ({old.get('dataset')}, recipe {old.get('recipe')}); "
                             "use the same --epochs/--batch-size/--lr/--dataset, or delete it to start over")
        done = {r["arch_id"]: r for r in _read_csv(out_csv)}

    splits = load_splits(name, space.input_shape(), data_dir=data_dir, download=bool(config.get("download")),
                         seed=split_seed).unlock_test()  # the final step: the front is fixed, test may be read
    seed_list = settings["seeds"]
    header = ["arch", "arch_id", search_col, "search_source"]
    for s in seed_list:
        header += [f"val_seed{s}", f"test_seed{s}"]
    header += ["val_mean", "val_std", "test_mean", "test_std", "seeds_done", "source"]
    err_source = f"{pareto_col}_source"
    rows = [{"arch": r["arch"], "arch_id": r.get("arch_id", ""), search_col: _fmt(search_value(r)),
             "search_source": r.get(err_source, "")} for r in front]
    for row in rows:
        prev = done.get(row["arch_id"]) or {}
        for s in seed_list:
            for part in ("val", "test"):
                row[f"{part}_seed{s}"] = prev.get(f"{part}_seed{s}", "")
        row["source"] = prev.get("source", "")

    def finish(row):
        for part in ("val", "test"):
            vals = [float(row[f"{part}_seed{s}"]) for s in seed_list if row[f"{part}_seed{s}"] != ""]
            row[f"{part}_mean"] = _fmt(float(np.mean(vals))) if vals else ""
            row[f"{part}_std"] = _fmt(float(np.std(vals))) if len(vals) > 1 else ""
        row["seeds_done"] = sum(row[f"val_seed{s}"] != "" for s in seed_list)

    def write():
        for row in rows:
            finish(row)
        complete = [r for r in rows if r["seeds_done"] == len(seed_list)]
        xs = [float(r[search_col]) for r in complete]
        summary = {"settings": settings, "search_column": search_col, "n_archs": len(rows), "n_complete": len(complete),
                   "kendall_tau_val": kendall_tau(xs, [float(r["val_mean"]) for r in complete]),
                   "kendall_tau_test": kendall_tau(xs, [float(r["test_mean"]) for r in complete])}
        with atomic_path(out_csv) as tmp, tmp.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=header)
            w.writeheader()
            w.writerows(rows)
        with atomic_path(out_json) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    trained = reused = 0
    summary = write()
    for i, row in enumerate(rows):
        arch = space.from_string(row["arch"])
        for s in seed_list:
            if row[f"val_seed{s}"] != "":
                reused += 1
                continue
            r = train_arch(space, arch, splits, recipe, device=device, seed=s, test=True, threads=threads)
            row[f"val_seed{s}"], row[f"test_seed{s}"] = _fmt(r.val_accuracy), _fmt(r.test_accuracy)
            row["source"] = r.source.replace(f"seed {s})", f"seeds 0-{len(seed_list) - 1})" if len(seed_list) > 1 else f"seed {s})")
            trained += 1
            summary = write()
            if progress is not None:
                progress({"arch": row["arch"], "index": i, "n_archs": len(rows), "seed": s, "val": r.val_accuracy,
                          "test": r.test_accuracy, "seconds": r.seconds})
    return RetrainSummary(out_csv, rows, search_col, summary["kendall_tau_val"], summary["kendall_tau_test"],
                          trained, reused)
