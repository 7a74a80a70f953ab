"""`hwnas fit-predictor`: train a latency predictor for a device from the measurement store."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_CODES, device_name


def register(app: typer.Typer) -> None:
    @app.command("fit-predictor", epilog=EXIT_CODES)
    def fit_predictor(
        device: str = typer.Option(..., "--device", callback=device_name, help="device name as filed in the store"),
        space: str = typer.Option("nb201", "--space", help="search space"),
        kind: str = typer.Option("auto", "--kind", help="auto | lut | kernel | arch | transfer | fallback | graph-kernel"),
        out: Optional[Path] = typer.Option(None, "--out", help="artifact directory (default latency_models/<device>/<space>-<kind>)"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store: a SQLite file or a postgresql:// URL (default $HWNAS_STORE, else $HWNAS_HOME/measurements.db)"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="only rows of this runtime (default: the most common)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE (default: as stored)"),
        seed: int = typer.Option(0, "--seed", help="seed for cross-validation folds and ensembles"),
        onnx: Optional[List[Path]] = typer.Option(None, "--onnx", help="graph-kernel: ONNX models (files or folders) "
                                                  "to profile with ONNX Runtime on this host (default: the store's "
                                                  "op-level profiles of --device)"),
        runs: int = typer.Option(20, "--runs", help="graph-kernel: profiled and timed runs per model"),
    ) -> None:
        """Train a latency predictor from the store (measured and imported rows), print its cross-validated
        metrics and write the artifact with its model card.

        Example: hwnas fit-predictor --device pixel2 --space nb201 --kind auto
        Example: hwnas fit-predictor --device host --kind graph-kernel --onnx exported/   (any ONNX graph)
        Example: hwnas fit-predictor --device pixel --kind graph-kernel   (from the store's op profiles)
        """
        from rich.console import Console

        from ..errors import HwnasError
        from ..predictors import PREDICTORS
        from ..predictors.auto import auto_why
        from ..predictors.metrics import format_metrics
        from ..predictors.from_store import fit_from_store
        from ..store import MeasurementStore
        from ..spaces import parse_space_options

        if kind == "graph-kernel":
            if onnx:
                return _fit_graph(device, onnx, out, runs, seed)
            return _fit_graph_from_store(device, store, runtime, out, seed)
        if kind not in PREDICTORS:
            from ..errors import unknown

            raise unknown("predictor kind", kind, PREDICTORS)
        if out is not None and out.exists() and not (out / "card.json").is_file() and any(out.iterdir()):
            raise HwnasError(f"--out {out} exists and is not a predictor artifact; refusing to replace it")
        _check_store_exists(store)
        st = MeasurementStore(store)
        console = Console(stderr=True)
        with console.status("loading measurements") as status:
            p, data = fit_from_store(st, device, space, kind, runtime=runtime,
                                     space_config=parse_space_options(space_opt) or None, seed=seed,
                                     progress=lambda msg: status.update(msg))
        p.set_card(store=f"{st.engine} {st.path}")  # where its training rows came from (a URL's password masked)
        for note in data.notes:
            typer.echo(f"note: {note}")
        card = p.card
        counts = ", ".join(f"{v} {k}" for k, v in data.counts.items() if v)
        typer.echo(f"trained {card['kind']} on {len(data.archs)} archs of {device} ({data.runtime}; {counts})")
        if kind == "auto":
            for k, m in p.cv_.items():
                line = format_metrics(m) if "within_10pct" in m else m.get("error", "")
                if "score" in m:
                    line += f"  fold coverage: {m['coverage']:.3f}  score: {m['score']:.3f}"
                if "space_coverage" in m:
                    line += f"  space coverage: {m['space_coverage']:.3f}" + (
                        f" (never saw {', '.join(m['space_unseen'][:3])})" if m.get("space_unseen") else "")
                typer.echo(f"  cv {k:9s} {line}{'  <- picked' if k == p.chosen_ else ''}")
            typer.echo(f"auto picked {p.chosen_}: {auto_why(p.cv_, p.chosen_)}")
        chk = card.get("prior_check")
        if chk:  # few-shot transfer: do the other devices explain this device's cells? (issue 24)
            typer.echo(f"prior check: {'uses the other devices' if chk['use'] == 'transfer' else 'target-only'}: "
                       f"{chk['reason']}")
        cv = card.get("cv_metrics", {})
        if "within_10pct" in cv:
            typer.echo(f"cross-validated ({cv.get('folds', 5)}-fold): {format_metrics(cv)}")
        else:
            typer.echo(f"cross-validation: {cv.get('note', 'not available')}")
        target = out or Path("latency_models") / device / card["name"]
        p.save(target, extra={"report.html": _report(p, data, kind)})
        typer.echo(f"wrote {target}/ (card.json: data hash {card['training']['data_hash']}; report.html: "
                   "cross-validated predictions against the store)")
        for warning in card.get("warnings") or []:
            typer.echo(f"warning: {card['name']} {warning} (recorded in its card.json)", err=True)


def _report(p, data, kind: str) -> str:
    """The predictor's report.html (hwnas.predictors.report), saved beside its card and listed in it."""
    import numpy as np

    from ..predictors.auto import auto_why
    from ..predictors.report import predictor_report

    predicted = data.cv_predicted if data.cv_predicted is not None else np.full(len(data.archs), np.nan)
    auto = (p.cv_, p.chosen_, auto_why(p.cv_, p.chosen_)) if kind == "auto" else None
    return predictor_report(p.card, [data.space.to_string(a) for a in data.archs], data.latency_ms, predicted, auto)


def _fit_graph(device: str, paths: list, out, runs: int, seed: int) -> None:
    """Profile ONNX models with ONNX Runtime on this host and fit the per-kernel models (graph.py)."""
    from ..errors import HwnasError
    from ..predictors.graph import GraphKernelPredictor, profile_onnx

    files = sorted({f for p in paths for f in (Path(p).glob("*.onnx") if Path(p).is_dir() else [Path(p)])})
    if len(files) < 2:
        raise HwnasError("--kind graph-kernel needs --onnx with at least 2 ONNX models to profile "
                         f"(got {len(files)})")
    samples = []
    for i, f in enumerate(files, 1):
        typer.echo(f"profiling {f} ({i}/{len(files)})", err=True)
        samples.append(profile_onnx(f, runs=runs))
    p = GraphKernelPredictor(seed=seed).fit(samples).set_card(device=device, runtime="onnxruntime",
                                                               graph_runtime="onnxruntime", name="graph-kernel",
                                                               profiles="onnxruntime profiler on this host")
    _save_graph(p, device, len(samples), out)


def _save_graph(p, device: str, n: int, out) -> None:
    target = out or Path("latency_models") / device / p.info_["name"]
    p.save(target)
    types = ", ".join(f"{t} ({m['count']}{', never profiled' if m['model'] == 'absent' else ''})"
                      for t, m in p.models_.items())
    typer.echo(f"trained graph-kernel on {n} profiled models of {device}: kernel types {types}; "
               f"whole model = {p.scale_:.3f} x kernel sum + {p.overhead_[0]:.3f} ms + "
               f"{p.overhead_[1] * 1000:.1f} us/kernel")
    cv = p.info_.get("cv_metrics") or {}
    if "within_10pct" in cv:
        from ..predictors.metrics import format_metrics

        typer.echo(f"cross-validated ({cv['folds']}-fold, whole models): {format_metrics(cv)}"
                   + (f"  coverage: {cv['coverage']:.2f}" if cv.get("coverage", 1.0) < 1 else ""))
    typer.echo(f"wrote {target}/")


def _check_store_exists(store) -> None:
    """An explicit SQLite store must exist (fitting from a new empty file helps nobody); a URL is checked on
    connecting."""
    from ..errors import HwnasError
    from ..store import is_store_url

    if store is not None and not is_store_url(store) and not Path(store).exists():
        raise HwnasError(f"store {store} does not exist")


def _fit_graph_from_store(device: str, store, runtime, out, seed: int) -> None:
    """Fit the per-kernel models from the op-level profiles the store holds for ``device`` (op_profiles.py)."""
    from ..errors import HwnasError
    from ..predictors.graph import GraphKernelPredictor
    from ..predictors.op_profiles import samples_from_store
    from ..store import MeasurementStore

    _check_store_exists(store)
    samples, rt, notes = samples_from_store(MeasurementStore(store), device, runtime=runtime,
                                            progress=lambda msg: typer.echo(msg, err=True))
    for note in notes:
        typer.echo(f"note: {note}")
    if len(samples) < 2:
        raise HwnasError(f"--kind graph-kernel needs op profiles of at least 2 models of {device} "
                         f"({len(samples)} usable); profile more archs with `hwnas profile`")
    name = "graph-kernel" if rt == "onnxruntime" else f"graph-kernel-{rt}"
    p = GraphKernelPredictor(seed=seed).fit(samples).set_card(device=device, runtime=rt, graph_runtime=rt,
                                                               name=name, profiles="op_profile rows of the store")
    p.set_card(cv_metrics=p.cross_validate(samples))  # --latency DEV=predictor compares it with a space's model
    _save_graph(p, device, len(samples), out)
