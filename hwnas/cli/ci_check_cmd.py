"""`hwnas ci-check`: fail CI on a real latency regression, stay quiet on machine noise (hwnas.regression)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("ci-check")
    def ci_check(
        inputs: Optional[List[str]] = typer.Argument(
            None, help="model files (.onnx/.tflite) or directories; arch strings with --space; "
                       "first word `calibrate` runs A/A calibration instead"),
        device: str = typer.Option("host", "--device", "-d", help="device profile name or YAML path (local only)"),
        runtime: Optional[str] = typer.Option(None, "--runtime", help="override the profile's runtime for arch exports: onnxruntime | litert"),
        against: Optional[str] = typer.Option(None, "--against", help="baseline measured in this job: a model file, a directory (same names) or a git ref"),
        baseline: Optional[Path] = typer.Option(None, "--baseline", help="stored baseline JSON (only trusted on the same machine and runtime version)"),
        update_baseline: Optional[Path] = typer.Option(None, "--update-baseline", help="write the candidates' measurements as a new baseline file"),
        space: Optional[str] = typer.Option(None, "--space", help="inputs are arch strings of this space (exported with hwnas.export)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE, e.g. C=8"),
        arch_file: Optional[Path] = typer.Option(None, "--arch-file", help="arch strings, one a line, or CSV with arch (and name) columns"),
        delta: float = typer.Option(0.05, "--delta", help="tolerated relative slowdown (0.05 = 5%)"),
        floor_ms: float = typer.Option(0.05, "--floor-ms", help="tolerated absolute slowdown in ms"),
        alpha: float = typer.Option(0.05, "--alpha", help="1 - CI level (0.05: 95% CIs)"),
        min_rounds: int = typer.Option(12, "--min-rounds", help="no pass or fail before this many rounds"),
        max_rounds: int = typer.Option(200, "--max-rounds", help="stop adding rounds here"),
        budget_s: float = typer.Option(60.0, "--budget-s", help="time budget per model for measuring rounds (s)"),
        rounds: int = typer.Option(20, "--rounds", help="calibrate: A/A rounds per model; --update-baseline alone: rounds measured"),
        gates: str = typer.Option(",".join(("macs", "params", "size_bytes", "op_count")), "--gates",
                                  help="exact gates (growth fails): comma list of macs,params,size_bytes,op_count, or none"),
        inconclusive: str = typer.Option("exit3", "--inconclusive", help="inconclusive results: exit3 | pass | fail"),
        json_out: Optional[Path] = typer.Option(None, "--json", help="write the report with raw samples here"),
        junit_out: Optional[Path] = typer.Option(None, "--junit", help="write JUnit XML here (one testcase per model and metric)"),
        markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="write the Markdown table here (also appended to $GITHUB_STEP_SUMMARY when set)"),
        seed: int = typer.Option(0, "--seed", help="seed of the ABBA schedule and the bootstrap"),
    ) -> None:
        """Check models for latency regressions against a baseline; exit 0 pass, 1 regression, 2 error, 3 inconclusive.

        Baseline and candidate run in two worker processes, interleaved in randomised ABBA rounds.

        Verdict: Hodges-Lehmann ratio of medians with a bootstrap 95% CI (Holm across models); exact gates on MACs, params, file size and op count.

        `hwnas ci-check calibrate MODELS` measures each model's A/A noise.

        Example: hwnas ci-check models/ --against origin/main --device host --json ci.json --junit ci.xml
        """
        import tempfile

        from .. import regression as rg
        from ..errors import HwnasError

        if inconclusive not in rg.INCONCLUSIVE_POLICIES:
            raise HwnasError(f"--inconclusive {inconclusive!r}: expected one of {', '.join(rg.INCONCLUSIVE_POLICIES)}")
        items = list(inputs or [])
        calibrating = bool(items) and items[0] == "calibrate"
        if calibrating:
            items = items[1:]
        if against is not None and baseline is not None:
            raise HwnasError("give either --against (measure the baseline now) or --baseline (stored), not both")
        if not calibrating and against is None and baseline is None and update_baseline is None:
            raise HwnasError("nothing to compare against: pass --against REF or --baseline FILE.json "
                             "(or --update-baseline FILE.json to record a baseline)")
        gate_list = [] if gates.strip().lower() == "none" else [g.strip() for g in gates.split(",") if g.strip()]
        th = rg.Thresholds(delta=delta, floor_ms=floor_ms, alpha=alpha, min_rounds=min_rounds)
        ms = rg.MeasureSettings(budget_s=budget_s, max_rounds=max_rounds, baseline_rounds=max(2, rounds), seed=seed)
        if rounds < 2:
            raise HwnasError(f"--rounds {rounds}: must be >= 2")
        dev = rg.Device.from_profile(device, runtime=runtime)
        stored = rg.load_baseline_file(baseline) if baseline is not None else None
        for out in (json_out, junit_out, markdown_out, update_baseline):
            if out is not None:
                from ..io import check_writable

                check_writable(out)

        with tempfile.TemporaryDirectory(prefix="hwnas-ci-check-") as tmp:
            if space is not None:
                from ..export import ExportSettings
                from .common import make_space

                sp = make_space(space, space_opt)
                settings = ExportSettings(format=dev.format, precision=dev.precision)
                specs = rg.resolve_archs(sp, items, arch_file, None if calibrating else against, settings)
            else:
                if arch_file is not None:
                    raise HwnasError("--arch-file needs --space (the space its arch strings belong to)")
                if not items:
                    raise HwnasError("nothing to check: give model files, a directory, or arch strings with --space")
                specs = rg.resolve_model_files(items, None if calibrating else against, Path(tmp))
            with _progress() as progress:
                if calibrating:
                    entries = rg.calibrate(specs, dev, ms, rounds=rounds, progress=progress)
                    path = rg.save_noise(entries)
                    _print_noise(entries, delta, path)
                    return
                report = rg.run_check(specs, dev, th, ms, gates=gate_list, stored=stored, noise=rg.load_noise(),
                                      measure_all=update_baseline is not None, progress=progress)
        code = rg.exit_code(report, inconclusive)
        report["verdict"], report["exit_code"], report["inconclusive_policy"] = rg.overall_verdict(report), code, inconclusive
        rg.print_table(report)
        if json_out is not None:
            rg.write_json(report, json_out)
            typer.echo(f"wrote {json_out}")
        if junit_out is not None:
            _write_text(junit_out, rg.junit_xml(report, inconclusive))
            typer.echo(f"wrote {junit_out}")
        md = rg.markdown(report, inconclusive)
        if markdown_out is not None:
            _write_text(markdown_out, md)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a") as fh:
                fh.write(md + "\n")
        if update_baseline is not None:
            rg.write_json(rg.baseline_from_report(report, source=str(update_baseline)), update_baseline)
            typer.echo(f"wrote baseline {update_baseline}")
        typer.echo(f"ci-check: {report['verdict']} (exit {code})")
        raise typer.Exit(code)


def _write_text(path: Path, text: str) -> None:
    from ..io import atomic_path, check_writable

    with atomic_path(check_writable(path)) as tmp:
        tmp.write_text(text)


def _print_noise(entries: list[dict], delta: float, path: Path) -> None:
    from rich.console import Console
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
    Console().print(t)
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
