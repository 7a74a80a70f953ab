"""`hwnas ci-check`: fail CI on a real latency regression, stay quiet on machine noise (library: hwnas.ci).

Two sub-commands: `check` (the default: `hwnas ci-check MODELS ...` is `hwnas ci-check check MODELS ...`)
and `calibrate` (A/A noise of each model). This module parses and prints; the work is in hwnas.ci.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from typer.core import TyperGroup

from .common import EXIT_CODES, either, old_spelling, out_console
from .flags import reword

# options both sub-commands take
Inputs = Annotated[Optional[List[str]], typer.Argument(
    help="model files (.onnx/.tflite) or directories; arch strings with --space")]
Device = Annotated[str, typer.Option("--device", "-d", help="device profile name or YAML path (local only)")]
Runtime = Annotated[Optional[str], typer.Option(
    "--runtime", help="override the profile's runtime for arch exports: onnxruntime | litert")]
Space = Annotated[Optional[str], typer.Option("--space", help="inputs are arch strings of this space (exported with hwnas.export)")]
SpaceOpt = Annotated[Optional[List[str]], typer.Option("--space-opt", help="space setting KEY=VALUE, e.g. C=8")]
Archs = Annotated[Optional[Path], typer.Option(
    "--archs", help="file of arch strings (with --space), one a line, or CSV with arch (and name) columns")]
BudgetS = Annotated[float, typer.Option("--budget-s", help="time budget per model for measuring rounds (s); a model "
                                        "that hangs fails (exit 2) after it plus 30 s for starting the workers")]
Seed = Annotated[int, typer.Option("--seed", help="seed of the ABBA schedule and the bootstrap")]
InputShape = Annotated[Optional[str], typer.Option(
    "--input-shape", help="input shape, batch first (e.g. 1x3x32x32), for models whose H, W are dynamic: MACs are "
                          "counted and inputs fed at this shape (without it such a model is refused, never guessed)")]

class _CheckByDefault(TyperGroup):
    """A group whose first argument, unless it names a sub-command (or asks for help), goes to `check`."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["check", *args]
        return super().parse_args(ctx, args)


ci_app = typer.Typer(
    cls=_CheckByDefault, add_completion=False, pretty_exceptions_enable=False,
    help="Check models for latency regressions against a baseline (`check`, the default), or measure each "
         "model's A/A noise (`calibrate`); exit 0 pass, 1 regression, 2 error, 3 inconclusive.\n\n"
         "Example: hwnas ci-check models/ --against origin/main --device host --json ci.json --junit ci.xml")


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci-check")


CHECK_EXIT_CODES = ("Exit codes: 0 pass (or a slowdown under --floor-ms); 1 a regression (latency or a gate); 2 bad "
                    "input or a model that fails or hangs (one line on stderr); 3 inconclusive (see --inconclusive); "
                    "130 interrupted.")


@ci_app.command("check", epilog=CHECK_EXIT_CODES)
def check_cmd(
    inputs: Inputs = None,
    device: Device = "host",
    runtime: Runtime = None,
    against: Optional[str] = typer.Option(None, "--against", help="baseline measured in this job: a model file, a directory (same names) or a git ref"),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="stored baseline JSON (only trusted on the same machine and runtime version)"),
    update_baseline: Optional[Path] = typer.Option(None, "--update-baseline", help="write the candidates' measurements as a new baseline file"),
    space: Space = None,
    space_opt: SpaceOpt = None,
    archs: Archs = None,
    arch_file: Optional[Path] = old_spelling("--arch-file", "--archs"),
    delta: float = typer.Option(0.05, "--delta", help="tolerated relative slowdown (0.05 = 5%)"),
    floor_ms: Optional[float] = typer.Option(None, "--floor-ms", help="tolerated absolute slowdown in ms: a real slowdown under it gets the verdict under_floor (exit 0); default: none, only the measurement's noise floor (A/A spread, timer)"),
    alpha: float = typer.Option(0.05, "--alpha", help="1 - CI level (0.05: 95% CIs)"),
    min_rounds: int = typer.Option(12, "--min-rounds", help="no pass or fail before this many rounds"),
    max_rounds: int = typer.Option(200, "--max-rounds", help="stop adding rounds here"),
    budget_s: BudgetS = 60.0,
    rounds: int = typer.Option(20, "--rounds", help="--update-baseline alone: rounds measured"),
    gates: str = typer.Option(",".join(("macs", "params", "size_bytes", "op_count")), "--gates",
                              help="exact gates (growth fails): comma list of macs,params,size_bytes,op_count, or none"),
    inconclusive: str = typer.Option("exit3", "--inconclusive", help="inconclusive results: exit3 | pass | fail"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the report with raw samples here"),
    junit_out: Optional[Path] = typer.Option(None, "--junit", help="write JUnit XML here (one testcase per model and metric)"),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="write the Markdown table here, with each model's sample distributions as SVG in <name>-plots/ beside it, linked (the table alone is also appended to $GITHUB_STEP_SUMMARY when set)"),
    input_shape: InputShape = None,
    seed: Seed = 0,
) -> None:
    """Check models for latency regressions against a baseline; exit 0 pass, 1 regression, 2 error, 3 inconclusive.

    Baseline and candidate run in two worker processes, interleaved in randomised ABBA rounds.

    Verdict: Hodges-Lehmann ratio of medians with a bootstrap 95% CI (Holm across models); exact gates on MACs, params, file size and op count.

    Example: hwnas ci-check check models/ --against origin/main --device host --json ci.json --junit ci.xml
    """
    import tempfile

    from ..ci import reports
    from ..ci.baseline import baseline_from_report, load_baseline_file, load_noise, write_json
    from ..ci.check import check_policy, run_check
    from ..ci.stats import Thresholds
    from ..errors import HwnasError

    archs = either("--archs", archs, "--arch-file", arch_file)
    check_policy(inconclusive)
    if against is not None and baseline is not None:
        raise HwnasError("give either --against (measure the baseline now) or --baseline (stored), not both")
    if against is None and baseline is None and update_baseline is None:
        raise HwnasError("nothing to compare against: pass --against REF or --baseline FILE.json "
                         "(or --update-baseline FILE.json to record a baseline)")
    gate_list = [] if gates.strip().lower() == "none" else [g.strip() for g in gates.split(",") if g.strip()]
    th = Thresholds(delta=delta, floor_ms=floor_ms, alpha=alpha, min_rounds=min_rounds)
    ms = _settings(budget_s, max_rounds, rounds, seed, input_shape)
    dev = _device(device, runtime)
    stored = load_baseline_file(baseline) if baseline is not None else None
    _check_outputs(json_out, junit_out, markdown_out, update_baseline)
    with tempfile.TemporaryDirectory(prefix="hwnas-ci-check-") as tmp:
        specs = _specs(inputs, space, space_opt, archs, against, dev, Path(tmp))
        with _progress() as progress:
            report = run_check(specs, dev, th, ms, gates=gate_list, stored=stored, noise=load_noise(),
                               measure_all=update_baseline is not None, progress=progress)
    code = report.conclude(inconclusive)
    print_table(report)
    if json_out is not None:
        reports.write_report(report, json_out)
        typer.echo(f"wrote {json_out}")
    if junit_out is not None:
        reports.write_text(reports.junit_xml(report, inconclusive), junit_out)
        typer.echo(f"wrote {junit_out}")
    md = reports.markdown(report, inconclusive)
    if markdown_out is not None:
        from ..ci.plots import write_distribution_plots

        plots = write_distribution_plots(report, markdown_out)  # beside the file, linked from it
        reports.write_text(reports.markdown(report, inconclusive, plots), markdown_out)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a") as fh:
            fh.write(md + "\n")
    if update_baseline is not None:
        write_json(baseline_from_report(report, source=str(update_baseline)), update_baseline)
        typer.echo(f"wrote baseline {update_baseline}")
    typer.echo(f"ci-check: {report.verdict} (exit {code})")
    raise typer.Exit(code)


@ci_app.command("calibrate", epilog=EXIT_CODES)
def calibrate_cmd(
    inputs: Inputs = None,
    device: Device = "host",
    runtime: Runtime = None,
    space: Space = None,
    space_opt: SpaceOpt = None,
    archs: Archs = None,
    arch_file: Optional[Path] = old_spelling("--arch-file", "--archs"),
    rounds: int = typer.Option(20, "--rounds", help="A/A rounds per model"),
    budget_s: BudgetS = 60.0,
    delta: float = typer.Option(0.05, "--delta", help="the delta you plan to check with: the table says whether it is above the noise"),
    input_shape: InputShape = None,
    seed: Seed = 0,
) -> None:
    """Measure each model's A/A noise (the same file in both workers) into $HWNAS_HOME/ci-check/noise.json.

    Later checks note when their --delta is below a model's calibrated noise.

    Example: hwnas ci-check calibrate models/ --rounds 20
    """
    import tempfile

    from ..ci.baseline import save_noise
    from ..ci.calibrate import calibrate

    archs = either("--archs", archs, "--arch-file", arch_file)
    ms = _settings(budget_s, 200, rounds, seed, input_shape)
    dev = _device(device, runtime)
    with tempfile.TemporaryDirectory(prefix="hwnas-ci-check-") as tmp:
        specs = _specs(inputs, space, space_opt, archs, None, dev, Path(tmp))
        with _progress() as progress:
            entries = calibrate(specs, dev, ms, rounds=rounds, progress=progress)
    path = save_noise(entries)
    _print_noise(entries, delta, path)


# -- shared parsing --------------------------------------------------------------------------------------
def _settings(budget_s: float, max_rounds: int, rounds: int, seed: int, input_shape: str | None = None):
    from ..ci.ab import MeasureSettings
    from ..errors import HwnasError

    ms = MeasureSettings(budget_s=budget_s, max_rounds=max_rounds, baseline_rounds=max(2, rounds), seed=seed,
                         input_shape=input_shape)
    if rounds < 2:
        raise HwnasError(f"--rounds {rounds}: must be >= 2")
    return ms


def _device(device: str, runtime: str | None):
    from ..ci.ab import local_profile

    return local_profile(device, runtime=runtime)


def _check_outputs(*paths: Path | None) -> None:
    from ..fileio import check_writable

    for out in paths:
        if out is not None:
            check_writable(out)


def _specs(inputs, space, space_opt, archs, against, dev, tmp: Path):
    """Model specs from files / directories, or from arch strings of ``space`` exported for ``dev``."""
    from ..ci.inputs import resolve_archs, resolve_model_files
    from ..errors import HwnasError

    items = list(inputs or [])
    if space is not None:
        from ..export import ExportSettings
        from ..runtimes import format_for
        from .common import make_space

        if not items and archs is None:
            raise HwnasError("nothing to check: give arch strings or --archs FILE with --space")
        settings = ExportSettings(format=format_for(dev.runtime), precision=dev.precision)
        return resolve_archs(make_space(space, space_opt), items, archs, against, settings)
    if archs is not None:
        raise HwnasError("--archs needs --space (the space its arch strings belong to)")
    if not items:
        raise HwnasError("nothing to check: give model files, a directory, or arch strings with --space")
    return resolve_model_files(items, against, tmp)


# -- printing --------------------------------------------------------------------------------------------
def print_table(report, console=None) -> None:
    """The terminal table: one row per model, then every fail / inconclusive reason, note and the suite."""
    from rich.markup import escape
    from rich.table import Table

    from ..ci.reports import failed_gates, latency_cells
    from ..ci.stats import FAIL, INCONCLUSIVE, PASS, UNDER_FLOOR

    console = console or out_console()
    style = {PASS: "green", FAIL: "bold red", INCONCLUSIVE: "yellow", "new": "cyan", UNDER_FLOOR: "magenta"}
    th = report.thresholds
    floor = "noise floor" if th.floor_ms is None else f"floor {th.floor_ms:g} ms"
    t = Table(title=f"ci-check on {report.device['name']} (delta {th.delta * 100:g}%, {floor})")
    t.add_column("model", overflow="fold", min_width=24, ratio=3)
    for col in ("verdict", "baseline ms", "candidate ms", "ratio [95% CI]", "rounds", "gates"):
        t.add_column(col, overflow="fold", ratio=1)
    for m in report.models:
        failed = failed_gates(m)
        gates = f"[red]{', '.join(failed)} grew[/]" if failed else "ok"
        t.add_row(escape(m.name), f"[{style.get(m.verdict, '')}]{m.verdict}[/]", *latency_cells(m), gates)
    console.print(t)
    for m in report.models:
        if m.verdict in (FAIL, INCONCLUSIVE, UNDER_FLOOR) and m.latency:
            console.print(f"  {escape(m.name)}: {escape(m.reason)}")
        for n in m.notes:  # a note names parameters as the library does (`delta`): here, as their flags
            console.print(f"  [yellow]note[/] {escape(m.name)}: {escape(reword(n))}")
    if report.suite:
        console.print(f"  {escape(report.suite['reason'])} -> {report.suite['verdict']}")


def _print_noise(entries: list[dict], delta: float, path: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="A/A calibration (same model in two workers)")
    for col in ("model", "median ms", "A/A ratio [95% CI]", "noise", "rounds", f"delta {delta * 100:g}%"):
        t.add_column(col, overflow="fold")
    for e in entries:
        ok = e["noise_pct"] < delta * 100
        t.add_row(escape(e["name"]), f"{e['median_ms']:.3f}", f"{e['ratio']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]",
                  f"±{e['noise_pct']:.1f}%", str(e["rounds"]),
                  "[green]above noise[/]" if ok else "[yellow]BELOW noise: raise --delta or --budget-s[/]")
    out_console().print(t)
    typer.echo(f"wrote {path}")


class _progress:
    """A rich progress line on stderr: which model, how many rounds, elapsed time."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._p = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                           console=Console(stderr=True), transient=True)
        self._p.__enter__()
        self._task = self._p.add_task("starting workers", total=None)
        return self

    def __call__(self, index: int, name: str, rounds: int) -> None:
        from rich.markup import escape

        self._p.update(self._task, description=f"model {index + 1}: {escape(name)} - {rounds} rounds")

    def __exit__(self, *exc):
        return self._p.__exit__(*exc)
