"""`hwnas` entry point. Each command lives in its own module and registers itself in ``build_app``."""

from __future__ import annotations

import sys

import typer

from ..errors import HwnasError
from .flags import FLAG_OF, as_flags, flag_of, reword  # noqa: F401 - the CLI's wording of library errors

app = typer.Typer(
    name="hwnas",
    help="Hardware-aware, multi-objective neural architecture search: profile, predict, search, guard.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from . import (agent_cmd, ci_check_cmd, devices_cmd, export_cmd, fit_predictor_cmd, measurements_cmd,
                   pareto_search_cmd, predict_cmd, profile_cmd, propose_cmd, report_cmd, retrain_cmd, spaces_cmd,
                   store_cmd, supernet_cmd)

    for module in (spaces_cmd, export_cmd, profile_cmd, devices_cmd, measurements_cmd, agent_cmd, fit_predictor_cmd,
                   predict_cmd, propose_cmd, pareto_search_cmd, report_cmd, retrain_cmd, supernet_cmd, ci_check_cmd,
                   store_cmd):
        module.register(app)


_register()


def _click_classes(name: str) -> tuple[type, ...]:
    """``name`` from click and, where typer vendors its own copy (typer >= 0.20), from ``typer._click`` too."""
    import importlib

    found = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; bad input becomes a one-line error and exit code 2, never a traceback."""
    try:
        rv = app(args=argv, standalone_mode=False)
        # typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns exit codes instead of raising
        if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
            if rv == 130:
                typer.echo("interrupted: everything finished so far is kept", err=True)
            return rv
    except HwnasError as exc:
        typer.echo(f"error: {as_flags(exc)}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted: everything finished so far is kept", err=True)
        return 130
    except OSError as exc:  # the environment, not hwnas: a read-only disk, an unwritable HWNAS_HOME ...
        where = f": {exc.filename}" if exc.filename else ""
        typer.echo(f"error: {exc.strerror or exc}{where}", err=True)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # click usage errors (typer may vendor its own click: catch both)
        if isinstance(exc, _click_classes("Abort")):
            typer.echo("aborted", err=True)
            return 130
        if isinstance(exc, _click_classes("ClickException")):
            exc.show()
            return 2
        if isinstance(exc, _click_classes("Exit")):
            return int(getattr(exc, "exit_code", 0) or 0)
        raise
    return 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
