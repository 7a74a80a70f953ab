"""`hwnas predict`: predicted latency of archs on a device, from its trained predictor."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        device: str = typer.Option(..., "--device", help="device whose predictor to use"),
        archs: Path = typer.Option(..., "--archs", help="CSV with an arch column, or one arch string per line"),
        out: Path = typer.Option(..., "--out", help="CSV to write: arch,latency_ms,latency_std_ms,provenance"),
        space: Optional[str] = typer.Option(None, "--space", help="space of the archs (default: the predictor's)"),
        models: Optional[Path] = typer.Option(None, "--models", help="models root (default ./latency_models, then $HWNAS_HOME/latency_models)"),
        model: Optional[Path] = typer.Option(None, "--model", help="one artifact directory (overrides --device lookup)"),
    ) -> None:
        """Predict latency (mean and std, ms) for every arch in a file; each row says which model predicted it.

        Example: hwnas predict --device pixel2 --archs archs.txt --out predicted.csv
        """
        import csv

        from ..errors import HwnasError
        from ..io import atomic_path, check_writable
        from ..predictors import LatencyPredictor, load_predictor
        from ..spaces import arch_from_text
        from .common import read_arch_lines

        check_writable(out)
        lines = read_arch_lines(archs)
        if not lines:
            raise HwnasError(f"arch file {archs} lists no archs")
        p = LatencyPredictor.load(model, space=space) if model else load_predictor(device, space=space, root=models)
        card = p.card
        if model and card.get("device") not in (None, device):
            raise HwnasError(f"{model} is a predictor for device {card.get('device')!r}, not {device!r}")
        parsed = []
        for i, line in enumerate(lines, start=1):
            try:
                parsed.append(arch_from_text(p.space_, line))
            except HwnasError as exc:
                raise HwnasError(f"{archs}, arch {i}: {exc}") from None
        mean, std = p.predict(parsed)
        prov = (f"predicted:{card['kind']}:{card['name']} device={card.get('device', device)} "
                f"runtime={card.get('runtime', 'unknown')} trained_on={card['training']['count']}@{card['training']['data_hash']}")
        with atomic_path(out) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["arch", "latency_ms", "latency_std_ms", "provenance"])
                for a, m, s in zip(parsed, mean, std):
                    w.writerow([p.space_.to_string(a), f"{m:.6g}", f"{s:.4g}", prov])
        typer.echo(f"wrote {len(parsed)} predictions to {out} ({card['kind']} predictor {card['name']} of {device})")
