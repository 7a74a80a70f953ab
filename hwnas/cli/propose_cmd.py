"""`hwnas propose`: the archs to measure next so the device's predictor improves most (active learning)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_CODES, device_name


def register(app: typer.Typer) -> None:
    @app.command("propose", epilog=EXIT_CODES)
    def propose(
        device: str = typer.Option(..., "--device", callback=device_name, help="device name as filed in the store"),
        k: int = typer.Option(..., "--k", min=1, help="how many archs to propose"),
        out: Path = typer.Option(..., "--out", help="CSV to write (arch column; `hwnas profile --archs` reads it)"),
        space: str = typer.Option("nb201", "--space", help="search space"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store: a SQLite file or a postgresql:// URL (default $HWNAS_STORE, else $HWNAS_HOME/measurements.db)"),
        models: Optional[Path] = typer.Option(None, "--models", help="predictors root (default ./latency_models, then $HWNAS_HOME/latency_models)"),
        seed: int = typer.Option(0, "--seed", help="seed for the candidate pool"),
        pool: int = typer.Option(2000, "--pool", min=1, help="candidate pool size"),
    ) -> None:
        """Propose K unmeasured archs whose measurement should improve the device's predictor most:
        first archs that cover ops never measured, then the most uncertain predictions, spread out.

        Example: hwnas propose --device pixel2 --space nb201 --k 20 --out next.csv
        """
        import csv

        import numpy as np

        from ..errors import HwnasError
        from ..fileio import atomic_path, check_writable
        from ..predictors.active import propose_for_device
        from ..predictors.from_store import settings_text
        from ..store import MeasurementStore
        from .common import make_space

        if k < 1:
            raise HwnasError(f"--k must be at least 1, got {k}")
        check_writable(out)
        st = MeasurementStore(store)
        sp = make_space(space, space_opt) if space_opt else _stored_space(st, device, space)
        props, how, n_measured = propose_for_device(sp, device, st, k, np.random.default_rng(seed),
                                                    models=models, pool_size=pool)
        with atomic_path(out) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["arch", "reason", "predicted_latency_ms", "predicted_std_ms"])
                for pr in props:
                    w.writerow([sp.to_string(pr.arch), pr.reason,
                                "" if pr.predicted_ms is None else f"{pr.predicted_ms:.6g}",
                                "" if pr.std_ms is None else f"{pr.std_ms:.4g}"])
        typer.echo(f"wrote {len(props)} proposals for {device} to {out}: unmeasured {sp.name} archs "
                   f"({settings_text(sp.name, sp.config())}; {how}; {n_measured} already measured)")


def _stored_space(st, device: str, space: str):
    """No --space-opt: the defaults when the device has rows of them or no rows at all (a note names rows of
    other settings); else the settings of its rows when they share one (the space the user is measuring); an
    error listing them when there are several and none is the defaults."""
    import json

    from ..errors import HwnasError
    from ..predictors.from_store import settings_listing, settings_text, space_opt_flags, stored_space_configs
    from ..spaces import create_space

    default = create_space(space)
    configs = stored_space_configs(st, device, space)
    others = {c: n for c, n in configs.items() if json.loads(c) != default.config()}
    if not configs or len(others) < len(configs):
        if others:
            from collections import Counter

            typer.echo(f"note: proposing from {space} with the defaults; {device} also has rows of "
                       f"{settings_listing(space, Counter(others))} (--space-opt to propose from those)", err=True)
        return default
    if len(configs) > 1:
        raise HwnasError(f"device {device!r} has {space} rows of {len(configs)} space settings: "
                         f"{settings_listing(space, configs)}; say which space to propose from with --space-opt, "
                         f"e.g. {space_opt_flags(space, json.loads(configs.most_common(1)[0][0]))}")
    chosen = create_space(space, **json.loads(next(iter(configs))))
    typer.echo(f"note: proposing from {space} with {settings_text(space, chosen.config())}, the settings of "
               f"{device}'s rows (--space-opt to choose)", err=True)
    return chosen
