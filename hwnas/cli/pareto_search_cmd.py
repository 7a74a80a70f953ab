"""`hwnas pareto-search`: multi-objective architecture search with results, plots and a report."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_CODES


def _progress_bar(budget: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(), TextColumn("archs"),
                        TextColumn("HV {task.fields[hv]}"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=False)
    task = progress.add_task("search", total=budget, hv="-")

    def update(kind: str, info: dict) -> None:
        if kind in ("started", "note"):  # printed by pareto_search's started()
            return
        if not progress.live.is_started:  # start with the first result: bad input fails before any bar
            progress.start()
        if kind == "evaluated":
            progress.update(task, completed=info["n_evals"])
        elif kind == "generation":
            progress.update(task, completed=info["n_evals"], hv=f"{info['hypervolume']:.4f}")
        # other events (run_search's "final", "trust") change nothing the bar shows

    return progress, update


def _store_for_this_command(store: str, ctx: typer.Context) -> None:
    """The sources open the store named by $HWNAS_STORE (as do Ray workers started here): ``store`` for the
    length of this command, the previous value restored when it ends."""
    import os

    from ..store import store_target

    before = os.environ.get("HWNAS_STORE")
    os.environ["HWNAS_STORE"] = str(store_target(store))
    ctx.call_on_close(lambda: os.environ.pop("HWNAS_STORE") if before is None
                      else os.environ.__setitem__("HWNAS_STORE", before))


def _warn_about(result) -> None:
    """The warnings and the trust line a finished run prints before its summary."""
    if not result.any_feasible:
        typer.echo("warning: no evaluated architecture satisfies the constraints (they may be impossible); "
                   "pareto.csv lists the least-violating ones", err=True)
    for what, n in (result.config.get("missing_values") or {}).items():
        typer.echo(f"warning: {n} evaluated archs have no value in {what.partition(' ')[2]} (unknown, "
                   "counted in the budget, never on the front)", err=True)
    if result.config.get("replay_diverged"):
        typer.echo("warning: the resumed search did not replay the logged evaluations in order "
                   "(settings changed?); results are valid but differ from an unbroken run", err=True)
    if result.config.get("accuracy_trust"):  # how far to trust the accuracy axis (trust.json, report.html)
        typer.echo(f"{result.config['accuracy_trust']} (trust.json)")


def register(app: typer.Typer) -> None:
    @app.command("pareto-search", epilog=EXIT_CODES)
    def pareto_search(
        recipe: Optional[Path] = typer.Option(None, "--recipe", help="YAML recipe (search/*.yaml); flags override its keys"),
        space: Optional[str] = typer.Option(None, "--space", help="search space (see `hwnas spaces`)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE, e.g. C=8"),
        strategy: Optional[str] = typer.Option(None, "--strategy", help="auto (the default: mobo when every cost objective is cheap -- a table, a predictor, a count --, else nsga2) | mobo | nsga2 | moasha | monas | dppnet | evolution | random"),
        strategy_opt: Optional[List[str]] = typer.Option(None, "--strategy-opt", help="strategy parameter KEY=VALUE, e.g. population_size=20"),
        objective: Optional[List[str]] = typer.Option(None, "--objective", help="error | latency_ms@DEV | energy_mj@DEV | peak_power_w@DEV | params | macs | peak_memory_bytes (repeat)"),
        constraint: Optional[List[str]] = typer.Option(None, "--constraint", help="bound, e.g. 'latency_ms@pixel2<=15' (repeat)"),
        accuracy: Optional[str] = typer.Option(None, "--accuracy", help="table:FILE | proxy[:naswot|synflow|jacob_cov] | train[:digits|cifar10|imagefolder] (validation accuracy; test only for the final front) | supernet:PATH (hwnas supernet train, or OFA's OFAMobileNetV3 weights scored on --dataset imagefolder)"),
        latency: Optional[List[str]] = typer.Option(None, "--latency", help="predictor | measure | table:FILE, or DEV=SOURCE per device (repeat)"),
        energy: Optional[List[str]] = typer.Option(None, "--energy", help="measure | table:FILE, or DEV=SOURCE per device"),
        dataset: Optional[str] = typer.Option(None, "--dataset", help="digits (bundled with scikit-learn, offline) | cifar10 | imagefolder"),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="CIFAR-10 python-pickle directory, or an image folder (DIR/train/<class>/*.png, optional val/, test/)"),
        download: Optional[bool] = typer.Option(None, "--download/--no-download", help="let torchvision download CIFAR-10"),
        epochs: Optional[int] = typer.Option(None, "--epochs", help="training epochs per candidate (accuracy train)"),
        proxy: Optional[str] = typer.Option(None, "--proxy", help="zero-cost proxy for --accuracy proxy"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="training / proxy batch size"),
        max_train: Optional[int] = typer.Option(None, "--max-train", help="train on at most this many images"),
        lr: Optional[float] = typer.Option(None, "--lr", help="learning rate (SGD, nesterov, cosine schedule)"),
        label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="label smoothing (0 = off)"),
        ema: Optional[float] = typer.Option(None, "--ema", help="score an exponential moving average of the weights, this decay per step (e.g. 0.9; default: the last weights)"),
        train_seeds: Optional[int] = typer.Option(None, "--train-seeds", help="accuracy train: each candidate's value is the mean validation accuracy of this many trainings (seeds SEED..SEED+K-1)"),
        train_device: Optional[str] = typer.Option(None, "--train-device", help="auto (CUDA if available) | cpu | cuda"),
        budget: Optional[int] = typer.Option(None, "--budget", help="unique architectures to evaluate (--strategy moasha with --accuracy train: total training epochs)"),
        trust_archs: Optional[int] = typer.Option(None, "--trust-archs", help="accuracy train: after the search, re-train this many archs with another seed to measure how far to trust the accuracy axis (trust.json; 0 = off)"),
        seed: Optional[int] = typer.Option(None, "--seed", help="random seed (same seed, same search)"),
        executor: Optional[str] = typer.Option(None, "--executor", help="in-process (default) | ray"),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: local Ray)"),
        workers: Optional[int] = typer.Option(None, "--workers", help="--executor ray: evaluations at once (a local Ray starts with this many CPUs; mobo proposes a batch that is a multiple of it)"),
        out: Optional[Path] = typer.Option(None, "--out", help="results directory (default: runs/search-<time>)"),
        resume: Optional[Path] = typer.Option(None, "--resume", help="continue the search in this results directory"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store that measure sources write to and "
                                            "predictor sources fit from where the device has no saved predictor: a "
                                            "SQLite file or a postgresql:// URL (default $HWNAS_STORE)"),
        ctx: typer.Context = None,
    ) -> None:
        """Search for Pareto-optimal architectures (accuracy vs device cost) and write results + report.

        With no arguments runs an embedded default (NB201 cells trained on scikit-learn's digits, host cost)
        that finishes in a few minutes. Writes pareto.csv, evaluations.csv, history.csv, config.yaml,
        pareto.png and report.html to the results directory.

        Example: hwnas pareto-search --space nb201 --strategy nsga2 --objective error --objective latency_ms@pixel2 --accuracy table:accuracy_cifar10.csv --latency pixel2=table:pixel2.csv --budget 300 --seed 0 --out runs/pixel2
        """
        import time

        from ..search import config_from_flags, fill_cost_defaults, load_recipe, make_config, resume_config, run_search

        flags = {"space": space, "space_opt": space_opt, "strategy": strategy, "strategy_opt": strategy_opt,
                 "objective": objective, "constraint": constraint, "accuracy": accuracy, "latency": latency,
                 "energy": energy, "dataset": dataset, "data_dir": data_dir, "download": download, "epochs": epochs,
                 "proxy": proxy, "batch_size": batch_size, "max_train": max_train, "lr": lr,
                 "label_smoothing": label_smoothing, "ema": ema, "train_seeds": train_seeds,
                 "train_device": train_device, "budget": budget,
                 "trust_archs": trust_archs, "seed": seed,
                 "executor": executor, "address": address, "workers": workers}
        notes: list[str] = []
        if store is not None:
            _store_for_this_command(store, ctx)
        if resume is not None:
            cfg = resume_config(resume, {**flags, "recipe": recipe, "out": out})
            target = resume
        else:
            cfg = (make_config(load_recipe(recipe), flags, recipe_origin=f"recipe {recipe}") if recipe is not None
                   else config_from_flags(flags, notes))
            fill_cost_defaults(cfg)
            if out is not None:
                cfg.settings_from["out"] = "flag"
            if cfg.settings_from.get("latency", "").startswith("library default:"):
                notes.append(f"latency: {cfg.settings_from['latency'].partition(': ')[2]}")
            target = out or Path(cfg.out or f"runs/search-{time.strftime('%Y%m%d-%H%M%S')}")

        def started(kind: str, info: dict) -> None:
            # every setting was checked: say what the run resolved (before this, any error is one line alone)
            if kind == "started":
                for note in notes:
                    typer.echo(f"note: {note}", err=True)
                typer.echo(f"strategy: {info['strategy_ran']} ({info['strategy_why']})", err=True)
            elif kind == "note":  # something the run says (a torn log line cut off on resume ...)
                typer.echo(f"note: {info['text']}", err=True)

        if progress:
            bar, update = _progress_bar(cfg.budget)

            def both(kind: str, info: dict) -> None:
                started(kind, info)
                update(kind, info)

            try:
                result = run_search(cfg, target, resume=resume is not None, progress=both)
            finally:
                if bar.live.is_started:
                    bar.stop()
        else:
            result = run_search(cfg, target, resume=resume is not None, progress=started)
        front = result.pareto()
        _warn_about(result)
        hv = result.history[-1]["hypervolume"] if result.history else float("nan")
        typer.echo(f"{len(result.evaluations)} unique archs evaluated, {len(front)} on the Pareto front "
                   f"(hypervolume {hv:.4f}); results in {target} (report.html)")
