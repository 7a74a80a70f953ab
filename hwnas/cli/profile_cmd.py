"""`hwnas profile`: measure archs on a device and store each result as it comes (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

PROFILE_EXIT_CODES = ("Exit codes: 0 at least one arch measured now or already in the store (failures, if any, are "
                      "counted on stderr and recorded in the store); 1 no arch was measured: every one failed (recorded "
                      "in the store); 2 bad input or the device is unreachable (one line on stderr); 130 interrupted "
                      "(everything measured so far is kept).")


def register(app: typer.Typer) -> None:
    @app.command("profile", epilog=PROFILE_EXIT_CODES)
    def profile(
        device: str = typer.Option(..., "--device", help="device profile name (see `hwnas devices`) or a .yaml path"),
        space: str = typer.Option("nb201", "--space", help="search space name"),
        n: int = typer.Option(50, "--n", min=1, help="how many archs to sample (ignored with --archs)"),
        seed: int = typer.Option(0, "--seed", help="seed for sampling archs"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="onnxruntime | litert (default: the profile's)"),
        archs: Optional[Path] = typer.Option(None, "--archs", help="file of arch strings (one a line, or a CSV with an arch column)"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store: a SQLite file or a postgresql:// URL (default $HWNAS_STORE, else $HWNAS_HOME/measurements.db)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE, e.g. C=8"),
        rel_ci: float = typer.Option(0.02, "--rel-ci", help="stop when the 95% CI of the median is within +-this"),
        max_time_s: float = typer.Option(10.0, "--max-time-s", help="cap on timed runs per arch (seconds)"),
        quick: bool = typer.Option(False, "--quick", help="short protocol caps (smoke runs; more results flagged unstable)"),
        op_profile: bool = typer.Option(True, "--op-profile/--no-op-profile", help="store op-level profiles"),
        reference: Optional[str] = typer.Option(None, "--reference",
                                                help="drift reference timed between candidate rounds: auto | none | an "
                                                     "arch string (default: the profile's; host: auto)"),
        estimator: str = typer.Option("median", "--estimator",
                                      help="latency_ms estimator: median | median_of_rounds | p10 | trimmed_mean "
                                           "(all are kept in the row's protocol report)"),
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

        protocol = replace(base, rel_ci=rel_ci, max_time_s=min(max_time_s, base.max_time_s) if quick else max_time_s,
                           estimator=estimator)
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
                          on_skip=skipped, on_error=failed, reference="profile" if reference is None else reference)
        _summary(results, counts, errors, prof, st)
        _conclude(counts, len(arch_list), prof.name)


def _conclude(counts: dict, total: int, device: str) -> None:
    """Exit 1 when no arch was measured (every one failed); say how many failed when some did."""
    failed = counts["failed"]
    if not failed:
        return
    if counts["measured"] + counts["skipped"] == 0:
        typer.echo(f"error: no arch was measured on {device}: all {failed} failed (recorded in the store; "
                   "the first reasons are listed above)", err=True)
        raise typer.Exit(1)
    typer.echo(f"warning: {failed} of {total} archs failed on {device} (recorded in the store; the first reasons "
               "are listed above)", err=True)


def _pinned_text(pin: dict) -> str:
    """The protocol report's ``pinned`` record in words."""
    if "taskset" in pin:  # adb
        return f"taskset {pin['taskset']} (cores {pin.get('cores')}), {pin.get('threads')} thread(s)"
    cores = ",".join(map(str, pin.get("cores") or [])) or "?"
    how = ("requested " + ",".join(map(str, pin["requested"])) if pin.get("requested") else "not requested")
    if pin.get("error"):
        how += f", refused: {pin['error']}"
    return (f"cores {cores} ({how}); {pin.get('intra_op_threads')} intra-op / "
            f"{pin.get('inter_op_threads') or '-'} inter-op thread(s)")


def _summary(results, counts, errors, prof, st) -> None:
    import numpy as np
    from rich.table import Table

    from .common import out_console

    table = Table(title=f"profile summary: {prof.name}")
    table.add_column("what", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    table.add_row("measured now", str(counts["measured"]))
    table.add_row("already in the store (skipped)", str(counts["skipped"]))
    table.add_row("failed (recorded in the store)", str(counts["failed"]))
    if results:
        lat = np.array([m.latency_ms for m in results])
        cvs = [m.latency_cv for m in results if m.latency_cv is not None]
        est = sorted({m.estimator or "median" for m in results})
        table.add_row(f"raw latency_ms ({', '.join(est)}): median (min..max)",
                      f"{np.median(lat):.4g} ({lat.min():.4g} .. {lat.max():.4g})")
        corr = np.array([m.latency_corrected_ms for m in results if m.latency_corrected_ms is not None])
        refs = {m.reference["arch"]: m.reference for m in results if m.reference}
        if corr.size:
            table.add_row("drift-corrected latency_corrected_ms", 
                          f"{np.median(corr):.4g} ({corr.min():.4g} .. {corr.max():.4g})")
        for arch, ref in refs.items():
            table.add_row("drift reference", f"arch {ref['arch_id']} ({arch}), long-run median "
                                             f"{ref['long_run_median_ms']:.4g} ms on {prof.name}")
        if not refs:
            table.add_row("drift reference", "none (latency_corrected_ms empty)")
        pin = (results[-1].fingerprint.get("protocol") or {}).get("pinned")
        if pin:
            table.add_row("pinned", _pinned_text(pin))
        throttled = sum(bool(m.throttled) for m in results)
        if any(m.thermal for m in results):
            table.add_row("measured while throttled", str(throttled))
        if cvs:
            table.add_row("median CV", f"{np.median(cvs):.3f}")
        table.add_row("flagged unstable", str(sum(m.unstable for m in results)))
        sources = sorted({m.energy_source or "none" for m in results})
        energies = [m.energy_mj for m in results if m.energy_mj is not None]
        if energies:
            table.add_row("energy_mj median", f"{np.median(energies):.4g} ({', '.join(sources)})")
        table.add_row("runtime", f"{results[-1].runtime} {results[-1].runtime_version}")
    table.add_row("store", str(st.path))
    out = out_console()
    out.print(table)
    for e in errors[:5]:
        out.print(f"[red]failed[/] {e}")
    if len(errors) > 5:
        out.print(f"... and {len(errors) - 5} more failures")
