"""`hwnas retrain`: train a search's Pareto front from scratch with the full recipe (several seeds), report
validation and test accuracy and how well search-time accuracy ranked them (Kendall tau)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EXIT_CODES


def register(app: typer.Typer) -> None:
    @app.command("retrain", epilog=EXIT_CODES)
    def retrain(
        run_dir: Path = typer.Argument(..., help="a results directory written by pareto-search"),
        top: Optional[int] = typer.Option(None, "--top", help="retrain only the K front archs with the best search-time accuracy"),
        epochs: int = typer.Option(50, "--epochs", help="training epochs (the full recipe; under 50 is labelled short)"),
        seeds: int = typer.Option(1, "--seeds", help="train every arch with seeds 0..S-1"),
        train_device: str = typer.Option("auto", "--train-device", help="auto (CUDA if available) | cpu | cuda"),
        dataset: Optional[str] = typer.Option(None, "--dataset", help="digits | cifar10 | imagefolder (default: the run's)"),
        data_dir: Optional[str] = typer.Option(None, "--data-dir", help="data directory (default: the run's)"),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="batch size (default: the run's, else 64)"),
        lr: float = typer.Option(0.05, "--lr", help="initial learning rate (SGD + nesterov, cosine schedule)"),
        label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="label smoothing, e.g. 0.1"),
    ) -> None:
        """Retrain the Pareto front of RUN_DIR from scratch; writes RUN_DIR/retrained.csv and retrain.json.

        Resumable: run the same command again after an interruption and finished trainings are kept.

        Example: hwnas retrain runs/pixel2 --top 5 --epochs 50 --seeds 3 --train-device cuda
        """
        from ..accuracy.retrain import retrain_front

        def show(info: dict) -> None:
            typer.echo(f"[{info['index'] + 1}/{info['n_archs']}] seed {info['seed']}: val {info['val']:.2f} % "
                       f"test {info['test']:.2f} % ({info['seconds']:.1f} s) {info['arch']}", err=True)

        s = retrain_front(run_dir, top=top, epochs=epochs, seeds=seeds, device=train_device, dataset=dataset,
                          data_dir=data_dir, batch_size=batch_size, lr=lr, label_smoothing=label_smoothing,
                          progress=show)

        def tau(v):
            return "n/a (fewer than 2 archs)" if v is None else f"{v:+.3f}"

        typer.echo(f"wrote {s.csv_path}: {len(s.rows)} archs x {seeds} seed(s), {s.trained} trained now, "
                   f"{s.reused} kept from before")
        typer.echo(f"Kendall tau, {s.search_column} vs retrained val: {tau(s.kendall_tau_val)}; "
                   f"vs retrained test: {tau(s.kendall_tau_test)}")
        from ..search import load_result, write_report

        _, html_path = write_report(load_result(run_dir), run_dir)
        typer.echo(f"updated {html_path} (retrained section)")
