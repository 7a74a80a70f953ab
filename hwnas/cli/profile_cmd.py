"""`hwnas profile`: measure archs on a device and store each result as it comes (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

PROFILE_EXIT_CODES = ("Exit codes: 0 at least one arch measured now or already in the store (failures, if any, are "
                      "counted on stderr and recorded in the store); 1 no arch was measured: every one failed (recorded "
                      "in the store); 2 bad input or the device is unreachable (one line on stderr); 130 interrupted "
                      "(everything measured so far is kept). Several devices: 0 every device finished its archs; 1 "
                      "some device dropped off (after its retries) or measured nothing, the others finished; 2 bad "
                      "input.")


def register(app: typer.Typer) -> None:
    @app.command("profile", epilog=PROFILE_EXIT_CODES)
    def profile(
        device: List[str] = typer.Option(..., "--device", metavar="NAME",
                                         help="device profile name (see `hwnas devices`) or a .yaml path; repeat it "
                                              "for a lab: every device measures the same archs, in parallel"),
        space: str = typer.Option("nb201", "--space", help="search space name"),
        n: int = typer.Option(50, "--n", min=1, help="how many archs to sample (ignored with --archs)"),
        seed: int = typer.Option(0, "--seed", help="seed for sampling archs"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="onnxruntime | litert (default: the profile's)"),
        archs: Optional[Path] = typer.Option(None, "--archs", help="file of arch strings (one a line, or a CSV with an arch column)"),
        store: Optional[str] = typer.Option(None, "--store", help="measurement store: a SQLite file or a postgresql:// URL (default $HWNAS_STORE, else $HWNAS_HOME/measurements.db)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE, e.g. C=8"),
        rel_ci: float = typer.Option(0.02, "--rel-ci", help="stop when the 95% CI of the median is within +-this"),
        max_time_s: float = typer.Option(10.0, "--max-time-s", help="cap on timed runs per arch (seconds)"),
        quick: bool = typer.Option(False, "--quick", help="short protocol caps (smoke runs; more results flagged unstable; a 1 s sustained energy run)"),
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
        executor: Optional[str] = typer.Option(None, "--executor",
                                               help="where devices' workers run: in-process (a thread per device, the "
                                                    "default) | ray (an actor per device on the node that declares "
                                                    "the Ray resource device:NAME; docs/lab.md)"),
        address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (with --executor ray; "
                                                                      "default: start Ray here)"),
        retries: int = typer.Option(3, "--retries", min=1, help="tries per device when it drops off (several devices "
                                                                 "or --executor ray), a pause doubling between them"),
        retry_wait_s: float = typer.Option(2.0, "--retry-wait-s", min=0.0, help="the first pause before a retry"),
    ) -> None:
        """Profile archs on a device: export, measure (median, p90, IQR, CV, energy), store, resume.

        Archs already measured with the same settings are skipped, so re-running the command resumes it;
        Ctrl-C keeps everything measured so far.

        Several --device: the same archs on every device in parallel, one worker per device; a device that
        drops off is retried (--retries) and then reported, the others go on.

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

        profs = [load_profile(d).with_runtime(runtime) for d in device]
        prof = profs[0]
        from ..evaluation.executors import check_executor

        executor = check_executor(executor, address)  # the same names and checks as pareto-search's --executor
        lab = len(profs) > 1 or executor == "ray"
        sp = make_space(space, space_opt)
        if lab and next_k is not None:
            from ..errors import HwnasError

            raise HwnasError("--next chooses archs for one device: give one --device")
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
        if lab:
            from ..measure.lab import RetryPolicy

            _profile_lab(sp, arch_list, profs, st, store, protocol, RetryPolicy(retries, retry_wait_s), executor,
                         address, op_profile=op_profile, reference="profile" if reference is None else reference)
            return
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


def _profile_lab(sp, arch_list, profs, st, store, protocol, retry, executor, address, **measure_kw) -> None:
    """Several devices at once (or one on Ray): a progress line per device, a summary row per device."""
    from rich.console import Console

    from ..measure import lab

    lab.check_lab(profs)
    console = Console(stderr=True)
    where = "Ray actors" if executor == "ray" else "one thread per device"
    console.print(f"profiling {len(arch_list)} {sp.name} archs on {len(profs)} devices "
                  f"({', '.join(p.name for p in profs)}; {where}) -> {st.path}")
    errors: list[str] = []
    try:
        runs = _run_lab(lab, sp, arch_list, profs, st, store, protocol, retry, executor, address, errors, console,
                        **measure_kw)
    except KeyboardInterrupt:
        if executor == "ray":
            raise  # through the normal exit: Ray's own shutdown stops the local cluster hwnas started
        _leave_interrupted()
    _lab_summary(runs, errors, st)
    bad = [r for r in runs if not r.ok]
    if bad:
        typer.echo(f"error: {len(bad)} of {len(runs)} devices failed: " + "; ".join(
            f"{r.device}: {r.error or 'every arch failed'}" for r in bad), err=True)
        raise typer.Exit(1)


def _leave_interrupted() -> None:
    """Ctrl-C while device threads ran: each stored row is already committed and the progress display is closed;
    leave at once (exit 130) rather than through the interpreter's teardown, where a native library a device
    thread used (an exporter, a runtime) can abort the process ("terminate called without an active
    exception", exit -6: seen under load in tests/test_lab_journey.py)."""
    import os
    import sys

    typer.echo("interrupted: everything finished so far is kept", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)


def _run_lab(lab, sp, arch_list, profs, st, store, protocol, retry, executor, address, errors, console, **measure_kw):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..store import store_target

    with Progress(TextColumn("{task.fields[device]:<16}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=False) as bar:
        tasks = {p.name: bar.add_task("waiting", total=len(arch_list), device=p.name) for p in profs}

        def on_event(device, kind, info):
            task = tasks[device]
            if kind == "measured":
                bar.update(task, advance=1, description=f"last {info.latency_ms:.3f} ms")
            elif kind in ("skipped", "failed"):
                bar.update(task, advance=1)
                if kind == "failed":
                    errors.append(f"{device}: {info}")
            elif kind == "retry":
                n, tries, wait, why = info
                bar.update(task, description=f"dropped off, try {n + 1}/{tries} in {wait:g} s: {why[-80:]}")
            elif kind == "end":
                bar.update(task, description=info.status if info.error is None else f"FAILED: {info.error[-80:]}")
            elif kind == "start":
                bar.update(task, description="measuring")

        if executor == "ray":
            target = store_target(store)  # every worker opens it: a URL, or this file by its absolute path
            target = target if isinstance(target, str) else str(Path(target).resolve())
            runs = lab.measure_devices_on_ray(sp, arch_list, profs, target, protocol, retry=retry,
                                              on_event=on_event, address=address, **measure_kw)
        else:
            runs = lab.measure_devices_here(sp, arch_list, profs, st, protocol, retry=retry, on_event=on_event,
                                            **measure_kw)
    return runs


def _lab_summary(runs, errors, st) -> None:
    import numpy as np
    from rich.table import Table

    from .common import out_console

    table = Table(title="profile summary: one row per device")
    for col in ("device", "status", "measured now", "already in the store", "failed archs", "tries",
                "raw latency_ms median"):
        table.add_column(col, justify="left" if col in ("device", "status") else "right", overflow="fold")
    for r in runs:
        lat = [m.latency_ms for m in r.results if m is not None and m.latency_ms is not None]
        table.add_row(r.device, r.status, str(r.count("measured")), str(r.count("skipped")), str(r.count("failed")),
                      str(r.tries), f"{np.median(lat):.4g}" if lat else "-")
    out = out_console()
    out.print(table)
    out.print(f"store: {st.path}")
    for e in errors[:5]:
        out.print(f"[red]failed[/] {e}")
    if len(errors) > 5:
        out.print(f"... and {len(errors) - 5} more failures")


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
