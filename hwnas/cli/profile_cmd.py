"""`hwnas profile`: measure archs on a device and store each result as it comes (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("profile")
    def profile(
        device: str = typer.Option(..., "--device", help="device profile name (see `hwnas devices`) or a .yaml path"),
        space: str = typer.Option("nb201", "--space", help="search space name"),
        n: int = typer.Option(50, "--n", min=1, help="how many archs to sample (ignored with --archs)"),
        seed: int = typer.Option(0, "--seed", help="seed for sampling archs"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="onnxruntime | litert (default: the profile's)"),
        archs: Optional[Path] = typer.Option(None, "--archs", help="file of arch strings (one a line, or a CSV with an arch column)"),
        store: Optional[Path] = typer.Option(None, "--store", help="measurement store (default $HWNAS_HOME/measurements.db)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE, e.g. C=8"),
        rel_ci: float = typer.Option(0.02, "--rel-ci", help="stop when the 95% CI of the median is within +-this"),
        max_time_s: float = typer.Option(10.0, "--max-time-s", help="cap on timed runs per arch (seconds)"),
        quick: bool = typer.Option(False, "--quick", help="short protocol caps (smoke runs; more results flagged unstable)"),
        op_profile: bool = typer.Option(True, "--op-profile/--no-op-profile", help="store op-level profiles"),
        next_k: Optional[int] = typer.Option(None, "--next", min=1,
                                             help="measure the K archs that should improve this device's predictor most "
                                                  "(active learning; see `hwnas propose`)"),
    ) -> None:
        """Profile archs on a device: export, measure (median, p90, IQR, CV, energy), store, resume.

        Archs already measured with the same settings are skipped, so re-running the command resumes it;
        Ctrl-C keeps everything measured so far.

        Example: hwnas profile --device host --space nb201 --n 50 --seed 0 --runtime litert
        """
        import numpy as np
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        from ..measure.device_profile import load_profile
        from ..measure.campaign import measure_archs
        from ..measure.protocol import ProtocolSettings
        from ..spaces import arch_from_text
        from ..store import MeasurementStore
        from .common import make_space, read_arch_lines

        prof = load_profile(device).with_runtime(runtime)
        sp = make_space(space, space_opt)
        if archs is not None and next_k is not None:
            from ..errors import HwnasError

            raise HwnasError("--archs and --next are exclusive: --next chooses the archs itself")
        if next_k is not None:
            from ..predictors.active import propose_for_device

            props, how, _ = propose_for_device(sp, prof.name, MeasurementStore(store), next_k, np.random.default_rng(seed))
            Console(stderr=True).print(f"--next {next_k}: chose archs by {how}")
            arch_list = [p.arch for p in props]
        elif archs is not None:
            arch_list = [arch_from_text(sp, line) for line in read_arch_lines(archs)]
            if not arch_list:
                from ..errors import HwnasError

                raise HwnasError(f"arch file {archs} lists no archs")
        else:
            arch_list = sp.sample_distinct(n, np.random.default_rng(seed))
        base = ProtocolSettings.quick() if quick else ProtocolSettings()
        from dataclasses import replace

        protocol = replace(base, rel_ci=rel_ci, max_time_s=min(max_time_s, base.max_time_s) if quick else max_time_s)
        st = MeasurementStore(store)
        from ..measure.protocol import DeviceUnreachable
        from ..measure.runners import get_runner

        runner = get_runner(prof)
        ok, why = runner.reachable(prof)
        if not ok:
            raise DeviceUnreachable(f"device {prof.name} is not reachable: {why}")
        console = Console(stderr=True)
        counts = {"measured": 0, "skipped": 0, "failed": 0}
        errors: list[str] = []
        results = []
        console.print(f"profiling {len(arch_list)} {sp.name} archs on [bold]{prof.name}[/] ({prof.runtime}, "
                      f"{prof.threads} thread(s), {prof.connection_type}) -> {st.path}")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console, transient=False) as bar:
            task = bar.add_task("measuring", total=len(arch_list))

            def done(arch, m):
                counts["measured"] += 1
                results.append(m)
                bar.update(task, advance=1, description=f"measuring (last {m.latency_ms:.3f} ms"
                                                        f"{', unstable' if m.unstable else ''})")

            def skipped(arch, m):
                counts["skipped"] += 1
                if m is not None:
                    results.append(m)
                bar.update(task, advance=1)

            def failed(arch, msg):
                counts["failed"] += 1
                errors.append(f"{sp.to_string(arch)}: {msg}")
                bar.update(task, advance=1)

            measure_archs(sp, arch_list, prof, st, protocol, runner=runner, op_profile=op_profile, on_result=done,
                          on_skip=skipped, on_error=failed)
        _summary(results, counts, errors, prof, st)


def _summary(results, counts, errors, prof, st) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"profile summary: {prof.name}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("measured now", str(counts["measured"]))
    table.add_row("already in the store (skipped)", str(counts["skipped"]))
    table.add_row("failed (recorded in the store)", str(counts["failed"]))
    if results:
        lat = np.array([m.latency_ms for m in results])
        cvs = [m.latency_cv for m in results if m.latency_cv is not None]
        table.add_row("latency_ms median (min .. max)", f"{np.median(lat):.4g} ({lat.min():.4g} .. {lat.max():.4g})")
        if cvs:
            table.add_row("median CV", f"{np.median(cvs):.3f}")
        table.add_row("flagged unstable", str(sum(m.unstable for m in results)))
        sources = sorted({m.energy_source or "none" for m in results})
        energies = [m.energy_mj for m in results if m.energy_mj is not None]
        if energies:
            table.add_row("energy_mj median", f"{np.median(energies):.4g} ({', '.join(sources)})")
        table.add_row("runtime", f"{results[-1].runtime} {results[-1].runtime_version}")
    table.add_row("store", str(st.path))
    out = Console()
    out.print(table)
    for e in errors[:5]:
        out.print(f"[red]failed[/] {e}")
    if len(errors) > 5:
        out.print(f"... and {len(errors) - 5} more failures")
