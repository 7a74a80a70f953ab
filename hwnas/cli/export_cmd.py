"""`hwnas export`: write one architecture as an ONNX or TFLite file."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import EXIT_CODES


def register(app: typer.Typer) -> None:
    @app.command("export", epilog=EXIT_CODES)
    def export(
        arch: str = typer.Option(..., "--arch", help="arch string of the space (or genes:1,2,3)"),
        out: Path = typer.Option(..., "--out", help="file to write"),
        space: str = typer.Option("nb201", "--space", help="search space name (see `hwnas spaces`)"),
        fmt: str = typer.Option("onnx", "--format", help="onnx | tflite"),
        precision: str = typer.Option("fp32", "--precision", help="fp32 | int8 (post-training static quantisation)"),
        space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE, e.g. C=8"),
    ) -> None:
        """Export an architecture to ONNX or TFLite (cached by arch id and settings).

        Example: hwnas export --space nb201 --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|' --format tflite --out cell.tflite
        """
        from ..export import ExportSettings, export_arch
        from ..spaces import arch_from_text
        from .common import make_space

        settings = ExportSettings(format=fmt, precision=precision)
        sp = make_space(space, space_opt)
        a = arch_from_text(sp, arch)
        path = export_arch(sp, a, settings, out=out)
        costs = sp.static_costs(a)
        typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB; arch id {a.arch_id}; "
                   f"{costs.params:,} params, {costs.macs / 1e6:.1f} M MACs)")
