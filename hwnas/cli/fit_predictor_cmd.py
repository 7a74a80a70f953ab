"""`hwnas fit-predictor`: train a latency predictor for a device from the measurement store."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("fit-predictor")
    def fit_predictor(
        device: str = typer.Option(..., "--device", help="device name as filed in the store"),
        space: str = typer.Option("nb201", "--space", help="search space"),
        kind: str = typer.Option("auto", "--kind", help="auto | lut | kernel | arch | transfer"),
        out: Optional[Path] = typer.Option(None, "--out", help="artifact directory (default latency_models/<device>/<space>-<kind>)"),
        store: Optional[Path] = typer.Option(None, "--store", help="measurement store (default $HWNAS_HOME/measurements.db)"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="only rows of this runtime (default: the most common)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE (default: as stored)"),
        seed: int = typer.Option(0, "--seed", help="seed for cross-validation folds and ensembles"),
    ) -> None:
        """Train a latency predictor from the store (measured and imported rows), print its cross-validated
        metrics and write the artifact with its model card.

        Example: hwnas fit-predictor --device pixel2 --space nb201 --kind auto
        """
        from rich.console import Console

        from ..errors import HwnasError
        from ..predictors import PREDICTORS
        from ..predictors.metrics import format_metrics
        from ..predictors.from_store import fit_from_store
        from ..store import MeasurementStore
        from ..spaces import parse_space_options

        if kind not in PREDICTORS:
            from ..errors import unknown

            raise unknown("predictor kind", kind, PREDICTORS)
        if out is not None and out.exists() and not (out / "card.json").is_file() and any(out.iterdir()):
            raise HwnasError(f"--out {out} exists and is not a predictor artifact; refusing to replace it")
        if store is not None and not Path(store).exists():
            raise HwnasError(f"store {store} does not exist")
        st = MeasurementStore(store)
        console = Console(stderr=True)
        with console.status("loading measurements") as status:
            p, data = fit_from_store(st, device, space, kind, runtime=runtime,
                                     space_config=parse_space_options(space_opt) or None, seed=seed,
                                     progress=lambda msg: status.update(msg))
        for note in data.notes:
            typer.echo(f"note: {note}")
        card = p.card
        counts = ", ".join(f"{v} {k}" for k, v in data.counts.items() if v)
        typer.echo(f"trained {card['kind']} on {len(data.archs)} archs of {device} ({data.runtime}; {counts})")
        if kind == "auto":
            for k, m in p.cv_.items():
                line = format_metrics(m) if "within_10pct" in m else m.get("error", "")
                typer.echo(f"  cv {k:9s} {line}")
            typer.echo(f"auto picked {p.chosen_} (highest cross-validated within+-10% + Kendall tau)")
        cv = card.get("cv_metrics", {})
        if "within_10pct" in cv:
            typer.echo(f"cross-validated ({cv.get('folds', 5)}-fold): {format_metrics(cv)}")
        else:
            typer.echo(f"cross-validation: {cv.get('note', 'not available')}")
        target = out or Path("latency_models") / device / card["name"]
        p.save(target)
        typer.echo(f"wrote {target}/ (card.json: data hash {card['training']['data_hash']})")
