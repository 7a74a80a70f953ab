"""`hwnas predict`: predicted latency of archs on a device, from its trained predictor."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import EXIT_CODES, device_name


def register(app: typer.Typer) -> None:
    @app.command("predict", epilog=EXIT_CODES)
    def predict(
        device: str = typer.Option(..., "--device", callback=device_name, help="device whose predictor to use"),
        archs: Optional[Path] = typer.Option(None, "--archs", help="CSV with an arch column, or one arch string per line"),
        out: Optional[Path] = typer.Option(None, "--out", help="CSV to write: arch,latency_ms,latency_std_ms,provenance"),
        space: Optional[str] = typer.Option(None, "--space", help="space of the archs (default: the predictor's)"),
        models: Optional[Path] = typer.Option(None, "--models", help="predictors root (default ./latency_models, then $HWNAS_HOME/latency_models)"),
        predictor: Optional[Path] = typer.Option(None, "--predictor", help="one predictor directory (hwnas fit-predictor --out DIR), "
                                                 "instead of the device's predictor under --models"),
        model: Optional[Path] = typer.Option(None, "--model", help="an exported model FILE.onnx|FILE.tflite to predict with the "
                                             "device's graph-kernel predictor"),
    ) -> None:
        """Predict latency (mean and std, ms) for every arch in a file; each row says which model predicted it.
        With --model FILE.onnx: the latency of any exported model, from its fused kernels.

        Example: hwnas predict --device pixel2 --archs archs.txt --out predicted.csv
        Example: hwnas predict --device host --model mobilenet_v2.onnx
        """
        import csv

        from ..errors import HwnasError
        from ..fileio import atomic_path, check_writable
        from ..predictors import LatencyPredictor, load_predictor
        from ..spaces import arch_from_text
        from .common import deprecated, read_arch_lines

        if model is not None and model.suffix in (".onnx", ".tflite"):
            if predictor is not None:
                raise HwnasError("give --model FILE (an exported model) or --predictor DIR (archs), not both")
            return _predict_graph(device, model, models, out)
        if model is not None:  # the old meaning of --model: one predictor directory
            deprecated("--model DIR (a predictor directory)", "--predictor DIR")
            if predictor is not None:
                raise HwnasError("--model DIR is the old spelling of --predictor DIR: give --predictor once")
            predictor = model
        if archs is None or out is None:
            raise HwnasError("predict needs --archs and --out (or --model FILE.onnx|FILE.tflite)")
        check_writable(out)
        lines = read_arch_lines(archs)
        if not lines:
            raise HwnasError(f"arch file {archs} lists no archs")
        p = (LatencyPredictor.load(predictor, space=space) if predictor
             else load_predictor(device, space=space, root=models))
        card = p.card
        if predictor and card.get("device") not in (None, device):
            raise HwnasError(f"{predictor} is a predictor for device {card.get('device')!r}, not {device!r}")
        parsed = []
        for i, line in enumerate(lines, start=1):
            try:
                parsed.append(arch_from_text(p.space_, line))
            except HwnasError as exc:
                raise HwnasError(f"{archs}, arch {i}: {exc}") from None
        from ..predictors.fallback import row_provenance

        mean, std = p.predict(parsed)
        how = row_provenance(p, parsed)  # e.g. transfer(unseen op e3:skip_connect) where a fallback answered
        tail = (f" device={card.get('device', device)} runtime={card.get('runtime', 'unknown')} "
                f"trained_on={card['training']['count']}@{card['training']['data_hash']}")
        # a fallback artifact: the rows its primary model answered name that model, the others the fallback's
        own = f"predicted:{card.get('primary') or card['kind']}:{card['name']}"
        with atomic_path(out) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["arch", "latency_ms", "latency_std_ms", "provenance"])
                for a, m, s, h in zip(parsed, mean, std, how):
                    w.writerow([p.space_.to_string(a), f"{m:.6g}", f"{s:.4g}",
                                (own if h is None else f"predicted:{h}:{card['name']}") + tail])
        n_fb = sum(h is not None for h in how)
        for warning in card.get("warnings") or []:  # fit-predictor's verdict on its cross-validation
            typer.echo(f"warning: {card['name']} {warning}", err=True)
        typer.echo(f"wrote {len(parsed)} predictions to {out} ({card['kind']} predictor {card['name']} of {device}"
                   + (f"; {n_fb} from the {card.get('fallback', 'transfer')} fallback for ops the "
                      f"{card.get('primary', 'model')} model never saw" if n_fb else "") + ")")


def _predict_graph(device: str, model: Path, models, out) -> None:
    """``--model FILE.onnx``: fused kernels -> the device's graph-kernel predictor; a table of the kernels."""
    import csv

    from ..fileio import atomic_path, check_writable
    from ..predictors.fusion import graph_runtime, read_graph
    from ..predictors.graph import find_graph_predictor

    kernels = read_graph(model)
    p = find_graph_predictor(device, root=models, runtime=graph_runtime(model))
    mean, std = p.predict_graph(kernels)
    per, _ = p.predict_kernels(kernels)
    card = p.card
    prov = (f"predicted:{card['kind']}:{card['name']} device={card.get('device', device)} "
            f"runtime={card.get('runtime', 'onnxruntime')} trained_on={card['training']['count']}@"
            f"{card['training']['data_hash']}")
    if out is not None:
        check_writable(out)
        with atomic_path(out) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["kernel", "type", "hw", "cin", "cout", "k", "stride", "groups", "mmacs", "mbytes",
                            "latency_ms"])
                for k, ms in zip(kernels, per):
                    w.writerow([k.nodes[0], k.type, k.hw, k.cin, k.cout, k.k, k.stride, k.groups,
                                f"{k.mmacs:.4g}", f"{k.mbytes:.4g}", f"{ms:.4g}"])
    typer.echo(f"{model}: {mean:.3f} ms +- {std:.3f} ({len(kernels)} fused kernels x {p.scale_:.3f}, overhead "
               f"{card['overhead']['intercept_ms'] + card['overhead']['per_kernel_ms'] * len(kernels):.3f} ms; "
               f"{prov})" + (f"; per-kernel table in {out}" if out is not None else ""))
