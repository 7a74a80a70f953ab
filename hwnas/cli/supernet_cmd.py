"""`hwnas supernet train|eval`: weight-sharing supernets (nb201 single-path, mobilenet Once-for-All)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperCommand

from .common import EXIT_CODES, old_spelling

supernet_app = typer.Typer(
    help="Weight-sharing supernets: train one, then score any subnet in seconds.\n\n"
         "Example: hwnas supernet train --space nb201 --space-opt C=8 --space-opt N=1 --space-opt input_size=8 "
         "--dataset digits --epochs 80 --out supernet.pt",
    no_args_is_help=True,
)


def _progress_bar():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("[bold]supernet epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("steps  loss {task.fields[loss]}"), TimeElapsedColumn(),
                        console=Console(stderr=True), transient=False)
    task = progress.add_task("train", total=None, epoch="-", loss="-")

    def update(info: dict) -> None:
        if not progress.live.is_started:  # start with the first step: bad input fails before any bar
            progress.start()
        progress.update(task, total=info["steps"], completed=info["step"], epoch=f"{info['epoch']}/{info['epochs']}",
                        loss=f"{info['loss']:.3f}")

    return progress, update


class _BareResume(TyperCommand):
    """``--resume`` with no path after it (its old form: continue the checkpoint at ``--out``) becomes the hidden
    flag ``--resume-at-out``, so that ``--resume CHECKPOINT`` can take a path like pareto-search's ``--resume DIR``."""

    def parse_args(self, ctx, args):
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--":
                break
            if arg == "--resume" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args[i] = "--resume-at-out"
        return super().parse_args(ctx, args)


@supernet_app.command("train", cls=_BareResume, epilog=EXIT_CODES)
def train(
    space: Optional[str] = typer.Option(None, "--space", help="nb201 | mobilenet"),
    space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="space setting KEY=VALUE, e.g. C=8"),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="digits (bundled, offline) | cifar10"),
    accuracy_data: Optional[str] = old_spelling("--accuracy-data", "--dataset"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="CIFAR-10 python-pickle directory"),
    download: bool = typer.Option(False, "--download/--no-download", help="let torchvision download CIFAR-10"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="supernet training epochs (default 10)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="batch size (default 64)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="SGD learning rate, cosine schedule (default 0.05)"),
    n_random: Optional[int] = typer.Option(None, "--n-random", help="mobilenet: random subnets per step besides largest + smallest (default 2)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed (same seed, same supernet on the CPU)"),
    train_device: str = typer.Option("auto", "--train-device", help="auto | cpu | cuda"),
    threads: int = typer.Option(1, "--threads", help="CPU threads for training"),
    out: Optional[Path] = typer.Option(None, "--out", help="checkpoint file to write (after every epoch); must not exist"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue this checkpoint, in place, with its own settings"),
    resume_at_out: bool = typer.Option(False, "--resume-at-out", hidden=True, help="old bare --resume: continue --out"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Train a weight-sharing supernet on the training split; checkpoint every epoch, resumable.

    nb201: one shared weight per (edge, op), one uniformly sampled path per step (SPOS / RSPS). mobilenet:
    Once-for-All elastic depth, kernel and expansion, sandwich rule with in-place distillation.

    Example: hwnas supernet train --space nb201 --space-opt C=8 --space-opt N=1 --space-opt input_size=8 --dataset digits --epochs 80 --out supernet.pt
    """
    from ..accuracy.supernet import train_supernet
    from ..accuracy.supernet.train import read_checkpoint
    from ..errors import HwnasError
    from ..spaces import create_space
    from ..spaces import parse_space_options

    from .common import deprecated, either

    dataset = either("--dataset", dataset, "--accuracy-data", accuracy_data)
    if resume_at_out:
        deprecated("--resume without a path", "--resume CHECKPOINT" + (f" (--resume {out})" if out else ""))
        if resume is not None or out is None:
            raise HwnasError("give the checkpoint to continue: --resume CHECKPOINT")
        resume = out
    if resume is not None:
        if out is not None and Path(out).resolve() != Path(resume).resolve():
            raise HwnasError(f"--resume {resume} continues that checkpoint in place: drop --out {out}")
        out = resume
    elif out is None:
        raise HwnasError("give --out FILE (a new checkpoint) or --resume CHECKPOINT (continue one)")
    elif out.exists():
        raise HwnasError(f"{out} already exists: continue it with --resume {out}, or choose another --out")
    recipe = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "n_random": n_random, "seed": seed}
    if resume is not None:
        given = [k for k, v in dict(recipe, space=space, space_opt=space_opt, dataset=dataset).items() if v not in (None, [])]
        if given:
            raise HwnasError("--resume continues the checkpoint with its own settings; drop "
                             + ", ".join("--" + k.replace("_", "-") for k in given))
        ckpt = read_checkpoint(out)
        sp = create_space(ckpt["space"], **dict(ckpt["space_config"]))
        dataset = ckpt["dataset"]
    else:
        sp = create_space(space or "nb201", **parse_space_options(space_opt))
        dataset = dataset or "digits"
    bar, update = _progress_bar() if progress else (None, None)
    try:
        meta = train_supernet(sp, out, dataset=dataset, recipe={k: v for k, v in recipe.items() if v is not None},
                              device=train_device, resume=resume is not None, threads=threads, data_root=data_dir,
                              download=download, progress=update)
    finally:
        if bar is not None and bar.live.is_started:
            bar.stop()
    seconds = sum(h["seconds"] for h in meta["history"])
    typer.echo(f"wrote {out}: {sp.name} supernet, {meta['epochs_done']}/{meta['recipe']['epochs']} epochs on "
               f"{dataset} ({seconds:.1f} s of training), hash {meta['hash']}")


@supernet_app.command("eval", epilog=EXIT_CODES)
def evaluate(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="hwnas supernet checkpoint"),
    arch: Optional[List[str]] = typer.Option(None, "--arch", help="arch string of the space (or genes:1,2,3); repeat"),
    archs: Optional[Path] = typer.Option(None, "--archs", help="file of archs (one per line, or CSV with an arch column)"),
    sample: int = typer.Option(0, "--sample", help="also score this many random archs (seeded)"),
    seed: int = typer.Option(0, "--seed", help="seed for --sample"),
    bn_images: int = typer.Option(200, "--bn-images", help="training images for batch-norm recalibration"),
) -> None:
    """Validation accuracy of subnets with inherited weights (batch norm recalibrated); CSV on stdout.

    Example: hwnas supernet eval --checkpoint supernet.pt --sample 5
    """
    import numpy as np

    from ..accuracy.supernet import supernet_values
    from ..accuracy.supernet.train import read_checkpoint
    from ..errors import HwnasError
    from ..spaces import arch_from_text, create_space
    from .common import read_arch_lines

    ckpt = read_checkpoint(checkpoint)
    sp = create_space(ckpt["space"], **dict(ckpt["space_config"]))
    texts = list(arch or []) + (read_arch_lines(archs) if archs else [])
    todo = [arch_from_text(sp, t) for t in texts] + sp.sample_distinct(sample, np.random.default_rng(seed))
    if not todo:
        raise HwnasError("nothing to score: give --arch, --archs FILE or --sample N")
    values, sources = supernet_values(sp, todo, checkpoint, bn_images=bn_images)
    typer.echo("arch,val_accuracy,source")
    for a, v, s in zip(todo, values, sources):
        typer.echo(f"\"{sp.to_string(a)}\",{v:.2f},{s}")


def register(app: typer.Typer) -> None:
    app.add_typer(supernet_app, name="supernet")
